import type { Socket } from 'node:net';
import type { ParseLimits } from '../parser/index.js';
import { RealClock, type Clock } from './clock.js';
import { TcpConnection, type ConnectionDeadlines, type ConnectionEvents } from './tcp-connection.js';
import { TransportError, addressKey, type TransportAddress } from './types.js';

/** Options every stream transport (TCP, TLS) shares: deadlines and connection budgets. */
export interface StreamTransportOptions {
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
  /**
   * An inbound connection must deliver a whole message within this long of opening (default 20 s);
   * keep-alives do not count. On TLS the handshake is part of this time.
   */
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
  /** An outbound connection (on TLS: with its handshake) must be up within this long (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * Send an RFC 5626 §4.4.1 keep-alive ping (CRLF CRLF) on each connection this transport
   * opened, this long after the last one (default: none). A pong (CRLF) or any other byte
   * must come back within `keepAliveTimeoutMs`, or the connection is closed with
   * `KEEPALIVE_TIMEOUT`. Pings keep such a connection from falling idle.
   */
  keepAliveIntervalMs?: number;
  /** How long to wait for the answer to a keep-alive ping (default 10 s, RFC 5626 §4.4.1). */
  keepAliveTimeoutMs?: number;
  limits?: Partial<ParseLimits>;
  /** Time for the idle, message, first-message and keep-alive deadlines (default: the real clock). */
  clock?: Clock;
}

/** What the pool tells its transport. */
export interface PoolEvents {
  onFrame(bytes: Buffer, conn: TcpConnection): void;
  onError(error: TransportError): void;
  /** A connection closed and left the pool. */
  onClose?(conn: TcpConnection): void;
}

/**
 * The connections of one stream transport and the limits on them: inbound and
 * outbound budgets kept apart (peers connecting in cannot stop this side
 * connecting out), a cap per remote address, and eviction of the longest-idle
 * inbound connection when the inbound budget is full. TCP and TLS both keep
 * their connections here, so both are bounded the same way.
 */
export class ConnectionPool {
  readonly clock: Clock;
  readonly connectTimeoutMs: number;
  /** By connection key: what send() reuses. */
  private readonly byKey = new Map<string, TcpConnection>();
  private readonly inbound = new Set<TcpConnection>();
  private readonly outbound = new Set<TcpConnection>();
  /** Inbound connections per remote address. */
  private readonly perAddress = new Map<string, number>();
  private readonly maxInbound: number;
  private readonly maxOutbound: number;
  private readonly maxPerAddress: number;
  private readonly evictionGraceMs: number;
  private readonly limits: Partial<ParseLimits> | undefined;
  private readonly inboundDeadlines: ConnectionDeadlines;
  private readonly outboundDeadlines: ConnectionDeadlines;
  private readonly connectionEvents: ConnectionEvents;
  private readonly reportError: (error: TransportError) => void;
  private closed = false;

  constructor(options: StreamTransportOptions, events: PoolEvents) {
    this.clock = options.clock ?? new RealClock();
    this.maxInbound = options.maxInboundConnections ?? options.maxConnections ?? 1024;
    this.maxOutbound = options.maxOutboundConnections ?? options.maxConnections ?? 1024;
    this.maxPerAddress = options.maxConnectionsPerAddress ?? 32;
    this.evictionGraceMs = options.evictionGraceMs ?? 32_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.limits = options.limits;
    const idleMs = options.idleTimeoutMs ?? 120_000;
    const messageMs = options.messageTimeoutMs ?? 20_000;
    this.inboundDeadlines = { idleMs, messageMs, firstMessageMs: options.firstMessageTimeoutMs ?? 20_000, keepAlive: undefined };
    const keepAlive = options.keepAliveIntervalMs === undefined ? undefined : { intervalMs: options.keepAliveIntervalMs, timeoutMs: options.keepAliveTimeoutMs ?? 10_000 };
    this.outboundDeadlines = { idleMs, messageMs, firstMessageMs: undefined, keepAlive };
    this.connectionEvents = {
      onFrame: events.onFrame,
      onError: (err) => events.onError(err),
      onClose: (conn) => {
        this.forget(conn);
        events.onClose?.(conn);
      },
    };
    this.reportError = events.onError;
  }

