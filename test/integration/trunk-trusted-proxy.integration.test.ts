import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { DigestClient } from '../../src/digest/index.js';
import { UserAgent, type IncomingCall } from '../../src/dialog/index.js';
import { createRequest, type SipRequest } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { RawSipPeer } from './trunk-auth-peer.js';

// Issue #18 over real UDP sockets: the trunk behind a front proxy at 127.0.0.1 (a raw socket
// playing Kamailio: its own Via on top of the caller's, received/rport filled in). With
// `sip.trustedProxies` the per-source protections are about the caller, not the front.

const DOMAIN = 'acme.trunk.sipkit.test';
const URI = `sip:+4930123@${DOMAIN}`;
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** A gateway that refuses each forwarded call (486), or with `hold` leaves it ringing (refused when closed). */
async function gateway(hold = false) {
  const forwarded: string[] = [];
  const held: IncomingCall[] = [];
  const gw = new UserAgent({
    transports: [await UdpTransport.bind()],
    onInvite: (c) => {
      forwarded.push(c.invite.get('call-id')!);
      if (hold) held.push(c);
      else void c.reject(486);
    },
  });
  stops.push(async () => {
    for (const c of held) if (!c.ended) await c.reject(486).catch(() => undefined);
    await gw.close();
  });
  return { forwarded, port: gw.layer.transports[0]!.local.port };
}

