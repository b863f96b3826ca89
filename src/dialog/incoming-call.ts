import { createResponse, formatReason, generateTag, reasonPhrase, type HeaderInit, type SipRequest, type SipResponse } from '../parser/index.js';
import type { InviteServerTransaction, MessageSource, ServerTransaction } from '../transaction/index.js';
import { Call, type CallHandlers } from './call-base.js';
import type { ReasonInit, ReliableProvisional, SendOptions } from './call-types.js';
import { ALLOWED_METHODS, type UserAgentCore } from './core.js';
import { sipsDialog } from './targeting.js';
import { Dialog } from './dialog.js';
import { KeptInvite } from './kept-invite.js';
import { toBody } from './offer-answer.js';
import { checkStatus, reasonOf, sentReason } from './reason.js';
import { decideAsUas, uasResponseHeaders } from './session-timer-negotiation.js';
import { demands100rel, offers100rel, ProvisionalQueue, rackedRSeq } from './reliable-provisionals.js';

/** A call we received (UAS): provisionals (reliable too), answer with 2xx retransmission, reject, CANCEL. */
export class IncomingCall extends Call {
  readonly direction = 'incoming' as const;
  /** The INVITE while the call is set up; once it is, only its text (see `invite`). */
  private inv: SipRequest | undefined;
  private kept: KeptInvite | undefined = undefined;
  readonly tx: InviteServerTransaction;
  readonly source: MessageSource;
  readonly localTag = generateTag();
  private earlyDlg: Dialog | undefined;
  // Created with the first reliable provisional: most calls never send one.
  private provisionals: ProvisionalQueue | undefined;

  constructor(core: UserAgentCore, invite: SipRequest, tx: InviteServerTransaction, source: MessageSource, handlers: CallHandlers = {}) {
    super(core, handlers);
    this.inv = invite;
    this.tx = tx;
    this.source = source;
    this.remoteSdp = invite.body.length > 0 ? invite.body : undefined;
  }

  /**
   * The INVITE that started the call. Until the call is set up (its 2xx ACKed) this is the
   * request as the transaction layer received it; after that the call keeps only its text (the
   * body shared with `remoteSdp` while they are the same bytes), and each read parses a fresh copy of it (the same headers and body; changes made to an earlier
   * copy are not in it) — a call held for hours keeps its dialog, not a parsed INVITE.
   */
  get invite(): SipRequest {
    return this.inv ?? this.kept!.revive();
  }

  protected override settled(): void {
    const inv = this.inv;
    if (inv === undefined) return;
    this.kept = KeptInvite.of(inv, this.remoteSdp);
    this.inv = undefined;
  }

  override get callId(): string {
    return this.dialog?.callId ?? this.inv!.callId;
  }

  /** True when the caller supports or requires reliable provisionals. */
  get peerSupports100rel(): boolean {
    return offers100rel(this.invite);
  }

  protected override earlyDialog(): Dialog | undefined {
    return this.earlyDlg;
  }

