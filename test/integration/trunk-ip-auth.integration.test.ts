import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

// IP-based trunk auth over real UDP sockets: callers at 127.0.0.1, 127.0.0.2 and ::1, the trunk
// listening on 127.0.0.1 and ::1, one trunk domain per mode. Only 127.0.0.1 and ::1 are allowed.

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n';
const ALLOW = ['127.0.0.1/32', '::1'];

async function setup(allow: string[] = ALLOW) {
  const gw = new UserAgent({
    transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })],
    onInvite: (c) => void c.answer({ body: SDP }),
  });
  stops.push(() => gw.close());
  const target = `sip:127.0.0.1:${gw.layer.transports[0]!.local.port}`;
  const domain = (mode: string) => ({
    extensions: { '2000': { password: 'pw-2000' } },
    auth: { mode, ...(mode === 'digest' ? {} : { allow }) },
    routes: [{ prefix: '', targets: [target] }],
  });
  const config = validateConfig({
    sip: {
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: 0 },
        { transport: 'udp', host: '::1', port: 0 },
      ],
    },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'ip-auth-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      'ip.trunk.sipkit.test': domain('ip'),
      'both.trunk.sipkit.test': domain('ip+digest'),
      'either.trunk.sipkit.test': domain('ip-or-digest'),
      'digest.trunk.sipkit.test': domain('digest'),
    },
    cdr: { path: null },
    log: { level: 'error' },
  });
  const trunk = await startTrunk(config);
  stops.push(() => trunk.stop('hangup'));
  return trunk;
}

type Outcome = { status: number; challenged: boolean; view?: Record<string, unknown> };

/** One call from `from` to sip:+4930123@<domain>: its final status, whether a 407 came first, and the call's view once answered. */
async function call(trunk: TrunkServer, from: '127.0.0.1' | '127.0.0.2' | '::1', domain: string, password = 'pw-2000'): Promise<Outcome> {
  const ua = new UserAgent({ transports: [await UdpTransport.bind({ host: from, port: 0 })] });
  stops.push(() => ua.close());
  const v6 = from === '::1';
  const sip = trunk.sip.find((s) => s.address === (v6 ? '::1' : '127.0.0.1'))!;
  const c = ua.invite(`sip:+4930123@${domain}`, {
    destination: { address: v6 ? '::1' : '127.0.0.1', port: sip.port },
    from: `<sip:2000@${domain}>`,
    body: SDP,
    auth: { username: '2000', password },
  });
  const status = await new Promise<number>((resolve) => {
    c.on('answer', () => resolve(200));
    c.on('failure', (r) => resolve(r.status));
  });
  const challenged = c.invite.has('proxy-authorization');
  if (status !== 200) return { status, challenged };
  const id = trunk.b2bua.list().find((r) => r.aLeg.callId === c.invite.get('call-id'))!.id;
  const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls/${id}`, { headers: { authorization: 'Bearer tok' } });
  const view = (await res.json()) as Record<string, unknown>;
  await c.hangup();
  return { status, challenged, view };
}

describe('trunk IP-based auth over real sockets', () => {
  it('ip: allowed 127.0.0.1 and ::1 get through unchallenged (auth_method ip); 127.0.0.2 gets 403 with no challenge', async () => {
    const trunk = await setup();
    for (const from of ['127.0.0.1', '::1'] as const) {
      const r = await call(trunk, from, 'ip.trunk.sipkit.test');
      expect(r, from).toMatchObject({ status: 200, challenged: false, view: { auth_method: 'ip', extension: null, trunk_domain: 'ip.trunk.sipkit.test' } });
      expect(r.view!.source).toContain(`:${from}:`);
    }
    expect(await call(trunk, '127.0.0.2', 'ip.trunk.sipkit.test')).toEqual({ status: 403, challenged: false });
  });

  it('ip+digest: allowed sources are challenged and pass with the password (auth_method ip+digest); 127.0.0.2 gets 403 even with it', async () => {
    const trunk = await setup();
    for (const from of ['127.0.0.1', '::1'] as const) {
      expect(await call(trunk, from, 'both.trunk.sipkit.test'), from).toMatchObject({ status: 200, challenged: true, view: { auth_method: 'ip+digest', extension: '2000' } });
      expect((await call(trunk, from, 'both.trunk.sipkit.test', 'wrong')).status, from).toBe(407);
    }
    expect(await call(trunk, '127.0.0.2', 'both.trunk.sipkit.test')).toEqual({ status: 403, challenged: false });
  });

  it('ip-or-digest: allowed sources skip the challenge (ip); 127.0.0.2 is challenged and passes with the password (digest)', async () => {
    const trunk = await setup();
    for (const from of ['127.0.0.1', '::1'] as const) {
      expect(await call(trunk, from, 'either.trunk.sipkit.test', 'wrong'), from).toMatchObject({ status: 200, challenged: false, view: { auth_method: 'ip', extension: null } });
    }
    expect(await call(trunk, '127.0.0.2', 'either.trunk.sipkit.test')).toMatchObject({ status: 200, challenged: true, view: { auth_method: 'digest', extension: '2000' } });
    expect(await call(trunk, '127.0.0.2', 'either.trunk.sipkit.test', 'wrong')).toEqual({ status: 407, challenged: true });
  });

  it('digest (the default): every source is challenged, whatever its address (auth_method digest)', async () => {
    const trunk = await setup();
    for (const from of ['127.0.0.1', '127.0.0.2', '::1'] as const) {
      expect(await call(trunk, from, 'digest.trunk.sipkit.test'), from).toMatchObject({ status: 200, challenged: true, view: { auth_method: 'digest', extension: '2000' } });
    }
  });

  it('an IPv4-only allow list refuses ::1, an IPv6-only one refuses 127.0.0.1', async () => {
    const v4 = await setup(['127.0.0.0/8']);
    expect(await call(v4, '127.0.0.2', 'ip.trunk.sipkit.test')).toMatchObject({ status: 200, challenged: false });
    expect(await call(v4, '::1', 'ip.trunk.sipkit.test')).toEqual({ status: 403, challenged: false });
    const v6 = await setup(['::1/128']);
    expect(await call(v6, '::1', 'either.trunk.sipkit.test', 'wrong')).toMatchObject({ status: 200, challenged: false });
    expect(await call(v6, '127.0.0.1', 'either.trunk.sipkit.test', 'wrong')).toEqual({ status: 407, challenged: true });
  });

  it('an unknown domain is still challenged (not 403) from any source', async () => {
    const trunk = await setup();
    for (const from of ['127.0.0.1', '127.0.0.2', '::1'] as const) expect(await call(trunk, from, 'nope.trunk.sipkit.test'), from).toEqual({ status: 407, challenged: true });
  });
});
