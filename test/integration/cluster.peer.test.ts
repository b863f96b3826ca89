import { afterEach, describe, expect, it } from 'vitest';
import { callThrough, eventually, frontStates, hasPeers, started, startTestCluster, type TestCluster } from './cluster-harness.js';

// The cluster of examples/cluster against programs nobody here wrote: Kamailio's dispatcher as
// the front, SIPp as the callers (answering the 407 with MD5 digest) and as the destination.

let current: TestCluster | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
}, 60_000);

const expectAllOk = (r: { ok: number; failed: number; offered: number }, what: string): void => {
  expect(r, what).toMatchObject({ ok: r.offered, failed: 0 });
};

describe.skipIf(!hasPeers)('cluster: Kamailio dispatcher front + 2 trunk instances, SIPp callers and destination', () => {
  it('a. spreads calls over both instances (hash over Call-ID), each call on one instance from 407 to BYE', { timeout: 90_000 }, async () => {
    const t = (current = await startTestCluster());
    const [one, two] = t.cluster.instances;
    const r = await callThrough(t, 'spread', { calls: 60, rate: 20, holdMs: 200 });
    expectAllOk(r, 'callers');
    const counts = [await started(one!), await started(two!)];
    // Every call authenticated and started on exactly one instance; both got a share.
    expect(counts[0]! + counts[1]!).toBe(60);
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Object.values(frontStates(t))).toEqual(['AP', 'AP']);
  });

  it('b. SIGTERM drains one instance under load: zero failed calls, its calls finish, the front sends new ones to the other', { timeout: 120_000 }, async () => {
    const t = (current = await startTestCluster());
    const [one, two] = t.cluster.instances;
    const load = callThrough(t, 'drain', { calls: 150, rate: 25, holdMs: 2000 });
    // Drain once the first instance holds calls.
    expect(await eventually(async () => (await started(one!)) >= 5, 20_000)).toBe(true);
    const beforeDrain = await started(one!);
    one!.process.kill('SIGTERM');
    // The front stops sending it calls: its OPTIONS now get 503.
    expect(await eventually(() => frontStates(t)[one!.sip]?.startsWith('I') === true, 10_000)).toBe(true);
    const r = await load;
    expectAllOk(r, 'callers');
    // It finished its calls and exited by itself (drained, not killed).
    expect(await one!.exited).toBe('0');
    expect(beforeDrain).toBeGreaterThan(0);
    expect(await started(two!)).toBeGreaterThan(0);
  });

  it('c. SIGKILL of one instance under load: after the probe interval, zero failed new calls; only the calls it held are lost', { timeout: 120_000 }, async () => {
    const t = (current = await startTestCluster());
    const [one, two] = t.cluster.instances;
    const first = callThrough(t, 'before-kill', { calls: 120, rate: 20, holdMs: 3000 });
    expect(await eventually(async () => (await started(one!)) >= 5, 20_000)).toBe(true);
    const heldByKilled = await started(one!);
    one!.process.kill('SIGKILL');
    // Marked down by its failed probes.
    expect(await eventually(() => frontStates(t)[one!.sip]?.startsWith('I') === true, 15_000)).toBe(true);
    expect(frontStates(t)[two!.sip]).toBe('AP');
    // New calls while the first load still runs.
    const after = await callThrough(t, 'after-kill', { calls: 60, rate: 20, holdMs: 500 });
    expectAllOk(after, 'new calls after the probe interval');
    const r = await first;
    // The killed instance's answered calls end with an unanswered BYE: lost. Calls it had not yet
    // answered went to the other instance (failure_route), and so did every call placed later.
    // (+2: calls it authenticated between the metrics read and the kill.)
    expect(r.failed).toBeLessThanOrEqual(heldByKilled + 2);
    expect(r.ok + r.failed).toBe(120);
  });
});

// Kept visible when the peers are there: the reason the suite above did not run is printed by the harness.
describe.runIf(!hasPeers)('cluster peer tests', () => {
  it.skip('need kamailio and sipp', () => {});
});

