import {
  createResponse,
  formatReason,
  generateTag,
  parseReason,
  reasonPhrase,
  SipError,
  type HeaderInit,
  type Reason,
  type SipRequest,
  type SipResponse,
} from '../parser/index.js';
import { DigestClient, DigestError } from '../digest/index.js';
import type { Timer } from '../transport/index.js';
import {
  isSynthesized,
  type ClientTransaction,
  type InviteClientTransaction,
  type InviteServerTransaction,
  type MessageSource,
  type ServerTransaction,
  type Target,
} from '../transaction/index.js';
import { Emitter } from '../util/events.js';
import { Dialog } from './dialog.js';
import type { UserAgentCore } from './core.js';

/** Why a call ended: who ended it, with what status, and the RFC 3326 Reason when one came. */
export interface HangupCause {
  by: 'local' | 'remote' | 'system';
  /** Final status of the INVITE (failures, cancels) — undefined for a BYE after answer. */
  status?: number;
  /** Reason phrase of that status. */
  phrase?: string;
  /** The request that ended it: BYE or CANCEL. */
  method?: 'BYE' | 'CANCEL';
  /** The Reason header (RFC 3326) that came with it, or that we sent. */
  reason?: Reason;
}

export interface ReasonInit {
  protocol: 'SIP' | 'Q.850' | string;
  cause?: number;
  text?: string;
}

export interface SendOptions {
  body?: Uint8Array | string;
  contentType?: string;
  headers?: HeaderInit;
}

/** The answer to an offer received in a re-INVITE or UPDATE. */
export interface OfferAnswer {
  /** Status (default 200). */
  status?: number;
  body?: Uint8Array | string;
  contentType?: string;
  headers?: HeaderInit;
}

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
  /** Always the last event, whatever ended the call. */
  ended(cause: HangupCause): void;
}

export type CallState = 'calling' | 'early' | 'answered' | 'ended';

let nextCallId = 1;

function toBody(b: Uint8Array | string | undefined): Uint8Array | undefined {
  return b === undefined ? undefined : typeof b === 'string' ? Buffer.from(b) : b;
}

export function reasonOf(m: SipRequest | SipResponse): Reason | undefined {
  try {
    const r = m.reasons;
    // Prefer Q.850 (what a PSTN hangup cause is), then SIP.
    return r.find((x) => x.protocol.toUpperCase() === 'Q.850') ?? r[0];
  } catch {
    return undefined;
  }
}

/**
 * A call: one INVITE session with its dialog. Shared by outgoing and incoming
 * calls: in-dialog requests both ways, re-INVITE glare (§14.1), BYE, causes.
 */
export abstract class Call extends Emitter<CallEvents> {
  readonly id = nextCallId++;
  abstract readonly direction: 'outgoing' | 'incoming';
  state: CallState = 'calling';
  /** The confirmed dialog (undefined before answer). */
  dialog: Dialog | undefined;
  cause: HangupCause | undefined;
  /** Last SDP we sent, and the last the peer sent. */
  localSdp: Uint8Array | undefined;
  remoteSdp: Uint8Array | undefined;
  protected readonly core: UserAgentCore;
  protected handlers: CallHandlers;
  private inviteInProgress = false;
  private glareTimer: Timer | undefined;
  /** @internal */
  /** 2xx retransmission waiting for its ACK (§13.3.1.4), set by the core. */
  ackWait: { cancel(): void } | undefined;
  /**
   * The final response to the BYE this side sent, once one was sent: a received one, or a
   * synthesized 408 (Timer F) or 503 (could not be sent) — tell them apart with `isSynthesized`.
   */
  byeResponse: Promise<SipResponse> | undefined;

  constructor(core: UserAgentCore, handlers: CallHandlers = {}) {
    super();
    this.core = core;
    this.handlers = handlers;
  }

