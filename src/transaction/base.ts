import { SipError, type SipRequest } from '../parser/index.js';
import type { Clock, Timer, Transport, TransportAddress, TransportError } from '../transport/index.js';
import { IGNORE, TERMINATED, type AnyMachine } from './fsm.js';
import type { TimerValues } from './timers.js';
import { WaitQueue, type WaitQueues } from './wait-queue.js';

/**
 * The field each live timer is kept in: 0 for a retransmission timer (A, E, G) or the 100 Trying
 * one, 1 for a timeout (B, F, H). No machine arms two of one field at once (A + B, E + F, G + H;
 * Trying is stopped before G starts), so a transaction needs no record of which event each holds.
 * The wait timers (D, I, J, K, L, M) are none of these: they wait in the layer's WaitQueues.
 */
function liveSlot(event: string): 0 | 1 {
  switch (event) {
    case 'timer_A':
    case 'timer_E':
    case 'timer_G':
    case 'timer_trying':
      return 0;
    case 'timer_B':
    case 'timer_F':
    case 'timer_H':
      return 1;
    default:
      throw new SipError('TIMER_INVARIANT', `${event} is not a live transaction timer (A, B, E, F, G, H, 100 Trying): a wait timer goes through startWait`);
  }
}

/** One callback per timer event ('timer_B', …), shared by every transaction: a timer needs no closure of its own. */
const expiries = new Map<string, (tx: Transaction) => void>();
function expiryOf(event: string): (tx: Transaction) => void {
  let fn = expiries.get(event);
  if (fn === undefined) expiries.set(event, (fn = (tx) => tx.expire(event)));
  return fn;
}

/** Where a transaction sends: a transport and a remote address. */
export interface Destination {
  transport: Transport;
  address: TransportAddress;
}

/** Where a received message came from. */
export interface MessageSource {
  transport: Transport;
  address: TransportAddress;
}

/**
 * One step of a transaction's state machine, as `TransactionLayerOptions.onTransition` sees it.
 * `from`, `event` and `to` are names from the machine's table (`InviteClientState`,
 * `InviteClientEvent`, …); `abort` is the layer shutting a transaction down, whatever its state.
 */
export interface TransactionTransition {
  readonly transaction: Transaction;
  readonly from: string;
  readonly event: string;
  readonly to: string;
  /** The state absorbs this event (its table cell is an ignore): `to` is `from` and nothing ran. */
  readonly ignored: boolean;
  /** The layer's clock, in ms. */
  readonly at: number;
}

/** What a transaction needs of the layer that owns it. */
export interface TransactionHost {
  readonly clock: Clock;
  readonly timers: TimerValues;
  /**
   * Send bytes; failures come back through `onError`, which calls `sendFailed` first (the layer
   * counts it): the callback is the caller's own, passed on as it is, not wrapped per send.
   */
  transmit(bytes: Uint8Array, dest: Destination, onError: (err: TransportError) => void): void;
  /** A send failed (counted in the layer's stats). */
  sendFailed(): void;
  /** The transaction is over: drop it from the matching tables. */
  release(tx: Transaction): void;
  /** An ACK the transaction does not absorb (the ACK for a 2xx, RFC 6026 §7.1): the TU's. */
  deliverAck(ack: SipRequest, source: MessageSource): void;
  /** Sees every step of every machine; undefined when nobody traces. */
  readonly onTransition: ((t: TransactionTransition) => void) | undefined;
  /** Where transactions wait out Timers D, I, J, K, L and M: a FIFO per wait under one clock timer each. */
  readonly waits: WaitQueues;
}

/**
 * Timers, lifecycle and the table-driven engine shared by the four state machines. A
 * subclass brings its table (fsm.ts) and the actions the table names (`act`); everything
 * that happens to a transaction (a response, a timer, a TU call, a transport error) is an
 * event looked up in the table row of the current state.
 */
