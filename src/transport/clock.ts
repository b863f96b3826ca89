/** A scheduled callback; cancelling a fired or cancelled timer is a no-op. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the stack sees it. Every timer of every state machine goes through a
 * Clock, so tests swap in a FakeClock and run T1…T4 without sleeping.
 */
export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): Timer;
  /**
   * Optional: `fn(arg)` after `ms`. With a function shared by many timers (one per timer kind)
   * and the object it acts on as `arg`, a timer needs no closure of its own: a held call's
   * transactions wait out 64·T1 each (issue #16). Clocks without it get `setTimer` and a closure.
   */
  setTimerWith?<A>(ms: number, fn: (arg: A) => void, arg: A): Timer;
  /**
   * Optional: how late this clock lets a long timer fire (RealClock: timers of `fromMs` or more
   * go on a wheel ticking every `tickMs`, never early, up to a tick late). Code that batches its
   * own long timers (the transaction layer's wait queues) may round a re-arm up to `tickMs`
   * instead of waking for every entry. Undefined: timers fire when due (FakeClock: exactly).
   */
  readonly coarseTimers?: { readonly fromMs: number; readonly tickMs: number };
  /**
   * Optional: ms on a clock that never steps (RealClock: `performance.now()`), for code that
   * keeps due times of its own (the wait queues): `now()` is the wall clock, which NTP may step
   * back or forward. Undefined: `now()` is taken as monotonic (FakeClock).
   */
  monotonicNow?(): number;
}

export interface RealClockOptions {
  /**
   * Timers this long or longer (ms) go on a coarse wheel instead of a node Timeout each
   * (default 5000: Timers B, D, F, H, I, J, K, L, M and the call timers; the retransmission
   * timers A, E, G stay exact). Infinity: every timer is a node Timeout.
   */
  coarseFromMs?: number;
  /** The wheel's granularity: a coarse timer fires up to this much late, never early (default 500; out of range: the default). */
  tickMs?: number;
}

/**
 * Wall-clock time and node timers (unref'd: a pending SIP timer never keeps a process alive).
 * Long timers (`coarseFromMs`) share one node interval ticking every `tickMs`, each an entry in
 * a bucket of its due tick: a held call waits out Timers L and M (64·T1) and the call's own
 * timers, and a node Timeout with its bookkeeping costs several times such an entry (issue #16;
 * undici's lib/util/timers.js does the same for its connection timeouts).
 */
export class RealClock implements Clock {
  private readonly wheel: TimerWheel | undefined;
  private readonly coarseFromMs: number;
  readonly coarseTimers: { readonly fromMs: number; readonly tickMs: number } | undefined;

  constructor(options: RealClockOptions = {}) {
    // Out of range (a negative or NaN value): the default.
    this.coarseFromMs = (options.coarseFromMs ?? -1) >= 0 ? options.coarseFromMs! : 5000;
    const tick = (options.tickMs ?? 0) > 0 && Number.isFinite(options.tickMs) ? options.tickMs! : 500;
    this.wheel = Number.isFinite(this.coarseFromMs) ? new TimerWheel(tick) : undefined;
    this.coarseTimers = this.wheel !== undefined ? Object.freeze({ fromMs: this.coarseFromMs, tickMs: tick }) : undefined;
  }

  now(): number {
    return Date.now();
  }

  monotonicNow(): number {
    return performance.now();
  }

  setTimer(ms: number, fn: () => void): Timer {
    if (this.wheel !== undefined && ms >= this.coarseFromMs) return this.wheel.add(ms, fn, undefined);
    const t = setTimeout(fn, ms);
    t.unref?.();
    return new NodeTimer(t);
  }

  setTimerWith<A>(ms: number, fn: (arg: A) => void, arg: A): Timer {
    if (this.wheel !== undefined && ms >= this.coarseFromMs) return this.wheel.add(ms, fn as (arg: unknown) => void, arg);
    const t = setTimeout(fn, ms, arg);
    t.unref?.();
    return new NodeTimer(t);
  }

  /** Coarse timers waiting on the wheel (for leak tests and metrics). */
  get coarsePending(): number {
    return this.wheel?.size ?? 0;
  }
}

/** A node Timeout as a Timer: a method on a prototype, not a closure and its context per timer. */
class NodeTimer implements Timer {
  constructor(private readonly t: ReturnType<typeof setTimeout>) {}
  cancel(): void {
    clearTimeout(this.t);
  }
}

/** One timer on the wheel: its bucket (the tick it is due at) and its place there, for an O(1) cancel. */
class WheelTimer implements Timer {
  constructor(
    readonly wheel: TimerWheel,
    public fn: ((arg: unknown) => void) | undefined,
    public arg: unknown,
    readonly tick: number,
    public index: number,
  ) {}
  cancel(): void {
    if (this.fn === undefined) return;
    this.fn = undefined;
    this.arg = undefined;
    this.wheel.remove(this);
  }
}

/**
 * Coarse timers: buckets by due tick (time / tickMs, rounded up, so none fires early), one
 * unref'd node interval while any is pending. Cancelling swaps the last entry of the bucket into
 * the hole: a cancelled timer (a call's no-answer timer, hours long) leaves nothing behind.
 */