  get callId(): string {
    return this.dialog?.callId ?? '';
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /** Send a request inside the confirmed dialog and resolve with its final response. */
  request(method: string, options: SendOptions = {}): Promise<SipResponse> {
    const d = this.dialog;
    if (!d || d.state !== 'confirmed') return Promise.reject(new SipError('NO_DIALOG', `no confirmed dialog for ${method}`));
    const req = d.createRequest(method, options);
    return this.core.sendInDialog(d, req);
  }

  /** re-INVITE with a new offer (§14.1). Retries after 491 with the random back-off of §14.1. */
  async reinvite(options: SendOptions & { retryOn491?: boolean } = {}): Promise<SipResponse> {
    const d = this.dialog;
    if (!d || d.state !== 'confirmed') throw new SipError('NO_DIALOG', 'no confirmed dialog for re-INVITE');
    if (this.inviteInProgress) throw new SipError('INVITE_PENDING', 'an INVITE transaction is already in progress');
    for (let attempt = 0; ; attempt++) {
      this.inviteInProgress = true;
      const req = d.createRequest('INVITE', options);
      let res: SipResponse;
      try {
        res = await this.core.sendInDialog(d, req);
      } finally {
        this.inviteInProgress = false;
      }
      if (res.status >= 200 && res.status < 300) {
        d.refreshTarget(res);
        if (options.body !== undefined) this.localSdp = toBody(options.body);
        if (res.body.length > 0) this.remoteSdp = res.body;
        const cseq = req.cseq.seq;
        if (options.body === undefined && res.body.length > 0) {
          // Late offer (§14.1): the 2xx carries the offer, our ACK the answer. The answer may
          // come later (a B2BUA waits for the other leg's ACK), so the 2xx is returned first.
          const send = (b: Uint8Array | string | undefined) => {
            if (b !== undefined) this.localSdp = toBody(b);
            this.core.sendAck(d, res, cseq, b);
          };
          const answer = this.handlers.onLateOffer ? this.handlers.onLateOffer(res, this) : this.localSdp;
          if (answer instanceof Promise) answer.then(send, () => send(undefined));
          else send(answer);
        } else {
          this.core.sendAck(d, res, cseq);
        }
        this.emit('updated', req, res);
        return res;
      }
      if (res.status !== 491 || options.retryOn491 === false || attempt >= 3 || this.ended) return res;
      // §14.1: the Call-ID owner waits 2.1–4 s, the other side 0–2 s, in 10 ms steps.
      const ownsCallId = d.role === 'uac';
      const ms = ownsCallId ? 2100 + 10 * Math.floor(Math.random() * 191) : 10 * Math.floor(Math.random() * 201);
      await new Promise<void>((resolve) => {
        this.glareTimer = this.core.clock.setTimer(ms, resolve);
      });
      this.glareTimer = undefined;
      if (this.ended) return res;
    }
  }

  /** UPDATE (RFC 3311), in an early or confirmed dialog. */
  update(options: SendOptions = {}): Promise<SipResponse> {
    const d = this.dialog ?? this.earlyDialog();
    if (!d) return Promise.reject(new SipError('NO_DIALOG', 'no dialog for UPDATE'));
    return this.core.sendInDialog(d, d.createRequest('UPDATE', options)).then((res) => {
      if (res.status >= 200 && res.status < 300) {
        d.refreshTarget(res);
        if (options.body !== undefined) this.localSdp = toBody(options.body);
        if (res.body.length > 0) this.remoteSdp = res.body;
      }
      return res;
    });
  }

  /** An early dialog to send UPDATE/PRACK in before answer (overridden by outgoing calls). */
  protected earlyDialog(): Dialog | undefined {
    return undefined;
  }

  /** End the call: BYE when answered (with an optional RFC 3326 Reason); see subclasses before answer. */
  abstract hangup(options?: { reason?: ReasonInit; status?: number }): Promise<void>;

  protected async bye(reason?: ReasonInit, by: 'local' | 'system' = 'local'): Promise<void> {
    const d = this.dialog;
    if (!d || this.ended) return;
    const headers: HeaderInit = reason ? [['Reason', formatReason(reason)]] : [];
    const cause: HangupCause = { by, method: 'BYE', reason: reason ? parseReason(formatReason(reason)) : undefined };
    this.finish(cause, true);
    // The call is over locally whatever happens to the BYE; a hang-up never rejects.
    const answered = this.core.pendingEnd();
    try {
      const sent = this.core.sendInDialog(d, d.createRequest('BYE', { headers }));
      this.byeResponse = sent;
      await sent;
    } catch {
      // An unroutable dialog (unusable route set or target): nothing more to do.
    } finally {
      answered();
    }
  }

  /**
   * @internal UserAgent.close(): end the call now as its state requires (BYE when answered;
   * CANCEL or a final response before), with `reason`. `ended` is emitted before this returns.
   */
  abstract shutdown(reason: ReasonInit): void;

  /** @internal */
  /** A request arrived in our dialog (the user agent checked CSeq order already). */
  handleInDialog(req: SipRequest, tx: ServerTransaction, dialog: Dialog): void {
    switch (req.method) {
      case 'BYE': {
        const cause: HangupCause = { by: 'remote', method: 'BYE', reason: reasonOf(req) };
        const done = () => {
          tx.respond(createResponse(req, 200));
          this.finish(cause, this.state === 'answered');
        };
        const held = this.handlers.onBye?.(req, cause, this);
        if (held instanceof Promise) held.then(done, done);
        else done();
        return;
      }
      case 'INVITE':
        if (this.inviteInProgress) {
          // §14.2: glare — a re-INVITE while ours is pending.
          tx.respond(createResponse(req, 491));
          return;
        }
        void this.answerUpdate(req, tx, dialog, true);
        return;
      case 'UPDATE':
        void this.answerUpdate(req, tx, dialog, false);
        return;
      case 'PRACK':
        this.handlePrack(req, tx);
        return;
      default:
        // With no listener the request is simply accepted; a listener answers (now or later) itself.
        if (this.listenerCount('request') === 0) tx.respond(createResponse(req, 200));
        else this.emit('request', req, tx);
    }
  }

  protected handlePrack(req: SipRequest, tx: ServerTransaction): void {
    tx.respond(createResponse(req, 481));
  }

  private answerUpdate(req: SipRequest, tx: ServerTransaction, dialog: Dialog, isInvite: boolean): void {
    const offer = req.body.length > 0;
    let a: OfferAnswer | Promise<OfferAnswer>;
    try {
      a = this.handlers.onUpdate
        ? this.handlers.onUpdate(req, this)
        : offer || isInvite
          ? { status: 200, body: this.localSdp }
          : { status: 200 };
    } catch {
      a = { status: 500 };
    }
    // A synchronous policy answers in the same turn; an async one (a media anchor) when it resolves.
    if (a instanceof Promise) {
      if (isInvite) this.inviteInProgress = true;
      a.then(
        (v) => this.sendUpdateAnswer(req, tx, dialog, isInvite, v),
        () => this.sendUpdateAnswer(req, tx, dialog, isInvite, { status: 500 }),
      );
    } else {
      this.sendUpdateAnswer(req, tx, dialog, isInvite, a);
    }
  }

  private sendUpdateAnswer(req: SipRequest, tx: ServerTransaction, dialog: Dialog, isInvite: boolean, a: OfferAnswer): void {
    if (isInvite) this.inviteInProgress = false;
    if (this.ended) {
      tx.respond(createResponse(req, 481));
      return;
    }
    const offer = req.body.length > 0;
    const status = a.status ?? 200;
    const res = createResponse(req, status, {
      toTag: dialog.localTag,
      headers: a.headers,
      body: a.body,
      contentType: a.body !== undefined ? (a.contentType ?? 'application/sdp') : undefined,
    });
    const ok = status >= 200 && status < 300;
    if (ok) {
      res.set('Contact', dialog.localContact);
      dialog.refreshTarget(req);
      if (offer) this.remoteSdp = req.body;
      if (a.body !== undefined) this.localSdp = toBody(a.body);
    }
    if (isInvite && ok) this.core.respond2xx(this, tx as InviteServerTransaction, res, dialog);
    else tx.respond(res);
    if (ok) this.emit('updated', req, res);
  }

  /** @internal */
  /** Called by the core when the ACK for a 2xx we sent arrives. */
  handleAck(ack: SipRequest): void {
    this.ackWait?.cancel();
    this.ackWait = undefined;
    if (ack.body.length > 0) this.remoteSdp = ack.body;
    this.emit('ack', ack);
    this.settled();
  }

  /** The call is set up (our 2xx ACKed, or theirs ACKed by us): trim what it keeps for its duration. */
  protected settled(): void {}

  /** @internal The ACK for our 2xx never came: end the call with a BYE (§13.3.1.4). */
  ackTimeout(): void {
    this.ackWait = undefined;
    void this.bye({ protocol: 'SIP', cause: 408, text: 'ACK timeout' }, 'system');
  }

  /** Enter `ended` once, emit hangup (when answered) and ended, and release dialogs. */
  protected finish(cause: HangupCause, answered: boolean): void {
    if (this.ended) return;
    this.state = 'ended';
    this.cause = cause;
    this.glareTimer?.cancel();
    this.ackWait?.cancel();
    this.ackWait = undefined;
    if (this.dialog) this.dialog.state = 'terminated';
    this.cleanup();
    this.core.release(this);
    if (answered) this.emit('hangup', cause);
    this.emit('ended', cause);
    // Transactions outlive the call by up to 64·T1 (Timers M, L, H, J) and can still reach it
    // (a 2xx retransmission is ACKed again): let go of the application's hooks and listeners,
    // which hold everything it built around the call (a B2BUA's whole bridge, both legs).
    this.handlers = {};
    this.removeAllListeners();
  }

  /** Subclass hook: stop timers, drop early dialogs. */
  protected cleanup(): void {}
}

export interface InviteOptions extends CallHandlers {
  /** From (name-addr); default `<sip:anonymous@{local address}>`. */
  from?: string;
  /** To (default the target). */
  to?: string;
  /** Where to send (default: from the target URI). */
  destination?: Target;
  body?: Uint8Array | string;
  contentType?: string;
  headers?: HeaderInit;
  callId?: string;
  /** Credentials for 401/407 challenges. */
  auth?: { username: string; password: string };
  /** Max-Forwards of the INVITE (default 70; a B2BUA passes the inbound value less one). */
  maxForwards?: number;
  /** Offer 100rel (Supported), require it, or neither. Default 'supported'. */
  reliableProvisionals?: 'supported' | 'required' | 'none';
  /** Event listeners attached before the INVITE leaves. */
  on?: Partial<CallEvents>;
}

/** A call we placed (UAC): forking, early dialogs, PRACK, CANCEL, ACK for 2xx, auth. */
export class OutgoingCall extends Call {
  readonly direction = 'outgoing' as const;
  invite: SipRequest;
  readonly destination: Target;
  /** Early dialogs by remote tag (forking: several may exist, §13.2.2.4). */
  readonly early = new Map<string, Dialog>();
  private tx: InviteClientTransaction | undefined;
  private digest: DigestClient | undefined;
  private cancelled: ReasonInit | null | undefined;
  // Created on first use: most calls never see a reliable provisional, and a held call should stay small.
  private lastRSeq: Map<string, number> | undefined;
  private ackBytes: { tag: string; ack: SipRequest } | undefined;
  private ackPromise: Promise<void> | undefined;
  /** Set while a CANCEL waits for the INVITE's final response (what close() waits for). */
  private cancelAnswered: (() => void) | undefined;

