import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Clock } from './clock.js';
import { TransportError, type Transport, type TransportAddress, type TransportReceiver } from './types.js';
import { UdpInbox, type UdpInboxLimit, type UdpInboxStats } from './udp-inbox.js';
import { FULL, NEVER, ringBytesOf, TAKEN, UdpSendThread, type UdpSendThreadStats } from './udp-send-thread.js';
import { Fifo } from '../util/fifo.js';

export type { UdpInboxLimit, UdpInboxStats, UdpSendThreadStats };

/**
 * The socket's address lookup. dgram resolves the destination of every send through its
 * `lookup` (default dns.lookup), and dns.lookup answers even an IP literal on a later tick:
 * each datagram would leave one process.nextTick late, and its callback one more. A
 * TransportAddress is a bare IP, so this answers literals at once (the datagram leaves inside
 * send()) and hands names, should one come, to dns.lookup. Errors of the send itself still
 * reach its callback on a later tick (dgram defers them).
 */
function literalLookup(hostname: string, options: LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dnsLookup(hostname, options, callback);
}

export interface UdpTransportOptions {
  /** Address to bind (default 127.0.0.1). `::` or an IPv6 address gives an IPv6 socket. */
  host?: string;
  /** Port (default 0: an ephemeral port). */
  port?: number;
  /** Socket receive buffer in bytes (default 4 MiB, capped by the OS): absorbs bursts between event-loop turns. */
  recvBufferSize?: number;
  /**
   * Cap on the inbox's low lane: received INVITE and CANCEL requests (new work) waiting to be
   * handled (default 20 000 datagrams / 16 MiB). The socket is read as fast as datagrams come
   * and each is queued; a drain hands them to the receiver, responses and in-dialog or
   * in-progress requests (ACK, BYE, PRACK, …: the high lane) first, each lane in arrival order,
   * in slices that yield to the event loop. Beyond this cap new INVITEs/CANCELs are dropped and
   * counted in {@link UdpTransport.stats} (a UDP sender retransmits them), so an overload slows
   * the intake of new calls instead of losing the answers of calls under way.
   */
  inboxLimit?: UdpInboxLimit;
  /** Cap on the inbox's high lane (default 100 000 datagrams / 64 MiB): memory stays bounded under any flood. */
  highInboxLimit?: UdpInboxLimit;
  /**
   * How long (ms) an INVITE or CANCEL may wait in the inbox's low lane before it is dropped
   * unparsed as stale, counted in {@link UdpTransport.stats} `shed` (default 500: T1, RFC 3261
   * §17.1.1.2 Timer A and §17.1.2.2 Timer E). A UDP sender retransmits a request it has no
   * answer to after T1 (500 ms unless configured otherwise), so a copy that has waited longer has
   * a fresher one queued behind it: under sustained overload the inbox serves new calls at most
   * this old instead of spending its capacity on copies whose retransmissions follow, and the
   * wait stays bounded. Re-INVITEs and CANCELs share that lane with new INVITEs (a CANCEL must
   * not overtake its INVITE) and are retransmitted alike, so they are shed alike; responses,
   * ACK, BYE and the other requests (the high lane) are never dropped by age. Peers
   * configured with a larger T1 want at least their T1 here; Infinity: never; zero, negative
   * or NaN: the default.
   */
  inboxMaxAgeMs?: number;
  /**
   * The clock that dates the low lane's datagrams (default: performance.now). Its
   * `monotonicNow()` is used when it has one, else `now()` (a FakeClock in tests).
   */
  clock?: Pick<Clock, 'now' | 'monotonicNow'>;
  /**
   * Make the send system calls on a worker thread (default false). The event loop then copies
   * each datagram into a shared ring instead of paying the kernel's cost of sending it (5–20 µs
   * a datagram, a quarter of a busy B2BUA's event loop). The worker's socket shares the port
   * (both bound with SO_REUSEADDR, the transport's last, so the transport receives everything
   * and replies leave from its port); a probe at bind checks that the OS delivers that way, and
   * where it does not, or the thread ends, the transport sends by itself. A datagram that finds
   * the ring full waits, in order, for room.
   * SO_REUSEADDR lets another local process bind the same port too (as with Kamailio's sockets):
   * keep it off on a host shared with untrusted users. `ringBytes`: the ring's size (default 1 MiB, touched at bind).
   */
  sendThread?: boolean | { ringBytes?: number };
}

