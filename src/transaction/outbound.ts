import { SipError, type SipRequest, type SipResponse } from '../parser/index.js';
import { ResolverError, type SipTarget, type TargetList } from '../resolver/index.js';
import { isSynthesized, synthesizeResponse, transportErrorOf, type ClientTransaction, type ClientTransactionUser } from './client.js';
import type { InviteClientTransaction } from './invite-client.js';
import { targetOf, type Target } from './routing.js';

const causes = new WeakMap<SipResponse, SipError>();

/**
 * Why a final response was made up or passed on after RFC 3263 fail-over gave up: the
 * `ResolverError` when no target could be located (`DNS_NOT_FOUND`, `DNS_TIMEOUT`,
 * `DNS_FAILED`, `NO_TRANSPORT`), `TARGETS_EXHAUSTED` when every located target failed (the
 * response is the last one's; when the last could not be reached at all, its `cause` is that
 * attempt's `TransportError`: `TLS_IDENTITY`, `TLS_UNTRUSTED`, `CONNECT_FAILED`, …), `NO_TRANSPORT` for a target this side cannot send to
 * (a `sips:` request over anything but TLS), `CLOSED` when the layer closed meanwhile.
 * For the 503 a client transaction makes up when its request could not be sent to its one
 * destination (`sendRequest`, no fail-over), that `TransportError`.
 * Undefined for a response that simply came back.
 */
export function failureCause(response: SipResponse): SipError | undefined {
  return causes.get(response) ?? transportErrorOf(response);
}

/** What an outbound request needs of its transaction layer. */
export interface OutboundHost {
  /** @internal */
  sendRequest(request: SipRequest, target: Target, user: ClientTransactionUser): ClientTransaction;
  /** @internal */
  readonly closed: boolean;
}

/** Called before each attempt with the request about to go and its target (the UA rewrites Contact). */
export type PrepareAttempt = (request: SipRequest, target: Target) => void;

/** RFC 3263 §4.3: a timeout, a transport failure (both synthesized) or a 503 from the target. */
function failsOver(res: SipResponse): boolean {
  return res.status === 503 || (res.status === 408 && isSynthesized(res));
}

/**
 * What an outbound request reports to: every response of the attempt that counts, and one
 * final. `tx` is that attempt's transaction (undefined when no attempt could be sent).
 */
export interface OutboundUser {
  onResponse(response: SipResponse, tx: ClientTransaction | undefined): void;
  /** The last transaction ended (after the final, or without one when the layer closed). */
  onTerminated?(): void;
}

/** The final response of a failed attempt, held while the next target is looked for. */
interface Held {
  response: SipResponse;
  tx: ClientTransaction | undefined;
  terminated: boolean;
}

/**
 * One request sent with RFC 3263 §4.3 fail-over: to the first target of its `TargetList`,
 * and on a timeout (Timer B/F), a transport error or a 503, as a copy with a new Via branch
 * (a new client transaction) to the next one, until a target answers otherwise or the list
 * is exhausted. An INVITE commits to a target at its first provisional response other than
 * 100 Trying. The user
 * sees one transaction's worth of callbacks: the responses of the attempt that counts, and
 * one final — the last attempt's, with `failureCause` set, when all failed.
 */
export class OutboundRequest {
  /** The client transaction of the attempt in progress (or the last one). */
  transaction: ClientTransaction | undefined;
  /** The target of the attempt in progress (or the last one). */
  target: Target | undefined;
  /** Attempts made so far (targets tried). */
  attempts = 0;
  private committed = false;
  private cancelled: string | undefined | null = null;
  private held: Held | undefined;
  private done = false;
  private readonly relay: ClientTransactionUser;

  /** @internal Use `TransactionLayer.send`. */
  constructor(
    private readonly host: OutboundHost,
    private readonly request: SipRequest,
    private readonly list: TargetList,
    private readonly user: OutboundUser,
    private readonly prepare: PrepareAttempt | undefined,
  ) {
    this.relay = {
      onResponse: (res, tx) => this.onResponse(res, tx),
      onTerminated: (tx) => {
        if (this.held !== undefined && this.held.tx === tx) this.held.terminated = true;
        else if (tx === this.transaction) this.user.onTerminated?.();
      },
    };
  }

  /** @internal */
  start(): void {
    void this.advance();
  }