class TimerWheel {
  private readonly buckets = new Map<number, WheelTimer[]>();
  private interval: ReturnType<typeof setInterval> | undefined;
  /** The last tick whose bucket ran. */
  private done: number;
  size = 0;

  constructor(private readonly tickMs: number) {
    this.done = Math.floor(performance.now() / tickMs);
  }

  add(ms: number, fn: (arg: unknown) => void, arg: unknown): WheelTimer {
    // Idle until now: nothing between the last run and now is due (no catching up on empty ticks).
    if (this.interval === undefined) this.done = Math.max(this.done, Math.floor(performance.now() / this.tickMs));
    const tick = Math.max(Math.ceil((performance.now() + ms) / this.tickMs), this.done + 1);
    let bucket = this.buckets.get(tick);
    if (bucket === undefined) this.buckets.set(tick, (bucket = []));
    const t = new WheelTimer(this, fn, arg, tick, bucket.length);
    bucket.push(t);
    this.size++;
    if (this.interval === undefined) {
      this.interval = setInterval(() => this.run(), this.tickMs);
      this.interval.unref?.();
    }
    return t;
  }

  remove(t: WheelTimer): void {
    const bucket = this.buckets.get(t.tick);
    if (bucket === undefined || bucket[t.index] !== t) return;
    const last = bucket.pop()!;
    if (last !== t) {
      bucket[t.index] = last;
      last.index = t.index;
    }
    if (bucket.length === 0) this.buckets.delete(t.tick);
    this.stopWhenEmpty(--this.size);
  }

  private run(): void {
    const now = Math.floor(performance.now() / this.tickMs);
    while (this.done < now && this.size > 0) {
      const tick = ++this.done;
      const bucket = this.buckets.get(tick);
      if (bucket === undefined) continue;
      this.buckets.delete(tick);
      this.size -= bucket.length;
      for (const t of bucket) {
        const fn = t.fn;
        const arg = t.arg;
        // Gone from the wheel before it runs: a cancel from inside a callback finds nothing to remove.
        t.fn = undefined;
        t.arg = undefined;
        if (fn !== undefined) fn(arg);
      }
    }
    this.done = Math.max(this.done, now);
    this.stopWhenEmpty(this.size);
  }

  private stopWhenEmpty(size: number): void {
    if (size === 0 && this.interval !== undefined) {
      clearInterval(this.interval);
      this.interval = undefined;
    }
  }
}

/**
 * A FakeClock timer: its heap entry is its handle (no closure per timer), and it knows its place
 * in the heap, so a cancel takes it out at once, as RealClock's wheel and clearTimeout do: a
 * cancelled long timer (a no-answer timeout) leaves nothing behind until its due time, neither
 * what its callback holds nor its entry (issue #16: what the memory bench counts of a timer is
 * its entry while it is pending).
 */
class Scheduled implements Timer {
  constructor(
    private readonly clock: FakeClock,
    readonly at: number,
    readonly seq: number,
    public fn: ((arg: unknown) => void) | undefined,
    public arg: unknown,
    /** @internal Its index in the clock's heap; -1 once fired or cancelled. */
    public index: number,
  ) {}
  get cancelled(): boolean {
    return this.index < 0;
  }
  cancel(): void {
    if (this.index < 0) return;
    this.clock.remove(this);
  }
}

/**
 * Deterministic virtual time. `advance(ms)` runs every timer due in that span,
 * in time order (ties in scheduling order), including timers scheduled by
 * the callbacks themselves.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private heap: Scheduled[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Timers scheduled and not yet fired or cancelled. */
  get pending(): number {
    return this.heap.length;
  }

  setTimer(ms: number, fn: () => void): Timer {
    return this.setTimerWith(ms, fn, undefined);
  }

  setTimerWith<A>(ms: number, fn: (arg: A) => void, arg: A): Timer {
    const s = new Scheduled(this, this.t + Math.max(0, ms), this.seq++, fn as (arg: unknown) => void, arg, this.heap.length);
    this.heap.push(s);
    this.up(s.index);
    return s;
  }

  /** @internal Take a cancelled timer out of the heap (O(log n)), and let go of what its callback holds. */
  remove(s: Scheduled): void {
    const h = this.heap;
    const i = s.index;
    s.index = -1;
    s.fn = undefined;
    s.arg = undefined;
    const last = h.pop()!;
    if (last === s) return;
    h[i] = last;
    last.index = i;
    this.down(i);
    this.up(last.index);
  }

  /** Move time forward by `ms`, firing what falls due. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > until) break;
      this.t = next.at;
      // Out of the heap before it runs: a later cancel() of it is a no-op.
      const { fn, arg } = next;
      this.remove(next);
      fn!(arg);
    }
    this.t = until;
  }

  /** Run timers until none is left (bounded, so a self-rescheduling timer cannot hang a test). */
  runAll(maxMs = 3_600_000): void {
    const limit = this.t + maxMs;
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > limit) break;
      this.advance(next.at - this.t);
    }
  }

  private less(a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    b.index = i;
    h[j] = a;
    a.index = j;
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
