import { createResponse, type SipRequest, type SipResponse } from '../parser/index.js';
import type { Transport, TransportError } from '../transport/index.js';
import { Transaction, type Destination, type TransactionHost } from './base.js';

/** What a client transaction reports to its user (the dialog layer, or an application). */
export interface ClientTransactionUser {
  /** Every response for the user: provisionals, the final, 2xx retransmissions (INVITE), and a synthesized 408/503. */
  onResponse(response: SipResponse, tx: ClientTransaction): void;
  /** Timer B or F fired; a synthesized 408 went to onResponse just before (RFC 3261 §8.1.3.1). */
  onTimeout?(tx: ClientTransaction): void;
  /** The request could not be sent; a synthesized 503 went to onResponse just before. */
  onTransportError?(error: TransportError, tx: ClientTransaction): void;
  onTerminated?(tx: ClientTransaction): void;
}

/** Where a request goes instead after a failed size-driven switch to TCP (RFC 3261 §18.1.1). */
export interface TransportFallback {
  transport: Transport;
  bytes: Uint8Array;
}

/** Actions both client tables name; the machines add their own. */
export type ClientAction = 'sendRequest' | 'passToTU' | 'informTUTimeout' | 'informTUTransportError' | 'switchTransport';

const synthesized = new WeakSet<SipResponse>();
/** ClientTransaction.retryOver, for the few transactions the layer moved to TCP for their size. */
const fallbacks = new WeakMap<ClientTransaction, (err: TransportError) => TransportFallback | undefined>();
const EMPTY = new Uint8Array(0);

/** True for a response made up locally (a client transaction's 408/503, a failed server location's 503), not received. */
export function isSynthesized(response: SipResponse): boolean {
  return synthesized.has(response);
}

const transportErrors = new WeakMap<SipResponse, TransportError>();

/** @internal The transport error a synthesized 503 stands for (RFC 3261 §8.1.3.1), kept for fail-over's `failureCause`. */
export function transportErrorOf(response: SipResponse): TransportError | undefined {
  return transportErrors.get(response);
}

/** @internal A response to `request` made up locally: `isSynthesized` says so. */
export function synthesizeResponse(request: SipRequest, status: number, reason?: string): SipResponse {
  const res = createResponse(request, status, reason ? { reason } : {});
  synthesized.add(res);
  return res;
}

/** Behaviour shared by the INVITE and non-INVITE client transactions. */
export abstract class ClientTransaction extends Transaction {
  abstract override readonly kind: 'invite-client' | 'non-invite-client';
  protected user: ClientTransactionUser | undefined;
  protected bytes: Uint8Array;
  /** @internal The current retransmission interval (Timer A or E), in ms. */
  protected interval = 0;
  private last: SipResponse | undefined;

  /**
   * @internal Set by the layer when it moved the request to TCP only because of its size
   * (RFC 3261 §18.1.1). A transport error before any response is offered to it first: when
   * it returns a transport and bytes, the same transaction (same branch) starts again over
   * them instead of failing. Used once. Kept aside (fallbacks), not a field every transaction
   * carries through its wait (issue #16).
   */
  get retryOver(): ((err: TransportError) => TransportFallback | undefined) | undefined {
    return fallbacks.get(this);
  }
  /** @internal */
  set retryOver(fn: ((err: TransportError) => TransportFallback | undefined) | undefined) {
    if (fn !== undefined) fallbacks.set(this, fn);
    else fallbacks.delete(this);
  }

  constructor(
    host: TransactionHost,
    key: string,
    request: SipRequest,
    dest: Destination,
    user: ClientTransactionUser,
    bytes: Uint8Array,
  ) {
    super(host, key, request, dest);
    this.user = user;
    this.bytes = bytes;
  }

  /**
   * @internal The user hears of the end (unless `onTerminated` was set, which replaces it): a
   * method, not a closure made per transaction that would wait out Timer K or M with it.
   */
  protected override ended(): void {
    if (this.onTerminated !== undefined) this.onTerminated(this);
    else this.user?.onTerminated?.(this);
  }

  /**
   * @internal Hand what is left of this transaction (2xx retransmissions in Accepted, its end)
   * to another user: a call that ended leaves a small one, not itself, for Timer M's 64·T1.
   */
  rebind(user: ClientTransactionUser): void {
    this.user = user;
  }

  /**
   * The last response received (or synthesized) while the transaction is live. Undefined once a
   * final came and the transaction waits out Timer D, K or M (as `request` is): the user had it
   * in `onResponse`, and a held call's INVITE transaction keeps no parsed message for 64·T1.
   */
  get lastResponse(): SipResponse | undefined {
    return this.last;
  }

  /** @internal Send the request and arm the timers: the figure's entry arrow. */
  start(): void {
    this.enter();
  }

  /** @internal */
  /** A response matched this transaction. */
  abstract receive(response: SipResponse): void;

  /** @internal */
  protected override act(action: ClientAction, input: unknown): void {
    switch (action) {
      case 'sendRequest':
        this.send(this.bytes);
        return;
      case 'passToTU':
        this.deliver(input as SipResponse);
        return;
      case 'informTUTimeout':
        this.deliver(this.synthesize(408));
        this.user?.onTimeout?.(this);
        return;
      case 'informTUTransportError':
        // After a final (an ACK resend failing in Completed) the user already has its answer: no 503 on top.
        if (this.request !== undefined) {
          const res = this.synthesize(503, 'Service Unavailable (transport error)');
          transportErrors.set(res, input as TransportError);
          this.deliver(res);
        }
        this.user?.onTransportError?.(input as TransportError, this);
        return;
      case 'switchTransport': {
        // A destination of its own from now on; `reliable` follows it, so the retransmission
        // timer (A or E) that UDP needs and TCP did not is armed next.
        const to = input as TransportFallback;
        this.redirect({ transport: to.transport, address: this.dest.address });
        this.bytes = to.bytes;
        return;
      }
      default:
        action satisfies never;
    }
  }

  /**
   * @internal A final response came (Completed, Accepted: Timers D, K, M): the request is never
   * sent again, so its bytes go. A held call keeps its INVITE transaction in Accepted for 64·T1.
   */
  protected waiting(): void {
    this.bytes = EMPTY;
    this.last = undefined;
    this.releaseRequest();
  }

  protected override dropBuffers(): void {
    this.bytes = EMPTY;
    this.last = undefined;
    this.retryOver = undefined;
  }

  private deliver(response: SipResponse): void {
    // A response came: the connection worked, so a later failure is no reason to change transport.
    this.retryOver = undefined;
    if (this.request !== undefined) this.last = response;
    this.user?.onResponse(response, this);
  }

  private synthesize(status: 408 | 503, reason?: string): SipResponse {
    return synthesizeResponse(this.request!, status, reason);
  }

  /** @internal A transport error before any response may mean "try UDP after all" (§18.1.1). */
  protected override transportError(err: TransportError): void {
    const retry = this.retryOver?.(err);
    this.retryOver = undefined;
    if (retry) this.fire('transport_fallback', retry);
    else this.fire('transport_error', err);
  }
}
