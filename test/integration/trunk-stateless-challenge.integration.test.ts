import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { createRequest, parseMessage, type SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { RawSipPeer } from './trunk-auth-peer.js';

// Issue #16 target 2 over real UDP sockets: the trunk challenges an INVITE without credentials
// statelessly — one 407 per INVITE, never retransmitted, no transaction, no call — so a flood of
// them costs neither memory nor amplified traffic, and a caller with credentials is still served.

const DOMAIN = 'acme.trunk.sipkit.test';
const URI = `sip:+4930123@${DOMAIN}`;
/** Timer G would resend a stateful 407 at 10, 20, 40 … ms and give up at 64·T1 = 640 ms. */
const T1 = 10;

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function setup(): Promise<{ server: TrunkServer; port: number }> {
  const gw = new UserAgent({ transports: [await UdpTransport.bind()], onInvite: (c) => void c.reject(486) });
  stops.push(() => gw.close());
  const config = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'trunk-stateless-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      [DOMAIN]: { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gw.layer.transports[0]!.local.port}`] }] },
    },
    timers: { T1 },
    cdr: { path: null },
    log: { level: 'error' },
  });
  const server = await startTrunk(config);
  stops.push(() => server.stop('hangup'));
  return { server, port: server.sip[0]!.port };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function peer(host: string) {
  const p = await RawSipPeer.bind(host);
  stops.push(() => p.close());
  return p;
}

describe('trunk: stateless 407 (issue #16)', () => {
  it('an INVITE without credentials gets exactly one 407, no transaction; a retransmission gets it again; its ACK is absorbed', async () => {
    const { server, port } = await setup();
    const caller = await peer('127.0.0.2');
    const invite = caller.invite(URI, '2000', DOMAIN);
    caller.send(invite, port);
    const first = await caller.finalResponse(invite);
    expect(first.status).toBe(407);
    expect(server.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, calls: 0 });
    // Well past Timer G's schedule and Timer H (64·T1): a stateful 407 would have been resent ~6 times.
    await sleep(64 * T1 * 2);
    await expect(caller.finalResponse(invite, 200)).rejects.toThrow(/no final response/);

    caller.send(invite, port);
    const again = await caller.finalResponse(invite);
    expect(again.status).toBe(407);
    // The same request, the same answer (To tag derived from it, not drawn per send).
    expect(again.to.tag).toBe(first.to.tag);

    caller.ack(invite, again, port);
    await sleep(100);
    await expect(caller.finalResponse(invite, 100)).rejects.toThrow(/no final response/);
    expect(server.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, calls: 0, statelessAcksAbsorbed: 1, statelessResponses: 2 });
    expect(server.b2bua.list()).toHaveLength(0);
  });

  it('a flood of 2 000 INVITEs without credentials from 50 ports on 127.0.0.2 gets one 407 each and leaves no state; a caller with credentials is served meanwhile', async () => {
    const { server, port } = await setup();
    const sockets: Socket[] = [];
    let received407 = 0;
    let other = 0;
    for (let i = 0; i < 50; i++) {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.2', () => r()));
      s.on('message', (b) => {
        const m = parseMessage(b) as SipResponse;
        if (m.status === 407) received407++;
        else other++;
      });
      sockets.push(s);
      stops.push(() => new Promise((r) => s.close(() => r())));
    }
    const legit = await peer('127.0.0.1');
    let served: Promise<SipResponse> | undefined;
    let maxTransactions = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < sockets.length; i++) {
        const s = sockets[i]!;
        const inv = createRequest({
          method: 'INVITE',
          uri: URI,
          from: `<sip:flood@${DOMAIN}>`,
          to: `<${URI}>`,
          via: `SIP/2.0/UDP 127.0.0.2:${s.address().port};branch=z9hG4bK-flood-${round}-${i};rport`,
          contact: `<sip:flood@127.0.0.2:${s.address().port}>`,
        });
        s.send(inv.toBytes(), port, '127.0.0.1');
      }
      if (round === 10) served = legit.call(URI, DOMAIN, port, { username: '2000', password: 'pw-2000' }).then((r) => r.final);
      // Bounded wait for this round's answers (loopback keeps up; the bound only stops a hang).
      for (let w = 0; w < 200 && received407 < (round + 1) * sockets.length; w++) await sleep(5);
      maxTransactions = Math.max(maxTransactions, server.b2bua.stats.transactions);
    }
    const final = await served!;
    // Served: authenticated, forwarded, refused by the gateway.
    expect(final.status).toBe(486);
    expect(received407).toBe(2000);
    expect(other).toBe(0);
    // Only the legitimate call ever held transactions (its INVITE, 486 and ACK on both legs): the flood none.
    expect(maxTransactions).toBeLessThanOrEqual(4);
    expect(server.b2bua.list()).toHaveLength(1);
    expect(server.b2bua.stats.statelessResponses).toBeGreaterThanOrEqual(2001);
    // Nothing per INVITE is kept: 2 000 INVITEs cost far less than a transaction each would (≈ 2 KB).
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(16 * 1024 * 1024);
  }, 30_000);
});
