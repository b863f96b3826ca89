import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Clock } from './clock.js';
import { TransportError, type Transport, type TransportAddress, type TransportReceiver } from './types.js';
import { UdpInbox, type UdpInboxLimit, type UdpInboxStats } from './udp-inbox.js';
import { DEFAULT_RING_BYTES, UdpSendThread } from './udp-send-thread.js';

export type { UdpInboxLimit, UdpInboxStats };

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
   * where it does not, or the ring is full, or the thread ends, the transport sends by itself.
   * SO_REUSEADDR lets another local process bind the same port too (as with Kamailio's sockets):
   * keep it off on a host shared with untrusted users. `ringBytes`: the ring's size (default 4 MiB).
   */
  sendThread?: boolean | { ringBytes?: number };
}

/** What {@link UdpTransport.sendThreadStats} reports. */
export interface UdpSendThreadStats {
  /** Whether the worker thread sends now. */
  readonly active: boolean;
  /** Datagrams handed to the thread. */
  readonly posted: number;
  /** Of those, the ones the kernel has taken. */
  readonly sent: number;
  /** Datagrams the transport sent itself while the thread was on (ring full, too many in flight). */
  readonly refused: number;
}


/**
 * Whether a datagram sent to the port reaches `socket`, bound last, rather than the send
 * thread's socket bound first to the same port (see udp-send-thread.ts): Linux delivers to the
 * last; an OS that does otherwise gets a transport that sends by itself.
 */
async function receivesItsOwnPort(socket: Socket, type: 'udp4' | 'udp6', address: string, port: number, thread: UdpSendThread): Promise<boolean> {
  const probe = createSocket({ type });
  const target = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  const token = Buffer.from(`sipkit send-thread probe ${randomBytes(8).toString('hex')}`);
  try {
    return await new Promise<boolean>((resolve) => {
      const onMessage = (msg: Buffer): void => {
        if (msg.equals(token)) done(true);
      };
      const timer = setTimeout(() => done(false), 1000);
      const poll = setInterval(() => {
        if (thread.stray > 0) done(false);
      }, 2);
      const done = (received: boolean): void => {
        clearTimeout(timer);
        clearInterval(poll);
        socket.off('message', onMessage);
        resolve(received);
      };
      socket.on('message', onMessage);
      probe.on('error', () => done(false));
      probe.send(token, port, target);
    });
  } finally {
    probe.close();
  }
}

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

  private constructor(
    private readonly socket: Socket,
    readonly local: TransportAddress,
    options: UdpTransportOptions,
    private thread: UdpSendThread | undefined,
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
      this.inbox.push(msg, { address: rinfo.address, port: rinfo.port });
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
    // Reports of the thread's that no send is waiting for, forwarded once the transport exists.
    let strayFailure: (error: TransportError) => void = () => {};
    if (options.sendThread) {
      const ringBytes = typeof options.sendThread === 'object' && options.sendThread.ringBytes !== undefined ? options.sendThread.ringBytes : DEFAULT_RING_BYTES;
      try {
        // The worker's socket binds first: the one bound last receives (see udp-send-thread.ts).
        thread = await UdpSendThread.start(type, host, port, Math.max(64 * 1024, ringBytes), (f) => strayFailure(f));
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
    if (thread !== undefined && (!(await receivesItsOwnPort(socket, type, a.address, a.port, thread)) || !thread.active)) {
      await thread.close();
      thread = undefined;
    }
    const transport = new UdpTransport(socket, { address: a.address, port: a.port }, options, thread);
    strayFailure = (error) => transport.receiver?.onError?.(error, transport);
    return transport;
  }

  /** The send thread's counters; undefined when the transport was bound without `sendThread`. */
  get sendThreadStats(): UdpSendThreadStats | undefined {
    const t = this.thread;
    return t === undefined ? undefined : { active: t.active, posted: t.posted, sent: t.sent, refused: t.refused };
  }

  /** Inbox counters: datagrams queued now, the most ever queued, those dropped (full lane, or queued at close()) and those shed as stale. */
  get stats(): UdpInboxStats {
    return this.inbox.stats;
  }

  setReceiver(receiver: TransportReceiver): void {
    this.receiver = receiver;
  }

  send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) queueMicrotask(() => reject(new TransportError('CLOSED', 'transport is closed', to)));
      else if (bytes.length > 65_507) queueMicrotask(() => reject(new TransportError('MESSAGE_TOO_LARGE', `${bytes.length} bytes do not fit a datagram`, to)));
      // Here, not on the thread: the promise says when the datagram has left.
      else this.sendHere(bytes, to, reject, resolve);
    });
  }

  post(bytes: Uint8Array, to: TransportAddress, onError: (error: TransportError) => void, onSent?: () => void): void {
    if (this.closed) {
      queueMicrotask(() => onError(new TransportError('CLOSED', 'transport is closed', to)));
      return;
    }
    if (bytes.length > 65_507) {
      queueMicrotask(() => onError(new TransportError('MESSAGE_TOO_LARGE', `${bytes.length} bytes do not fit a datagram`, to)));
      return;
    }
    const thread = this.thread;
    if (thread !== undefined) {
      if (thread.post(bytes, to, onError)) return;
      if (!thread.active) this.leaveThread(thread);
    }
    this.sendHere(bytes, to, onError, onSent);
  }

  /** The thread ended by itself: what it had not taken leaves from here, and so does all that follows. */
  private leaveThread(thread: UdpSendThread): void {
    this.thread = undefined;
    thread.takeUnsent((bytes, port, address) => this.sendHere(bytes, { address, port }, () => {}));
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
    // The thread first: what it has queued leaves before the port is given up.
    return (thread === undefined ? Promise.resolve() : thread.close()).then(() => new Promise<void>((resolve) => this.socket.close(() => resolve())));
  }
}
