import { performance } from 'node:perf_hooks';
import { Fifo } from '../util/fifo.js';
import type { TransportAddress } from './types.js';

/** A cap on one lane of a UDP inbox: whichever of the two is reached first. */
export interface UdpInboxLimit {
  /** Datagrams queued at most. */
  datagrams?: number;
  /** Bytes queued at most. */
  bytes?: number;
}

/** Counters of a UDP transport's inbox (see {@link UdpTransportOptions.inboxLimit}). */
export interface UdpInboxStats {
  /** Datagrams queued now, both lanes. */
  readonly queued: number;
  /** Most datagrams ever queued at once, both lanes. */
  readonly maxQueued: number;
  /** Datagrams dropped, all causes: the sum of the three below. */
  readonly dropped: number;
  /** New requests (INVITE, CANCEL) dropped because the low lane was full. */
  readonly droppedLow: number;
  /** Responses and in-progress requests dropped because the high lane was full. */
  readonly droppedHigh: number;
  /** Datagrams still queued when the transport was closed. */
  readonly droppedOnClose: number;
  /**
   * Requests of the low lane (INVITE, re-INVITEs included, and CANCEL) dropped unparsed at its
   * head because they had waited longer than the age bound ({@link UdpTransportOptions.inboxMaxAgeMs}):
   * their sender has retransmitted them. Not in `dropped`. The high lane is never shed by age.
   */
  readonly shed: number;
}

/** How a UDP inbox dates its low lane. */
export interface UdpInboxAging {
  /** Monotonic ms. Read once per batch of datagrams read between two drains (not per datagram), once per low-lane take, and for the slice budget. */
  now: () => number;
  /** A low-lane datagram older than this (ms) at the head of its lane is shed; Infinity: never. */
  maxAgeMs: number;
}

/**
 * When a timed lane's datagrams were queued, one entry per run of datagrams with the same
 * stamp (the inbox stamps a whole read burst at once): two plain number arrays and a head, so
 * the stamps stay unboxed doubles (util/Fifo clears taken slots, which would box them).
 */
class Stamps {
  private at: number[] = [];
  private count: number[] = [];
  private head = 0;

  /** One more datagram, queued at `t`. */
  add(t: number): void {
    const last = this.at.length - 1;
    if (last >= this.head && this.at[last] === t) this.count[last]!++;
    else {
      this.at.push(t);
      this.count.push(1);
    }
  }

  /** When the oldest datagram was queued; call only when the lane is not empty. */
  oldest(): number {
    return this.at[this.head]!;
  }

  /** The oldest datagram left the lane. */
  takeOne(): void {
    const h = this.head;
    if (--this.count[h]! > 0) return;
    this.head = h + 1;
    if (this.head === this.at.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.at.length) {
      this.at = this.at.slice(this.head);
      this.count = this.count.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.at = [];
    this.count = [];
    this.head = 0;
  }
}

/** One lane: a FIFO of datagrams and where each came from, with its byte count for the cap, and (low lane) when each was queued. */
class Lane {
  private readonly datagrams = new Fifo<Uint8Array>();
  private readonly sources = new Fifo<TransportAddress>();
  private readonly times: Stamps | undefined;
  bytes = 0;
  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
    timed: boolean,
  ) {
    this.times = timed ? new Stamps() : undefined;
  }

  get length(): number {
    return this.datagrams.length;
  }

  fits(msg: Uint8Array): boolean {
    return this.length < this.maxCount && this.bytes + msg.length <= this.maxBytes;
  }

  /** Queues a datagram that fits (see fits()); `at` is kept only by a timed lane. */
  push(msg: Uint8Array, from: TransportAddress, at: number): void {
    this.datagrams.push(msg);
    this.sources.push(from);
    this.times?.add(at);
    this.bytes += msg.length;
  }

