import { connect, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { StreamFramer, type ParseLimits } from '../parser/index.js';
import { TransportError, addressKey, type Transport, type TransportAddress, type TransportReceiver } from './types.js';

export interface TcpTransportOptions {
  host?: string;
  port?: number;
  /** Close a connection idle this long (default 120 s; RFC 5626 keep-alives reset it). */
  idleTimeoutMs?: number;
  /** Most open connections, inbound and outbound together (default 1024). */
  maxConnections?: number;
  /** Most connections from one remote address (default 32): bounded memory per source. */
  maxConnectionsPerAddress?: number;
  connectTimeoutMs?: number;
  limits?: Partial<ParseLimits>;
}

interface Connection {
  socket: Socket;
  remote: TransportAddress;
  ready: Promise<void>;
}

/**
 * SIP over TCP (RFC 3261 §18.3). Messages are framed by Content-Length; one
 * connection per remote address:port is reused for responses and for later
 * requests to it (§18.2.2), in both directions.
 */
export class TcpTransport implements Transport {
  readonly protocol = 'tcp';
  readonly reliable = true;
  private receiver: TransportReceiver | undefined;
  private readonly connections = new Map<string, Connection>();
  private readonly perAddress = new Map<string, number>();
  private closed = false;
  private readonly opts: Required<Omit<TcpTransportOptions, 'host' | 'port' | 'limits'>> & { limits: Partial<ParseLimits> | undefined };

  private constructor(
    private readonly server: Server,
    readonly local: TransportAddress,
    options: TcpTransportOptions,
  ) {
    this.opts = {
      idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
      maxConnections: options.maxConnections ?? 1024,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 32,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      limits: options.limits,
    };
    server.on('connection', (socket) => {
      const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
      if (!this.admit(remote.address)) {
        socket.destroy();
        this.receiver?.onError?.(new TransportError('CONNECTION_LIMIT', `refused connection from ${addressKey(remote)}`, remote), this);
        return;
      }
      this.adopt(socket, remote, Promise.resolve());
    });
  }

  /** Number of open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  static listen(options: TcpTransportOptions = {}): Promise<TcpTransport> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer({ noDelay: true });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new TransportError('SOCKET', `cannot listen on TCP ${host}:${options.port ?? 0}: ${err.message}`, undefined, err));
      server.once('error', onError);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', onError);
        const a = server.address();
        if (a === null || typeof a === 'string') return reject(new TransportError('SOCKET', 'no TCP address'));
        resolve(new TcpTransport(server, { address: a.address, port: a.port }, options));
      });
    });
  }

  setReceiver(receiver: TransportReceiver): void {
    this.receiver = receiver;
  }

  private admit(address: string): boolean {
    if (this.connections.size >= this.opts.maxConnections) return false;
    return (this.perAddress.get(address) ?? 0) < this.opts.maxConnectionsPerAddress;
  }

  private adopt(socket: Socket, remote: TransportAddress, ready: Promise<void>): Connection {
    const key = addressKey(remote);
    const conn: Connection = { socket, remote, ready };
    this.connections.set(key, conn);
    this.perAddress.set(remote.address, (this.perAddress.get(remote.address) ?? 0) + 1);
    socket.setNoDelay(true);
    socket.setTimeout(this.opts.idleTimeoutMs, () => socket.destroy());
    const framer = new StreamFramer(
      {
        onFrame: (bytes) => this.receiver?.onMessage(bytes, remote, this),
        onError: (err, fatal) => {
          this.receiver?.onError?.(new TransportError('FRAMING', `${addressKey(remote)}: ${err.message}`, remote, err), this);
          // RFC 4475 §3.1.2.3: a stream that cannot be framed cannot be resynchronised.
          if (fatal) socket.destroy();
        },
        onPing: () => socket.write('\r\n'),
      },
      this.opts.limits,
    );
    socket.on('data', (chunk) => framer.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (this.connections.get(key) === conn) this.connections.delete(key);
      const n = (this.perAddress.get(remote.address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(remote.address);
      else this.perAddress.set(remote.address, n);
    });
    return conn;
  }

  private connectTo(to: TransportAddress): Connection {
    if (!this.admit(to.address)) throw new TransportError('CONNECTION_LIMIT', `connection limit reached for ${addressKey(to)}`, to);
    const socket = connect({ host: to.address, port: to.port, family: isIPv6(to.address) ? 6 : 4, noDelay: true });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TransportError('CONNECT_FAILED', `connect to ${addressKey(to)} timed out`, to));
      }, this.opts.connectTimeoutMs);
      timer.unref();
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new TransportError('CONNECT_FAILED', `connect to ${addressKey(to)} failed: ${err.message}`, to, err));
      });
    });
    ready.catch(() => undefined);
    return this.adopt(socket, to, ready);
  }

  async send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    if (this.closed) throw new TransportError('CLOSED', 'transport is closed', to);
    const conn = this.connections.get(addressKey(to)) ?? this.connectTo(to);
    await conn.ready;
    if (conn.socket.destroyed) throw new TransportError('SEND_FAILED', `connection to ${addressKey(to)} is closed`, to);
    await new Promise<void>((resolve, reject) => {
      conn.socket.write(bytes, (err) => {
        if (err) reject(new TransportError('SEND_FAILED', `TCP send to ${addressKey(to)} failed: ${err.message}`, to, err));
        else resolve();
      });
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const c of this.connections.values()) c.socket.destroy();
    this.connections.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
