import { Worker } from 'node:worker_threads';
import { TransportError, type TransportAddress } from './types.js';

/**
 * A second thread that writes a UDP socket's datagrams.
 *
 * On a busy UDP trunk each `sendmsg` costs the thread that makes it ~5–20 µs of kernel time:
 * over loopback or a virtual NIC the sender's own system call carries the datagram into the
 * receiver's socket and wakes the receiver — a quarter of a B2BUA's event-loop time at a
 * thousand calls a second. Here the event loop only copies each datagram into a ring in shared
 * memory (well under a microsecond) and a worker thread makes the system calls.
 *
 * The worker's socket is bound to the same address and port as the transport's own, both with
 * SO_REUSEADDR, the worker's first: Linux delivers a unicast datagram to the socket bound last
 * (the transport's), so receiving stays on the event loop and every datagram, whichever thread
 * sends it, leaves from the port the transport listens on (RFC 3261 §18.2.2, RFC 3581 §4: a
 * response goes out from where its request came in). Where an OS delivers otherwise, the
 * transport's probe at bind sees it and the transport sends by itself.
 *
 * Ring records: `u16 length · u16 port · u8 address length · 3 spare · i32 sequence · address
 * (ASCII) · datagram`, written by the event loop at `HEAD`, taken by the worker at `TAIL`; a
 * `0xFFFF` length (or less than a header's room left) wraps to offset 0. The worker completes
 * sends in order (libuv's UDP send queue is FIFO) and counts them in `DONE`, so the event loop
 * knows which sends can no longer fail and lets go of their failure callbacks.
 */

// Control words (Int32Array indexes).
const HEAD = 0; // byte offset the event loop writes next (published after the record is written)
const TAIL = 1; // byte offset up to which the worker's sends have completed (the ring's bytes are free)
const SLEEP = 2; // 1 while the worker sleeps until woken
const CLOSING = 3; // 1: send what is queued, close, exit
const PROBED = 4; // probe datagrams the worker's socket received (the OS delivers to it, not to the transport)
const SENT = 5; // sends the kernel took
const DONE = 6; // sends completed, taken or failed, in sequence order
const WAKE = 7; // bumped to wake the worker (it waits on this word)
const FAIL_W = 8; // failure entries written by the worker
const FAIL_R = 9; // failure entries read by the event loop
const CONTROL_WORDS = 16;
/** Sequence numbers of failed sends, written before DONE passes them: see {@link UdpSendThread.collect}. */
const FAIL_SLOTS = 64;
const RING_OFFSET = (CONTROL_WORDS + FAIL_SLOTS) * 4;
const HEADER = 12;
const WRAP = 0xffff;
/** How often (ms) the worker looks at the ring while sends come; what a datagram may wait at most. */
const POLL_MS = 1;
/** Polls in a row that found nothing after which the worker sleeps until the event loop wakes it. */
const IDLE_POLLS = 50;
/**
 * Sends not completed at most (a power of two): each keeps its failure callback (and through
 * it its transaction) until it completes — a few ms of a loaded trunk's sends, as the worker
 * drains the ring every millisecond.
 */
const IN_FLIGHT = 1024;
/**
 * Default ring size: room for IN_FLIGHT datagrams of 1 KB, more than a SIP datagram usually is
 * (IN_FLIGHT bounds how many wait; a larger one waits its turn in the transport).
 */
export const DEFAULT_RING_BYTES = 1024 * 1024;
const MIN_RING_BYTES = 64 * 1024;
const MAX_RING_BYTES = 1024 * 1024 * 1024;

/** What {@link UdpSendThread.post} did: took the datagram, cannot now (ring full: retry later), or never (send it yourself). */
export const TAKEN = 0;
export const FULL = 1;
export const NEVER = 2;
export type PostResult = typeof TAKEN | typeof FULL | typeof NEVER;

type FailureCallback = (error: TransportError) => void;

