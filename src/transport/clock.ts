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
}

/** Wall-clock time and node timers (unref'd: a pending SIP timer never keeps a process alive). */
export class RealClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimer(ms: number, fn: () => void): Timer {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return new NodeTimer(t);
  }
}

/** A node Timeout as a Timer: a method on a prototype, not a closure and its context per timer. */
class NodeTimer implements Timer {
  constructor(private readonly t: ReturnType<typeof setTimeout>) {}
  cancel(): void {
    clearTimeout(this.t);
  }
}

function noop(): void {}

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
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
    let n = 0;
    for (const s of this.heap) if (!s.cancelled) n++;
    return n;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const s: Scheduled = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(s);
    return {
      cancel: () => {
        s.cancelled = true;
        // Let go of what the callback holds, as clearTimeout does: a cancelled long timer
        // (a no-answer timeout) must not keep an ended call reachable until its due time.
        s.fn = noop;
      },
    };
  }

  /** Move time forward by `ms`, firing what falls due. */
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      const next = this.peek();
      if (!next || next.at > until) break;
      this.pop();
      this.t = next.at;
      if (!next.cancelled) next.fn();
    }
    this.t = until;
  }

  /** Run timers until none is left (bounded, so a self-rescheduling timer cannot hang a test). */
  runAll(maxMs = 3_600_000): void {
    const limit = this.t + maxMs;
    for (;;) {
      const next = this.peek();
      if (!next || next.at > limit) break;
      this.advance(next.at - this.t);
    }
  }

  private peek(): Scheduled | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0];
  }

  private less(a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(s: Scheduled): void {
    const h = this.heap;
    h.push(s);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
