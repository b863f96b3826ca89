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
}

/** One lane: a FIFO of datagrams and where each came from, with its byte count for the cap. */
class Lane {
  private readonly datagrams = new Fifo<Uint8Array>();
  private readonly sources = new Fifo<TransportAddress>();
  bytes = 0;
  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.datagrams.length;
  }

  push(msg: Uint8Array, from: TransportAddress): boolean {
    if (this.length >= this.maxCount || this.bytes + msg.length > this.maxBytes) return false;
    this.datagrams.push(msg);
    this.sources.push(from);
    this.bytes += msg.length;
    return true;
  }

  /** Takes the head; call only when length > 0. */
  take(out: { msg: Uint8Array; from: TransportAddress }): void {
    out.msg = this.datagrams.shift()!;
    out.from = this.sources.shift()!;
    this.bytes -= out.msg.length;
  }

  clear(): number {
    this.sources.clear();
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

/** Messages handed over per slice at most, and the time budget of a slice (ms). */
const SLICE_MESSAGES = 64;
const SLICE_MS = 5;

/**
 * A bounded two-lane inbox between a UDP socket and its receiver. The socket's 'message'
 * callback only queues (a microsecond or two); a drain on setImmediate hands datagrams over,
 * high lane first, in slices of at most 64 messages or ~5 ms, then yields to the event loop so
 * libuv reads what arrived meanwhile. Under overload, new calls (the low lane) wait or are
 * dropped while the answers and requests of calls already under way go through.
 */
export class UdpInbox {
  private readonly high: Lane;
  private readonly low: Lane;
  private scheduled = false;
  private closed = false;
  private readonly out = { msg: undefined as unknown as Uint8Array, from: undefined as unknown as TransportAddress };
  private counters = { maxQueued: 0, droppedLow: 0, droppedHigh: 0, droppedOnClose: 0 };

  constructor(
    private readonly deliver: (msg: Uint8Array, from: TransportAddress) => void,
    low: UdpInboxLimit = {},
    high: UdpInboxLimit = {},
  ) {
    this.low = new Lane(low.datagrams ?? 20_000, low.bytes ?? 16 * 1024 * 1024);
    this.high = new Lane(high.datagrams ?? 100_000, high.bytes ?? 64 * 1024 * 1024);
  }

  push(msg: Uint8Array, from: TransportAddress): void {
    if (this.closed) return;
    if (isNewWork(msg)) {
      if (!this.low.push(msg, from)) {
        this.counters.droppedLow++;
        return;
      }
    } else if (!this.high.push(msg, from)) {
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

  private readonly drain = (): void => {
    this.scheduled = false;
    if (this.closed) return;
    const start = performance.now();
    const out = this.out;
    try {
      for (let i = 0; i < SLICE_MESSAGES && !this.closed; i++) {
        if (this.high.length > 0) this.high.take(out);
        else if (this.low.length > 0) this.low.take(out);
        else break;
        const { msg, from } = out;
        out.msg = undefined as unknown as Uint8Array;
        out.from = undefined as unknown as TransportAddress;
        this.deliver(msg, from);
        if ((i & 7) === 7 && performance.now() - start >= SLICE_MS) break;
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
    };
  }
}