/**
 * Fails as a port in use would without SO_REUSEADDR. The send thread's sockets share their
 * port through SO_REUSEADDR, which would otherwise bind beside another socket that set it too
 * (another transport with a send thread, Kamailio's sockets) and take all its traffic.
 */
function refuseBusyPort(type: 'udp4' | 'udp6', host: string, port: number): Promise<void> {
  const check = createSocket({ type, reuseAddr: false });
  return new Promise<void>((resolve, reject) => {
    check.once('error', (err) => {
      check.close();
      reject(new TransportError('SOCKET', `cannot bind UDP ${host}:${port}: ${err.message}`, undefined, err));
    });
    check.bind(port, host, () => check.close(() => resolve()));
  });
}

/** A datagram that waits, in order, for room in the send thread's ring. */
interface Waiting {
  bytes: Uint8Array;
  to: TransportAddress;
  onError: (error: TransportError) => void;
}

/** Datagrams that may wait for room in the ring; past this the event loop sends them itself (order may then change). */
const MAX_WAITING = 10_000;

const ignore = (): void => {};

/** performance.now, as the inbox's default clock. */
const monotonicNow = (): number => performance.now();

/** Default {@link UdpTransportOptions.inboxMaxAgeMs}: T1. */
const DEFAULT_MAX_AGE_MS = 500;

