import type { Socket } from 'node:net';
import { StreamFramer, type ParseLimits } from '../parser/index.js';
import type { Clock, Timer } from './clock.js';
import { TransportError, addressKey, type TransportAddress } from './types.js';

/** How long a connection may take over what (all in ms). */
export interface ConnectionDeadlines {
  /** Nothing received or sent for this long: close quietly. */
  idleMs: number;
  /** A message not whole this long after its first byte: close (slow senders, "slowloris"). */
  messageMs: number;
  /** No whole message this long after an inbound connection opened: close. Undefined for outbound. */
  firstMessageMs: number | undefined;
  /** RFC 5626 §4.4.1 pings on a connection this side opened: every `intervalMs`, answered within `timeoutMs`. */
  keepAlive: { intervalMs: number; timeoutMs: number } | undefined;
}

export interface ConnectionEvents {
  onFrame(bytes: Buffer, conn: TcpConnection): void;
  onError(error: TransportError, conn: TcpConnection): void;
  /** Called once, synchronously from close() or when the socket closes on its own. */
  onClose(conn: TcpConnection): void;
}

/**
 * One SIP-over-TCP connection: its framer, and the clocks that bound how long it
 * may hold the transport's memory without delivering messages. Every byte resets
 * the idle clock (RFC 5626 keep-alives exist to do so), so a sender dripping one
 * byte at a time is bounded by the message deadline instead; RFC 3261 §18.3 and
 * RFC 5626 set no number for either.
 */
export class TcpConnection {
  readonly key: string;
  /** When the last byte was received or a message sent: the idle deadline counts from here. */
  private lastActivity: number;
  /** When the last whole message was received or sent (the opening time until then): eviction order. */
  lastUsed: number;
  /** Whole messages received or sent. */
  messages = 0;
  private readonly framer: StreamFramer;
  private idleTimer: Timer | undefined;
  private messageTimer: Timer | undefined;
  private firstMessageTimer: Timer | undefined;
  private pingTimer: Timer | undefined;
  /** Set while a keep-alive ping waits for its pong (any received byte counts). */
  private pongTimer: Timer | undefined;
  private closed = false;
  /** The socket messages are read from and written to: replaced once by upgrade(). */
  private socket: Socket;
  /** Resolves once the socket can carry messages (at once for plain inbound connections). */
  private readonly ready: Promise<void>;
  /** Settles `ready` of a connection waiting for upgrade(). */
  private upgraded: { resolve(): void; reject(err: TransportError): void } | undefined;

