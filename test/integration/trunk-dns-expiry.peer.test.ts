import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type IncomingCall } from '../../src/dialog/index.js';
import { NodeDnsLookup } from '../../src/resolver/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { DNSMASQ, startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';

// The trunk server and Debian's dnsmasq (issue #17), beyond trunk-dns.peer.test.ts: an SRV
// target that does not answer at all (the trunk fails over to the next when Timer B fires),
// and a gateway that moves in DNS (the trunk follows once the A record's TTL has run out).
if (DNSMASQ === undefined && process.env.CI) throw new Error('dnsmasq is not installed: .ci/run installs dnsmasq-base');
if (DNSMASQ === undefined) console.warn('trunk-dns-expiry.peer.test: skipped (dnsmasq is not installed)');

const ZONE = 'carrier.test';
const DOMAIN = 'dns.trunk.sipkit.test';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';
/** What dnsmasq gives its host records (--local-ttl), in seconds. */
const TTL = 2;
// The moving gateway's two homes: two loopback addresses, one port.
const OLD_HOME = '127.0.0.5';
const NEW_HOME = '127.0.0.6';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gateway answering every call, on `host` (port 0: any). */
async function gateway(host: string, port = 0): Promise<{ port: number; calls: IncomingCall[] }> {
  const calls: IncomingCall[] = [];
  const ua = new UserAgent({ transports: [await UdpTransport.bind({ host, port })], contactUser: 'gw', onInvite: (c) => void (calls.push(c), c.answer({ body: SDP })) });
  cleanups.push(() => ua.close({ timeoutMs: 1000 }));
  return { port: ua.layer.transports[0]!.local.port, calls };
}

/** A UDP socket that takes every datagram and answers none: a gateway that is gone. */
async function silent(): Promise<{ port: number; received: string[] }> {
  const s: Socket = createSocket('udp4');
  const received: string[] = [];
  s.on('message', (m) => received.push(m.toString('latin1').split('\r\n')[0]!));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => s.close());
  return { port: s.address().port, received };
}

/** One port free on both homes of the moving gateway (a few tries). */
async function gatewaysOnBothHomes(): Promise<{ port: number; old: IncomingCall[]; moved: IncomingCall[] }> {
  for (let i = 0; i < 10; i++) {
    const old = await gateway(OLD_HOME);
    try {
      const moved = await gateway(NEW_HOME, old.port);
      return { port: old.port, old: old.calls, moved: moved.calls };
    } catch {
      // Taken on the other address: try another port.
    }
  }
  throw new Error(`no port free on both ${OLD_HOME} and ${NEW_HOME}`);
}