  /** Sheds heads queued before `before` (timed lane only); returns how many. */
  shedOlder(before: number): number {
    const times = this.times!;
    let n = 0;
    while (this.datagrams.length > 0 && times.oldest() < before) {
      times.takeOne();
      this.sources.shift();
      this.bytes -= this.datagrams.shift()!.length;
      n++;
    }
    return n;
  }

  /** Takes the head; call only when length > 0. */
  take(out: { msg: Uint8Array; from: TransportAddress }): void {
    out.msg = this.datagrams.shift()!;
    out.from = this.sources.shift()!;
    this.times?.takeOne();
    this.bytes -= out.msg.length;
  }

  clear(): number {
    this.sources.clear();
    this.times?.clear();
    this.bytes = 0;
    return this.datagrams.clear();
  }
}

const C_CR = 0x0d;
const C_LF = 0x0a;

/**
 * New work: a datagram whose request line starts INVITE or CANCEL (after any leading CRLF,
 * RFC 3261 §7.5). Looks at the first bytes only; everything else (responses, ACK, BYE, PRACK,
 * UPDATE, OPTIONS, keep-alives, garbage) belongs to the high lane.
 */
export function isNewWork(msg: Uint8Array): boolean {
  let i = 0;
  const n = msg.length;
  while (i < n && (msg[i] === C_CR || msg[i] === C_LF)) i++;
  if (n - i < 7 || msg[i + 6] !== 0x20) return false;
  const c = msg[i];
  if (c === 0x49 /* I */) {
    return msg[i + 1] === 0x4e && msg[i + 2] === 0x56 && msg[i + 3] === 0x49 && msg[i + 4] === 0x54 && msg[i + 5] === 0x45; // NVITE
  }
  if (c === 0x43 /* C */) {
    return msg[i + 1] === 0x41 && msg[i + 2] === 0x4e && msg[i + 3] === 0x43 && msg[i + 4] === 0x45 && msg[i + 5] === 0x4c; // ANCEL
  }
  return false;
}

/**
 * Messages handed over per slice at most, and the time budget of a slice (ms). libuv reads at
 * most 32 datagrams from a socket per event-loop turn, and a turn runs one slice: with slices
 * of fewer than 32 messages the socket is read faster than its messages are handled, so a
 * backlog under overload piles up here, where the high lane goes first and stale new requests
 * are shed, rather than in the kernel's receive buffer, which drops whatever comes when full:
 * answers and ACKs as blindly as new INVITEs. (With 64, a backlog of ~55 µs messages read
 * 32 datagrams per ~3.5 ms, ~9 000/s, less than a 1 500 calls/s trunk receives.)
 */
const SLICE_MESSAGES = 16;
const SLICE_MS = 5;

/**
 * A bounded two-lane inbox between a UDP socket and its receiver. The socket's 'message'
 * callback only queues (a microsecond or two); a drain on setImmediate hands datagrams over,
 * high lane first, in slices of at most 16 messages or ~5 ms, then yields to the event loop so
 * libuv reads what arrived meanwhile (up to 32 datagrams a turn: more than a slice hands over). Under overload, new calls (the low lane) wait or are
 * dropped while the answers and requests of calls already under way go through.
 *
 * Low-lane datagrams are dated, and one that has waited longer than `aging.maxAgeMs` is shed
 * unparsed when it reaches the head of its lane (or when the lane is full and a new one
 * comes): its sender has retransmitted it by then, so the wait of new calls stays bounded
 * under sustained overload. The date is read once per batch of datagrams read between two
 * drains (libuv reads a burst in one poll phase, before the drain runs), not per datagram.
 */
export class UdpInbox {
  private readonly high: Lane;
  private readonly low: Lane;
  private scheduled = false;
  private closed = false;
  private readonly out = { msg: undefined as unknown as Uint8Array, from: undefined as unknown as TransportAddress };
  private counters = { maxQueued: 0, droppedLow: 0, droppedHigh: 0, droppedOnClose: 0, shed: 0 };
  private readonly now: () => number;
  private readonly maxAgeMs: number;
  /** Whether low-lane datagrams are dated (a finite age bound). */
  private readonly timed: boolean;
  /** The date of the datagrams read since the last drain, once read (`stamped`). */
  private stamp = 0;
  private stamped = false;