  constructor(core: UserAgentCore, invite: SipRequest, destination: Target, options: InviteOptions) {
    super(core, options);
    this.invite = invite;
    this.destination = destination;
    if (options.auth) this.digest = new DigestClient(options.auth);
    this.localSdp = invite.body.length > 0 ? invite.body : undefined;
    if (options.on) for (const [k, fn] of Object.entries(options.on)) this.on(k as keyof CallEvents, fn as never);
  }

  override get callId(): string {
    return this.invite.callId;
  }

  get localTag(): string {
    return this.invite.from.tag!;
  }

  /** @internal */
  start(): void {
    this.tx = this.core.sendInvite(this, this.invite, this.destination);
  }

  protected override earlyDialog(): Dialog | undefined {
    return this.early.values().next().value;
  }

  /**
   * Cancel before answer (§9.1): sent once a provisional has arrived. If the 2xx
   * crosses the CANCEL, the 2xx wins: it is ACKed and a BYE follows.
   */
  cancel(reason?: ReasonInit): void {
    if (this.state === 'answered' || this.ended || this.cancelled !== undefined) return;
    this.cancelled = reason ?? null;
    // close() waits for the INVITE's final response (the 487, or a 2xx that crossed the CANCEL).
    this.cancelAnswered = this.core.pendingEnd();
    this.tx?.cancel(reason ? formatReason(reason) : undefined);
  }