  private ensureEarlyDialog(): Dialog {
    if (!this.earlyDlg) {
      this.earlyDlg = Dialog.fromUas(this.invite, this.localTag, this.source.address, this.core.contactFor({ ...this.source.address, transport: this.source.transport.protocol }, sipsDialog(this.invite)));
      this.core.register(this.earlyDlg, this);
    }
    return this.earlyDlg;
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

  // ---- provisionals ---------------------------------------------------------------------

  /**
   * Send a provisional (180, 183 …). `reliable` sends it per RFC 3262 when the caller
   * supports 100rel (a caller that requires it gets every one reliably); `acked` resolves
   * when its PRACK arrives. A reliable provisional waits until the one before it is PRACKed
   * (RFC 3262 §3), and an unreliable one sent meanwhile waits behind it: they leave in order.
   */
  provisional(status = 180, options: SendOptions & { reliable?: boolean; phrase?: string } = {}): ReliableProvisional | undefined {
    // 100 is the transaction's own (§17.2.1); a final status here would be sent as a provisional would.
    checkStatus(status, 101, 199, 'provisional');
    if (this.ended || this.tx.finalSent) return undefined;
    this.state = 'early';
    const res = this.responseWith(status, options);
    const reliable = (options.reliable || demands100rel(this.invite)) && this.peerSupports100rel;
    if (reliable) return (this.provisionals ??= new ProvisionalQueue(this)).sendReliably(res);
    if (this.provisionals) this.provisionals.sendUnreliably(res);
    else this.tx.respond(res);
    return undefined;
  }

  /** @internal (ProvisionalSink) The queue releases a provisional: a reliable one is retransmitted until its PRACK (§3). */
  sendProvisional(res: SipResponse, reliable: boolean): void {
    if (this.ended || this.tx.finalSent) return;
    if (reliable) this.retransmit(this.tx, res, 'provisional');
    else this.tx.respond(res);
  }

  protected override handlePrack(req: SipRequest, tx: ServerTransaction): void {
    // Once set up, nothing waits for a PRACK (answer() waited for them all): no INVITE to check RAck against.
    const rseq = this.inv === undefined ? undefined : rackedRSeq(req, this.inv);
    if (rseq === undefined || !this.provisionals?.isInFlight(rseq)) {
      tx.respond(createResponse(req, 481));
      return;
    }
    // Stopped before the queue releases the next reliable provisional, which is retransmitted in turn.
    this.stopRetransmitting();
    tx.respond(createResponse(req, 200));
    this.provisionals.prack(rseq);
  }

  /** @internal RFC 3262 §3: a reliable provisional unPRACKed for 64·T1 — the INVITE is rejected with a 5xx. */
  protected override provisionalTimedOut(): void {
    this.provisionals?.timedOut();
    void this.reject(504, { phrase: 'Server Time-out (no PRACK)' });
  }

  // ---- final responses --------------------------------------------------------------------

  /**
   * Answer with a 2xx. Waits for outstanding reliable provisionals to be PRACKed (RFC 3262 §3;
   * settles without answering if the call ends meanwhile), then retransmits the 2xx (T1 doubling
   * to T2) until the ACK; with no ACK after 64·T1 the call is ended with a BYE (§13.3.1.4).
   */
  async answer(options: SendOptions & { phrase?: string } = {}): Promise<void> {
    if (this.ended || this.tx.finalSent) return;
    if (this.provisionals) await this.provisionals.allAcknowledged();
    if (this.ended || this.tx.finalSent) return;
    const res = this.responseWith(200, options);
    const timer = this.core.sessionTimer;
    // RFC 4028 §9: the 2xx names the interval and refresher (a refused interval got its 422 before the call existed).
    const session = timer ? decideAsUas(this.invite, timer) : undefined;
    if (session && 'accept' in session) {
      for (const [name, value] of uasResponseHeaders(session)) res.append(name, value);
      // §13.3.1.4 of RFC 3261 (a 2xx SHOULD carry Allow): the caller learns it may refresh with UPDATE (RFC 4028 §10).
      if (!res.has('allow')) res.set('Allow', ALLOWED_METHODS);
    }
    const d = this.earlyDlg!;
    d.state = 'confirmed';
    this.dialog = d;
    this.state = 'answered';
    this.core.register(d, this);
    this.retransmitUntilAcked(this.tx, res);
    if (timer && session && 'accept' in session) this.startSessionTimer(timer, session.accept, this.invite);
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
    if (!this.ended) this.finish({ by: 'local', reason: sentReason(reason) }, false);
  }

  /** BYE when answered; before that a final response (`status`, default 480, 3xx–6xx: see reject). */
  hangup(options: { reason?: ReasonInit; status?: number } = {}): Promise<void> {
    if (this.state === 'answered') return this.bye(options.reason);
    return this.reject(options.status ?? 480, { reason: options.reason });
  }

  /** @internal The caller's CANCEL matched our INVITE: 487 it and end (§9.2). */
  handleCancel(cancel: SipRequest): void {
    if (this.ended || this.tx.finalSent) return;
    this.sendFinal(createResponse(this.invite, 487, { toTag: this.localTag }));
    this.emit('cancel', cancel);
    this.finish({ by: 'remote', method: 'CANCEL', status: 487, phrase: reasonPhrase(487), reason: reasonOf(cancel) }, false);
  }

  protected override cleanup(): void {
    // Whatever waits for a PRACK (an answer() among them) learns the call is over.
    this.provisionals?.abandon();
    if (this.earlyDlg && this.earlyDlg !== this.dialog) this.core.unregister(this.earlyDlg);
  }
}