describe.skipIf(DNSMASQ === undefined)('trunk server and dnsmasq: a silent SRV target, a gateway that moves (TTL)', () => {
  let dns: Dnsmasq;
  let hostsDir = '';
  let hostsFile = '';
  let silentGw: { port: number; received: string[] };
  let liveGw: { port: number; calls: IncomingCall[] };
  const lasting: Array<() => unknown> = [];

  beforeAll(async () => {
    hostsDir = mkdtempSync(join(tmpdir(), 'trunk-dns-expiry-'));
    hostsFile = join(hostsDir, 'hosts');
    writeFileSync(hostsFile, `${OLD_HOME} moving.${ZONE}\n`);
    // Gateways of the SRV test live for the whole file (dnsmasq must know their ports).
    silentGw = await silent();
    liveGw = await gateway('127.0.0.1');
    lasting.push(...cleanups.splice(0));
    dns = await startDnsmasq(
      [
        `--local=/${ZONE}/`,
        `--addn-hosts=${hostsFile}`,
        `--local-ttl=${TTL}`,
        // quiet.carrier.test: no NAPTR; _sip._udp → gw1 (priority 10, silent), gw2 (priority 20, answers).
        `--srv-host=_sip._udp.quiet.${ZONE},gw1.${ZONE},${silentGw.port},10,0`,
        `--srv-host=_sip._udp.quiet.${ZONE},gw2.${ZONE},${liveGw.port},20,0`,
        `--host-record=gw1.${ZONE},127.0.0.1`,
        `--host-record=gw2.${ZONE},127.0.0.1`,
      ],
      `gw1.${ZONE}`,
    );
  }, 30_000);

  afterAll(async () => {
    dns?.stop();
    for (const c of lasting.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
    if (hostsDir) rmSync(hostsDir, { recursive: true, force: true });
  });

  async function setUp(target: string, T1: number): Promise<{ trunk: TrunkServer; caller: UserAgent; ended: CallRecord[] }> {
    const trunk = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
        http: { host: '127.0.0.1', port: 0, token: 'tok' },
        auth: { secret: 'trunk-dns-expiry-secret-0123456789abcdef' },
        dns: { servers: [dns.server] },
        domains: { [DOMAIN]: { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: [target] }] } },
        timers: { T1 },
        cdr: { path: null },
        log: { level: 'error' },
      }),
    );
    const ended: CallRecord[] = [];
    trunk.b2bua.on('end', (r) => ended.push(r));
    const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })], timers: { T1: 100 } });
    cleanups.push(async () => {
      await caller.close({ timeoutMs: 1000 });
      await trunk.stop('hangup');
    });
    return { trunk, caller, ended };
  }

  /** A call with digest auth; resolves with the final status (an answered call is hung up at once). */
  function dial(caller: UserAgent, trunk: TrunkServer, number: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no final answer within 15 s')), 15_000);
      const call = caller.invite(`sip:${number}@${DOMAIN}`, {
        destination: { address: '127.0.0.1', port: trunk.sip[0]!.port, transport: 'udp' },
        from: `<sip:2000@${DOMAIN}>`,
        body: SDP,
        auth: { username: '2000', password: 'pw-2000' },
        on: {
          answer: (res) => void call.hangup().then(() => (clearTimeout(t), resolve(res.status))),
          failure: (res) => (clearTimeout(t), resolve(res.status)),
        },
      });
    });
  }

  it('an SRV target that does not answer at all: Timer B (T1 = 20 ms → 1.28 s) ends that attempt, the next SRV target answers', async () => {
    const { trunk, caller, ended } = await setUp(`sip:quiet.${ZONE}`, 20);
    expect(await dial(caller, trunk, '15550001111')).toBe(200);
    // The silent gateway got the INVITE, retransmitted (Timer A) until Timer B gave up on it.
    expect(silentGw.received.length).toBeGreaterThan(1);
    expect(new Set(silentGw.received)).toEqual(new Set([`INVITE sip:15550001111@quiet.${ZONE} SIP/2.0`]));
    expect(liveGw.calls).toHaveLength(1);
    for (let i = 0; i < 50 && ended.length === 0; i++) await sleep(20);
    // One route target (the name); the fail-over between its SRV targets happened below the bridge.
    expect(ended[0]).toMatchObject({ bLeg: { target: `sip:15550001111@quiet.${ZONE}`, attempts: 1 }, hangup: { by: 'caller' } });
  }, 30_000);

  it(`a gateway that moves in DNS: calls go to its new address once the A record's TTL (${TTL} s) has run out`, async () => {
    const { port, old, moved } = await gatewaysOnBothHomes();
    const { trunk, caller } = await setUp(`sip:moving.${ZONE}:${port}`, 100);
    const started = Date.now();
    expect(await dial(caller, trunk, '15550002222')).toBe(200);
    expect([old.length, moved.length]).toEqual([1, 0]);

    // The gateway moves: dnsmasq rereads its hosts file on SIGHUP (bounded wait until it serves the new address).
    writeFileSync(hostsFile, `${NEW_HOME} moving.${ZONE}\n`);
    dns.process.kill('SIGHUP');
    const direct = new NodeDnsLookup({ servers: [dns.server], timeout: 500, tries: 1 });
    let served = '';
    for (let i = 0; i < 40 && served !== NEW_HOME; i++) {
      served = (await direct.a(`moving.${ZONE}`).catch(() => []))[0]?.address ?? '';
      if (served !== NEW_HOME) await sleep(50);
    }
    expect(served).toBe(NEW_HOME);

    // While the cached answer lasts, calls still go to the old address. (Only checked when this
    // machine was quick enough to get here within the TTL: this is no timing assertion.)
    if (Date.now() - started < TTL * 1000 - 500) {
      expect(await dial(caller, trunk, '15550003333')).toBe(200);
      expect([old.length, moved.length]).toEqual([2, 0]);
    }
    // Once the TTL has run out, the trunk asks again and follows.
    await sleep(TTL * 1000 + 200);
    const before = old.length;
    expect(await dial(caller, trunk, '15550004444')).toBe(200);
    expect([old.length, moved.length]).toEqual([before, 1]);
    expect(moved[0]!.invite.uri).toBe(`sip:15550004444@moving.${ZONE}:${port}`);
  }, 30_000);
});
