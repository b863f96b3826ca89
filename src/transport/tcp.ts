import { connect, createServer, isIPv6, type Server, type Socket } from 'node:net';
import type { ParseLimits } from '../parser/index.js';
import { RealClock, type Clock } from './clock.js';
import { TcpConnection, type ConnectionDeadlines, type ConnectionEvents } from './tcp-connection.js';
import { TransportError, addressKey, type Transport, type TransportAddress, type TransportReceiver } from './types.js';

export interface TcpTransportOptions {
  host?: string;
  port?: number;
  /** Close a connection that has received and sent nothing this long (default 120 s; RFC 5626 keep-alives reset it). */
  idleTimeoutMs?: number;
  /**
   * A message must arrive whole within this long of its first byte, or the connection
   * is closed with `MESSAGE_TIMEOUT` (default 20 s). Bounds a sender that drips bytes
   * to keep a connection and its buffer alive; RFC 3261 §18.3 and RFC 5626 set no
   * number. 20 s is far beyond what a message needs on a working link and below
   * Timer F (64·T1 = 32 s), after which its sender has given up on it anyway.
   */
  messageTimeoutMs?: number;
  /** An inbound connection must deliver a whole message within this long of opening (default 20 s); keep-alives do not count. */
  firstMessageTimeoutMs?: number;
  /**
   * Most inbound connections (default 1024). When reached, the idle inbound connection
   * that has gone longest without a message is closed to admit the new one; the new
   * one is refused only if none is idle.
   */
  maxInboundConnections?: number;
  /** Most connections this transport opens itself (default 1024), counted apart from inbound ones. */
  maxOutboundConnections?: number;
  /** Most inbound connections from one remote address (default 32): bounded memory per source. Excess is closed at once. */
  maxConnectionsPerAddress?: number;
  /**
   * An inbound connection that carried a whole message less than this long ago is
   * not idle, so not evicted (default 32 s: 64·T1, the life of a non-INVITE transaction).
   * A connection that never carried one is idle from the start (oldest first).
   */
  evictionGraceMs?: number;
  /** @deprecated Sets both maxInboundConnections and maxOutboundConnections where those are not given. */
  maxConnections?: number;
  connectTimeoutMs?: number;
  limits?: Partial<ParseLimits>;
  /** Time for the idle, message and first-message deadlines (default: the real clock). */
  clock?: Clock;
}

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
  /** By remote address:port: what send() reuses. */
  private readonly connections = new Map<string, TcpConnection>();
  private readonly inbound = new Set<TcpConnection>();
  private readonly outbound = new Set<TcpConnection>();
  /** Inbound connections per remote address. */
  private readonly perAddress = new Map<string, number>();
  private closed = false;
  private readonly clock: Clock;
  private readonly maxInbound: number;
  private readonly maxOutbound: number;
  private readonly maxPerAddress: number;
  private readonly evictionGraceMs: number;
  private readonly connectTimeoutMs: number;
  private readonly limits: Partial<ParseLimits> | undefined;
  private readonly inboundDeadlines: ConnectionDeadlines;
  private readonly outboundDeadlines: ConnectionDeadlines;
  private readonly events: ConnectionEvents = {
    onFrame: (bytes, conn) => this.receiver?.onMessage(bytes, conn.remote, this),
    onError: (err) => this.receiver?.onError?.(err, this),
    onClose: (conn) => this.forget(conn),
  };

  private constructor(
    private readonly server: Server,
    readonly local: TransportAddress,
    options: TcpTransportOptions,
  ) {
    this.clock = options.clock ?? new RealClock();
    this.maxInbound = options.maxInboundConnections ?? options.maxConnections ?? 1024;
    this.maxOutbound = options.maxOutboundConnections ?? options.maxConnections ?? 1024;
    this.maxPerAddress = options.maxConnectionsPerAddress ?? 32;
    this.evictionGraceMs = options.evictionGraceMs ?? 32_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.limits = options.limits;
    const idleMs = options.idleTimeoutMs ?? 120_000;
    const messageMs = options.messageTimeoutMs ?? 20_000;
    this.inboundDeadlines = { idleMs, messageMs, firstMessageMs: options.firstMessageTimeoutMs ?? 20_000 };
    this.outboundDeadlines = { idleMs, messageMs, firstMessageMs: undefined };
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Number of open connections, inbound and outbound. */
  get connectionCount(): number {
    return this.inbound.size + this.outbound.size;
  }

  get inboundConnectionCount(): number {
    return this.inbound.size;
  }

  get outboundConnectionCount(): number {
    return this.outbound.size;
  }

  /** Bytes of unfinished messages held across all connections. */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.inbound) n += c.buffered;
    for (const c of this.outbound) n += c.buffered;
    return n;
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

  private accept(socket: Socket): void {
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    if (this.closed) {
      socket.destroy();
      return;
    }
    if ((this.perAddress.get(remote.address) ?? 0) >= this.maxPerAddress) {
      this.refuse(socket, remote, `${this.maxPerAddress} connections from ${remote.address} already`);
      return;
    }
    if (this.inbound.size >= this.maxInbound) {
      const victim = this.oldestIdleInbound();
      if (!victim) {
        this.refuse(socket, remote, `${this.maxInbound} inbound connections, none idle`);
        return;
      }
      victim.close(new TransportError('CONNECTION_LIMIT', `closed idle connection from ${victim.key} to admit ${addressKey(remote)}`, victim.remote));
    }
    const conn = new TcpConnection(socket, remote, true, Promise.resolve(), this.clock, this.inboundDeadlines, this.limits, this.events);
    this.inbound.add(conn);
    this.perAddress.set(remote.address, (this.perAddress.get(remote.address) ?? 0) + 1);
    this.connections.set(conn.key, conn);
  }

  private refuse(socket: Socket, remote: TransportAddress, why: string): void {
    socket.destroy();
    this.receiver?.onError?.(new TransportError('CONNECTION_LIMIT', `refused connection from ${addressKey(remote)}: ${why}`, remote), this);
  }

  /**
   * The inbound connection to give up for a new one: no message in progress, and no
   * whole message carried within the grace period; of those, the longest unused.
   * A linear scan, done only when the inbound budget is full.
   */
  private oldestIdleInbound(): TcpConnection | undefined {
    const now = this.clock.now();
    let oldest: TcpConnection | undefined;
    for (const c of this.inbound) {
      if (c.messageInProgress) continue;
      if (c.messages > 0 && now - c.lastUsed < this.evictionGraceMs) continue;
      if (!oldest || c.lastUsed < oldest.lastUsed) oldest = c;
    }
    return oldest;
  }

  private forget(conn: TcpConnection): void {
    if (this.connections.get(conn.key) === conn) this.connections.delete(conn.key);
    if (!conn.inbound) {
      this.outbound.delete(conn);
      return;
    }
    if (!this.inbound.delete(conn)) return;
    const n = (this.perAddress.get(conn.remote.address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.remote.address);
    else this.perAddress.set(conn.remote.address, n);
  }

  private connectTo(to: TransportAddress): TcpConnection {
    if (this.outbound.size >= this.maxOutbound) throw new TransportError('CONNECTION_LIMIT', `${this.maxOutbound} outbound connections already; not connecting to ${addressKey(to)}`, to);
    const socket = connect({ host: to.address, port: to.port, family: isIPv6(to.address) ? 6 : 4, noDelay: true });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimer(this.connectTimeoutMs, () => {
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
    ready.catch(() => undefined);
    const conn = new TcpConnection(socket, to, false, ready, this.clock, this.outboundDeadlines, this.limits, this.events);
    this.outbound.add(conn);
    this.connections.set(conn.key, conn);
    return conn;
  }

  async send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    if (this.closed) throw new TransportError('CLOSED', 'transport is closed', to);
    const conn = this.connections.get(addressKey(to)) ?? this.connectTo(to);
    await conn.send(bytes);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const c of [...this.inbound, ...this.outbound]) c.close();
    this.connections.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
