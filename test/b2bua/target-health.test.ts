import { describe, expect, it } from 'vitest';
import { TargetProber, type TargetHealth } from '../../src/b2bua/index.js';
import { UserAgent } from '../../src/dialog/index.js';
import { SipResolver } from '../../src/resolver/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { addr, FakeDns } from '../resolver/fake-dns.js';
import { DEST, DEST2, placeCall, run, SDP_DEST, trunk, TRUNK } from '../support/b2bua-harness.js';

const PROBE = { intervalMs: 1000, failureThreshold: 2, successThreshold: 2, timeoutMs: 400 };

describe('TargetProber: OPTIONS health checks', () => {
  it('unknown → up → down → up, with events, on the clock; at most one probe in flight per target', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const ua = new UserAgent({ transports: [net.transport('10.0.0.1')], clock });
    let gw: UserAgent | undefined = new UserAgent({ transports: [net.transport('10.0.0.2')], clock, onInvite: () => undefined });
    const prober = new TargetProber(ua, { targets: ['sip:10.0.0.2'], ...PROBE });
    const events: string[] = [];
    prober.on('target-up', (h) => events.push(`up ${h.uri} ${h.lastStatus}`));
    prober.on('target-down', (h) => events.push(`down ${h.uri} ${h.lastStatus}`));
    expect(prober.health()[0]).toMatchObject({ state: 'unknown', lastChange: undefined, probes: 0 });
    prober.start();
    await run({ clock }, 1500);
    expect(events).toEqual(['up sip:10.0.0.2 200']);
    const up = prober.health()[0]!;
    expect(up).toMatchObject({ state: 'up', addresses: ['udp 10.0.0.2:5060'], lastStatus: 200, probes: 2 });
    expect(up.lastChange).toBeGreaterThan(0);
    // The gateway goes away: probes time out (timeoutMs), two in a row take it down.
    await gw.close({ timeoutMs: 0 });
    gw = undefined;
    await run({ clock }, 2500);
    expect(events).toEqual(['up sip:10.0.0.2 200', 'down sip:10.0.0.2 408']);
    expect(prober.stateOf('sip:+1555@10.0.0.2')).toBe('down');
    const probesWhileDown = prober.health()[0]!.probes;
    // Bounded: one probe per interval, never overlapping (a timed-out probe's transaction may still run).
    expect(probesWhileDown).toBeLessThanOrEqual(5);
    gw = new UserAgent({ transports: [net.transport('10.0.0.2')], clock, onInvite: () => undefined });
    await run({ clock }, 2500);
    expect(events.at(-1)).toBe('up sip:10.0.0.2 200');
    prober.stop();
    const after = net.packets('OPTIONS ').length;
    await run({ clock }, 5000);
    expect(net.packets('OPTIONS ').length).toBe(after);
    await ua.close({ timeoutMs: 0 });
    await gw.close({ timeoutMs: 0 });
  });

  it('a 503 (draining) is a failure; the probe resolves names and lists their addresses', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const dns = new FakeDns();
    dns.zone.A.set('gw.carrier.test', [addr('10.0.0.2')]);
    const ua = new UserAgent({ transports: [net.transport('10.0.0.1')], clock, resolver: new SipResolver({ lookup: dns, clock, families: [4] }) });
    const gw = new UserAgent({ transports: [net.transport('10.0.0.2')], clock, onInvite: () => undefined });
    gw.setAvailability('draining');
    const prober = new TargetProber(ua, { targets: ['sip:gw.carrier.test:5060'], ...PROBE });
    const downs: TargetHealth[] = [];
    prober.on('target-down', (h) => downs.push(h));
    prober.start();
    await run({ clock }, 1500);
    expect(downs).toHaveLength(1);
    expect(downs[0]).toMatchObject({ uri: 'sip:gw.carrier.test:5060', state: 'down', lastStatus: 503, addresses: ['udp 10.0.0.2:5060'] });
    prober.stop();
  });

  it('bad options are BAD_OPTION', () => {
    const clock = new FakeClock(0);
    const ua = new UserAgent({ transports: [new TestNetwork({ clock }).transport('10.0.0.1')], clock });
    expect(() => new TargetProber(ua, { targets: ['mailto:x@y'] })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new TargetProber(ua, { targets: [], intervalMs: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new TargetProber(ua, { targets: [], failureThreshold: 0.5 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});

describe('B2BUA target health', () => {
  it('skips a target probed down when it fails over, emits target-down, and reports targetHealth()', async () => {
    const downs: string[] = [];
    const t = trunk({
      b2bua: {
        route: () => [{ uri: `sip:+15551234567@${DEST}:5060` }, { uri: `sip:+15551234567@${DEST2}:5060` }],
        probe: { targets: [`sip:${DEST}:5060`, `sip:${DEST2}:5060`], ...PROBE },
      },
    });
    t.b2bua.on('target-down', (h) => downs.push(h.uri));
    await run(t, 2500);
    expect(t.b2bua.targetHealth().map((h) => h.state)).toEqual(['up', 'up']);
    // The first destination goes away.
    await runFor(t, t.dest.close({ timeoutMs: 100 }));
    await run(t, 2500);
    expect(downs).toEqual([`sip:${DEST}:5060`]);
    expect(t.b2bua.targetHealth()).toEqual([
      expect.objectContaining({ uri: `sip:${DEST}:5060`, state: 'down', lastStatus: 408 }),
      expect.objectContaining({ uri: `sip:${DEST2}:5060`, state: 'up', lastStatus: 200, addresses: [`udp ${DEST2}:5060`] }),
    ]);
    const answered: number[] = [];
    placeCall(t, { on: { answer: (r) => answered.push(r.status) } });
    await run(t);
    // Straight to the second destination: no INVITE to the one that is down.
    expect(t.net.packets('INVITE ').filter((p) => p.from.address === TRUNK).map((p) => p.to.address)).toEqual([DEST2]);
    await t.atDest2[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(answered).toEqual([200]);
    await runFor(t, t.b2bua.close({ timeoutMs: 100 }));
  });

  it('every target down: all are tried anyway, in order', async () => {
    const t = trunk({
      b2bua: {
        route: () => [{ uri: `sip:+15551234567@${DEST}:5060` }, { uri: `sip:+15551234567@${DEST2}:5060` }],
        probe: { targets: [`sip:${DEST}:5060`, `sip:${DEST2}:5060`], ...PROBE },
      },
    });
    // Both answer OPTIONS 503 (draining) yet still take calls.
    t.dest.setAvailability('draining');
    t.dest2.setAvailability('draining');
    await run(t, 2500);
    expect(t.b2bua.targetHealth().map((h) => h.state)).toEqual(['down', 'down']);
    placeCall(t);
    await run(t);
    void t.atDest[0]!.reject(503);
    await run(t);
    expect(t.net.packets('INVITE ').filter((p) => p.from.address === TRUNK).map((p) => p.to.address)).toEqual([DEST, DEST2]);
    await runFor(t, t.b2bua.close({ timeoutMs: 100 }));
  });

  it('stopAccepting(): OPTIONS to the B2BUA gets 503, as an INVITE would', async () => {
    const t = trunk();
    const before = await runFor(t, t.caller.request('OPTIONS', `sip:${TRUNK}`));
    expect(before.status).toBe(200);
    t.b2bua.stopAccepting();
    const after = await runFor(t, t.caller.request('OPTIONS', `sip:${TRUNK}`));
    expect(after.status).toBe(503);
    expect(after.get('retry-after')).toBeDefined();
  });

  it('a B-leg domain that does not exist: the caller gets 404 and the record says so', async () => {
    const dns = new FakeDns();
    const t = trunk({ b2bua: { route: () => [{ uri: 'sip:+15551234567@nowhere.test' }], resolver: new SipResolver({ lookup: dns, families: [4] }) } });
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([404]);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 404 });
    expect(dns.count('NAPTR', 'nowhere.test')).toBe(1);
  });
});

async function runFor<T>(t: { clock: FakeClock }, p: Promise<T>): Promise<T> {
  let done = false;
  void p.finally(() => (done = true));
  for (let i = 0; i < 200 && !done; i++) await run(t, 10);
  return p;
}