  get size(): number {
    return this.inbound.size + this.outbound.size;
  }

  get inboundCount(): number {
    return this.inbound.size;
  }

  get outboundCount(): number {
    return this.outbound.size;
  }

  /** Bytes of unfinished messages held across all connections. */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.inbound) n += c.buffered;
    for (const c of this.outbound) n += c.buffered;
    return n;
  }

  get(key: string): TcpConnection | undefined {
    return this.byKey.get(key);
  }

  /**
   * Admit an accepted socket within the inbound budgets, or destroy it and report
   * `CONNECTION_LIMIT`. Limits are applied to the bare socket, before a TLS handshake
   * costs anything: with `awaitUpgrade` the connection counts (and its first-message
   * deadline runs) from now, and carries messages once given its secure socket.
   */
  accept(socket: Socket, awaitUpgrade = false): TcpConnection | undefined {
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    if (this.closed) {
      socket.destroy();
      return undefined;
    }
    if ((this.perAddress.get(remote.address) ?? 0) >= this.maxPerAddress) {
      this.refuse(socket, remote, `${this.maxPerAddress} connections from ${remote.address} already`);
      return undefined;
    }
    if (this.inbound.size >= this.maxInbound) {
      const victim = this.oldestIdleInbound();
      if (!victim) {
        this.refuse(socket, remote, `${this.maxInbound} inbound connections, none idle`);
        return undefined;
      }
      victim.close(new TransportError('CONNECTION_LIMIT', `closed idle connection from ${victim.key} to admit ${addressKey(remote)}`, victim.remote));
    }
    const conn = new TcpConnection(socket, remote, true, awaitUpgrade ? 'upgrade' : Promise.resolve(), this.clock, this.inboundDeadlines, this.limits, this.connectionEvents);
    this.inbound.add(conn);
    this.perAddress.set(remote.address, (this.perAddress.get(remote.address) ?? 0) + 1);
    this.byKey.set(conn.key, conn);
    return conn;
  }

  /**
   * Register a connection this side opens, under `key`, within the outbound budget
   * (throws `CONNECTION_LIMIT` before `open` is called when it is spent). `ready`
   * resolves when the connection can carry messages.
   */
  connect(key: string, remote: TransportAddress, open: () => { socket: Socket; ready: Promise<void> }): TcpConnection {
    if (this.closed) throw new TransportError('CLOSED', 'transport is closed', remote);
    if (this.outbound.size >= this.maxOutbound) throw new TransportError('CONNECTION_LIMIT', `${this.maxOutbound} outbound connections already; not connecting to ${addressKey(remote)}`, remote);
    const { socket, ready } = open();
    ready.catch(() => undefined);
    const conn = new TcpConnection(socket, remote, false, ready, this.clock, this.outboundDeadlines, this.limits, this.connectionEvents, key);
    this.outbound.add(conn);
    this.byKey.set(conn.key, conn);
    return conn;
  }

  /** Close every connection; later accepts are refused and connects throw `CLOSED`. */
  close(): void {
    this.closed = true;
    for (const c of [...this.inbound, ...this.outbound]) c.close();
    this.byKey.clear();
  }

  private refuse(socket: Socket, remote: TransportAddress, why: string): void {
    socket.destroy();
    this.reportError(new TransportError('CONNECTION_LIMIT', `refused connection from ${addressKey(remote)}: ${why}`, remote));
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
    if (this.byKey.get(conn.key) === conn) this.byKey.delete(conn.key);
    if (!conn.inbound) {
      this.outbound.delete(conn);
      return;
    }
    if (!this.inbound.delete(conn)) return;
    const n = (this.perAddress.get(conn.remote.address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.remote.address);
    else this.perAddress.set(conn.remote.address, n);
  }
}
