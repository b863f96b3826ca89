import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Clock } from './clock.js';
import { TransportError, type Transport, type TransportAddress, type TransportReceiver } from './types.js';
import { UdpInbox, type UdpInboxLimit, type UdpInboxStats } from './udp-inbox.js';

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

  static bind(options: UdpTransportOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '127.0.0.1';
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false, lookup: literalLookup });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new TransportError('SOCKET', `cannot bind UDP ${host}:${options.port ?? 0}: ${err.message}`, undefined, err));
      socket.once('error', onError);
      socket.bind(options.port ?? 0, host, () => {
        socket.off('error', onError);
        try {
          socket.setRecvBufferSize(options.recvBufferSize ?? 4 * 1024 * 1024);
        } catch {
          // The OS may refuse the size; its default still works.
        }
        const a = socket.address();
        resolve(new UdpTransport(socket, { address: a.address, port: a.port }, options));
      });
    });
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
      this.post(bytes, to, reject, resolve);
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
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
