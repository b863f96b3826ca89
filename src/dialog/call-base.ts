import { createResponse, SipError, type SipRequest, type SipResponse } from '../parser/index.js';
import type { Timer } from '../transport/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../transaction/index.js';
import { Emitter } from '../util/events.js';
import { ownBytes } from '../util/own.js';
import type { CallState, HangupCause, OfferAnswer, ReasonInit, SendOptions } from './call-types.js';
import type { UserAgentCore } from './core.js';
import type { Dialog } from './dialog.js';
import { defaultUpdateAnswer, toBody, whenReady, type Body } from './offer-answer.js';
import { reasonHeaders, reasonOf, sentReason } from './reason.js';
import { Retransmitter } from './retransmitter.js';
import { isPureRefresh, SessionTimer, type SessionRefresh } from './session-timer.js';
import { allowsUpdate, type Negotiated, type SessionTimerConfig } from './session-timer-negotiation.js';

/** Policies given when a call is created, so nothing can arrive before they exist. */
export interface CallHandlers {
  /**
   * A re-INVITE or UPDATE from the peer. Return the response to send (async allowed).
   * Default: 200 with the last SDP we sent when the request carries an offer, 200 without body otherwise.
   */
  onUpdate?(request: SipRequest, call: Call): OfferAnswer | Promise<OfferAnswer>;
  /** A 2xx carrying an offer for an INVITE sent without one (late offer): return the answer for the ACK. */
  onLateOffer?(response: SipResponse, call: Call): Uint8Array | string | Promise<Uint8Array | string>;
  /**
   * The peer sent BYE. The 200 is held until the returned promise settles — a B2BUA
   * relays the BYE and answers once the other leg has (so the 200s come back in order).
   */
  onBye?(request: SipRequest, cause: HangupCause, call: Call): void | Promise<unknown>;
}

export interface CallEvents {
  /** Outgoing: any 1xx (after 100rel bookkeeping: retransmissions of a reliable 1xx are not repeated). */
  provisional(response: SipResponse): void;
  /** Outgoing: a 1xx carrying a body (early media SDP). */
  earlyMedia(response: SipResponse): void;
  /** Outgoing: the 2xx that established the call. */
  answer(response: SipResponse): void;
  /** Outgoing: a final non-2xx (or a locally synthesized 408/503). */
  failure(response: SipResponse, cause: HangupCause): void;
  /** Incoming: the ACK for our 2xx (its body is the answer of a late offer). */
  ack(ack: SipRequest): void;
  /** Incoming: the caller cancelled; 487 was sent. */
  cancel(cancel: SipRequest): void;
  /** A re-INVITE or UPDATE completed (either direction); body is the new remote SDP when there was one. */
  updated(request: SipRequest, response: SipResponse): void;
  /** An in-dialog request other than BYE, re-INVITE, UPDATE, PRACK, ACK (INFO, MESSAGE, NOTIFY, REFER, OPTIONS). A listener answers it with tx.respond (now or later); with no listener it gets 200. */
  request(request: SipRequest, tx: ServerTransaction): void;
  /** An answered call was hung up (BYE from either side). */
  hangup(cause: HangupCause): void;
  /** A session refresh (RFC 4028) succeeded, sent by either side: the interval and refresher now in force. */
  refreshed(refresh: SessionRefresh): void;
  /** Always the last event, whatever ended the call. */
  ended(cause: HangupCause): void;
}

let nextCallId = 1;

const ACK_TIMEOUT: ReasonInit = { protocol: 'SIP', cause: 408, text: 'ACK timeout' };

/** What an ended call keeps of its application's hooks: nothing, and one object shared by all for it. */
const NO_HANDLERS: CallHandlers = Object.freeze({});

/**
 * @internal
 * One object told of a call's events before its listeners, with no closure or listener list
 * per event: how a B2BUA follows each of its legs. Its methods are called with `this` = itself.
 */
export type CallObserver = Partial<CallEvents>;

function is2xx(status: number): boolean {
  return status >= 200 && status < 300;
}

/**
 * A call: one INVITE session with its dialog. What outgoing and incoming calls share:
 * in-dialog requests both ways, re-INVITE glare (§14.1), the 2xx retransmitted until its ACK,
 * BYE, and how a call ends.
 */
