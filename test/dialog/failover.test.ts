import { describe, expect, it } from 'vitest';
import { UserAgent, type HangupCause, type IncomingCall } from '../../src/dialog/index.js';
import { SipError, type SipResponse } from '../../src/parser/index.js';
import { SipResolver } from '../../src/resolver/index.js';
import { failureCause, isSynthesized } from '../../src/transaction/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { addr, FakeDns, naptr, srv } from '../resolver/fake-dns.js';
import { drive } from '../support/ua-harness.js';

const T1 = 500;
const SDP = 'v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

type Behaviour = (call: IncomingCall) => void;

/**
 * Alice (10.0.0.1) places calls to `sip:…@carrier.test`, which DNS (a FakeDns) locates as two
 * gateways by NAPTR → SRV: gw1 (priority 10, 10.0.0.2) then gw2 (priority 20, 10.0.0.3).
 */
function world(options: { reliable?: boolean; gw1?: Behaviour | 'absent'; gw2?: Behaviour | 'absent'; trying?: boolean } = {}) {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: 3 });
  const dns = new FakeDns();
  const proto = options.reliable ? 'tcp' : 'udp';
  dns.zone.NAPTR.set('carrier.test', [naptr(10, 10, options.reliable ? 'SIP+D2T' : 'SIP+D2U', `_sip._${proto}.carrier.test`)]);
  dns.zone.SRV.set(`_sip._${proto}.carrier.test`, [srv('gw1.carrier.test', 5060, 10), srv('gw2.carrier.test', 5060, 20)]);
  dns.zone.A.set('gw1.carrier.test', [addr('10.0.0.2')]);
  dns.zone.A.set('gw2.carrier.test', [addr('10.0.0.3')]);
  const resolver = new SipResolver({ lookup: dns, clock, transports: [proto], families: [4] });
  const alice = new UserAgent({ transports: [net.transport('10.0.0.1', 5060, { reliable: options.reliable })], clock, resolver, contactUser: 'alice' });
  const arrived: Record<'gw1' | 'gw2', IncomingCall[]> = { gw1: [], gw2: [] };
  const gateways: UserAgent[] = [];
  for (const [name, ip] of [['gw1', '10.0.0.2'], ['gw2', '10.0.0.3']] as const) {
    const b = options[name];
    if (b === 'absent') continue;
    gateways.push(
      new UserAgent({
        transports: [net.transport(ip, 5060, { reliable: options.reliable })],
        clock,
        tryingAfterMs: options.trying ? 0 : undefined,
        onInvite: (c) => {
          arrived[name].push(c);
          (b ?? ((call: IncomingCall) => void call.answer({ body: SDP })))(c);
        },
      }),
    );
  }
  return { clock, net, dns, alice, arrived, gateways };
}

function branches(net: TestNetwork, method: string): string[] {
  return net.packets(method + ' ').map((p) => /branch=([^;\r\n]+)/.exec(p.bytes.toString())![1]!);
}

function destinations(net: TestNetwork, method: string): string[] {
  return net.packets(method + ' ').map((p) => `${p.to.address}:${p.to.port}`);
}

async function run(w: { clock: FakeClock }, ms = 200): Promise<void> {
  for (let t = 0; t < ms; t += 10) {
    w.clock.advance(10);
    await new Promise((r) => setImmediate(r));
  }
}

const reject503: Behaviour = (c) => void c.reject(503);