  shutdown(reason: ReasonInit): void {
    if (this.ended) return;
    if (this.state === 'answered') {
      void this.bye(reason);
      return;
    }
    if (this.cancelled === undefined) this.cancel(reason);
    const sent = this.cancelled ?? undefined;
    this.finish({ by: 'local', method: 'CANCEL', reason: sent ? parseReason(formatReason(sent)) : undefined }, false);
  }

  async hangup(options: { reason?: ReasonInit } = {}): Promise<void> {
    if (this.state === 'answered') return this.bye(options.reason);
    this.cancel(options.reason);
  }

  /** @internal A response from the INVITE client transaction, or a stray 2xx after it ended. */
  handleResponse(res: SipResponse, fromTransaction: boolean): void {
    const s = res.status;
    const tag = safeTag(res);
    if (s >= 200 && fromTransaction && this.cancelAnswered) {
      this.cancelAnswered();
      this.cancelAnswered = undefined;
    }
    if (s < 200) {
      if (this.ended) return;
      if (tag && s > 100) {
        let d = this.early.get(tag);
        if (!d) {
          d = Dialog.fromUac(this.invite, res, { address: this.destination.address, port: this.destination.port }, this.core.contactFor(this.destination));
          this.early.set(tag, d);
          this.core.register(d, this);
        } else d.refreshTarget(res);
        if (this.state === 'calling') this.state = 'early';
        if (!this.prackIfReliable(res, d)) return;
      }
      if (res.body.length > 0) this.remoteSdp = res.body;
      this.emit('provisional', res);
      if (res.body.length > 0) this.emit('earlyMedia', res);
      return;
    }
    if (s < 300) {
      if (!tag) return;
      this.on2xx(res, tag);
      return;
    }
    if (!fromTransaction || this.ended) return;
    // 401/407: answer the challenge once per realm (the digest client gives up on a second one).
    if ((s === 401 || s === 407) && this.digest && this.cancelled === undefined) {
      try {
        const next = this.digest.authorize(this.invite, res);
        next.removeFirst('Via');
        this.invite = next;
        this.tx = this.core.sendInvite(this, next, this.destination);
        return;
      } catch (err) {
        if (!(err instanceof DigestError)) throw err;
      }
    }
    const cause: HangupCause = {
      by: isSynthesized(res) ? 'system' : this.cancelled !== undefined && s === 487 ? 'local' : 'remote',
      status: s,
      phrase: res.reason,
      reason: reasonOf(res),
      ...(this.cancelled !== undefined && s === 487 ? { method: 'CANCEL' as const } : {}),
    };
    this.emit('failure', res, cause);
    this.finish(cause, false);
  }

