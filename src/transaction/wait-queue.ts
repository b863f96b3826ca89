import type { Clock, Timer } from '../transport/index.js';

/** What a wait queue fires: a transaction whose wait timer is due (see Transaction.expireWait). */
export interface Waiter {
  /** @internal Still waiting on `queue` (not ended early, not waiting elsewhere). */
  waitsOn(queue: WaitQueue): boolean;
  /** @internal Its wait on `queue` is over: fire `queue.event`. */
  expireWait(queue: WaitQueue): void;
}

/** One callback for every queue's clock timer: no closure per queue, none per waiter. */
const runQueue = (q: WaitQueue): void => q.run();

/** Passed slots at the front of a queue beyond which it is compacted (when they are also half of it). */
const COMPACT_FROM = 1024;

/**
 * The wait timers of one event and one duration (Timer L at 64·T1, Timer K at T4, Timer J at 0
 * over a connection…): RFC 3261 arms each of Timers D, I, J, K, L and M once, on entering a
 * state it only leaves when the timer fires or the transaction is aborted, for a duration fixed
 * per layer. Every waiter of one queue is thus due in the order it came, so the queue is a FIFO
 * (parallel arrays of waiters and due times, a plain number array of unboxed doubles, with a head
 * index) under ONE clock timer, armed for its head and re-armed for the next head when it fires.
 * A waiting transaction then holds no Timer of its own, only this queue as its handle: 16 bytes
 * of slot instead of a clock entry each (issue #16: an ended call leaves four such transactions).
 *
 * A waiter that leaves early (aborted, a transport error) tells the queue through `cancel()`,
 * the Timer interface its handle answers to; its slot stays until the head passes it (bounded by
 * the duration) and fires nothing then, as the waiter no longer waits on this queue. When no
 * waiter is left the queue lets go of its slots and its clock timer at once.
 */
export class WaitQueue implements Timer {
  private waiters: Array<Waiter | undefined> = [];
  private due: number[] = [];
  private head = 0;
  /** Waiters still waiting (slots of waiters that left early are not counted). */
  private live = 0;
  private timer: Timer | undefined;
  private running = false;

  constructor(
    private readonly clock: Clock,
    /** The event every waiter is fired with ('timer_L', …). */
    readonly event: string,
    /** The wait, in ms, for every waiter. */
    readonly ms: number,
  ) {}

  /** Waiters still waiting. */
  get size(): number {
    return this.live;
  }

  /** Clock timers this queue holds: one while anyone waits, else none. */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** @internal `w` waits from now for `ms`; the queue is its handle (keep it to `cancel()`). */
  add(w: Waiter): this {
    const now = this.now();
    this.waiters.push(w);
    this.due.push(now + this.ms);
    this.live++;
    if (this.timer === undefined && !this.running) this.arm(this.ms);
    return this;
  }

  /**
   * A waiter left before its due time (Timer interface: the handle a transaction cancels when it
   * ends). Its slot is skipped when reached; with no waiter left, the queue empties now.
   */
  cancel(): void {
    if (--this.live <= 0 && !this.running) this.reset();
  }

  /**
   * Due times are read from the clock's monotonic time when it has one (RealClock: performance.now):
   * with the wall clock, an NTP step back would hold every wait of the queue behind its head for
   * as long as the step (a leak on a busy trunk), a step forward end them early.
   */
  private now(): number {
    const clock = this.clock;
    return clock.monotonicNow !== undefined ? clock.monotonicNow() : clock.now();
  }

  /** @internal The clock timer fired: fire every waiter now due, then arm for the next head. */
  run(): void {
    this.timer = undefined;
    const now = this.now();
    const waiters = this.waiters;
    const due = this.due;
    // Only the slots present now: a waiter added by a callback (a 0 ms wait) waits for the next turn.
    const end = waiters.length;
    this.running = true;
    try {
      // Stops too when a callback closed the queue (the layer closing): its arrays are new then.
      while (this.head < end && due[this.head]! <= now && this.waiters === waiters) {
        const i = this.head++;
        const w = waiters[i];
        waiters[i] = undefined;
        // Counted out before it fires: what its event runs (a TU, a close) sees the queue as it is,
        // and a throw from it leaves no waiter counted that is gone. One that left early was
        // counted out by cancel().
        if (w !== undefined && w.waitsOn(this)) {
          this.live--;
          w.expireWait(this);
        }
      }
    } finally {
      this.running = false;
      this.settle(now);
    }
  }

  /** Let go of everything: slots, the clock timer (the layer is closing). */
  close(): void {
    this.live = 0;
    this.reset();
  }

  /** After a run: empty the queue, or compact its passed slots now and then, and arm for the head. */
  private settle(now: number): void {
    if (this.live <= 0) {
      this.reset();
      return;
    }
    const head = this.head;
    if (head >= COMPACT_FROM && head * 2 >= this.waiters.length) {
      this.waiters.splice(0, head);
      this.due.splice(0, head);
      this.head = 0;
    }
    if (this.head < this.waiters.length) {
      let ms = Math.max(0, this.due[this.head]! - now);
      // A long wait on a coarse clock: the next run at least a tick away, not a clock timer per
      // waiter due a fraction of a ms after the last (a busy trunk ends a call every ms or so).
      // Every waiter still fires at or after its due time, at most a tick late — as it did with
      // a wheel entry of its own.
      const coarse = this.clock.coarseTimers;
      if (coarse !== undefined && this.ms >= coarse.fromMs && ms < coarse.tickMs) ms = coarse.tickMs;
      this.arm(ms);
    }
  }

  private arm(ms: number): void {
    const clock = this.clock;
    this.timer = clock.setTimerWith !== undefined ? clock.setTimerWith(ms, runQueue, this) : clock.setTimer(ms, () => this.run());
  }

  private reset(): void {
    this.live = 0;
    this.timer?.cancel();
    this.timer = undefined;
    this.waiters = [];
    this.due = [];
    this.head = 0;
  }
}

/**
 * A layer's wait queues, one per (event, duration): a handful (Timers D, I, J, K, L, M, each at
 * its duration over UDP and 0 over a connection where RFC 3261 says so).
 */
export class WaitQueues {
  private readonly queues: WaitQueue[] = [];

  constructor(private readonly clock: Clock) {}

  /** @internal `w` waits `ms` before it is fired with `event`; returns its handle. */
  enter(w: Waiter, event: string, ms: number): WaitQueue {
    // A wait that is no duration (NaN from a broken TimerValues, a negative one) is none: due now,
    // as a clock takes it, rather than a due time no later waiter of its queue could pass.
    if (!(ms >= 0)) ms = 0;
    const qs = this.queues;
    for (let i = 0; i < qs.length; i++) {
      const q = qs[i]!;
      if (q.event === event && q.ms === ms) return q.add(w);
    }
    const q = new WaitQueue(this.clock, event, ms);
    qs.push(q);
    return q.add(w);
  }

  /** Waiters in every queue. */
  get size(): number {
    let n = 0;
    for (const q of this.queues) n += q.size;
    return n;
  }

  /** Clock timers the queues hold (one per queue with a waiter). */
  get armed(): number {
    let n = 0;
    for (const q of this.queues) if (q.armed) n++;
    return n;
  }

  /** Cancel every queue's clock timer and drop every slot (the layer closed). */
  close(): void {
    for (const q of this.queues) q.close();
  }
}
