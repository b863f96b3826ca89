import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { TransportError, type Transport, type TransportAddress, type TransportReceiver } from './types.js';

export interface UdpTransportOptions {
  /** Address to bind (default 127.0.0.1). `::` or an IPv6 address gives an IPv6 socket. */
  host?: string;
  /** Port (default 0: an ephemeral port). */
  port?: number;
  /** Socket receive buffer in bytes (default 4 MiB, capped by the OS): absorbs bursts between event-loop turns. */
  recvBufferSize?: number;
}

/** SIP over UDP (RFC 3261 §18): one datagram, one message. */
export class UdpTransport implements Transport {
  readonly protocol = 'udp';
  readonly reliable = false;
  private receiver: TransportReceiver | undefined;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly local: TransportAddress,
  ) {
    socket.on('message', (msg, rinfo) => {
      this.receiver?.onMessage(msg, { address: rinfo.address, port: rinfo.port }, this);
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
        resolve(new UdpTransport(socket, { address: a.address, port: a.port }));
      });
    });
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
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
