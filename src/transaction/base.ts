import type { SipRequest } from '../parser/index.js';
import type { Clock, Timer, Transport, TransportAddress, TransportError } from '../transport/index.js';
import type { TimerValues } from './timers.js';

/** Where a transaction sends: a transport and a remote address. */
export interface Destination {
  transport: Transport;
  address: TransportAddress;
}

/** What a transaction needs of the layer that owns it. */
export interface TransactionHost {
  readonly clock: Clock;
  readonly timers: TimerValues;
  /** Send bytes; failures come back through `onError`. */
  transmit(bytes: Uint8Array, dest: Destination, onError: (err: TransportError) => void): void;
  /** The transaction is over: drop it from the matching tables. */
  release(tx: Transaction): void;
}

/** Timers and lifecycle shared by the four state machines. */
export abstract class Transaction {
  abstract readonly kind: 'invite-client' | 'non-invite-client' | 'invite-server' | 'non-invite-server';
  abstract get state(): string;
  readonly key: string;
  readonly request: SipRequest;
  readonly dest: Destination;
  protected readonly host: TransactionHost;
  // Created with the first timer and dropped at the end: a call keeps its ended INVITE transactions.
  private live: Map<string, Timer> | undefined;
  private ended = false;
  /** @internal */
  /** Called once when the transaction terminates (set by its user). */
  onTerminated: ((tx: Transaction) => void) | undefined;

  constructor(host: TransactionHost, key: string, request: SipRequest, dest: Destination) {
    this.host = host;
    this.key = key;
    this.request = request;
    this.dest = dest;
  }

  get terminated(): boolean {
    return this.ended;
  }

  get reliable(): boolean {
    return this.dest.transport.reliable;
  }

  /** Timers this transaction holds right now (for leak tests and metrics). */
  get timerCount(): number {
    return this.live?.size ?? 0;
  }

  protected startTimer(name: string, ms: number, fn: () => void): void {
    if (this.ended) return;
    const live = (this.live ??= new Map());
    live.get(name)?.cancel();
    const t = this.host.clock.setTimer(ms, () => {
      live.delete(name);
      if (!this.ended) fn();
    });
    live.set(name, t);
  }

  protected stopTimer(name: string): void {
    const t = this.live?.get(name);
    if (t) {
      t.cancel();
      this.live!.delete(name);
    }
  }

  protected send(bytes: Uint8Array): void {
    this.host.transmit(bytes, this.dest, (err) => this.transportError(err));
  }

  protected abstract transportError(err: TransportError): void;

  /** Let go of message bytes kept for retransmission: a call may hold its transaction for hours. */
  protected dropBuffers(): void {}

  /** Terminate now, whatever the state (shutdown). */
  abort(): void {
    this.terminate();
  }

  /** Enter Terminated: every timer cancelled, the table entry released, the user told. */
  protected terminate(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.live) for (const t of this.live.values()) t.cancel();
    this.live = undefined;
    this.dropBuffers();
    this.host.release(this);
    this.onTerminated?.(this);
  }
}