  private on2xx(res: SipResponse, tag: string): void {
    if (this.ackBytes) {
      // A retransmitted 2xx of the answered fork: ACK again (§13.2.2.4).
      if (this.ackBytes.tag === tag) {
        if (this.ackPromise) void this.ackPromise.then(() => this.core.resendAck(this.dialog!, this.ackBytes!.ack));
        else this.core.resendAck(this.dialog!, this.ackBytes.ack);
        return;
      }
      // Another fork answered too: ACK it, then BYE it (§13.2.2.4).
      this.core.ackAndBye(this.invite, res, this.destination);
      return;
    }
    if (this.ended) {
      // Answered after we gave up (CANCEL crossed the 200): the 200 wins, ACK then BYE.
      this.core.ackAndBye(this.invite, res, this.destination);
      return;
    }
    const d = this.early.get(tag) ?? Dialog.fromUac(this.invite, res, { address: this.destination.address, port: this.destination.port }, this.core.contactFor(this.destination));
    d.state = 'confirmed';
    d.refreshTarget(res);
    d.routeSet.splice(0, d.routeSet.length, ...res.getAll('record-route').reverse());
    this.early.delete(tag);
    this.dialog = d;
    this.core.register(d, this);
    // Other early dialogs are over (they may still answer: then ACK + BYE above).
    for (const other of this.early.values()) {
      other.state = 'terminated';
      this.core.unregister(other);
    }
    this.early.clear();
    if (res.body.length > 0) this.remoteSdp = res.body;
    const cseq = this.invite.cseq.seq;
    const lateOffer = this.invite.body.length === 0 && res.body.length > 0;
    this.ackBytes = { tag, ack: d.createRequest('ACK', { cseq }) };
    // The ACK goes out synchronously unless a late-offer answer is still being computed.
    const answer = lateOffer ? (this.handlers.onLateOffer ? this.handlers.onLateOffer(res, this) : this.localSdp) : undefined;
    const sendAck = (body: Uint8Array | string | undefined) => {
      if (body !== undefined) {
        this.ackBytes!.ack = d.createRequest('ACK', { cseq, body });
        this.localSdp = toBody(body);
      }
      this.core.resendAck(d, this.ackBytes!.ack);
    };
    if (answer instanceof Promise) {
      this.ackPromise = answer.then(sendAck);
    } else {
      sendAck(answer);
      this.ackPromise = undefined;
    }
    if (this.cancelled !== undefined) {
      // CANCEL crossed the 2xx: the 2xx wins — ACK, then BYE (§9.1, §15).
      const reason = this.cancelled ?? undefined;
      if (this.ackPromise) void this.ackPromise.then(() => this.bye(reason));
      else void this.bye(reason);
      return;
    }
    this.state = 'answered';
    this.emit('answer', res);
    this.settled();
  }