// A call is the DialogOwner of its dialogs and the RetransmissionOwner of what it retransmits (structurally:
// those members are internal, stripped from the published declarations, so no `implements` clause).
export abstract class Call extends Emitter<CallEvents> {
  readonly id = nextCallId++;
  abstract readonly direction: 'outgoing' | 'incoming';
  state: CallState = 'calling';
  /** The confirmed dialog (undefined before answer). */
  dialog: Dialog | undefined;
  cause: HangupCause | undefined;
  // Kept for the whole call, so held in buffers of their own: a view into the received datagram
  // (or Node's shared 8 KB slab) would keep all of it.
  private lSdp: Uint8Array | undefined = undefined;
  private rSdp: Uint8Array | undefined = undefined;
  /** @internal Told of every event before the listeners (see CallObserver); let go of when the call ends. */
  observer: CallObserver | undefined = undefined;
  protected readonly core: UserAgentCore;
  protected handlers: CallHandlers;
  private inviteInProgress = false;
  private glareTimer: Timer | undefined;
  /** @internal RFC 4028 session timer, once one was negotiated (none when the feature is off). */
  protected sessionTimer: SessionTimer | undefined;
  /** The one response this call retransmits itself (a 2xx until its ACK, a reliable 1xx until its PRACK). */
  private retransmitting: Retransmitter | undefined;
  /**
   * The final response to the BYE this side sent, once one was sent: a received one, or a
   * synthesized 408 (Timer F) or 503 (could not be sent) — tell them apart with `isSynthesized`.
   */
  byeResponse: Promise<SipResponse> | undefined;
  /** Made on first read of `whenEnded` (most calls are followed by events alone), settled by finish(). */
  private endedLatch: { promise: Promise<HangupCause>; resolve(cause: HangupCause): void } | undefined;

  constructor(core: UserAgentCore, handlers: CallHandlers = {}) {
    super();
    this.core = core;
    this.handlers = handlers;
  }

  get callId(): string {
    return this.dialog?.callId ?? '';
  }

  /** Last SDP we sent (in a buffer of its own: what is assigned is copied unless it already is one). */
  get localSdp(): Uint8Array | undefined {
    return this.lSdp;
  }

  set localSdp(sdp: Uint8Array | undefined) {
    this.lSdp = sdp && ownBytes(sdp);
  }

  /** Last SDP the peer sent (in a buffer of its own, as localSdp). */
  get remoteSdp(): Uint8Array | undefined {
    return this.rSdp;
  }

  set remoteSdp(sdp: Uint8Array | undefined) {
    this.rSdp = sdp && ownBytes(sdp);
  }

