import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { createResponse, parseMessage, type SipRequest, type SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';
const T1 = 20;

/** A destination that answers the INVITE with 200 and then never sends anything again (a dead gateway). */
async function deadAfterAnswer(): Promise<{ socket: Socket; port: number; received: string[] }> {
  const socket = createSocket('udp4');
  const received: string[] = [];
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  socket.on('message', (buf, rinfo) => {
    const m = parseMessage(buf);
    if (m.type !== 'request') return;
    received.push(m.method + ' ' + (m.get('reason') ?? ''));
    if (m.method !== 'INVITE' || received.filter((x) => x.startsWith('INVITE')).length > 1) return;
    const ok = createResponse(m as SipRequest, 200, { toTag: 'dead-gw', body: SDP, contentType: 'application/sdp' });
    ok.set('Contact', `<sip:gw@127.0.0.1:${socket.address().port}>`);
    socket.send(ok.toBytes(), rinfo.port, rinfo.address);
  });
  stops.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { socket, port: socket.address().port, received };
}

async function setup(gatewayPort: number): Promise<TrunkServer> {
  const trunk = await startTrunk(
    validateConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
      http: { host: '127.0.0.1', port: 0, token: 'tok' },
      auth: { secret: 'integration-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
      domains: { 'acme.trunk.sipkit.test': { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gatewayPort}`] }] } },
      cdr: { path: null },
      // A short T1 so that the dead leg's Timer F (64·T1) fires within the test.
      timers: { T1 },
      log: { level: 'error' },
    }),
  );
  stops.push(() => trunk.stop('hangup'));
  return trunk;
}

async function record(trunk: TrunkServer, id: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls/${id}`, { headers: { authorization: 'Bearer tok' } });
  return (await res.json()) as Record<string, unknown>;
}

describe('a BYE toward a dead destination does not hold the caller\'s BYE (issue #14 item 6), over real sockets', () => {
  it('the caller\'s BYE gets 200 while the relayed BYE is still pending; the record then says it timed out', async () => {
    const gw = await deadAfterAnswer();
    const trunk = await setup(gw.port);
    const caller = new UserAgent({ transports: [await UdpTransport.bind()] });
    stops.push(() => caller.close());
    const call = caller.invite('sip:+4930123@acme.trunk.sipkit.test', {
      destination: { address: '127.0.0.1', port: trunk.sip[0]!.port, transport: 'udp' },
      from: '<sip:2000@acme.trunk.sipkit.test>',
      body: SDP,
      auth: { username: '2000', password: 'pw-2000' },
    });
    await new Promise<SipResponse>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not answered within 10 s')), 10_000);
      call.on('answer', (r) => (clearTimeout(t), resolve(r)));
      call.on('failure', (r) => (clearTimeout(t), reject(new Error(`failed: ${r.status}`))));
    });
    const id = trunk.b2bua.list()[0]!.id;
    void call.hangup({ reason: { protocol: 'Q.850', cause: 16 } });
    const res = await call.byeResponse!;
    expect(res.status).toBe(200);
    // Answered while the trunk was still waiting on the dead leg.
    expect(await record(trunk, id)).toMatchObject({ status: 'hangup', hangup_by: 'caller', relayed_bye: 'pending' });
    expect(gw.received.some((m) => /^BYE Q\.850;cause=16/i.test(m))).toBe(true);
    let view: Record<string, unknown> = {};
    for (let i = 0; i < 100 && view.relayed_bye !== 'timeout'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      view = await record(trunk, id);
    }
    expect(view).toMatchObject({ relayed_bye: 'timeout', relayed_bye_status: 408 });
  }, 30_000);
});
