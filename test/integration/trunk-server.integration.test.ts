import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { TcpTransport, UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function setup(extra: Record<string, unknown> = {}) {
  const gw = new UserAgent({
    transports: [await UdpTransport.bind()],
    onInvite: (c) => {
      c.provisional(180);
      void c.answer({ body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n' });
    },
  });
  stops.push(() => gw.close());
  const config = validateConfig({
    sip: {
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: 0 },
        { transport: 'tcp', host: '127.0.0.1', port: 0 },
      ],
    },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'integration-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      'acme.trunk.sipkit.test': {
        extensions: { '2000': { password: 'pw-2000' } },
        routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gw.layer.transports[0]!.local.port}`] }],
      },
    },
    cdr: { path: null },
    log: { level: 'error' },
    ...extra,
  });
  const trunk = await startTrunk(config);
  stops.push(() => trunk.stop('hangup'));
  return { trunk, gw };
}

function dial(ua: UserAgent, trunk: TrunkServer, transport: 'udp' | 'tcp', uri: string, password = 'pw-2000') {
  const sip = trunk.sip.find((s) => s.transport === transport)!;
  return ua.invite(uri, {
    destination: { address: '127.0.0.1', port: sip.port, transport },
    from: '<sip:2000@acme.trunk.sipkit.test>',
    body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n',
    auth: { username: '2000', password },
  });
}

describe('trunk server with sipkit user agents (SHA-256 digest, UDP and TCP)', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    it(`a call over ${transport.toUpperCase()} authenticates with SHA-256, is bridged and tracked`, async () => {
      const { trunk } = await setup();
      const caller = new UserAgent({ transports: [transport === 'udp' ? await UdpTransport.bind() : await TcpTransport.listen()] });
      stops.push(() => caller.close());
      const call = dial(caller, trunk, transport, 'sip:+4930123@acme.trunk.sipkit.test');
      await new Promise<void>((resolve, reject) => {
        call.on('answer', () => resolve());
        call.on('failure', (r) => reject(new Error(`failed ${r.status}`)));
      });
      expect(call.invite.get('proxy-authorization')).toContain('algorithm=SHA-256');
      const ended = new Promise((r) => trunk.b2bua.once('end', r));
      await call.hangup();
      await ended;
      const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls?trunk_domain=acme.trunk.sipkit.test`, { headers: { authorization: 'Bearer tok' } });
      const body = (await res.json()) as { result: Array<Record<string, unknown>> };
      expect(body.result).toHaveLength(1);
      expect(body.result[0]).toMatchObject({ status: 'hangup', extension: '2000', hangup_by: 'caller', source: expect.stringContaining(`${transport}:127.0.0.1:`) });
      const one = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls/${body.result[0]!.id}`, { headers: { authorization: 'Bearer tok' } });
      expect(await one.json()).toEqual(body.result[0]);
    });
  }

  it('shutdown in hangup mode ends live calls with a BYE carrying a Reason, refuses new ones, and closes', async () => {
    const { trunk } = await setup({ shutdown: { mode: 'hangup', drainSeconds: 0 } });
    const caller = new UserAgent({ transports: [await UdpTransport.bind()] });
    stops.push(() => caller.close());
    const call = dial(caller, trunk, 'udp', 'sip:+4930123@acme.trunk.sipkit.test');
    await new Promise<void>((resolve) => call.on('answer', () => resolve()));
    const ended = new Promise<unknown>((resolve) => call.on('ended', resolve));
    await trunk.stop();
    expect(await ended).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
  });

  it('drain mode lets a live call finish before closing', async () => {
    const { trunk } = await setup({ shutdown: { mode: 'drain', drainSeconds: 5 } });
    const caller = new UserAgent({ transports: [await UdpTransport.bind()] });
    stops.push(() => caller.close());
    const call = dial(caller, trunk, 'udp', 'sip:+4930123@acme.trunk.sipkit.test');
    await new Promise<void>((resolve) => call.on('answer', () => resolve()));
    let stopped = false;
    const stopping = trunk.stop().then(() => (stopped = true));
    // A new call is refused while draining.
    const second = dial(caller, trunk, 'udp', 'sip:+4930999@acme.trunk.sipkit.test');
    const refused = await new Promise<number>((resolve) => second.on('failure', (r) => resolve(r.status)));
    expect(refused).toBe(503);
    await new Promise((r) => setTimeout(r, 300));
    expect(stopped).toBe(false);
    await call.hangup();
    await stopping;
    expect(stopped).toBe(true);
  });

  it('an extension stored as HA1 (no password in the config) authenticates', async () => {
    const { computeHA1 } = await import('../../src/digest/index.js');
    const realm = 'acme.trunk.sipkit.test';
    const { trunk } = await setup();
    trunk.config.domains[realm]!.extensions['3000'] = {
      ha1: { 'SHA-256': computeHA1('SHA-256', '3000', realm, 'pw-3000'), MD5: computeHA1('MD5', '3000', realm, 'pw-3000') },
    };
    const caller = new UserAgent({ transports: [await UdpTransport.bind()] });
    stops.push(() => caller.close());
    const sip = trunk.sip.find((s) => s.transport === 'udp')!;
    const call = caller.invite('sip:+4930123@acme.trunk.sipkit.test', {
      destination: { address: '127.0.0.1', port: sip.port },
      from: '<sip:3000@acme.trunk.sipkit.test>',
      auth: { username: '3000', password: 'pw-3000' },
    });
    await new Promise<void>((resolve, reject) => {
      call.on('answer', () => resolve());
      call.on('failure', (r) => reject(new Error(`failed ${r.status}`)));
    });
    await call.hangup();
  });

  it('an unknown trunk domain is challenged like a known one (no 404 that enumerates domains)', async () => {
    const { trunk } = await setup();
    const caller = new UserAgent({ transports: [await UdpTransport.bind()] });
    stops.push(() => caller.close());
    const call = dial(caller, trunk, 'udp', 'sip:+4930123@nope.trunk.sipkit.test');
    const res = await new Promise<{ status: number; auth: boolean }>((resolve) => call.on('failure', (r) => resolve({ status: r.status, auth: r.has('proxy-authenticate') })));
    expect(res).toEqual({ status: 407, auth: true });
  });
});