/** A ring size within bounds: a whole number of bytes from 64 KiB to 1 GiB (HEAD and TAIL are 32-bit); the default otherwise. */
export function ringBytesOf(requested: number | undefined): number {
  if (requested === undefined || !Number.isFinite(requested)) return DEFAULT_RING_BYTES;
  return Math.min(MAX_RING_BYTES, Math.max(MIN_RING_BYTES, Math.floor(requested)));
}

// The worker, as CommonJS source: evaluated, it needs no file beside the ESM and CJS builds.
const WORKER_SOURCE = `
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const { createSocket } = require('node:dgram');
const { isIP } = require('node:net');
const { lookup } = require('node:dns');
const { sab, ringBytes, type, host, port, probe } = workerData;
const ctl = new Int32Array(sab, 0, ${CONTROL_WORDS});
const fails = new Int32Array(sab, ${CONTROL_WORDS * 4}, ${FAIL_SLOTS});
const ring = new Uint8Array(sab, ${RING_OFFSET}, ringBytes);
const ringBuffer = Buffer.from(sab, ${RING_OFFSET}, ringBytes);
const probeToken = Buffer.from(probe, 'latin1');
// All state first: bind's callback (which starts the polling) can run inside socket.bind().
let tail = 0;
let closed = false;
let idlePolls = 0;
// Sends the kernel has not completed (libuv queues one it cannot take at once): closing the
// socket before they leave would cancel them.
let unsent = 0;
// Set once the ring has been drained after CLOSING: the last send's callback may then close.
let lastDrained = false;
// Where each record in flight ends, by sequence: TAIL moves there when its send completes.
const ends = new Int32Array(${IN_FLIGHT});
const socket = createSocket({ type, reuseAddr: true, lookup(h, o, cb) { const f = isIP(h); if (f !== 0) cb(null, h, f); else lookup(h, o, cb); } });
// Only the probe is counted: a peer's datagram reaching this socket before the transport's is bound proves nothing.
socket.on('message', (m) => { if (m.equals(probeToken)) Atomics.add(ctl, ${PROBED}, 1); });
socket.on('error', (err) => parentPort.postMessage({ kind: 'socket-error', message: err.message, code: err.code, errno: err.errno, syscall: err.syscall }));
socket.bind(port, host, () => {
  parentPort.postMessage({ kind: 'bound', port: socket.address().port });
  cycle();
});
function completed(seq, err) {
  unsent--;
  Atomics.store(ctl, ${TAIL}, ends[seq & ${IN_FLIGHT - 1}]);
  if (err) {
    // The entry before DONE moves past seq, so the event loop keeps this send's callback for the report.
    const w = Atomics.load(ctl, ${FAIL_W});
    if (w - Atomics.load(ctl, ${FAIL_R}) < ${FAIL_SLOTS}) { fails[w & ${FAIL_SLOTS - 1}] = seq; Atomics.store(ctl, ${FAIL_W}, w + 1); }
    parentPort.postMessage({ kind: 'failed', seq, message: err.message, code: err.code, errno: err.errno, syscall: err.syscall });
  } else Atomics.add(ctl, ${SENT}, 1);
  Atomics.add(ctl, ${DONE}, 1);
  if (unsent === 0 && lastDrained) closeSocket();
}
function closeSocket() {
  if (closed) return;
  closed = true;
  socket.close(() => parentPort.postMessage({ kind: 'closed' }));
}
function drain() {
  const head = Atomics.load(ctl, ${HEAD});
  let took = false;
  while (tail !== head) {
    if (ringBytes - tail < ${HEADER} || (ring[tail] === 0xff && ring[tail + 1] === 0xff)) { tail = 0; continue; }
    const length = ring[tail] | (ring[tail + 1] << 8);
    const to = ring[tail + 2] | (ring[tail + 3] << 8);
    const addressLength = ring[tail + 4];
    const seq = ring[tail + 8] | (ring[tail + 9] << 8) | (ring[tail + 10] << 16) | (ring[tail + 11] << 24);
    const at = tail + ${HEADER};
    const address = ringBuffer.latin1Slice(at, at + addressLength);
    // Sent from the ring itself: a send the kernel cannot take at once is queued by libuv,
    // pointing at these bytes, so TAIL passes a record only when its send has completed.
    const bytes = ringBuffer.subarray(at + addressLength, at + addressLength + length);
    tail = at + addressLength + length;
    ends[seq & ${IN_FLIGHT - 1}] = tail;
    took = true;
    unsent++;
    try {
      socket.send(bytes, to, address, (err) => completed(seq, err));
    } catch (err) {
      // Completed after the sends before it, as their callbacks come on a later tick.
      process.nextTick(completed, seq, err);
    }
  }
  return took;
}
// Polls the ring every ${POLL_MS} ms while sends come, so the event loop never pays for waking
// this thread (a cross-thread wake costs about what the send it spares does); after
// ${IDLE_POLLS} empty polls, with nothing unsent, it sleeps until woken. Each cycle ends with a
// turn of this thread's own event loop, which runs the send callbacks.
function cycle() {
  const closing = Atomics.load(ctl, ${CLOSING}) === 1; // before draining: CLOSING is stored after the last HEAD
  const took = drain();
  if (closing) {
    lastDrained = true;
    if (unsent === 0) closeSocket(); // else the last send's callback closes it
    return;
  }
  if (took || unsent > 0) idlePolls = 0;
  const wake = Atomics.load(ctl, ${WAKE});
  if (Atomics.load(ctl, ${HEAD}) !== tail) idlePolls = 0;
  else if (++idlePolls < ${IDLE_POLLS}) Atomics.wait(ctl, ${WAKE}, wake, ${POLL_MS});
  else {
    Atomics.store(ctl, ${SLEEP}, 1);
    if (Atomics.load(ctl, ${HEAD}) === tail && Atomics.load(ctl, ${CLOSING}) === 0) Atomics.wait(ctl, ${WAKE}, wake, 1000);
    Atomics.store(ctl, ${SLEEP}, 0);
    idlePolls = 0;
  }
  setImmediate(cycle);
}
`;