describe('RFC 3263 §4.3 fail-over in the user agent', () => {
  it('a 503 from the first gateway: the INVITE goes to the next with a new branch, and the call completes there', async () => {
    const w = world({ gw1: reject503 });
    const events: string[] = [];
    const call = w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { answer: () => events.push('answer'), failure: (r) => events.push('failure ' + r.status) } });
    await run(w);
    expect(events).toEqual(['answer']);
    expect(destinations(w.net, 'INVITE')).toEqual(['10.0.0.2:5060', '10.0.0.3:5060']);
    const [b1, b2] = branches(w.net, 'INVITE');
    expect(b1).not.toBe(b2);
    // The 503 was ACKed by its own transaction, at gw1 with gw1's branch.
    expect(destinations(w.net, 'ACK')[0]).toBe('10.0.0.2:5060');
    expect(call.destination).toMatchObject({ address: '10.0.0.3', port: 5060, transport: 'udp' });
    // The dialog and its ACK are with gw2.
    expect(destinations(w.net, 'ACK').at(-1)).toBe('10.0.0.3:5060');
    await drive(w, call.hangup(), 5000);
    expect(destinations(w.net, 'BYE')).toEqual(['10.0.0.3:5060']);
  });

  it('a gateway that never answers: fail-over after Timer B, with a new branch', async () => {
    const w = world({ gw1: 'absent' });
    const events: string[] = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { answer: () => events.push('answer') } });
    await run(w);
    expect(destinations(w.net, 'INVITE').every((d) => d === '10.0.0.2:5060')).toBe(true);
    expect(events).toEqual([]);
    await run(w, 64 * T1 + 200);
    expect(events).toEqual(['answer']);
    const dests = destinations(w.net, 'INVITE');
    expect(dests.at(-1)).toBe('10.0.0.3:5060');
    const b = branches(w.net, 'INVITE');
    expect(new Set(b).size).toBe(2);
  });

  it('a transport error (connection refused): fail-over at once, new branch', async () => {
    const w = world({ reliable: true, gw1: 'absent' });
    const events: string[] = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { answer: () => events.push('answer') } });
    await run(w);
    expect(events).toEqual(['answer']);
    // The refused connection carried nothing; gw2 got the INVITE over TCP.
    expect(destinations(w.net, 'INVITE')).toEqual(['10.0.0.3:5060']);
    expect(w.net.packets('INVITE ')[0]!.bytes.toString()).toMatch(/Via: SIP\/2.0\/TCP /);
  });

  it('every target refused the connection: TARGETS_EXHAUSTED, its cause the last attempt\'s TransportError (CONNECT_FAILED)', async () => {
    const w = world({ reliable: true, gw1: 'absent', gw2: 'absent' });
    const finals: SipResponse[] = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { failure: (r) => finals.push(r) } });
    await run(w);
    expect(finals).toHaveLength(1);
    expect(isSynthesized(finals[0]!)).toBe(true);
    const cause = failureCause(finals[0]!)!;
    expect(cause.code).toBe('TARGETS_EXHAUSTED');
    expect(cause.message).toContain('(CONNECT_FAILED)');
    expect(cause.cause).toMatchObject({ code: 'CONNECT_FAILED', remote: { address: '10.0.0.3', port: 5060 } });
  });

  it('a request sent to one destination (no fail-over) that cannot be sent: its made-up 503\'s cause is the TransportError', async () => {
    const w = world({ reliable: true, gw1: 'absent' });
    const finals: SipResponse[] = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, destination: { address: '10.0.0.2', port: 5060, transport: 'tcp' }, on: { failure: (r) => finals.push(r) } });
    await run(w);
    expect(finals).toHaveLength(1);
    expect(isSynthesized(finals[0]!)).toBe(true);
    expect(failureCause(finals[0]!)).toMatchObject({ code: 'CONNECT_FAILED' });
  });

  it('no fail-over after a provisional: a 180 then 503 ends the call at that gateway', async () => {
    const w = world({ gw1: (c) => c.provisional(180) });
    const failures: Array<[number, HangupCause]> = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { failure: (r, cause) => failures.push([r.status, cause]) } });
    await run(w);
    void w.arrived.gw1[0]!.reject(503);
    await run(w, 400);
    expect(failures.map((f) => f[0])).toEqual([503]);
    expect(failures[0]![1].by).toBe('remote');
    expect(destinations(w.net, 'INVITE')).toEqual(['10.0.0.2:5060']);
    expect(w.arrived.gw2).toHaveLength(0);
  });

  it('100 Trying does not commit: a gateway that sends 100 then 503 is failed over', async () => {
    const w = world({ trying: true, gw1: () => undefined });
    const events: string[] = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { answer: () => events.push('answer') } });
    await run(w);
    expect(w.net.packets('SIP/2.0 100').length).toBeGreaterThan(0);
    void w.arrived.gw1[0]!.reject(503);
    await run(w);
    expect(events).toEqual(['answer']);
    expect(destinations(w.net, 'INVITE')).toEqual(['10.0.0.2:5060', '10.0.0.3:5060']);
  });

  it('every target fails: one final, the last real one, with TARGETS_EXHAUSTED as its cause', async () => {
    const w = world({ gw1: reject503, gw2: reject503 });
    const finals: SipResponse[] = [];
    w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { failure: (r) => finals.push(r) } });
    await run(w);
    expect(finals).toHaveLength(1);
    expect(finals[0]!.status).toBe(503);
    expect(isSynthesized(finals[0]!)).toBe(false);
    expect(failureCause(finals[0]!)).toBeInstanceOf(SipError);
    expect(failureCause(finals[0]!)!.code).toBe('TARGETS_EXHAUSTED');
    expect(destinations(w.net, 'INVITE')).toEqual(['10.0.0.2:5060', '10.0.0.3:5060']);
  });

  it('a name that does not exist: a synthesized 503 whose cause is DNS_NOT_FOUND, nothing sent', async () => {
    const w = world();
    const finals: SipResponse[] = [];
    w.alice.invite('sip:+1555@nowhere.test', { body: SDP, on: { failure: (r) => finals.push(r) } });
    const options = w.alice.request('OPTIONS', 'sip:nowhere.test');
    await run(w);
    const res = await options;
    for (const r of [finals[0]!, res]) {
      expect(r.status).toBe(503);
      expect(isSynthesized(r)).toBe(true);
      expect(failureCause(r)?.code).toBe('DNS_NOT_FOUND');
    }
    expect(w.net.log).toHaveLength(0);
  });

  it('out-of-dialog requests fail over too: OPTIONS 503 at gw1, 200 at gw2, each a new branch', async () => {
    const w = world();
    const gw1 = w.gateways[0]!;
    // gw1 answers every OPTIONS 503 (draining).
    gw1.setAvailability('draining');
    const res = w.alice.request('OPTIONS', 'sip:carrier.test');
    await run(w);
    expect((await res).status).toBe(200);
    expect(destinations(w.net, 'OPTIONS')).toEqual(['10.0.0.2:5060', '10.0.0.3:5060']);
    const b = branches(w.net, 'OPTIONS');
    expect(b[0]).not.toBe(b[1]);
  });

  it('an IP-literal URI never touches the resolver and goes out synchronously', () => {
    const w = world();
    const call = w.alice.invite('sip:+1555@10.0.0.3', { body: SDP });
    // Sent before any promise could run: no DNS, no await on the hot path.
    expect(w.net.packets('INVITE ')).toHaveLength(1);
    expect(w.dns.queries).toEqual([]);
    expect(call.destination).toMatchObject({ address: '10.0.0.3', port: 5060 });
    void w.alice.request('OPTIONS', 'sip:10.0.0.2');
    expect(w.net.packets('OPTIONS ')).toHaveLength(1);
    expect(w.dns.queries).toEqual([]);
  });

  it('a CANCEL while failing over stops there: no further target is tried', async () => {
    const w = world({ gw1: 'absent' });
    const failures: HangupCause[] = [];
    const call = w.alice.invite('sip:+1555@carrier.test', { body: SDP, on: { failure: (_r, c) => failures.push(c) } });
    await run(w);
    void call.hangup();
    await run(w, 64 * T1 + 500);
    expect(destinations(w.net, 'INVITE').every((d) => d === '10.0.0.2:5060')).toBe(true);
    expect(w.arrived.gw2).toHaveLength(0);
  });
});