  /** The observer first (see CallObserver), then the listeners. */
  protected override emit<K extends keyof CallEvents>(event: K, ...args: Parameters<CallEvents[K]>): boolean {
    const o = this.observer;
    const f = o?.[event] as ((...a: Parameters<CallEvents[K]>) => void) | undefined;
    if (f !== undefined) {
      try {
        f.apply(o, args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
    return super.emit(event, ...args) || f !== undefined;
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /**
   * The cause the call ended with, once it has (`await call.whenEnded`): every call ends, so
   * it resolves exactly once and never rejects — whatever ended it (BYE either way, CANCEL,
   * a final non-2xx, ACK timeout, close()). The same cause as the `ended` event.
   */
  get whenEnded(): Promise<HangupCause> {
    if (this.endedLatch) return this.endedLatch.promise;
    if (this.cause) return Promise.resolve(this.cause);
    let resolve!: (cause: HangupCause) => void;
    const promise = new Promise<HangupCause>((r) => (resolve = r));
    this.endedLatch = { promise, resolve };
    return promise;
  }

  // ---- requests we send in the dialog -------------------------------------------------

  /**
   * Send a request inside the confirmed dialog and resolve with its final response. Rejects
   * with `SipError` `NO_DIALOG` without one, `CLOSED` when the user agent closes first.
   */
  request(method: string, options: SendOptions = {}): Promise<SipResponse> {
    const d = this.dialog;
    if (!d || d.state !== 'confirmed') return Promise.reject(new SipError('NO_DIALOG', `no confirmed dialog for ${method}`));
    return this.core.sendInDialog(d, d.createRequest(method, options));
  }

  /** re-INVITE with a new offer (§14.1). Retries after 491 with the random back-off of §14.1. */
  async reinvite(options: SendOptions & { retryOn491?: boolean } = {}): Promise<SipResponse> {
    const d = this.dialog;
    if (!d || d.state !== 'confirmed') throw new SipError('NO_DIALOG', 'no confirmed dialog for re-INVITE');
    if (this.inviteInProgress) throw new SipError('INVITE_PENDING', 'an INVITE transaction is already in progress');
    for (let attempt = 0; ; attempt++) {
      const req = d.createRequest('INVITE', options);
      this.inviteInProgress = true;
      let res: SipResponse;
      try {
        res = await this.core.sendInDialog(d, req);
      } finally {
        this.inviteInProgress = false;
      }
      if (is2xx(res.status)) {
        this.offerAnswered(d, res, options.body);
        // The 2xx is returned before a late-offer answer is ready: a B2BUA computes it from the other leg's ACK.
        void this.ack2xx(d, res, options.body !== undefined);
        this.emit('updated', req, res);
        return res;
      }
      if (res.status !== 491 || options.retryOn491 === false || attempt >= 3 || this.ended) return res;
      await this.glareBackoff(d);
      if (this.ended) return res;
    }
  }

  /** UPDATE (RFC 3311), in an early or confirmed dialog. */
  update(options: SendOptions = {}): Promise<SipResponse> {
    const d = this.dialog ?? this.earlyDialog();
    if (!d) return Promise.reject(new SipError('NO_DIALOG', 'no dialog for UPDATE'));
    return this.core.sendInDialog(d, d.createRequest('UPDATE', options)).then((res) => {
      if (is2xx(res.status)) this.offerAnswered(d, res, options.body);
      return res;
    });
  }

  /** A 2xx to our re-INVITE or UPDATE: a target refresh (§12.2), and the SDP each side now has. */
  private offerAnswered(d: Dialog, res: SipResponse, offer: Body | undefined): void {
    d.refreshTarget(res);
    if (offer !== undefined) this.localSdp = toBody(offer);
    if (res.body.length > 0) this.remoteSdp = res.body;
  }

  /** §14.1 after a 491: the Call-ID owner waits 2.1–4 s, the other side 0–2 s, in 10 ms steps. */
  private glareBackoff(d: Dialog): Promise<void> {
    const ms = d.role === 'uac' ? 2100 + 10 * Math.floor(Math.random() * 191) : 10 * Math.floor(Math.random() * 201);
    return new Promise<void>((resolve) => {
      this.glareTimer = this.core.clock.setTimer(ms, () => {
        this.glareTimer = undefined;
        resolve();
      });
    });
  }

  /**
   * @internal
   * ACK a 2xx to an INVITE we sent (§13.2.2.4), remembered as the dialog's last ACK so a
   * retransmitted 2xx gets it again. A 2xx carrying an offer to an INVITE that had none (late
   * offer, §13.2.1, §14.1) is answered in the ACK; that answer may take a while (`onLateOffer`),
   * so the ACK may go out later: the result then is a promise, settled once it has.
   */
  protected ack2xx(d: Dialog, res: SipResponse, invitedWithOffer: boolean, credentials?: Array<[string, string]>): SipRequest | Promise<SipRequest> {
    const cseq = res.cseq.seq;
    if (invitedWithOffer || res.body.length === 0) return this.sendAck(d, cseq, undefined, credentials);
    return whenReady(
      () => (this.handlers.onLateOffer ? this.handlers.onLateOffer(res, this) : this.localSdp),
      (answer) => this.sendAck(d, cseq, answer, credentials),
    );
  }

  private sendAck(d: Dialog, cseq: number, answer: Body | undefined, credentials: Array<[string, string]> | undefined): SipRequest {
    // `credentials`: the INVITE's, which the ACK for its 2xx carries (§13.2.2.4).
    const ack = d.createRequest('ACK', { cseq, body: answer, headers: credentials });
    if (answer !== undefined) this.localSdp = toBody(answer);
    d.lastAck = ack;
    this.core.sendAck(d, ack);
    return ack;
  }

  /** An early dialog to send UPDATE/PRACK in before answer (overridden by outgoing calls). */
  protected earlyDialog(): Dialog | undefined {
    return undefined;
  }

  // ---- session timer (RFC 4028) ----------------------------------------------------------

  /** @internal Start the session timer negotiated by the initial INVITE's 2xx. */
  protected startSessionTimer(config: SessionTimerConfig, negotiated: Negotiated, peer: SipRequest | SipResponse): void {
    this.sessionTimer = new SessionTimer(
      {
        clock: this.core.clock,
        sendRefresh: (method, headers) => (method === 'UPDATE' ? this.update({ headers }) : this.reinvite({ body: this.localSdp, headers })),
        endSession: (reason) => void this.bye(reason, 'system'),
        sessionRefreshed: (refresh) => this.emit('refreshed', refresh),
      },
      config,
      allowsUpdate(peer),
      negotiated,
    );
  }

  /** The session interval in force (seconds) and who refreshes, or undefined without a session timer. */
  get sessionInterval(): { seconds: number; refresher: 'local' | 'remote' } | undefined {
    const t = this.sessionTimer;
    return t && !this.ended ? { seconds: t.seconds, refresher: t.refresher } : undefined;
  }

  // ---- ending --------------------------------------------------------------------------

  /** End the call: BYE when answered (with an optional RFC 3326 Reason); see subclasses before answer. */
  abstract hangup(options?: { reason?: ReasonInit; status?: number }): Promise<void>;

  /**
   * @internal UserAgent.close(): end the call now as its state requires (BYE when answered;
   * CANCEL or a final response before), with `reason`. `ended` is emitted before this returns.
   */
  abstract shutdown(reason: ReasonInit): void;

  protected async bye(reason?: ReasonInit, by: 'local' | 'system' = 'local'): Promise<void> {
    const d = this.dialog;
    if (!d || this.ended) return;
    this.finish({ by, method: 'BYE', reason: sentReason(reason) }, true);
    // The call is over locally whatever happens to the BYE; a hang-up never rejects.
    const answered = this.core.pendingEnd();
    try {
      const sent = this.core.sendInDialog(d, d.createRequest('BYE', { headers: reasonHeaders(reason) }));
      this.byeResponse = sent;
      await sent;
    } catch {
      // An unroutable dialog (unusable route set or target), or the layer closed: nothing more to do.
    } finally {
      answered();
    }
  }

  // ---- requests the peer sends in the dialog --------------------------------------------

  /** @internal */
  handleInDialog(req: SipRequest, tx: ServerTransaction, dialog: Dialog): void {
    switch (req.method) {
      case 'BYE':
        this.answerBye(req, tx);
        return;
      case 'INVITE':
        if (this.inviteInProgress) {
          // §14.2: glare — a re-INVITE while ours is pending.
          tx.respond(createResponse(req, 491));
          return;
        }
        this.answerOffer(req, tx, dialog);
        return;
      case 'UPDATE':
        this.answerOffer(req, tx, dialog);
        return;
      case 'PRACK':
        this.handlePrack(req, tx);
        return;
      default:
        // With no listener the request is simply accepted; a listener answers (now or later) itself.
        if (this.listenerCount('request') === 0 && this.observer?.request === undefined) tx.respond(createResponse(req, 200));
        else this.emit('request', req, tx);
    }
  }

  /** The 200 to a BYE waits for the `onBye` policy (a B2BUA answers once the other leg has). */
  private answerBye(req: SipRequest, tx: ServerTransaction): void {
    const cause: HangupCause = { by: 'remote', method: 'BYE', reason: reasonOf(req) };
    const done = () => {
      tx.respond(createResponse(req, 200));
      this.finish(cause, this.state === 'answered');
    };
    const held = this.handlers.onBye?.(req, cause, this);
    if (held instanceof Promise) held.then(done, done);
    else done();
  }

  protected handlePrack(req: SipRequest, tx: ServerTransaction): void {
    tx.respond(createResponse(req, 481));
  }

  /** A re-INVITE or UPDATE: a synchronous policy answers in this turn, an async one (a media anchor) when it settles. */
  private answerOffer(req: SipRequest, tx: ServerTransaction, dialog: Dialog): void {
    const isInvite = req.method === 'INVITE';
    const refused = this.sessionTimer?.refusal(req);
    if (refused) {
      tx.respond(refused);
      return;
    }
    // A pure session refresh is answered here: the application (a B2BUA's other leg) has nothing to change.
    const handlers = this.handlers;
    const policy = handlers.onUpdate !== undefined && !(this.sessionTimer && isPureRefresh(req, this.remoteSdp));
    const answered = whenReady(
      // Called as a method: the handlers may be an object of the application's with `this` in them.
      () => (policy ? handlers.onUpdate!(req, this) : defaultUpdateAnswer(req, this.localSdp)),
      (a) => {
        if (isInvite) this.inviteInProgress = false;
        this.sendOfferAnswer(req, tx, dialog, a ?? { status: 500 });
      },
    );
    // While an async answer is computed, a re-INVITE of ours would glare (§14.2).
    if (isInvite && answered instanceof Promise) this.inviteInProgress = true;
  }

  private sendOfferAnswer(req: SipRequest, tx: ServerTransaction, dialog: Dialog, a: OfferAnswer): void {
    if (this.ended) {
      tx.respond(createResponse(req, 481));
      return;
    }
    const status = a.status ?? 200;
    const res = createResponse(req, status, {
      toTag: dialog.localTag,
      headers: a.headers,
      body: a.body,
      contentType: a.body !== undefined ? (a.contentType ?? 'application/sdp') : undefined,
    });
    if (!is2xx(status)) {
      tx.respond(res);
      return;
    }
    res.set('Contact', dialog.localContact);
    this.sessionTimer?.answered(req, res);
    dialog.refreshTarget(req);
    if (req.body.length > 0) this.remoteSdp = req.body;
    if (a.body !== undefined) this.localSdp = toBody(a.body);
    if (req.method === 'INVITE') this.retransmitUntilAcked(tx as InviteServerTransaction, res);
    else tx.respond(res);
    this.emit('updated', req, res);
  }

  // ---- responses we retransmit ---------------------------------------------------------

  /** @internal Send a 2xx to an INVITE and retransmit it until its ACK (§13.3.1.4). */
  protected retransmitUntilAcked(tx: InviteServerTransaction, res: SipResponse): void {
    this.retransmit(tx, res, 'final');
  }

  /** @internal Send `res` now and retransmit it until stopped; it replaces whatever was being retransmitted. */
  protected retransmit(tx: ServerTransaction, res: SipResponse, kind: 'final' | 'provisional'): void {
    this.retransmitting?.stop();
    this.retransmitting = new Retransmitter(this.core.clock, this.core.timers, tx, res, kind, this);
    this.retransmitting.start();
  }

  /** @internal */
  protected stopRetransmitting(): void {
    this.retransmitting?.stop();
    this.retransmitting = undefined;
  }

  /** @internal */
  retransmissionGaveUp(what: Retransmitter): void {
    if (what !== this.retransmitting) return;
    this.retransmitting = undefined;
    if (what.kind === 'final') {
      // §13.3.1.4: no ACK for 64·T1 — end the call with a BYE.
      void this.bye(ACK_TIMEOUT, 'system');
    } else {
      this.provisionalTimedOut();
    }
  }

  /** @internal A reliable provisional went unPRACKed for 64·T1 (only incoming calls send those). */
  protected provisionalTimedOut(): void {}

  /** @internal */
  /** The ACK for a 2xx we sent arrived. */
  handleAck(ack: SipRequest): void {
    if (this.retransmitting?.kind === 'final') this.stopRetransmitting();
    if (ack.body.length > 0) this.remoteSdp = ack.body;
    this.emit('ack', ack);
    this.settled();
  }

  /** The call is set up (our 2xx ACKed, or theirs ACKed by us): trim what it keeps for its duration. */
  protected settled(): void {}

  /** Enter `ended` once, emit hangup (when answered) and ended, and release dialogs. */
  protected finish(cause: HangupCause, answered: boolean): void {
    if (this.ended) return;
    this.state = 'ended';
    this.cause = cause;
    this.glareTimer?.cancel();
    this.sessionTimer?.stop();
    this.stopRetransmitting();
    if (this.dialog) {
      this.dialog.state = 'terminated';
      this.core.unregister(this.dialog);
    }
    this.cleanup();
    this.core.release(this);
    this.endedLatch?.resolve(cause);
    if (answered) this.emit('hangup', cause);
    this.emit('ended', cause);
    // Transactions outlive the call by up to 64·T1 (Timers M, L, H, J) and can still reach it
    // (a 2xx retransmission is ACKed again): let go of the application's hooks and listeners,
    // which hold everything it built around the call (a B2BUA's whole bridge, both legs).
    this.handlers = NO_HANDLERS;
    this.observer = undefined;
    this.removeAllListeners();
  }

  /** Subclass hook: stop timers, drop early dialogs. */
  protected cleanup(): void {}
}