interface WorkerMessage {
  kind: 'bound' | 'failed' | 'closed' | 'socket-error';
  port?: number;
  seq?: number;
  message?: string;
  code?: string;
  errno?: number;
  syscall?: string;
}

/** The worker's error as a cause: its code, errno and syscall, as dgram gave them. */
function causeOf(m: WorkerMessage): Error {
  return Object.assign(new Error(m.message ?? 'send failed'), { code: m.code, errno: m.errno, syscall: m.syscall });
}

/** What {@link UdpTransport.sendThreadStats} reports. */
export interface UdpSendThreadStats {
  /** Whether the worker thread sends now. */
  readonly active: boolean;
  /** Datagrams handed to the thread. */
  readonly posted: number;
  /** Of those, the ones the kernel has taken. */
  readonly sent: number;
  /**
   * Datagrams the transport sent itself while the thread was on: ones the thread cannot send
   * (a name to look up, a port dgram refuses) and, past 10 000 waiting for room in the ring, the
   * overflow.
   */
  readonly refused: number;
}

/** What the owner of a send thread hears from it. */
export interface SendThreadOwner {
  /** A failure with no send to tell (its report came after its callback was let go), or the worker's socket failing. */
  onStrayFailure(error: TransportError): void;
  /** The worker ended without being closed (`error`: why, when it says): nothing more is taken. */
  onStopped(error: TransportError): void;
}