async function trunk(trustedProxies: string[], options: { hold?: boolean; maxCallsPerSource?: number; auth?: unknown } = {}) {
  const gw = await gateway(options.hold);
  const config = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], trustedProxies },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'trunk-proxy-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      [DOMAIN]: {
        extensions: { '2000': { password: 'pw-2000' } },
        auth: options.auth,
        routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gw.port}`] }],
      },
    },
    limits: options.maxCallsPerSource === undefined ? undefined : { maxCallsPerSource: options.maxCallsPerSource },
    cdr: { path: null },
    log: { level: 'error' },
  });
  const server: TrunkServer = await startTrunk(config);
  stops.push(() => server.stop('hangup'));
  const records: CallRecord[] = [];
  server.b2bua.on('call', (r) => records.push(r));
  const front = await RawSipPeer.bind('127.0.0.1');
  stops.push(() => front.close());
  return { gw, server, port: server.sip[0]!.port, front, records };
}

const branch = () => `z9hG4bK${randomBytes(6).toString('hex')}`;

/** The INVITE a caller at `caller`:5062 sent, as the front relays it: its Via on top, the caller's (received, rport) below. */
function relayed(front: RawSipPeer, caller: string, user: string): SipRequest {
  const req = createRequest({
    method: 'INVITE',
    uri: URI,
    from: `<sip:${user}@${DOMAIN}>`,
    to: `<${URI}>`,
    via: [`SIP/2.0/UDP 127.0.0.1:${front.port};branch=${branch()};rport`, `SIP/2.0/UDP ${caller}:5062;branch=${branch()};received=${caller};rport=5062`],
    contact: `<sip:${user}@${caller}:5062>`,
    body: SDP,
    contentType: 'application/sdp',
  });
  req.append('Record-Route', `<sip:127.0.0.1:${front.port};lr>`);
  return req;
}

/** INVITE → 407 → INVITE with credentials, all through the front; the final answer to the signed INVITE. */
async function callThroughFront(front: RawSipPeer, port: number, caller: string, password: string): Promise<number> {
  const first = relayed(front, caller, '2000');
  const challenge = await front.transact(first, port);
  if (challenge.status !== 407) return challenge.status;
  const signed = new DigestClient({ username: '2000', password }).authorize(first, challenge);
  return (await front.transact(signed, port)).status;
}

/** Wrong passwords from `caller` until the trunk refuses with 403 (bounded: DigestServer blocks after 10). */
async function guessUntilBlocked(front: RawSipPeer, port: number, caller: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < 12 && statuses.at(-1) !== 403; i++) statuses.push(await callThroughFront(front, port, caller, 'guess' + i));
  return statuses;
}

describe('trunk behind a trusted front proxy (issue #18)', () => {
  it('one caller\'s wrong passwords through the front block that caller only; another caller through the same front gets through', async () => {
    const { gw, port, front, records } = await trunk(['127.0.0.1/32']);
    const guesses = await guessUntilBlocked(front, port, '127.0.0.5');
    expect(guesses.at(-1)).toBe(403);
    expect(guesses.slice(0, -1).every((s) => s === 407)).toBe(true);
    expect(await callThroughFront(front, port, '127.0.0.6', 'pw-2000')).toBe(486); // authenticated, forwarded
    expect(gw.forwarded).toHaveLength(1);
    // The call's record names the caller, not the front.
    expect(records.map((r) => r.source)).toEqual([{ address: '127.0.0.6', port: 5062, transport: 'udp' }]);
    // The blocked caller stays blocked, even with the right password.
    expect(await callThroughFront(front, port, '127.0.0.5', 'pw-2000')).toBe(403);
  });

  it('without trustedProxies the front is one source: the same guesses lock out every caller behind it (today\'s behaviour)', async () => {
    const { gw, port, front } = await trunk([]);
    expect((await guessUntilBlocked(front, port, '127.0.0.5')).at(-1)).toBe(403);
    expect(await callThroughFront(front, port, '127.0.0.6', 'pw-2000')).toBe(403);
    expect(gw.forwarded).toHaveLength(0);
  });

  it('a sender that is not a trusted proxy cannot choose its source by adding a Via', async () => {
    // 127.0.0.2 is outside the trusted list: its "caller" Vias are ignored, so its guesses count against 127.0.0.2 itself.
    const { gw, port } = await trunk(['127.0.0.1/32']);
    const liar = await RawSipPeer.bind('127.0.0.2');
    stops.push(() => liar.close());
    let last = 0;
    for (let i = 0; i < 12 && last !== 403; i++) last = await callThroughFront(liar, port, `127.0.0.${10 + i}`, 'guess' + i);
    expect(last).toBe(403);
    expect(await callThroughFront(liar, port, '127.0.0.99', 'pw-2000')).toBe(403);
    expect(gw.forwarded).toHaveLength(0);
  });

  it('an IP-authenticated domain judges the caller behind the front by its own address', async () => {
    const { gw, port, front } = await trunk(['127.0.0.1/32'], { auth: { mode: 'ip', allow: ['127.0.0.7/32'] } });
    // Allowed: let through without a challenge, straight to the gateway.
    expect((await front.transact(relayed(front, '127.0.0.7', '2000'), port)).status).toBe(486);
    // Not allowed, though it arrives from the same front address: 403.
    expect((await front.transact(relayed(front, '127.0.0.8', '2000'), port)).status).toBe(403);
    expect(gw.forwarded).toHaveLength(1);
  });

  it('limits.maxCallsPerSource counts the callers behind the front, not the front', async () => {
    const { gw, port, front, records } = await trunk(['127.0.0.1/32'], { hold: true, maxCallsPerSource: 1 });
    const ringing = async (caller: string) => {
      const first = relayed(front, caller, '2000');
      const challenge = await front.transact(first, port);
      expect(challenge.status).toBe(407);
      const signed = new DigestClient({ username: '2000', password: 'pw-2000' }).authorize(first, challenge);
      front.send(signed, port);
      return signed;
    };
    await ringing('127.0.0.5');
    await ringing('127.0.0.6');
    // Both reach the gateway (bounded wait), each its caller's one call.
    for (let i = 0; i < 100 && gw.forwarded.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(gw.forwarded).toHaveLength(2);
    // A second call from 127.0.0.5 is over its limit: 503.
    const third = await ringing('127.0.0.5');
    expect((await front.finalResponse(third)).status).toBe(503);
    expect(records.map((r) => r.source.address)).toEqual(['127.0.0.5', '127.0.0.6', '127.0.0.5']);
  });
});