export abstract class Transaction {
  abstract readonly kind: 'invite-client' | 'non-invite-client' | 'invite-server' | 'non-invite-server';
  readonly key: string;
  private req: SipRequest | undefined;
  readonly dest: Destination;
  protected readonly host: TransactionHost;
  /** @internal The current state: a row of the machine's table (each kind starts it at the table's initial state). */
  protected abstract st: string;
  /**
   * The armed timers: a retransmission timer (A, E, G) or 100 Trying in `t0`, a timeout (B, F, H)
   * in `t1` (see liveSlot). In a wait state (Accepted, Completed, Confirmed: Timers D, I, J, K,
   * L, M) `t1` is the layer's WaitQueue the transaction waits in, its handle there, and no clock
   * timer of its own: a held call keeps its INVITE transactions in Accepted for 64·T1, an ended
   * call leaves four transactions waiting (issue #16).
   */
  private t0: Timer | undefined;
  private t1: Timer | WaitQueue | undefined;
  /** @internal */
  /** Called once when the transaction terminates (set by its user). */
  onTerminated: ((tx: Transaction) => void) | undefined;

  constructor(host: TransactionHost, key: string, request: SipRequest, dest: Destination) {
    this.host = host;
    this.key = key;
    this.req = request;
    this.dest = dest;
  }

  /** @internal The table this transaction runs: a module-level constant of its kind. */
  protected abstract get machine(): AnyMachine;

  /**
   * The request this transaction carries, while it may still need it. Undefined once the
   * transaction waits out its last timer after a final response (server: Completed, Confirmed,
   * Accepted — Timers G/H, I, J, L; client: Completed, Accepted — Timers D, K, M) and once it
   * ended: it then matches by its key and resends only bytes, so a held call's or an ended
   * call's transactions keep no parsed message (issue #16). Read what you need while it is live.
   */
  get request(): SipRequest | undefined {
    return this.req;
  }

  /** @internal A final response was sent or received: from now on the transaction needs only its key and bytes. */
  protected releaseRequest(): void {
    this.req = undefined;
  }

  /** The current state: a row of the machine's table. */
  get state(): string {
    return this.st;
  }

  get terminated(): boolean {
    return this.st === TERMINATED;
  }

  get reliable(): boolean {
    return this.dest.transport.reliable;
  }

  /** Timers this transaction holds right now, a wait in the layer's queue counted as one (for leak tests and metrics). */
  get timerCount(): number {
    return (this.t0 === undefined ? 0 : 1) + (this.t1 === undefined ? 0 : 1);
  }

  /**
   * @internal
   * Feed an event to the machine. Returns false when the current state absorbs it.
   * The new state is entered before the actions run, so a TU called from an action sees it
   * (and may feed the next event); Terminated is entered after them, so the TU hears why
   * (a 408, a 503) while the transaction still exists.
   */
  protected fire(event: string, input?: unknown): boolean {
    const from = this.st;
    const cell = this.machine.rows[from]![event]!;
    const hook = this.host.onTransition;
    if (cell === IGNORE) {
      if (hook !== undefined) hook({ transaction: this, from, event, to: from, ignored: true, at: this.host.clock.now() });
      return false;
    }
    const to = cell[0];
    if (hook !== undefined) hook({ transaction: this, from, event, to, ignored: false, at: this.host.clock.now() });
    if (to !== TERMINATED) this.st = to;
    for (let i = 1; i < cell.length; i++) this.act(cell[i]!, input);
    if (to === TERMINATED) this.terminate();
    return true;
  }

  /** @internal Run the table's initial actions (the figure's entry arrow). */
  protected enter(input?: unknown): void {
    const entry = this.machine.entry;
    for (let i = 0; i < entry.length; i++) this.act(entry[i]!, input);
  }

  /** @internal Perform one action named in the table. */
  protected abstract act(action: string, input: unknown): void;