/** The sending half of a {@link UdpTransport} with `sendThread` (see the module comment). */
export class UdpSendThread {
  private readonly control: Int32Array;
  private readonly fails: Int32Array;
  private readonly ring: Uint8Array;
  private readonly ringBytes: number;
  private head = 0;
  private seq = 0;
  /** Sequence up to which completed sends' callbacks have been let go. */
  private released = 0;
  private failRead = 0;
  private readonly slotSeq = new Int32Array(IN_FLIGHT).fill(-1);
  private readonly slotCallbacks: (FailureCallback | undefined)[] = new Array(IN_FLIGHT);
  private readonly slotTargets: (TransportAddress | undefined)[] = new Array(IN_FLIGHT);
  /** Failed sends whose reports have not arrived yet, let go of by their slots. */
  private readonly awaitingReport = new Map<number, [FailureCallback, TransportAddress]>();
  private running = true;
  private wakePending = false;
  private collectTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private onClosed: (() => void) | undefined;
  posted = 0;
  refused = 0;

  private constructor(
    private readonly worker: Worker,
    sab: SharedArrayBuffer,
    ringBytes: number,
    /** The port the worker's socket is bound to. */
    readonly port: number,
    private readonly owner: SendThreadOwner,
  ) {
    this.control = new Int32Array(sab, 0, CONTROL_WORDS);
    this.fails = new Int32Array(sab, CONTROL_WORDS * 4, FAIL_SLOTS);
    this.ring = new Uint8Array(sab, RING_OFFSET, ringBytes);
    this.ringBytes = ringBytes;
    worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    worker.on('error', (err) => this.stop(new TransportError('SOCKET', `UDP send thread failed: ${err.message}`, undefined, err)));
    worker.on('exit', (code) => this.stop(new TransportError('SOCKET', `UDP send thread ended (exit code ${code})`)));
  }