  constructor(
    socket: Socket,
    readonly remote: TransportAddress,
    readonly inbound: boolean,
    /**
     * Resolves once the socket is connected, or `'upgrade'`: the socket is a bare one
     * whose messages will flow over the socket later given to upgrade() (a TLS server
     * handshake); until then it is not read, and sends wait.
     */
    ready: Promise<void> | 'upgrade',
    private readonly clock: Clock,
    private readonly deadlines: ConnectionDeadlines,
    limits: Partial<ParseLimits> | undefined,
    private readonly events: ConnectionEvents,
    /** What the transport finds the connection under (default: the remote address:port). */
    key?: string,
  ) {
    this.key = key ?? addressKey(remote);
    this.socket = socket;
    if (ready === 'upgrade') {
      this.ready = new Promise<void>((resolve, reject) => (this.upgraded = { resolve, reject }));
      this.ready.catch(() => undefined);
    } else {
      this.ready = ready;
    }
    this.lastActivity = this.lastUsed = clock.now();
    this.framer = new StreamFramer(
      {
        onFrame: (bytes) => {
          this.messageTimer?.cancel();
          this.messageTimer = undefined;
          this.firstMessageTimer?.cancel();
          this.firstMessageTimer = undefined;
          this.messages++;
          this.lastUsed = this.clock.now();
          this.events.onFrame(bytes, this);
        },
        onError: (err, fatal) => {
          this.events.onError(new TransportError('FRAMING', `${this.key}: ${err.message}`, remote, err), this);
          // RFC 4475 §3.1.2.3: a stream that cannot be framed cannot be resynchronised.
          if (fatal) this.close();
        },
        onPing: () => {
          if (!this.socket.destroyed) this.socket.write('\r\n');
        },
      },
      limits,
    );
    socket.setNoDelay(true);
    this.armIdle(deadlines.idleMs);
    if (deadlines.firstMessageMs !== undefined) {
      const ms = deadlines.firstMessageMs;
      this.firstMessageTimer = clock.setTimer(ms, () => this.expire(`no whole message within ${ms} ms of connecting`));
    }
    if (deadlines.keepAlive) this.armPing(deadlines.keepAlive);
    if (ready !== 'upgrade') socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  /** Messages flow over `secure` from now on (it wraps the socket given at construction). */
  upgrade(secure: Socket): void {
    if (this.closed || !this.upgraded) {
      secure.destroy();
      return;
    }
    this.socket = secure;
    secure.on('data', (chunk: Buffer) => this.receive(chunk));
    secure.on('error', () => this.close());
    secure.on('close', () => this.close());
    this.upgraded.resolve();
    this.upgraded = undefined;
  }

  /** Waiting for upgrade(): the handshake is not done. */
  get awaitingUpgrade(): boolean {
    return this.upgraded !== undefined;
  }

  /** Part of a message is buffered: the connection is busy, not idle. */
  get messageInProgress(): boolean {
    return this.framer.messageInProgress;
  }

  /** Bytes buffered and not yet framed. */
  get buffered(): number {
    return this.framer.buffered;
  }

  async send(bytes: Uint8Array): Promise<void> {
    await this.ready;
    if (this.closed || this.socket.destroyed) throw new TransportError('SEND_FAILED', `connection to ${this.key} is closed`, this.remote);
    this.lastActivity = this.lastUsed = this.clock.now();
    this.messages++;
    await new Promise<void>((resolve, reject) => {
      this.socket.write(bytes, (err) => {
        if (err) reject(new TransportError('SEND_FAILED', `send to ${this.key} failed: ${err.message}`, this.remote, err));
        else resolve();
      });
    });
  }

  /** Close the connection, reporting `reason` first if given. Idempotent. */
  close(reason?: TransportError): void {
    if (this.closed) return;
    this.closed = true;
    this.idleTimer?.cancel();
    this.messageTimer?.cancel();
    this.firstMessageTimer?.cancel();
    this.pingTimer?.cancel();
    this.pongTimer?.cancel();
    this.upgraded?.reject(new TransportError('SEND_FAILED', `connection to ${this.key} closed before its handshake was done`, this.remote));
    this.upgraded = undefined;
    if (reason) this.events.onError(reason, this);
    this.socket.destroy();
    this.events.onClose(this);
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = this.clock.now();
    if (this.pongTimer) {
      this.pongTimer.cancel();
      this.pongTimer = undefined;
    }
    this.framer.push(chunk);
    if (this.closed) return;
    // Started at the chunk holding the message's first byte; cancelled when it is framed.
    if (this.messageTimer === undefined && this.framer.messageInProgress) {
      const ms = this.deadlines.messageMs;
      this.messageTimer = this.clock.setTimer(ms, () => this.expire(`message not complete ${ms} ms after its first byte`));
    }
  }

  private expire(why: string): void {
    this.close(new TransportError('MESSAGE_TIMEOUT', `${this.key}: ${why}`, this.remote));
  }

  /**
   * RFC 5626 §4.4.1: a ping (CRLF CRLF) every interval; the flow has failed when no pong
   * (CRLF) comes back within the timeout. Any byte received is as good as the pong: the
   * far end is alive, and a pong can arrive ahead of a message in one chunk.
   */
  private armPing(keepAlive: { intervalMs: number; timeoutMs: number }): void {
    this.pingTimer = this.clock.setTimer(keepAlive.intervalMs, () => {
      if (this.closed || this.socket.destroyed) return;
      this.socket.write('\r\n\r\n');
      if (!this.pongTimer) {
        const ms = keepAlive.timeoutMs;
        this.pongTimer = this.clock.setTimer(ms, () => this.close(new TransportError('KEEPALIVE_TIMEOUT', `${this.key}: no answer to a keep-alive ping within ${ms} ms`, this.remote)));
      }
      this.armPing(keepAlive);
    });
  }

  /** One timer per connection, re-armed when it fires early, so a busy connection costs no timer churn. */
  private armIdle(ms: number): void {
    this.idleTimer = this.clock.setTimer(ms, () => {
      const quiet = this.clock.now() - this.lastActivity;
      if (quiet >= this.deadlines.idleMs) this.close();
      else this.armIdle(this.deadlines.idleMs - quiet);
    });
  }
}
