import { connect, isIPv6, type Server } from 'node:net';
import { ConnectionPool, type StreamTransportOptions } from './connection-pool.js';
import { listenStream } from './listen.js';
import type { TcpConnection } from './tcp-connection.js';
import { TransportError, addressKey, type Transport, type TransportAddress, type TransportReceiver } from './types.js';

export type TcpTransportOptions = StreamTransportOptions;

/**
 * SIP over TCP (RFC 3261 §18.3). Messages are framed by Content-Length; one
 * connection per remote address:port is reused for responses and for later
 * requests to it (§18.2.2), in both directions. Inbound and outbound connections
 * have separate budgets, so peers connecting in cannot stop this side connecting out.
 */
export class TcpTransport implements Transport {
  readonly protocol = 'tcp';
  readonly reliable = true;
  private receiver: TransportReceiver | undefined;
  private closed = false;
  private readonly pool: ConnectionPool;

  private constructor(
    private readonly server: Server,
    readonly local: TransportAddress,
    options: TcpTransportOptions,
  ) {
    this.pool = new ConnectionPool(options, {
      onFrame: (bytes, conn) => this.receiver?.onMessage(bytes, conn.remote, this),
      onError: (err) => this.receiver?.onError?.(err, this),
    });
    server.on('connection', (socket) => this.pool.accept(socket));
  }

  /** Number of open connections, inbound and outbound. */
  get connectionCount(): number {
    return this.pool.size;
  }

  get inboundConnectionCount(): number {
    return this.pool.inboundCount;
  }

  get outboundConnectionCount(): number {
    return this.pool.outboundCount;
  }

  /** Bytes of unfinished messages held across all connections. */
  get bufferedBytes(): number {
    return this.pool.bufferedBytes;
  }

  static async listen(options: TcpTransportOptions = {}): Promise<TcpTransport> {
    const { server, local } = await listenStream(options.host ?? '127.0.0.1', options.port ?? 0, 'TCP');
    return new TcpTransport(server, local, options);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.receiver = receiver;
  }

  private connectTo(to: TransportAddress): TcpConnection {
    return this.pool.connect(addressKey(to), to, () => {
      const socket = connect({ host: to.address, port: to.port, family: isIPv6(to.address) ? 6 : 4, noDelay: true });
      const ready = new Promise<void>((resolve, reject) => {
        const timer = this.pool.clock.setTimer(this.pool.connectTimeoutMs, () => {
          socket.destroy();
          reject(new TransportError('CONNECT_FAILED', `connect to ${addressKey(to)} timed out`, to));
        });
        socket.once('connect', () => {
          timer.cancel();
          resolve();
        });
        socket.once('error', (err) => {
          timer.cancel();
          reject(new TransportError('CONNECT_FAILED', `connect to ${addressKey(to)} failed: ${err.message}`, to, err));
        });
      });
      return { socket, ready };
    });
  }

  async send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    if (this.closed) throw new TransportError('CLOSED', 'transport is closed', to);
    const conn = this.pool.get(addressKey(to)) ?? this.connectTo(to);
    await conn.send(bytes);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.pool.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