  /**
   * Starts the worker and binds its socket to host:port (port 0: an ephemeral one) with
   * SO_REUSEADDR. Resolves to the thread, whose `port` the caller then binds its own socket to;
   * `probe`: the bytes of the caller's probe datagram, counted if the worker's socket gets them.
   */
  static start(type: 'udp4' | 'udp6', host: string, port: number, ringBytes: number, probe: string, owner: SendThreadOwner): Promise<UdpSendThread> {
    const sab = new SharedArrayBuffer(RING_OFFSET + ringBytes);
    // Touched now, so the ring's pages are part of what a transport costs from its start, not
    // memory that appears under the first few seconds of traffic.
    new Uint8Array(sab).fill(0);
    // No execArgv: the eval'd source is CommonJS whatever flags (--input-type, --import loaders)
    // the process has. A small young generation: nothing the worker allocates outlives a send,
    // and V8's default would let it grow to tens of MB under load.
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
      workerData: { sab, ringBytes, type, host, port, probe },
    });
    return new Promise((resolve, reject) => {
      const onMessage = (m: WorkerMessage): void => {
        if (m.kind === 'bound') {
          settle();
          worker.unref();
          resolve(new UdpSendThread(worker, sab, ringBytes, m.port!, owner));
        } else if (m.kind === 'socket-error') {
          settle();
          void worker.terminate();
          reject(new TransportError('SOCKET', m.message ?? 'socket error', undefined, causeOf(m)));
        }
      };
      const onError = (err: Error): void => {
        settle();
        reject(new TransportError('SOCKET', `UDP send thread failed: ${err.message}`, undefined, err));
      };
      const onExit = (code: number): void => {
        settle();
        reject(new TransportError('SOCKET', `UDP send thread ended before binding (exit code ${code})`));
      };
      const settle = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  /** Probe datagrams the worker's own socket received: the OS delivers to it, not to the transport bound after it. */
  get probed(): number {
    return Atomics.load(this.control, PROBED);
  }

  get counters(): UdpSendThreadStats {
    return { active: this.running, posted: this.posted, sent: Atomics.load(this.control, SENT), refused: this.refused };
  }

  get active(): boolean {
    return this.running;
  }

  /**
   * Queues one datagram: TAKEN; FULL when the ring or the sends in flight are at their bound
   * (the caller keeps it and tries again, in order); NEVER for what the thread cannot send (a
   * port or address dgram would refuse, a name to look up, thread gone): the caller sends it
   * itself. `onFailed` runs on the event loop if the worker's send fails.
   */
  post(bytes: Uint8Array, to: TransportAddress, onFailed: FailureCallback): PostResult {
    const { address, port } = to;
    const control = this.control;
    if (!this.running || typeof address !== 'string' || !(port > 0 && port <= 0xffff && (port | 0) === port)) return NEVER;
    const addressLength = address.length;
    const size = HEADER + addressLength + bytes.length;
    if (addressLength > 255 || bytes.length >= WRAP || size >= this.ringBytes) return NEVER;
    this.collect();
    if (((this.seq - this.released) | 0) >= IN_FLIGHT) return FULL;
    const ringBytes = this.ringBytes;
    const ring = this.ring;
    const tail = Atomics.load(control, TAIL);
    let at = this.head;
    if (at >= tail) {
      // A record never ends exactly at the ring's end: HEAD == 0 would read as empty.
      if (ringBytes - at <= size) {
        if (tail <= size) return FULL;
        if (ringBytes - at >= HEADER) ring[at] = ring[at + 1] = 0xff;
        at = 0;
      }
    } else if (at + size >= tail) return FULL;
    const seq = this.seq;
    let p = at + HEADER;
    for (let i = 0; i < addressLength; i++) {
      const c = address.charCodeAt(i);
      if (c > 0x7f) return NEVER; // not an IP literal: dgram's lookup, on the event loop (nothing is published yet)
      ring[p++] = c;
    }
    ring[at] = bytes.length & 0xff;
    ring[at + 1] = bytes.length >>> 8;
    ring[at + 2] = port & 0xff;
    ring[at + 3] = port >>> 8;
    ring[at + 4] = addressLength;
    ring[at + 8] = seq & 0xff;
    ring[at + 9] = (seq >>> 8) & 0xff;
    ring[at + 10] = (seq >>> 16) & 0xff;
    ring[at + 11] = (seq >>> 24) & 0xff;
    ring.set(bytes, p);
    const slot = seq & (IN_FLIGHT - 1);
    this.slotSeq[slot] = seq;
    this.slotCallbacks[slot] = onFailed;
    this.slotTargets[slot] = to;
    this.seq = (seq + 1) | 0;
    this.head = p + bytes.length;
    this.posted++;
    Atomics.store(control, HEAD, this.head);
    if (!this.wakePending) {
      this.wakePending = true;
      queueMicrotask(this.wake);
    }
    if (this.collectTimer === undefined) this.collectTimer = setTimeout(this.collectLater, 100).unref();
    return TAKEN;
  }

  /**
   * Wakes the worker if it sleeps (idle for a while: while sends come it polls), once for all
   * the datagrams this event-loop task queued.
   */
  private readonly wake = (): void => {
    this.wakePending = false;
    const control = this.control;
    if (Atomics.load(control, SLEEP) === 1 && Atomics.compareExchange(control, SLEEP, 1, 0) === 1) {
      Atomics.add(control, WAKE, 1);
      Atomics.notify(control, WAKE, 1);
    }
  };

  /** A quiet transport lets go of its last sends' callbacks too. */
  private readonly collectLater = (): void => {
    this.collectTimer = undefined;
    this.collect();
    if (this.released !== this.seq && this.running) this.collectTimer = setTimeout(this.collectLater, 100).unref();
  };

  /**
   * Lets go of the failure callbacks of completed sends (DONE). A failed send's sequence is in
   * the failure entries before DONE passes it (the worker writes it first), so its callback is
   * kept aside until its report, which comes as a message, arrives.
   */
  private collect(): void {
    const control = this.control;
    const done = Atomics.load(control, DONE);
    const written = Atomics.load(control, FAIL_W);
    for (let r = this.failRead; r !== written; r = (r + 1) | 0) {
      const seq = this.fails[r & (FAIL_SLOTS - 1)]!;
      const slot = seq & (IN_FLIGHT - 1);
      if (this.slotSeq[slot] === seq) this.awaitingReport.set(seq, [this.slotCallbacks[slot]!, this.slotTargets[slot]!]);
    }
    this.failRead = written;
    Atomics.store(control, FAIL_R, written);
    for (let s = this.released; s !== done; s = (s + 1) | 0) {
      const slot = s & (IN_FLIGHT - 1);
      if (this.slotSeq[slot] === s) {
        this.slotSeq[slot] = -1;
        this.slotCallbacks[slot] = undefined;
        this.slotTargets[slot] = undefined;
      }
    }
    this.released = done;
  }

  private onMessage(m: WorkerMessage): void {
    if (m.kind === 'failed') {
      const seq = m.seq! | 0;
      const slot = seq & (IN_FLIGHT - 1);
      let callback: FailureCallback | undefined;
      let to: TransportAddress | undefined;
      const kept = this.awaitingReport.get(seq);
      if (kept !== undefined) {
        this.awaitingReport.delete(seq);
        [callback, to] = kept;
      } else if (this.slotSeq[slot] === seq) {
        callback = this.slotCallbacks[slot];
        to = this.slotTargets[slot];
      }
      const error = new TransportError('SEND_FAILED', `UDP send${to === undefined ? '' : ` to ${to.address}:${to.port}`} failed: ${m.message ?? m.code}`, to, causeOf(m));
      if (callback !== undefined) callback(error);
      else this.owner.onStrayFailure(error);
    } else if (m.kind === 'socket-error') {
      this.owner.onStrayFailure(new TransportError('SOCKET', `UDP send thread's socket: ${m.message}`, undefined, causeOf(m)));
    } else if (m.kind === 'closed') {
      this.onClosed?.();
    }
  }

  /** The worker is gone: nothing more is taken. Unasked (not closing), the owner hears of it. */
  private stop(error: TransportError): void {
    if (!this.running) return;
    this.running = false;
    if (this.collectTimer !== undefined) clearTimeout(this.collectTimer);
    if (this.onClosed !== undefined) this.onClosed();
    else this.owner.onStopped(error);
  }

  /**
   * After the worker has stopped: the records whose sends had not completed, each with its
   * failure callback, for the caller to send itself — a thread that dies loses nothing (one it
   * had handed to the kernel just before may leave twice, as a retransmission would).
   */
  takeUnsent(send: (bytes: Uint8Array, to: TransportAddress, onFailed: FailureCallback | undefined) => void): void {
    const ring = this.ring;
    let at = Atomics.load(this.control, TAIL);
    const head = this.head;
    while (at !== head) {
      if (this.ringBytes - at < HEADER || (ring[at] === 0xff && ring[at + 1] === 0xff)) {
        at = 0;
        continue;
      }
      const length = ring[at] | (ring[at + 1]! << 8);
      const port = ring[at + 2]! | (ring[at + 3]! << 8);
      const addressLength = ring[at + 4]!;
      const seq = ring[at + 8]! | (ring[at + 9]! << 8) | (ring[at + 10]! << 16) | (ring[at + 11]! << 24);
      let address = '';
      for (let i = 0; i < addressLength; i++) address += String.fromCharCode(ring[at + HEADER + i]!);
      const from = at + HEADER + addressLength;
      const slot = seq & (IN_FLIGHT - 1);
      send(ring.slice(from, from + length), { address, port }, this.slotSeq[slot] === seq ? this.slotCallbacks[slot] : undefined);
      at = from + length;
    }
    Atomics.store(this.control, TAIL, at);
  }

  /** Sends what is queued, closes the worker's socket and ends the thread. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.collectTimer !== undefined) clearTimeout(this.collectTimer);
    if (!this.running) return (this.closing = this.worker.terminate().then(() => undefined));
    this.closing = new Promise<void>((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate(), 2000);
      this.onClosed = () => {
        clearTimeout(timer);
        this.running = false;
        void this.worker.terminate().then(() => resolve());
      };
      const control = this.control;
      Atomics.store(control, CLOSING, 1);
      Atomics.add(control, WAKE, 1);
      Atomics.notify(control, WAKE);
    });
    return this.closing;
  }
}
