import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/transport/index.js';

// Issue #16: FakeClock is what the in-process memory bench (bench/memory.ts) and the machines'
// tests run on. A cancelled timer must not stay behind until its due time (RealClock's wheel
// drops it at once): an ended call's hour-long no-answer timer would be counted as its residue.

const heapOf = (c: FakeClock): unknown[] => (c as unknown as { heap: unknown[] }).heap;

describe('FakeClock', () => {
  it('takes a cancelled timer out of its heap at once, keeping the live ones in order', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const timers = Array.from({ length: 1000 }, (_, i) => clock.setTimer(3_600_000 - i, () => fired.push(i)));
    for (let i = 0; i < 1000; i++) if (i % 10 !== 0) timers[i]!.cancel();
    expect(clock.pending).toBe(100);
    // Nothing of a cancelled timer stays: without the removal all 1000 entries would wait for their due time.
    expect(heapOf(clock).length).toBe(100);
    clock.advance(3_600_000);
    const expected = Array.from({ length: 100 }, (_, k) => 990 - 10 * k);
    expect(fired).toEqual(expected);
    expect(heapOf(clock).length).toBe(0);
  });

  it('a timer is its own handle: cancelling a fired or cancelled timer is a no-op and counts nothing', () => {
    const clock = new FakeClock();
    let n = 0;
    const a = clock.setTimer(10, () => n++);
    clock.advance(10);
    expect(n).toBe(1);
    for (let i = 0; i < 200; i++) a.cancel();
    const live = Array.from({ length: 100 }, () => clock.setTimer(50, () => n++));
    // Were the fired timer's cancels counted, the heap would be rebuilt: still every live timer fires once.
    live[0]!.cancel();
    live[0]!.cancel();
    clock.advance(50);
    expect(n).toBe(100);
    expect(clock.pending).toBe(0);
  });

  it('a cancel from inside a callback still fires the rest in time order', () => {
    const clock = new FakeClock();
    const order: number[] = [];
    const later = Array.from({ length: 200 }, (_, i) => clock.setTimer(100 + i, () => order.push(i)));
    clock.setTimer(50, () => {
      for (let i = 0; i < 200; i += 2) later[i]!.cancel();
    });
    clock.advance(1000);
    expect(order).toEqual(Array.from({ length: 100 }, (_, k) => 2 * k + 1));
  });

  it('fires in time order (ties in scheduling order) whatever was cancelled from the middle of the heap', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    // A pseudo-random mix of due times, with ties, and cancels from everywhere in the heap.
    let x = 12345;
    const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 50;
    const due = Array.from({ length: 500 }, () => rnd());
    const ts = due.map((d, i) => clock.setTimer(d, () => fired.push(i)));
    const cancelled = new Set<number>();
    for (let i = 0; i < 500; i += 3) {
      ts[(i * 7) % 500]!.cancel();
      cancelled.add((i * 7) % 500);
    }
    expect(clock.pending).toBe(500 - cancelled.size);
    clock.advance(100);
    const expected = due.map((d, i) => [d, i] as const).filter(([, i]) => !cancelled.has(i)).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
    expect(fired).toEqual(expected);
    expect(heapOf(clock).length).toBe(0);
  });
});
