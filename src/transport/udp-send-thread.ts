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
 * response goes out from where its request came in). Where an OS delivers otherwise,
 * {@link UdpSendThread.start}'s probe sees it and the transport sends by itself.
 *
 * Ring records: `u16 length · u16 port · u8 address length · 3 spare · u32 sequence · address
 * (ASCII) · datagram`, written by the event loop at `HEAD`, read by the worker at `TAIL`; a
 * `0xFFFF` length (or less than a header's room left) wraps to offset 0. Full ring or too
 * many sends in flight: {@link UdpSendThread.post} says no and the caller sends itself.
 */

const HEAD = 0; // byte offset the event loop writes next (published after the record is written)
const TAIL = 1; // byte offset the worker reads next
const READ = 2; // records the worker has taken (wraps at 2^32 like the sequence)
const SLEEP = 3; // 1 while the worker waits for HEAD to move
const CLOSING = 4; // 1: send what is queued, close, exit
const STRAY = 5; // datagrams the worker's socket received (a probe that went to the wrong socket)
const SENT = 6; // sends the kernel took (their callbacks have run without error)
const CONTROL_BYTES = 32;
const HEADER = 12;
const WRAP = 0xffff;
/** How often (ms) the worker looks at the ring while sends come; what a datagram may wait at most. */
const POLL_MS = 1;
/** Empty polls in a row after which the worker sleeps until the event loop wakes it. */
const IDLE_POLLS = 50;
/**
 * Sends in flight at most (a power of two): what a failure report can be traced back to. Also
 * how many failure callbacks (each holding its transaction) the slots keep after their sends:
 * ~50 ms of a loaded trunk's sends, while the worker drains the ring every millisecond.
 */
const IN_FLIGHT = 1024;
/** Default ring size: ~7 000 datagrams of 600 bytes, a few hundred ms of a loaded trunk's sends. */
export const DEFAULT_RING_BYTES = 4 * 1024 * 1024;

type FailureCallback = (error: TransportError) => void;

// The worker, as CommonJS source: evaluated, it needs no file beside the ESM and CJS builds.
const WORKER_SOURCE = `
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const { createSocket } = require('node:dgram');
const { isIP } = require('node:net');
const { lookup } = require('node:dns');
const { sab, ringBytes, type, host, port } = workerData;
const ctl = new Int32Array(sab, 0, ${CONTROL_BYTES / 4});
const ring = new Uint8Array(sab, ${CONTROL_BYTES}, ringBytes);
const ringBuffer = Buffer.from(sab, ${CONTROL_BYTES}, ringBytes);
const socket = createSocket({ type, reuseAddr: true, lookup(h, o, cb) { const f = isIP(h); if (f !== 0) cb(null, h, f); else lookup(h, o, cb); } });
// All state first: bind's callback (which starts the polling) can run inside socket.bind().
let tail = 0;
let read = 0;
let closed = false;
let idlePolls = 0;
// Sends the kernel has not taken yet (libuv queues one it cannot take at once): closing the
// socket before they leave would cancel them.
let unsent = 0;
// Set once the ring has been drained after CLOSING: the last send's callback may then close.
let lastDrained = false;
socket.on('message', () => Atomics.add(ctl, ${STRAY}, 1));
socket.on('error', (err) => parentPort.postMessage({ kind: 'socket-error', message: err.message }));
socket.bind(port, host, () => {
  parentPort.postMessage({ kind: 'bound', port: socket.address().port });
  cycle();
});
function report(seq) {
  return (err) => {
    unsent--;
    if (!err) Atomics.add(ctl, ${SENT}, 1);
    if (err) parentPort.postMessage({ kind: 'failed', seq, code: err.code, message: err.message });
    if (unsent === 0 && lastDrained) closeSocket();
  };
}
function closeSocket() {
  if (closed) return;
  closed = true;
  socket.close(() => parentPort.postMessage({ kind: 'closed' }));
}
function drain() {
  const head = Atomics.load(ctl, ${HEAD});
  while (tail !== head) {
    if (ringBytes - tail < ${HEADER} || (ring[tail] === 0xff && ring[tail + 1] === 0xff)) { tail = 0; continue; }
    const length = ring[tail] | (ring[tail + 1] << 8);
    const to = ring[tail + 2] | (ring[tail + 3] << 8);
    const addressLength = ring[tail + 4];
    const seq = (ring[tail + 8] | (ring[tail + 9] << 8) | (ring[tail + 10] << 16) | (ring[tail + 11] << 24)) >>> 0;
    const at = tail + ${HEADER};
    const address = ringBuffer.latin1Slice(at, at + addressLength);
    // A copy: a send the kernel cannot take at once is queued by libuv, pointing at its bytes,
    // and the ring's are overwritten once TAIL moves past them.
    const bytes = Buffer.allocUnsafe(length);
    ringBuffer.copy(bytes, 0, at + addressLength, at + addressLength + length);
    tail = at + addressLength + length;
    read = (read + 1) | 0;
    try {
      socket.send(bytes, to, address, report(seq));
      unsent++;
    } catch (err) {
      parentPort.postMessage({ kind: 'failed', seq, code: err.code, message: err.message });
    }
  }
  Atomics.store(ctl, ${TAIL}, tail);
  Atomics.store(ctl, ${READ}, read);
}
// Polls the ring every ${POLL_MS} ms while sends come, so the event loop never pays for waking
// this thread (a cross-thread wake costs about what the send it spares does); after
// ${IDLE_POLLS} empty polls it sleeps until woken. Each cycle ends with a turn of this thread's
// own event loop, which runs the send callbacks (failure reports).
function cycle() {
  drain();
  if (Atomics.load(ctl, ${CLOSING}) === 1) {
    // CLOSING is stored after the last HEAD: what this pass did not see is there now.
    drain();
    lastDrained = true;
    if (unsent === 0) closeSocket(); // else the last send's callback closes it
    return;
  }
  if (Atomics.load(ctl, ${HEAD}) !== tail) idlePolls = 0;
  else if (++idlePolls < ${IDLE_POLLS}) Atomics.wait(ctl, ${HEAD}, tail, ${POLL_MS});
  else {
    Atomics.store(ctl, ${SLEEP}, 1);
    if (Atomics.load(ctl, ${HEAD}) === tail && Atomics.load(ctl, ${CLOSING}) === 0) Atomics.wait(ctl, ${HEAD}, tail, 1000);
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
  code?: string;
  message?: string;
}

/** The sending half of a {@link UdpTransport} with `sendThread` (see the module comment). */
export class UdpSendThread {
  private readonly control: Int32Array;
  private readonly ring: Uint8Array;
  private readonly ringBytes: number;
  private head = 0;
  private seq = 0;
  private readonly failureSeq = new Int32Array(IN_FLIGHT);
  private readonly failureCallbacks: (FailureCallback | undefined)[] = new Array(IN_FLIGHT);
  private readonly failureTargets: (TransportAddress | undefined)[] = new Array(IN_FLIGHT);
  private running = true;
  private wakePending = false;
  private onClosed: (() => void) | undefined;
  /** Sends the ring took. */
  posted = 0;
  /** Sends refused (ring full, too many in flight, thread gone): the caller sent them itself. */
  refused = 0;

  private constructor(
    private readonly worker: Worker,
    sab: SharedArrayBuffer,
    ringBytes: number,
    /** The port the worker's socket is bound to. */
    readonly port: number,
    /** A failure with no send to trace it to (its record's slot was reused), or the worker's socket failing. */
    private readonly onStrayFailure: FailureCallback,
  ) {
    this.control = new Int32Array(sab, 0, CONTROL_BYTES / 4);
    this.ring = new Uint8Array(sab, CONTROL_BYTES, ringBytes);
    this.ringBytes = ringBytes;
    this.failureSeq.fill(-1);
    worker.on('message', (m: WorkerMessage) => this.onMessage(m));
    worker.on('error', (err) => this.stop(new TransportError('SOCKET', `UDP send thread failed: ${err.message}`, undefined, err)));
    worker.on('exit', () => this.stop(undefined));
  }

  /**
   * Starts the worker and binds its socket to host:port (port 0: an ephemeral one) with
   * SO_REUSEADDR. Resolves to the thread, whose `port` the caller then binds its own socket to.
   */
  static start(type: 'udp4' | 'udp6', host: string, port: number, ringBytes: number, onStrayFailure: FailureCallback): Promise<UdpSendThread> {
    const sab = new SharedArrayBuffer(CONTROL_BYTES + ringBytes);
    // No execArgv: the eval'd source is CommonJS whatever flags (--input-type, --import loaders) the process has.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { sab, ringBytes, type, host, port } });
    return new Promise((resolve, reject) => {
      const onMessage = (m: WorkerMessage): void => {
        if (m.kind === 'bound') {
          settle();
          worker.unref();
          resolve(new UdpSendThread(worker, sab, ringBytes, m.port!, onStrayFailure));
        } else if (m.kind === 'socket-error') {
          settle();
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      const onError = (err: Error): void => {
        settle();
        reject(err);
      };
      const settle = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
  }

  /** Datagrams the worker's own socket received: a probe sent to the port that it, not the transport, got. */
  get stray(): number {
    return Atomics.load(this.control, STRAY);
  }

  /** Datagrams the worker has sent. */
  get sent(): number {
    return Atomics.load(this.control, SENT);
  }

  /** Whether the worker still sends. */
  get active(): boolean {
    return this.running;
  }

  /**
   * Queues one datagram. False when it cannot (ring full, too many in flight, a port or
   * address dgram would refuse, thread gone): the caller sends it itself, and reports what dgram
   * says of it. `onFailed` runs on the event loop if the worker's send fails.
   */
  post(bytes: Uint8Array, to: TransportAddress, onFailed: FailureCallback): boolean {
    const { address, port } = to;
    const control = this.control;
    if (!this.running || typeof address !== 'string' || !(port > 0 && port <= 0xffff && (port | 0) === port)) return this.refuse();
    const addressLength = address.length;
    const size = HEADER + addressLength + bytes.length;
    if (addressLength > 255 || bytes.length >= WRAP || ((this.seq - Atomics.load(control, READ)) | 0) >= IN_FLIGHT) return this.refuse();
    const ringBytes = this.ringBytes;
    const ring = this.ring;
    const tail = Atomics.load(control, TAIL);
    let at = this.head;
    if (at >= tail) {
      // A record never ends exactly at the ring's end: HEAD == 0 would read as empty.
      if (ringBytes - at <= size) {
        if (tail <= size) return this.refuse();
        if (ringBytes - at >= HEADER) ring[at] = ring[at + 1] = 0xff;
        at = 0;
      }
    } else if (at + size >= tail) return this.refuse();
    const seq = this.seq;
    ring[at] = bytes.length & 0xff;
    ring[at + 1] = bytes.length >>> 8;
    ring[at + 2] = port & 0xff;
    ring[at + 3] = (port >>> 8) & 0xff;
    ring[at + 4] = addressLength;
    ring[at + 8] = seq & 0xff;
    ring[at + 9] = (seq >>> 8) & 0xff;
    ring[at + 10] = (seq >>> 16) & 0xff;
    ring[at + 11] = (seq >>> 24) & 0xff;
    let p = at + HEADER;
    for (let i = 0; i < addressLength; i++) {
      const c = address.charCodeAt(i);
      if (c > 0x7f) return this.refuse(); // not an IP literal: dgram's lookup, on the event loop
      ring[p++] = c;
    }
    ring.set(bytes, p);
    const slot = seq & (IN_FLIGHT - 1);
    this.failureSeq[slot] = seq;
    this.failureCallbacks[slot] = onFailed;
    this.failureTargets[slot] = to;
    this.seq = (seq + 1) | 0;
    this.head = p + bytes.length;
    this.posted++;
    Atomics.store(control, HEAD, this.head);
    if (!this.wakePending) {
      this.wakePending = true;
      queueMicrotask(this.wake);
    }
    return true;
  }

  /**
   * Wakes the worker if it sleeps (idle for a while: while sends come it polls), once for all
   * the datagrams this event-loop task queued.
   */
  private readonly wake = (): void => {
    this.wakePending = false;
    const control = this.control;
    if (Atomics.load(control, SLEEP) === 1 && Atomics.compareExchange(control, SLEEP, 1, 0) === 1) Atomics.notify(control, HEAD, 1);
  };

  private refuse(): false {
    this.refused++;
    return false;
  }

  private onMessage(m: WorkerMessage): void {
    if (m.kind === 'failed') {
      const seq = m.seq! | 0;
      const slot = seq & (IN_FLIGHT - 1);
      const traced = this.failureSeq[slot] === seq;
      const to = traced ? this.failureTargets[slot] : undefined;
      const error = new TransportError('SEND_FAILED', `UDP send${to === undefined ? '' : ` to ${to.address}:${to.port}`} failed: ${m.message ?? m.code}`, to);
      const callback = traced ? this.failureCallbacks[slot] : undefined;
      if (callback !== undefined) callback(error);
      else this.onStrayFailure(error);
    } else if (m.kind === 'socket-error') {
      this.onStrayFailure(new TransportError('SOCKET', `UDP send thread's socket: ${m.message}`));
    } else if (m.kind === 'closed') {
      this.onClosed?.();
    }
  }

  /** The worker is gone: nothing more is posted; what it had not taken is handed back to `resend`. */
  private stop(failure: TransportError | undefined): void {
    if (!this.running) return;
    this.running = false;
    if (failure !== undefined) this.onStrayFailure(failure);
    this.onClosed?.();
  }

  /**
   * Records queued but not yet taken by the worker (after it stopped): the caller sends them
   * itself, so a thread that dies loses nothing it had not started.
   */
  takeUnsent(send: (bytes: Uint8Array, port: number, address: string) => void): void {
    const ring = this.ring;
    let at = Atomics.load(this.control, TAIL);
    const head = this.head;
    while (at !== head) {
      if (this.ringBytes - at < HEADER || (ring[at] === 0xff && ring[at + 1] === 0xff)) {
        at = 0;
        continue;
      }
      const length = ring[at] | (ring[at + 1] << 8);
      const port = ring[at + 2] | (ring[at + 3] << 8);
      const addressLength = ring[at + 4]!;
      let address = '';
      for (let i = 0; i < addressLength; i++) address += String.fromCharCode(ring[at + HEADER + i]!);
      const from = at + HEADER + addressLength;
      send(ring.slice(from, from + length), port, address);
      at = from + length;
    }
    Atomics.store(this.control, TAIL, at);
  }

  /** Sends what is queued, closes the worker's socket and ends the thread. */
  close(): Promise<void> {
    if (!this.running) return this.worker.terminate().then(() => undefined);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate(), 2000);
      this.onClosed = () => {
        clearTimeout(timer);
        this.running = false;
        void this.worker.terminate().then(() => resolve());
      };
      Atomics.store(this.control, CLOSING, 1);
      Atomics.store(this.control, SLEEP, 0);
      Atomics.notify(this.control, HEAD);
    });
  }
}