describe('Registration to a registrar named by host', () => {
  it('is located (RFC 3263) and fails over: 503 at the first SRV target, registered at the second', async () => {
    const w = world();
    // r1 answers REGISTER 503, r2 200 (echoing the Contact).
    const { Registration } = await import('../../src/dialog/index.js');
    const { createResponse } = await import('../../src/parser/index.js');
    const answered: string[] = [];
    for (const [i, ip] of [[0, '10.0.0.12'], [1, '10.0.0.13']] as const) {
      new UserAgent({
        transports: [w.net.transport(ip, 5060)],
        clock: w.clock,
        onRequest: (req, tx) => {
          answered.push(ip);
          tx.respond(i === 0 ? createResponse(req, 503) : createResponse(req, 200, { headers: { Contact: req.getAll('contact').map((c) => c + ';expires=300') } }));
        },
      });
    }
    w.dns.zone.NAPTR.set('registrar.test', 'NXDOMAIN');
    w.dns.zone.SRV.set('_sip._udp.registrar.test', [srv('r1.registrar.test', 5060, 10), srv('r2.registrar.test', 5060, 20)]);
    w.dns.zone.A.set('r1.registrar.test', [addr('10.0.0.12')]);
    w.dns.zone.A.set('r2.registrar.test', [addr('10.0.0.13')]);
    const reg = new Registration(w.alice, { registrar: 'sip:registrar.test', aor: 'sip:alice@registrar.test', expires: 300 });
    const registered: number[] = [];
    reg.on('registered', (info) => registered.push(info.expires));
    const done = reg.register();
    await run(w, 400);
    await done;
    expect(answered).toEqual(['10.0.0.12', '10.0.0.13']);
    expect(registered).toEqual([300]);
  });
});
