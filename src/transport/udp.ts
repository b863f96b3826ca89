import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { TransportError, type Transport, type TransportAddress, type TransportReceiver } from './types.js';
import { UdpInbox, type UdpInboxLimit, type UdpInboxStats } from './udp-inbox.js';

export type { UdpInboxLimit, UdpInboxStats };

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
}

/** SIP over UDP (RFC 3261 §18): one datagram, one message. */
export class UdpTransport implements Transport {
  readonly protocol = 'udp';
  readonly reliable = false;
  private receiver: TransportReceiver | undefined;
  private closed = false;
  private readonly inbox: UdpInbox;

  private constructor(
    private readonly socket: Socket,
    readonly local: TransportAddress,
    options: UdpTransportOptions,
  ) {
    this.inbox = new UdpInbox((msg, from) => this.receiver?.onMessage(msg, from, this), options.inboxLimit, options.highInboxLimit);
    socket.on('message', (msg, rinfo) => {
      this.inbox.push(msg, { address: rinfo.address, port: rinfo.port });
    });
    socket.on('error', (err) => {
      this.receiver?.onError?.(new TransportError('SOCKET', `UDP socket error: ${err.message}`, undefined, err), this);
    });
  }

  static bind(options: UdpTransportOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '127.0.0.1';
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
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

  /** Inbox counters: datagrams queued now, the most ever queued, and those dropped (full lane, or queued at close()). */
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
    this.socket.send(bytes, to.port, to.address, (err) => {
      if (err) onError(new TransportError('SEND_FAILED', `UDP send to ${to.address}:${to.port} failed: ${err.message}`, to, err));
      else onSent?.();
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.inbox.close();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
