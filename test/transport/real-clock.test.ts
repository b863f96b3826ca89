import { describe, expect, it } from 'vitest';
import { RealClock } from '../../src/transport/index.js';

// Issue #16: long timers (B, D, F, H, I, J, K, L, M, a call's own) share one coarse wheel in
// RealClock instead of a node Timeout each. FakeClock is untouched: tests of the machines stay
// deterministic. These check the wheel's bookkeeping and that a coarse timer never fires early.

/** Wait (bounded) until `done()`; the bound only stops a hang. */
async function until(done: () => boolean, maxMs = 5000): Promise<void> {
  for (const end = performance.now() + maxMs; !done() && performance.now() < end; ) await new Promise((r) => setTimeout(r, 5));
}

describe('RealClock coarse wheel', () => {
  it('puts timers at or above coarseFromMs on the wheel and shorter ones on node timers', () => {
    const clock = new RealClock({ coarseFromMs: 1000, tickMs: 100 });
    const short = clock.setTimer(999, () => undefined);
    expect(clock.coarsePending).toBe(0);
    const long = [clock.setTimer(1000, () => undefined), clock.setTimer(32_000, () => undefined), clock.setTimer(3_600_000, () => undefined)];
    expect(clock.coarsePending).toBe(3);
    short.cancel();
    for (const t of long) t.cancel();
    expect(clock.coarsePending).toBe(0);
  });

  it('says how late its long timers may fire (coarseTimers: what the wait queues batch by); none without a wheel', () => {
    expect(new RealClock({ coarseFromMs: 1000, tickMs: 100 }).coarseTimers).toEqual({ fromMs: 1000, tickMs: 100 });
    expect(new RealClock().coarseTimers).toEqual({ fromMs: 5000, tickMs: 500 });
    expect(new RealClock({ coarseFromMs: Infinity }).coarseTimers).toBeUndefined();
  });

  it('a cancelled timer leaves nothing behind, whatever its place in its bucket; cancelling twice is a no-op', () => {
    const clock = new RealClock({ coarseFromMs: 1000, tickMs: 100_000 });
    const fired: number[] = [];
    // One bucket (a tick of 100 s): cancel from the middle, the end and the start.
    const ts = Array.from({ length: 5 }, (_, i) => clock.setTimer(1000 + i, () => fired.push(i)));
    ts[2]!.cancel();
    ts[4]!.cancel();
    ts[0]!.cancel();
    ts[0]!.cancel();
    expect(clock.coarsePending).toBe(2);
    ts[1]!.cancel();
    ts[3]!.cancel();
    expect(clock.coarsePending).toBe(0);
    expect(fired).toEqual([]);
  });

  it('fires each coarse timer once, never before its time; a cancelled one never; callbacks may set and cancel timers', async () => {
    const clock = new RealClock({ coarseFromMs: 20, tickMs: 10 });
    const start = performance.now();
    const fired: Array<{ name: string; after: number }> = [];
    const at = (name: string, ms: number) => clock.setTimer(ms, () => fired.push({ name, after: performance.now() - start }));
    at('a', 20);
    const b = at('b', 30);
    at('c', 60);
    // A callback that cancels a timer due in the same tick and arms a new one.
    let late: { cancel(): void } | undefined;
    clock.setTimer(40, () => {
      late?.cancel();
      at('from-callback', 20);
    });
    late = at('cancelled-from-callback', 40);
    b.cancel();
    await until(() => fired.length >= 3 && clock.coarsePending === 0);
    expect(fired.map((f) => f.name).sort()).toEqual(['a', 'c', 'from-callback']);
    const due: Record<string, number> = { a: 20, c: 60, 'from-callback': 60 };
    for (const f of fired) expect(f.after).toBeGreaterThanOrEqual(due[f.name]! - 1);
    expect(clock.coarsePending).toBe(0);
  });

  it('Infinity turns the wheel off: every timer is a node Timeout', () => {
    const clock = new RealClock({ coarseFromMs: Infinity });
    const t = clock.setTimer(3_600_000, () => undefined);
    expect(clock.coarsePending).toBe(0);
    t.cancel();
  });

  it('setTimerWith calls the shared function with its argument, on the wheel and on node timers, and not once cancelled', async () => {
    const clock = new RealClock({ coarseFromMs: 20, tickMs: 10 });
    const got: string[] = [];
    const shared = (who: { name: string }) => got.push(who.name);
    clock.setTimerWith(1, shared, { name: 'node' });
    clock.setTimerWith(20, shared, { name: 'wheel' });
    clock.setTimerWith(20, shared, { name: 'cancelled' }).cancel();
    await until(() => got.length >= 2 && clock.coarsePending === 0);
    expect(got.sort()).toEqual(['node', 'wheel']);
  });
});