  protected override settled(): void {
    this.invite.compact();
    this.ackBytes?.ack.compact();
  }

  /** RFC 3262: PRACK a reliable provisional once; false for a retransmission already PRACKed. */
  private prackIfReliable(res: SipResponse, d: Dialog): boolean {
    const rseqRaw = res.get('rseq');
    const requires100rel = res.getAll('require').some((t) => t.toLowerCase() === '100rel');
    if (!requires100rel || rseqRaw === undefined || !/^\d{1,10}$/.test(rseqRaw.trim())) return true;
    const rseq = Number(rseqRaw.trim());
    const last = this.lastRSeq?.get(d.remoteTag);
    if (last !== undefined && rseq <= last) return false;
    (this.lastRSeq ??= new Map()).set(d.remoteTag, rseq);
    const prack = d.createRequest('PRACK', { headers: [['RAck', `${rseq} ${res.cseq.seq} ${res.cseq.method}`]] });
    void this.core.sendInDialog(d, prack).catch(() => undefined);
    return true;
  }

  protected override cleanup(): void {
    for (const d of this.early.values()) this.core.unregister(d);
    this.early.clear();
  }
}

export interface ReliableProvisional {
  rseq: number;
  acked: Promise<void>;
}

/** A call we received (UAS): provisionals (reliable too), answer with 2xx retransmission, reject, CANCEL. */
export class IncomingCall extends Call {
  readonly direction = 'incoming' as const;
  readonly invite: SipRequest;
  readonly tx: InviteServerTransaction;
  readonly source: MessageSource;
  readonly localTag = generateTag();
  private earlyDlg: Dialog | undefined;
  private rseq = 1 + Math.floor(Math.random() * 0x7fff);
  // Created on first use (reliable provisionals only).
  private pendingPracks: Map<number, { resolve: () => void; reject: (e: Error) => void; timer: Timer | undefined }> | undefined;

  constructor(core: UserAgentCore, invite: SipRequest, tx: InviteServerTransaction, source: MessageSource, handlers: CallHandlers = {}) {
    super(core, handlers);
    this.invite = invite;
    this.tx = tx;
    this.source = source;
    this.remoteSdp = invite.body.length > 0 ? invite.body : undefined;
  }

  protected override settled(): void {
    this.invite.compact();
  }

  override get callId(): string {
    return this.invite.callId;
  }

  /** A 1xx/2xx to the INVITE in our (early) dialog: our tag and Contact, the body as our SDP. */
  private responseWith(status: number, options: SendOptions & { phrase?: string }): SipResponse {
    const d = this.ensureEarlyDialog();
    const res = createResponse(this.invite, status, {
      toTag: this.localTag,
      reason: options.phrase,
      headers: options.headers,
      body: options.body,
      contentType: options.body !== undefined ? (options.contentType ?? 'application/sdp') : undefined,
    });
    res.set('Contact', d.localContact);
    if (options.body !== undefined) this.localSdp = toBody(options.body);
    return res;
  }