  /** @internal Arm the live timer whose expiry is `event` (replacing one already armed). */
  protected startTimer(event: string, ms: number): void {
    if (this.st === TERMINATED) return;
    const slot = liveSlot(event);
    const clock = this.host.clock;
    if (slot === 0) this.t0?.cancel();
    else if (this.t1 !== undefined) {
      if (this.t1 instanceof WaitQueue) throw new SipError('TIMER_INVARIANT', `${event} armed by a ${this.kind} transaction waiting in ${this.st}`);
      this.t1.cancel();
    }
    const t =
      clock.setTimerWith !== undefined
        ? clock.setTimerWith(ms, expiryOf(event), this)
        : clock.setTimer(ms, () => this.expire(event));
    if (slot === 0) this.t0 = t;
    else this.t1 = t;
  }

  /** @internal */
  protected stopTimer(event: string): void {
    if (liveSlot(event) === 0) {
      this.t0?.cancel();
      this.t0 = undefined;
    } else if (this.t1 !== undefined && !(this.t1 instanceof WaitQueue)) {
      this.t1.cancel();
      this.t1 = undefined;
    }
  }

  /** @internal The live timer for `event` fired. */
  expire(event: string): void {
    if (liveSlot(event) === 0) this.t0 = undefined;
    else this.t1 = undefined;
    if (this.st !== TERMINATED) this.fire(event);
  }

  /**
   * @internal Wait `ms`, then fire `event`: a wait timer (D, I, J, K, L, M), armed once on entering
   * a state only that timer or an abort leaves. The transaction takes a slot in the layer's queue
   * for `event` and `ms` rather than a clock timer of its own (see WaitQueue); its live timers are
   * all stopped by then (an invariant of the four tables).
   */
  protected startWait(event: string, ms: number): void {
    if (this.st === TERMINATED) return;
    if (this.t0 !== undefined || this.t1 !== undefined) {
      throw new SipError('TIMER_INVARIANT', `${event} armed by a ${this.kind} transaction in ${this.st} that still holds a live timer`);
    }
    this.t1 = this.host.waits.enter(this, event, ms);
  }

  /** @internal Still in the wait `queue` holds it for (not ended early). */
  waitsOn(queue: WaitQueue): boolean {
    return this.t1 === queue;
  }

  /** @internal Its queue reached it: fire the wait timer's event. */
  expireWait(queue: WaitQueue): void {
    this.t1 = undefined;
    if (this.st !== TERMINATED) this.fire(queue.event);
  }

  /**
   * @internal Send from now on to `dest` (a fall-back transport or address). A destination is
   * shared with the layer's other transactions to the same peer: it is replaced, never changed.
   */
  protected redirect(dest: Destination): void {
    (this as { dest: Destination }).dest = dest;
  }

  /** @internal */
  protected send(bytes: Uint8Array): void {
    // A closure per send (a field to keep one in would cost every waiting transaction), the only one:
    // it counts the failure itself (TransactionHost.sendFailed) rather than the layer wrapping it.
    this.host.transmit(bytes, this.dest, (err) => {
      this.host.sendFailed();
      this.transportError(err);
    });
  }

  /** @internal */
  protected transportError(err: TransportError): void {
    this.fire('transport_error', err);
  }

  /** Let go of message bytes kept for retransmission: a call may hold its transaction for hours. */
  protected dropBuffers(): void {}

  /** Terminate now, whatever the state (shutdown). */
  abort(): void {
    const from = this.st;
    if (from === TERMINATED) return;
    const hook = this.host.onTransition;
    if (hook !== undefined) hook({ transaction: this, from, event: 'abort', to: TERMINATED, ignored: false, at: this.host.clock.now() });
    this.terminate();
  }

  /** @internal Enter Terminated: every timer cancelled, the table entry released, the user told. */
  protected terminate(): void {
    if (this.st === TERMINATED) return;
    this.st = TERMINATED;
    // A wait's handle is its queue: cancel() tells the queue this waiter left (see WaitQueue).
    this.t0?.cancel();
    this.t1?.cancel();
    this.t0 = this.t1 = undefined;
    this.req = undefined;
    this.dropBuffers();
    this.host.release(this);
    this.ended();
  }

  /** @internal Terminated: tell who asked (a client transaction tells its user, with no closure of its own). */
  protected ended(): void {
    this.onTerminated?.(this);
  }
}