  /**
   * CANCEL the INVITE (§9.1): sent by its transaction once a provisional has come. Between
   * two attempts nothing is on the wire: no further attempt is made, and the user gets a
   * 487 (made up here) — or the failed attempt's final when there was one.
   */
  cancel(reason?: string): void {
    if (this.cancelled !== null) return;
    this.cancelled = reason;
    const tx = this.transaction;
    if (tx !== undefined && this.held === undefined && tx.kind === 'invite-client') (tx as InviteClientTransaction).cancel(reason);
  }

  private onResponse(res: SipResponse, tx: ClientTransaction): void {
    if (tx !== this.transaction) return;
    if (res.status < 200) {
      // A provisional from the far end commits an INVITE to this target: it may have created an
      // early dialog (§12.1), and another target would make a second call. 100 Trying is
      // hop-by-hop (§21.1.1) and creates nothing: a gateway that says it and then 503 is failed over.
      if (res.status > 100 && this.request.method === 'INVITE') this.committed = true;
      this.user.onResponse(res, tx);
      return;
    }
    if (!this.done && !this.committed && this.cancelled === null && failsOver(res)) {
      this.held = { response: res, tx, terminated: false };
      void this.advance();
      return;
    }
    this.done = true;
    this.user.onResponse(res, tx);
  }

  private async advance(): Promise<void> {
    let next: SipTarget | undefined;
    try {
      next = await this.list.next();
    } catch (err) {
      const cause = err instanceof SipError ? err : new ResolverError('DNS_FAILED', 'server location failed', undefined, undefined, err);
      this.giveUp(503, `Service Unavailable (${cause instanceof ResolverError && cause.hostname ? cause.hostname + ': ' : ''}${cause.code})`, cause);
      return;
    }
    if (next === undefined) {
      this.exhausted();
      return;
    }
    this.attempt(targetOf(next));
  }

  private attempt(target: Target): void {
    if (this.host.closed) {
      this.giveUp(503, undefined, new SipError('CLOSED', `${this.request.method} not sent: the transaction layer closed`));
      return;
    }
    if (this.cancelled !== null) {
      if (this.held !== undefined) this.exhausted();
      else this.giveUp(487, undefined, undefined);
      return;
    }
    let req = this.request;
    if (this.attempts > 0) {
      // §4.3: identical to the previous request but for a new branch: a new client transaction.
      req = this.request.clone();
      req.removeFirst('Via');
    }
    this.attempts++;
    this.target = target;
    this.prepare?.(req, target);
    try {
      const tx = this.host.sendRequest(req, target, this.relay);
      // The held attempt is over: its late callbacks no longer reach the user.
      this.held = undefined;
      this.transaction = tx;
    } catch (err) {
      // This target cannot be used (no transport for it, a sips: request over a non-TLS one):
      // a transport failure in all but name — the next target may do.
      if (!(err instanceof SipError)) throw err;
      this.held = { response: this.failure(503, `Service Unavailable (${err.code})`, err), tx: undefined, terminated: false };
      void this.advance();
    }
  }

  /** No target left: the last attempt's final goes up, saying that every target failed. */
  private exhausted(): void {
    const h = this.held;
    this.held = undefined;
    if (h === undefined) {
      this.giveUp(503, undefined, new SipError('TARGETS_EXHAUSTED', `no target left for ${this.request.method}`));
      return;
    }
    this.done = true;
    if (!causes.has(h.response)) {
      // Why the last target failed, when it was a transport error (a certificate refused, a
      // connection refused): the operator's answer, which the made-up 503 alone does not give.
      const last = transportErrorOf(h.response);
      const message = `${this.request.method}: all ${this.attempts} target(s) failed; the last gave ${h.response.status}${last ? ` (${last.code})` : ''}`;
      causes.set(h.response, new SipError('TARGETS_EXHAUSTED', message, last ? { cause: last } : undefined));
    }
    this.user.onResponse(h.response, h.tx);
    if (h.terminated) this.user.onTerminated?.();
  }

  private giveUp(status: number, reason: string | undefined, cause: SipError | undefined): void {
    this.done = true;
    this.held = undefined;
    this.user.onResponse(this.failure(status, reason, cause), undefined);
  }

  private failure(status: number, reason: string | undefined, cause: SipError | undefined): SipResponse {
    const res = synthesizeResponse(this.request, status, reason);
    if (cause !== undefined) causes.set(res, cause);
    return res;
  }
}