  /** True when the caller supports or requires reliable provisionals. */
  get peerSupports100rel(): boolean {
    const tags = [...this.invite.getAll('supported'), ...this.invite.getAll('require')];
    return tags.some((t) => t.toLowerCase() === '100rel');
  }

  protected override earlyDialog(): Dialog | undefined {
    return this.earlyDlg;
  }

  private ensureEarlyDialog(): Dialog {
    if (!this.earlyDlg) {
      this.earlyDlg = Dialog.fromUas(this.invite, this.localTag, this.source.address, this.core.contactFor({ ...this.source.address, transport: this.source.transport.protocol }));
      this.core.register(this.earlyDlg, this);
    }
    return this.earlyDlg;
  }

  /**
   * Send a provisional (180, 183 …). `reliable` sends it per RFC 3262 when the
   * caller supports 100rel; `acked` resolves when its PRACK arrives.
   */
  provisional(status = 180, options: SendOptions & { reliable?: boolean; phrase?: string } = {}): ReliableProvisional | undefined {
    // 100 is the transaction's own (§17.2.1); a final status here would be sent as a provisional would.
    checkStatus(status, 101, 199, 'provisional');
    if (this.ended || this.tx.finalSent) return undefined;
    this.state = 'early';
    const res = this.responseWith(status, options);
    // RFC 3262 §3: a caller that requires 100rel gets every non-100 provisional reliably.
    const reliable = options.reliable || this.invite.getAll('require').some((t) => t.toLowerCase() === '100rel');
    if (!reliable || !this.peerSupports100rel) {
      this.tx.respond(res);
      return undefined;
    }
    const rseq = this.rseq++;
    res.append('Require', '100rel');
    res.set('RSeq', rseq);
    const acked = new Promise<void>((resolve, reject) => {
      const entry = { resolve, reject, timer: undefined as Timer | undefined };
      (this.pendingPracks ??= new Map()).set(rseq, entry);
      // RFC 3262 §3: retransmit at T1, doubling, until the PRACK; give up after 64·T1.
      const { T1 } = this.core.timers;
      let elapsed = 0;
      const schedule = (interval: number) => {
        entry.timer = this.core.clock.setTimer(interval, () => {
          elapsed += interval;
          if (!this.pendingPracks?.has(rseq) || this.ended) return;
          if (elapsed >= 64 * T1) {
            this.pendingPracks!.delete(rseq);
            reject(new SipError('PRACK_TIMEOUT', `no PRACK for RSeq ${rseq}`));
            // §3: the INVITE is then rejected with a 5xx.
            void this.reject(504, { phrase: 'Server Time-out (no PRACK)' });
            return;
          }
          this.tx.respond(res);
          schedule(Math.min(interval * 2, 64 * T1 - elapsed));
        });
      };
      schedule(T1);
    });
    acked.catch(() => undefined);
    this.tx.respond(res);
    return { rseq, acked };
  }

  protected override handlePrack(req: SipRequest, tx: ServerTransaction): void {
    const rack = (req.get('rack') ?? '').trim().split(/\s+/);
    const rseq = Number(rack[0]);
    const entry = this.pendingPracks?.get(rseq);
    if (!entry || Number(rack[1]) !== this.invite.cseq.seq || rack[2] !== 'INVITE') {
      tx.respond(createResponse(req, 481));
      return;
    }
    this.pendingPracks!.delete(rseq);
    entry.timer?.cancel();
    tx.respond(createResponse(req, 200));
    entry.resolve();
  }

  /**
   * Answer with a 2xx. Waits for outstanding reliable provisionals to be PRACKed,
   * then retransmits the 2xx (T1 doubling to T2) until the ACK; with no ACK after
   * 64·T1 the call is ended with a BYE (§13.3.1.4).
   */
  async answer(options: SendOptions & { phrase?: string } = {}): Promise<void> {
    if (this.ended || this.tx.finalSent) return;
    const waits = [...(this.pendingPracks?.values() ?? [])].map(
      (e) =>
        new Promise<void>((resolve) => {
          const orig = e.resolve;
          e.resolve = () => {
            orig();
            resolve();
          };
          const origReject = e.reject;
          e.reject = (err) => {
            origReject(err);
            resolve();
          };
        }),
    );
    if (waits.length > 0) await Promise.all(waits);
    if (this.ended || this.tx.finalSent) return;
    const d = this.ensureEarlyDialog();
    const res = this.responseWith(200, options);
    d.state = 'confirmed';
    this.dialog = d;
    this.state = 'answered';
    this.core.respond2xx(this, this.tx, res, d);
  }