  constructor(
    private readonly deliver: (msg: Uint8Array, from: TransportAddress) => void,
    low: UdpInboxLimit = {},
    high: UdpInboxLimit = {},
    aging: Partial<UdpInboxAging> = {},
  ) {
    this.now = aging.now ?? (() => performance.now());
    // Checked by UdpTransport (its options' one place): none, never shed.
    this.maxAgeMs = aging.maxAgeMs ?? Infinity;
    this.timed = Number.isFinite(this.maxAgeMs);
    this.low = new Lane(low.datagrams ?? 20_000, low.bytes ?? 16 * 1024 * 1024, this.timed);
    this.high = new Lane(high.datagrams ?? 100_000, high.bytes ?? 64 * 1024 * 1024, false);
  }

  push(msg: Uint8Array, from: TransportAddress): void {
    if (this.closed) return;
    if (isNewWork(msg)) {
      const low = this.low;
      let at = 0;
      if (this.timed) {
        if (!this.stamped) {
          this.stamp = this.now();
          this.stamped = true;
        }
        at = this.stamp;
        // Full: make room by shedding what has gone stale first.
        if (!low.fits(msg) && low.length > 0) this.counters.shed += low.shedOlder(at - this.maxAgeMs);
      }
      if (!low.fits(msg)) {
        this.counters.droppedLow++;
        // No drain to come (an empty lane refusing this datagram): the stamp must not outlive the burst.
        if (!this.scheduled) this.stamped = false;
        return;
      }
      low.push(msg, from, at);
    } else if (this.high.fits(msg)) {
      this.high.push(msg, from, 0);
    } else {
      this.counters.droppedHigh++;
      return;
    }
    const q = this.high.length + this.low.length;
    if (q > this.counters.maxQueued) this.counters.maxQueued = q;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  /** Takes the low lane's head after shedding the stale ones before it; false when none is left. */
  private takeLow(out: { msg: Uint8Array; from: TransportAddress }): boolean {
    const low = this.low;
    if (low.length === 0) return false;
    if (this.timed) {
      this.counters.shed += low.shedOlder(this.now() - this.maxAgeMs);
      if (low.length === 0) return false;
    }
    low.take(out);
    return true;
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    // What is read from now on is a new burst.
    this.stamped = false;
    if (this.closed) return;
    const start = this.now();
    const out = this.out;
    try {
      for (let i = 0; i < SLICE_MESSAGES && !this.closed; i++) {
        if (this.high.length > 0) this.high.take(out);
        else if (!this.takeLow(out)) break;
        const { msg, from } = out;
        out.msg = undefined as unknown as Uint8Array;
        out.from = undefined as unknown as TransportAddress;
        this.deliver(msg, from);
        if ((i & 3) === 3 && this.now() - start >= SLICE_MS) break;
      }
    } finally {
      if (!this.closed && !this.scheduled && this.high.length + this.low.length > 0) {
        this.scheduled = true;
        setImmediate(this.drain);
      }
    }
  };

  /** Drops whatever is queued (counted) and accepts nothing more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.counters.droppedOnClose += this.high.clear() + this.low.clear();
  }

  get stats(): UdpInboxStats {
    const c = this.counters;
    return {
      queued: this.high.length + this.low.length,
      maxQueued: c.maxQueued,
      dropped: c.droppedLow + c.droppedHigh + c.droppedOnClose,
      droppedLow: c.droppedLow,
      droppedHigh: c.droppedHigh,
      droppedOnClose: c.droppedOnClose,
      shed: c.shed,
    };
  }
}