/** SIP over UDP (RFC 3261 §18): one datagram, one message. */
export class UdpTransport implements Transport {
  readonly protocol = 'udp';
  readonly reliable = false;
  private receiver: TransportReceiver | undefined;
  private closed = false;
  private readonly inbox: UdpInbox;
  /** How long (ms) a request may wait in the inbox's low lane before it is shed (see {@link UdpTransportOptions.inboxMaxAgeMs}). */
  readonly inboxMaxAgeMs: number;
  private thread: UdpSendThread | undefined;
  /** The send thread's counters when it was let go (probe failed, thread ended, transport closed). */
  private threadCounters: UdpSendThreadStats | undefined;
  /** The bind's probe datagram while it is awaited (see probeThread). */
  private probeToken: Buffer | undefined;
  private probeReceived = false;
  /** Datagrams waiting, in order, for room in the send thread's ring. */
  private readonly waiting = new Fifo<Waiting>();
  private waitingTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly local: TransportAddress,
    options: UdpTransportOptions,
  ) {
    const clock = options.clock;
    const now = clock === undefined ? monotonicNow : clock.monotonicNow !== undefined ? () => clock.monotonicNow!() : () => clock.now();
    // Out of range (zero, which would shed every INVITE the moment it is read; negative; NaN): the default.
    const maxAge = options.inboxMaxAgeMs;
    this.inboxMaxAgeMs = maxAge !== undefined && maxAge > 0 ? maxAge : DEFAULT_MAX_AGE_MS;
    this.inbox = new UdpInbox((msg, from) => this.receiver?.onMessage(msg, from, this), options.inboxLimit, options.highInboxLimit, {
      now,
      maxAgeMs: this.inboxMaxAgeMs,
    });
    socket.on('message', (msg, rinfo) => {
      const probe = this.probeToken;
      if (probe !== undefined && msg.length === probe.length && msg.equals(probe)) this.probeReceived = true;
      else this.inbox.push(msg, { address: rinfo.address, port: rinfo.port });
    });
    socket.on('error', (err) => {
      this.receiver?.onError?.(new TransportError('SOCKET', `UDP socket error: ${err.message}`, undefined, err), this);
    });
  }

  static async bind(options: UdpTransportOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '127.0.0.1';
    const type = isIPv6(host) ? 'udp6' : 'udp4';
    let port = options.port ?? 0;
    let thread: UdpSendThread | undefined;
    let transport: UdpTransport | undefined;
    const probe = `sipkit send-thread probe ${randomBytes(8).toString('hex')}`;
    if (options.sendThread) {
      if (port !== 0) await refuseBusyPort(type, host, port);
      const ringBytes = ringBytesOf(typeof options.sendThread === 'object' ? options.sendThread.ringBytes : undefined);
      try {
        // The worker's socket binds first: the one bound last receives (see udp-send-thread.ts).
        thread = await UdpSendThread.start(type, host, port, ringBytes, probe, {
          onStrayFailure: (error) => transport?.strayFailure(error),
          onStopped: (error) => transport?.threadStopped(error),
        });
      } catch (err) {
        throw new TransportError('SOCKET', `cannot bind UDP ${host}:${port}: ${(err as Error).message}`, undefined, err);
      }
      port = thread.port;
    }
    const socket = createSocket({ type, reuseAddr: thread !== undefined, lookup: literalLookup });
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(new TransportError('SOCKET', `cannot bind UDP ${host}:${port}: ${err.message}`, undefined, err));
        socket.once('error', onError);
        socket.bind(port, host, () => {
          socket.off('error', onError);
          resolve();
        });
      });
    } catch (err) {
      await thread?.close();
      throw err;
    }
    try {
      socket.setRecvBufferSize(options.recvBufferSize ?? 4 * 1024 * 1024);
    } catch {
      // The OS may refuse the size; its default still works.
    }
    const a = socket.address();
    // Listening from here on: what arrives while the probe is awaited goes to the inbox.
    transport = new UdpTransport(socket, { address: a.address, port: a.port }, options);
    if (thread !== undefined) await transport.probeThread(thread, probe, type);
    return transport;
  }

  /**
   * Keeps the send thread if a datagram sent to the port reaches this transport's socket,
   * bound last, not the thread's bound first to the same port (see udp-send-thread.ts): Linux
   * delivers to the last; on an OS that does otherwise the transport sends by itself, and
   * `sendThreadStats.active` says so.
   */
  private async probeThread(thread: UdpSendThread, token: string, type: 'udp4' | 'udp6'): Promise<void> {
    const address = this.local.address;
    const target = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
    const probe = createSocket({ type });
    this.probeToken = Buffer.from(token, 'latin1');
    this.thread = thread;
    let received: boolean;
    try {
      received = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => done(false), 1000);
        const poll = setInterval(() => {
          if (this.probeReceived) done(true);
          else if (thread.probed > 0 || !thread.active) done(false);
        }, 1);
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          clearInterval(poll);
          resolve(ok);
        };
        probe.on('error', () => done(false));
        probe.send(this.probeToken!, this.local.port, target);
      });
    } finally {
      probe.close();
      this.probeToken = undefined;
    }
    if (!received || !thread.active) {
      this.thread = undefined;
      await thread.close();
      this.threadCounters = thread.counters;
    }
  }

  /** The send thread's counters; undefined when bound without `sendThread` (`active` false once it no longer sends). */
  get sendThreadStats(): UdpSendThreadStats | undefined {
    return this.thread?.counters ?? this.threadCounters;
  }

  /** Inbox counters: datagrams queued now, the most ever queued, those dropped (full lane, or queued at close()) and those shed as stale. */
  get stats(): UdpInboxStats {
    return this.inbox.stats;
  }

  setReceiver(receiver: TransportReceiver): void {
    this.receiver = receiver;
  }

  /**
   * Send one datagram. With a send thread the promise resolves once the thread has it, and a
   * failure after that goes to the receiver's `onError` (nothing awaits a datagram's leaving).
   */
  send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    return new Promise((resolve, reject) => {
      const refused = this.refusal(bytes, to);
      if (refused !== undefined) queueMicrotask(() => reject(refused));
      else if (this.thread !== undefined && this.toThread(bytes, to, this.strayFailure)) resolve();
      else this.sendHere(bytes, to, reject, resolve);
    });
  }

  /** Why a datagram cannot be sent at all (closed, too large for UDP), or undefined. */
  private refusal(bytes: Uint8Array, to: TransportAddress): TransportError | undefined {
    if (this.closed) return new TransportError('CLOSED', 'transport is closed', to);
    if (bytes.length > 65_507) return new TransportError('MESSAGE_TOO_LARGE', `${bytes.length} bytes do not fit a datagram`, to);
    return undefined;
  }

  private readonly strayFailure = (error: TransportError): void => {
    this.receiver?.onError?.(error, this);
  };

  post(bytes: Uint8Array, to: TransportAddress, onError: (error: TransportError) => void, onSent?: () => void): void {
    const refused = this.refusal(bytes, to);
    if (refused !== undefined) {
      queueMicrotask(() => onError(refused));
      return;
    }
    // onSent wants to hear when the datagram has left: only the event loop's own send says so.
    if (onSent === undefined && this.thread !== undefined && this.toThread(bytes, to, onError)) return;
    this.sendHere(bytes, to, onError, onSent);
  }

  /**
   * Hands a datagram to the send thread, or keeps it in order behind those waiting for room in
   * the ring. False: the thread will not take it (a name to look up, a port dgram refuses):
   * the caller sends it itself.
   */
  private toThread(bytes: Uint8Array, to: TransportAddress, onError: (error: TransportError) => void): boolean {
    const thread = this.thread!;
    if (this.waiting.length === 0) {
      const r = thread.post(bytes, to, onError);
      if (r === TAKEN) return true;
      if (r === NEVER) {
        thread.refused++;
        return false;
      }
    }
    if (this.waiting.length >= MAX_WAITING) {
      thread.refused++;
      return false;
    }
    // A copy: the caller's bytes are its own once this returns.
    this.waiting.push({ bytes: Uint8Array.from(bytes), to, onError });
    this.waitingTimer ??= setTimeout(this.postWaiting, 1);
    return true;
  }

  /** Moves waiting datagrams into the ring as it empties, in order. */
  private readonly postWaiting = (): void => {
    this.waitingTimer = undefined;
    const thread = this.thread;
    for (let w = this.waiting.peek(); w !== undefined; w = this.waiting.peek()) {
      if (thread !== undefined) {
        const r = thread.post(w.bytes, w.to, w.onError);
        if (r === FULL) {
          this.waitingTimer = setTimeout(this.postWaiting, 1);
          return;
        }
        if (r === NEVER) {
          thread.refused++;
          this.sendHere(w.bytes, w.to, w.onError);
        }
      } else this.sendHere(w.bytes, w.to, w.onError);
      this.waiting.shift();
    }
  };

  /** The thread ended by itself: what it had not taken, then what waited, leave from here, and so does all that follows. */
  private threadStopped(error: TransportError): void {
    const thread = this.thread;
    if (thread === undefined) return;
    this.thread = undefined;
    this.threadCounters = thread.counters;
    thread.takeUnsent((bytes, to, onFailed) => this.sendHere(bytes, to, onFailed ?? ignore));
    if (this.waitingTimer !== undefined) clearTimeout(this.waitingTimer);
    this.postWaiting();
    this.receiver?.onError?.(error, this);
  }

  private sendHere(bytes: Uint8Array, to: TransportAddress, onError: (error: TransportError) => void, onSent?: () => void): void {
    try {
      // With literalLookup the datagram leaves here; the callback comes on a later tick.
      this.socket.send(bytes, to.port, to.address, (err) => {
        if (err) onError(new TransportError('SEND_FAILED', `UDP send to ${to.address}:${to.port} failed: ${err.message}`, to, err));
        else onSent?.();
      });
    } catch (err) {
      // dgram throws for what it refuses at once (a port out of range, an address that is not a
      // string): reported like any failed send, asynchronously.
      queueMicrotask(() => onError(new TransportError('SEND_FAILED', `UDP send to ${to.address}:${to.port} failed: ${(err as Error).message}`, to, err)));
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.inbox.close();
    const thread = this.thread;
    this.thread = undefined;
    if (this.waitingTimer !== undefined) clearTimeout(this.waitingTimer);
    // The thread first: what it has queued leaves before the port is given up; then what still
    // waited for room in its ring, from here, after it.
    const threadDone =
      thread === undefined
        ? Promise.resolve()
        : thread.close().then(() => {
            this.threadCounters = thread.counters;
            thread.takeUnsent((bytes, to, onFailed) => this.sendHere(bytes, to, onFailed ?? ignore));
          });
    return threadDone.then(() => {
      this.postWaiting();
      return new Promise<void>((resolve) => this.socket.close(() => resolve()));
    });
  }
}