  /** Send 100 Trying now (the transaction layer otherwise sends it after 200 ms). */
  trying(): void {
    if (!this.ended && this.tx.lastStatus === 0) this.tx.respond(createResponse(this.invite, 100));
  }

  /** End the call with a final response built elsewhere (a digest server's 407, a stateless policy). */
  rejectWith(response: SipResponse): void {
    checkStatus(response.status, 300, 699, 'rejectWith');
    if (this.ended || this.tx.finalSent) return;
    this.sendFinal(response);
    this.finish({ by: 'local', status: response.status, phrase: response.reason, reason: reasonOf(response) }, false);
  }

  /**
   * Reject before answer with a final status (3xx–6xx), optionally with an RFC 3326 Reason.
   * Any other status throws `SipError` `BAD_STATUS` at once (a 2xx here would be an answer
   * without a dialog, a 1xx no final response at all), sending nothing.
   */
  reject(status = 486, options: { reason?: ReasonInit; headers?: HeaderInit; phrase?: string } = {}): Promise<void> {
    checkStatus(status, 300, 699, 'reject');
    if (this.ended || this.tx.finalSent) return Promise.resolve();
    const res = createResponse(this.invite, status, { toTag: this.localTag, headers: options.headers, reason: options.phrase });
    if (options.reason) res.append('Reason', formatReason(options.reason));
    this.sendFinal(res);
    this.finish({ by: 'local', status, phrase: res.reason, reason: reasonOf(res) }, false);
    return Promise.resolve();
  }

  /** A non-2xx final: close() waits (bounded) for its ACK, so a lost final is still retransmitted (Timer G). */
  private sendFinal(res: SipResponse): void {
    const acked = this.core.pendingEnd();
    this.tx.onConfirmed = acked;
    this.tx.onTerminated = acked;
    this.tx.respond(res);
  }

  shutdown(reason: ReasonInit): void {
    if (this.ended) return;
    if (this.state === 'answered') {
      void this.bye(reason);
      return;
    }
    void this.reject(503, { reason });
    // A final response sent around this API (tx.respond) leaves nothing to send: end it here.
    if (!this.ended) this.finish({ by: 'local', reason: parseReason(formatReason(reason)) }, false);
  }

  /** BYE when answered; before that a final response (`status`, default 480, 3xx–6xx: see reject). */
  hangup(options: { reason?: ReasonInit; status?: number } = {}): Promise<void> {
    if (this.state === 'answered') return this.bye(options.reason);
    return this.reject(options.status ?? 480, { reason: options.reason });
  }

  /** @internal The caller's CANCEL matched our INVITE: 487 it and end (§9.2). */
  handleCancel(cancel: SipRequest): void {
    if (this.ended || this.tx.finalSent) return;
    const res = createResponse(this.invite, 487, { toTag: this.localTag });
    this.sendFinal(res);
    this.emit('cancel', cancel);
    this.finish({ by: 'remote', method: 'CANCEL', status: 487, phrase: reasonPhrase(487), reason: reasonOf(cancel) }, false);
  }

  protected override cleanup(): void {
    for (const e of this.pendingPracks?.values() ?? []) e.timer?.cancel();
    this.pendingPracks?.clear();
    if (this.earlyDlg && this.earlyDlg !== this.dialog) this.core.unregister(this.earlyDlg);
  }
}

/** A status a method may send, or `SipError` `BAD_STATUS` before anything is sent or changed. */
function checkStatus(status: number, min: number, max: number, method: string): void {
  if (!Number.isInteger(status) || status < min || status > max) {
    throw new SipError('BAD_STATUS', `${method}: status ${status} is outside ${min}–${max}`);
  }
}

function safeTag(res: SipResponse): string | undefined {
  try {
    return res.to.tag;
  } catch {
    return undefined;
  }
}

export type { ClientTransaction };
