import { formatReason, parseMessage, type HeaderInit, type SipRequest, type SipResponse } from '../parser/index.js';
import { DigestClient, DigestError } from '../digest/index.js';
import type { TargetList } from '../resolver/index.js';
import type { TransportAddress } from '../transport/index.js';
import { InviteClientTransaction, isSynthesized, type ClientTransactionUser, type OutboundUser, type Target } from '../transaction/index.js';
import { Call, type CallEvents, type CallHandlers } from './call-base.js';
import { keepBytes, ownText, resendable } from '../util/own.js';
import type { HangupCause, ReasonInit } from './call-types.js';
import type { UserAgentCore } from './core.js';
import { credentialsOf, Dialog } from './dialog.js';
import { KeptInvite } from './kept-invite.js';
import { reasonOf, sentReason } from './reason.js';
import { prackFor, reliableRSeq } from './reliable-provisionals.js';
import {
  decideAsUac,
  minSeOf,
  resolveSessionTimer,
  uacRequestHeaders,
  type SessionTimerConfig,
  type SessionTimerOptions,
} from './session-timer-negotiation.js';
import { wantsSipsContact } from './targeting.js';

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
  /**
   * @internal One object with the call's hooks (onUpdate, onLateOffer, onBye) instead of those
   * options, and one told of every event before the listeners (see CallObserver): a B2BUA's
   * bridge is both, for each B leg, with no closure per hook.
   */
  handlers?: CallHandlers;
  /** @internal */
  observer?: Partial<CallEvents>;
  /** RFC 4028 session timer for this call, overriding the user agent's (`false`: none). */
  sessionTimer?: SessionTimerOptions | false;
}

/**
 * Whether we cancelled (§9.1). Once requested, a CANCEL goes out as soon as a provisional has
 * arrived; `awaitingFinal` is what close() waits for until the INVITE's final response comes
 * (the 487, or a 2xx that crossed the CANCEL).
 */
type CancelState = { readonly kind: 'none' } | { readonly kind: 'requested'; readonly reason: ReasonInit | undefined; awaitingFinal: (() => void) | undefined };

const NOT_CANCELLED: CancelState = { kind: 'none' };

const NO_EARLY_DIALOGS: ReadonlyMap<string, Dialog> = new Map();

/** The hooks of InviteOptions, without the rest of the options (a body, headers…), which the call need not keep. */
function handlersOf(o: InviteOptions): CallHandlers {
  if (o.handlers) return o.handlers;
  if (!o.onUpdate && !o.onLateOffer && !o.onBye) return {};
  return { onUpdate: o.onUpdate, onLateOffer: o.onLateOffer, onBye: o.onBye };
}

/** What the INVITE client transaction reports to while the call needs it: the responses, marked as the transaction's own. */
class InviteUser implements ClientTransactionUser, OutboundUser {
  constructor(private readonly call: OutgoingCall) {}
  onResponse(res: SipResponse): void {
    this.call.handleResponse(res, true);
  }
}

function toTag(res: SipResponse): string | undefined {
  try {
    return res.to.tag;
  } catch {
    return undefined;
  }
}

/** A call we placed (UAC): forking, early dialogs, PRACK, CANCEL, ACK for 2xx, auth. */
export class OutgoingCall extends Call {
  readonly direction = 'outgoing' as const;
  /** The INVITE until the call is answered; after that its text only (see `invite`). */
  private inv: SipRequest | undefined;
  private kept: KeptInvite | undefined = undefined;
  /** Our From tag: the same on every INVITE of the call (a digest retry, a 422 retry, fail-over). */
  readonly localTag: string;
  /** The CSeq number of the INVITE that was answered. */
  private inviteSeq = 0;
  private dest: Target;
  /** Early dialogs by remote tag (forking: several may exist, §13.2.2.4); made by the first. */
  private forks: Map<string, Dialog> | undefined = undefined;
  /** The INVITE's client transaction, or its RFC 3263 fail-over over several: what a CANCEL goes through. */
  private tx: InviteClientTransaction | { cancel(reason?: string): void } | undefined;
  /**
   * The INVITE transaction once set up, while it waits in Accepted (Timer M) with LateAnswers
   * holding the dialog: when the call ends within Timer M, it is handed EndedAnswers instead.
   */
  private accepted: InviteClientTransaction | undefined;
  /** The located targets when the next hop is a host name (used by the first INVITE only). */
  private targets: TargetList | undefined;
  private digest: DigestClient | undefined;
  private cancelState: CancelState = NOT_CANCELLED;
  // Created on first use: most calls never see a reliable provisional, and a held call should stay small.
  private lastRSeq: Map<string, number> | undefined;
  /** What the INVITE transactions report to until the call is set up (then LateAnswers, see settled). */
  private inviteUser: InviteUser | undefined = new InviteUser(this);
  private readonly timerConfig: SessionTimerConfig | undefined;
  /** The interval the INVITE asks for (raised by a 422's Min-SE, RFC 4028 §7.3), and how many 422s came. */
  private askedSeconds = 0;
  private tooSmall = 0;

  constructor(core: UserAgentCore, invite: SipRequest, destination: Target, options: InviteOptions, targets?: TargetList) {
    super(core, handlersOf(options));
    this.inv = invite;
    this.localTag = ownText(invite.from.tag!);
    this.dest = destination;
    this.targets = targets;
    if (options.auth) this.digest = new DigestClient(options.auth);
    this.timerConfig = options.sessionTimer === false ? undefined : options.sessionTimer ? resolveSessionTimer(options.sessionTimer) : core.sessionTimer;
    this.localSdp = invite.body.length > 0 ? invite.body : undefined;
    this.observer = options.observer;
    if (options.on) for (const [k, fn] of Object.entries(options.on)) this.on(k as keyof CallEvents, fn as never);
  }

  /**
   * The INVITE as sent (the last one: after a digest challenge, the authorized retry). Once the
   * call is answered the call keeps only its text (the body shared with `localSdp` while they are
   * the same bytes), and each read parses a fresh copy of it (the
   * same headers and body; changes made to an earlier copy are not in it).
   */
  get invite(): SipRequest {
    return this.inv ?? this.kept!.revive();
  }

  set invite(request: SipRequest) {
    this.inv = request;
    this.kept = undefined;
  }

  override get callId(): string {
    return this.dialog?.callId ?? this.inv!.callId;
  }

  /** Early dialogs by remote tag (forking: several may exist, §13.2.2.4); empty once answered or ended. */
  get early(): ReadonlyMap<string, Dialog> {
    return this.forks ?? NO_EARLY_DIALOGS;
  }

  /**
   * Where the INVITE went: the explicit destination, the IP-literal target of its next hop, or
   * the target RFC 3263 fail-over is on (a stand-in naming the URI's host until one is chosen).
   */
  get destination(): Target {
    return this.dest;
  }

  /** @internal */
  start(): void {
    const t = this.timerConfig;
    if (t) {
      // RFC 4028 §7.1: Supported: timer, the interval asked for and this side's Min-SE.
      this.askedSeconds = t.seconds;
      const refresher = t.asUac === 'local' ? 'uac' : t.asUac === 'remote' ? 'uas' : undefined;
      for (const [name, value] of uacRequestHeaders(t.seconds, t.minSeconds, refresher)) this.invite.append(name, value);
    }
    const targets = this.targets;
    this.targets = undefined;
    if (targets === undefined) {
      this.tx = this.core.sendInvite(this.invite, this.dest, this.inviteUser!);
      return;
    }
    // Each attempt is the INVITE as sent to that target (its own branch and Contact): what a
    // digest retry, the dialog and the ACK build on.
    this.tx = this.core.sendLocatedInvite(this.invite, targets, this.inviteUser!, (req, target) => {
      this.invite = req;
      this.dest = target;
    });
  }

  protected override earlyDialog(): Dialog | undefined {
    return this.early.values().next().value;
  }

  // ---- ending before answer --------------------------------------------------------------

  /**
   * Cancel before answer (§9.1): sent once a provisional has arrived. If the 2xx
   * crosses the CANCEL, the 2xx wins: it is ACKed and a BYE follows.
   */
  cancel(reason?: ReasonInit): void {
    if (this.state === 'answered' || this.ended || this.cancelState.kind === 'requested') return;
    this.cancelState = { kind: 'requested', reason, awaitingFinal: this.core.pendingEnd() };
    this.tx?.cancel(reason ? formatReason(reason) : undefined);
  }

  shutdown(reason: ReasonInit): void {
    if (this.ended) return;
    if (this.state === 'answered') {
      void this.bye(reason);
      return;
    }
    this.cancel(reason);
    const sent = this.cancelState.kind === 'requested' ? this.cancelState.reason : undefined;
    this.finish({ by: 'local', method: 'CANCEL', reason: sentReason(sent) }, false);
  }

  async hangup(options: { reason?: ReasonInit } = {}): Promise<void> {
    if (this.state === 'answered') return this.bye(options.reason);
    this.cancel(options.reason);
  }

  // ---- responses to the INVITE ---------------------------------------------------------------

  /** @internal A response from the INVITE client transaction, or a stray 2xx after it ended. */
  handleResponse(res: SipResponse, fromTransaction: boolean): void {
    const s = res.status;
    if (s >= 200 && fromTransaction) this.finalArrived();
    if (s < 200) this.onProvisional(res);
    else if (s < 300) this.on2xx(res);
    else if (fromTransaction && !this.ended) this.onFailure(res);
  }

  /** The INVITE has its final response: a CANCEL waiting for it is answered. */
  private finalArrived(): void {
    if (this.cancelState.kind !== 'requested') return;
    this.cancelState.awaitingFinal?.();
    this.cancelState.awaitingFinal = undefined;
  }

  private onProvisional(res: SipResponse): void {
    if (this.ended) return;
    const tag = toTag(res);
    if (tag && res.status > 100) {
      const d = this.earlyDialogFor(res, tag);
      if (this.state === 'calling') this.state = 'early';
      if (!this.prackIfReliable(res, d)) return;
    }
    if (res.body.length > 0) this.remoteSdp = res.body;
    this.emit('provisional', res);
    if (res.body.length > 0) this.emit('earlyMedia', res);
  }

  /** The early dialog a 1xx with a To tag belongs to: each fork has its own (§13.2.2.4). */
  private earlyDialogFor(res: SipResponse, tag: string): Dialog {
    let d = this.forks?.get(tag);
    if (d) {
      d.refreshTarget(res);
      return d;
    }
    d = this.dialogFrom(res);
    (this.forks ??= new Map()).set(tag, d);
    this.core.register(d, this);
    return d;
  }

  private dialogFrom(res: SipResponse): Dialog {
    // (The destination is the peer's address: a Target is one, its transport aside.)
    return Dialog.fromUac(this.invite, res, this.dest, this.core.contactFor(this.dest, wantsSipsContact(this.invite)), this.localTag);
  }

  /** RFC 3262 §4: PRACK a reliable provisional once; false for a retransmission of one already PRACKed. */
  private prackIfReliable(res: SipResponse, d: Dialog): boolean {
    const rseq = reliableRSeq(res);
    if (rseq === undefined) return true;
    const last = this.lastRSeq?.get(d.remoteTag);
    if (last !== undefined && rseq <= last) return false;
    (this.lastRSeq ??= new Map()).set(d.remoteTag, rseq);
    void this.core.sendInDialog(d, prackFor(d, res, rseq)).catch(() => undefined);
    return true;
  }

  private on2xx(res: SipResponse): void {
    const tag = toTag(res);
    if (!tag) return;
    if (this.dialog) {
      answeredAgain(this.core, this.dialog, this.inviteSeq, this.dest, res, tag);
      return;
    }
    if (this.ended) {
      // Answered after we gave up (a CANCEL crossed the 2xx): the 2xx wins — ACK it, then BYE it.
      this.core.ackAndBye(this.invite, res, this.dest);
      return;
    }
    this.inviteSeq = this.inv!.cseq.seq;
    const d = this.confirmDialog(res, tag);
    const invite = this.invite;
    // The ACK carries the INVITE's credentials, if a challenge made it carry some (§13.2.2.4).
    const acked = this.ack2xx(d, res, invite.body.length > 0, credentialsOf(invite));
    if (this.cancelState.kind === 'requested') {
      // Our CANCEL crossed the 2xx: the 2xx wins — ACK, then BYE (§9.1, §15).
      const reason = this.cancelState.reason;
      if (acked instanceof Promise) void acked.then(() => this.bye(reason));
      else void this.bye(reason);
      return;
    }
    this.state = 'answered';
    if (this.timerConfig) this.startSessionTimer(this.timerConfig, decideAsUac(res, this.askedSeconds, this.timerConfig.minSeconds), res);
    this.emit('answer', res);
    this.settled();
  }

  /**
   * The 2xx confirms its fork's dialog (§13.2.2.4); the other early dialogs are over (those
   * forks may still answer: then ACK and BYE, above).
   */
  private confirmDialog(res: SipResponse, tag: string): Dialog {
    const d = this.forks?.get(tag) ?? this.dialogFrom(res);
    d.confirm(res);
    this.forks?.delete(tag);
    this.dialog = d;
    this.core.register(d, this);
    this.endEarlyDialogs();
    if (res.body.length > 0) this.remoteSdp = res.body;
    return d;
  }

  private endEarlyDialogs(): void {
    const forks = this.forks;
    if (forks === undefined) return;
    this.forks = undefined;
    for (const d of forks.values()) {
      d.state = 'terminated';
      this.core.unregister(d);
    }
  }

  private onFailure(res: SipResponse): void {
    const s = res.status;
    if ((s === 401 || s === 407) && this.cancelState.kind === 'none' && this.retryWithCredentials(res)) return;
    if (s === 422 && this.cancelState.kind === 'none' && this.retryWithLongerInterval(res)) return;
    const cancelled = this.cancelState.kind === 'requested' && s === 487;
    const cause: HangupCause = {
      by: cancelled ? 'local' : isSynthesized(res) ? 'system' : 'remote',
      status: s,
      phrase: res.reason,
      reason: reasonOf(res),
      ...(cancelled ? { method: 'CANCEL' as const } : {}),
    };
    this.emit('failure', res, cause);
    this.finish(cause, false);
  }

  /** 401/407: answer the challenge once per realm (the digest client gives up on a second one). */
  private retryWithCredentials(challenge: SipResponse): boolean {
    if (!this.digest) return false;
    try {
      const next = this.digest.authorize(this.invite, challenge);
      next.removeFirst('Via');
      this.invite = next;
      this.tx = this.core.sendInvite(next, this.dest, this.inviteUser!);
      return true;
    } catch (err) {
      if (!(err instanceof DigestError)) throw err;
      return false;
    }
  }

  /**
   * RFC 4028 §7.3: a 422 names the smallest interval the far side takes in its Min-SE; the INVITE
   * is sent again asking at least that (and with it as Min-SE): same Call-ID and From tag, CSeq
   * one higher, a new branch — as for a challenge. Twice at most: a peer that keeps raising its
   * minimum gets its 422 reported.
   */
  private retryWithLongerInterval(res: SipResponse): boolean {
    const t = this.timerConfig;
    const minSe = minSeOf(res);
    if (!t || minSe === undefined || minSe <= this.askedSeconds || this.tooSmall >= 2) return false;
    this.tooSmall++;
    this.askedSeconds = minSe;
    const next = this.invite.clone();
    next.removeFirst('Via');
    next.set('CSeq', `${this.invite.cseq.seq + 1} INVITE`);
    const se = next.get('session-expires') ?? '';
    const params = se.includes(';') ? se.slice(se.indexOf(';')) : '';
    next.set('Session-Expires', `${minSe}${params}`);
    next.set('Min-SE', String(minSe));
    this.invite = next;
    this.tx = this.core.sendInvite(next, this.destination, this.inviteUser!);
    return true;
  }

  /**
   * Answered and ACKed: from now on the call keeps its dialog, not the INVITE (its text only,
   * for `invite`), and the INVITE transaction — waiting in Accepted for 64·T1 (Timer M, RFC 6026
   * §8.4) for 2xx retransmissions and other forks — answers those from the dialog alone, without
   * holding the call.
   */
  protected override settled(): void {
    const inv = this.inv;
    if (inv !== undefined) {
      this.kept = KeptInvite.of(inv, this.localSdp);
      this.inv = undefined;
    }
    this.digest = undefined;
    const tx = this.tx;
    // No INVITE is sent again: the transactions report to LateAnswers from now on.
    if (tx instanceof InviteClientTransaction) this.inviteUser = undefined;
    if (tx instanceof InviteClientTransaction) {
      if (tx.state === 'accepted') {
        // Until Timer M ends it (LateAnswers tells the call, which lets go of it then) or the
        // call ends (cleanup hands the transaction a user that does not know the call).
        tx.rebind(new LateAnswers(this.core, this.dialog, undefined, this.inviteSeq, this.dest, this));
        this.accepted = tx;
      }
      this.tx = undefined;
    }
  }

  /** @internal A held call's INVITE transaction ended (Timer M): the call lets go of it. */
  acceptedEnded(tx: unknown): void {
    if (this.accepted === tx) this.accepted = undefined;
  }

  protected override cleanup(): void {
    this.endEarlyDialogs();
    // The INVITE transaction may wait in Accepted for 64·T1 more (Timer M, RFC 6026 §8.4): a
    // late 2xx then needs the confirmed dialog (or, never answered, the INVITE), not the call
    // and all it holds (in a B2BUA, the other leg too).
    // Its end no longer concerns the call, which the transaction must not hold for Timer M: the
    // user rebound below does not know the call.
    const tx = this.tx ?? this.accepted;
    this.accepted = undefined;
    // (A located INVITE's transaction sits inside its fail-over request: it keeps the call as before.)
    if (tx instanceof InviteClientTransaction && tx.state === 'accepted') {
      const d = this.dialog;
      tx.rebind(
        (d && (RebuiltAnswers.of(this.core, d, this.inviteSeq, this.dest) ?? EndedAnswers.of(this.core, d, this.inviteSeq, this.dest))) ??
          new LateAnswers(this.core, d, d === undefined ? this.inv : undefined, this.inviteSeq, this.dest, undefined),
      );
    }
  }
}

/**
 * A 2xx to the INVITE of a confirmed dialog: a retransmission gets our ACK again, one from
 * another fork an ACK and a BYE in that fork's dialog (§13.2.2.4).
 */
function answeredAgain(core: UserAgentCore, d: Dialog, inviteSeq: number, destination: Target, res: SipResponse, tag: string): void {
  if (tag !== d.remoteTag) {
    core.ackAndByeDialog(Dialog.fork(d, res, inviteSeq, destination), inviteSeq, d.ackCredentials);
    return;
  }
  const seq = d.lastAckSeq;
  // No ACK yet: a late-offer answer is still being computed, and its ACK will answer this too.
  if (seq === undefined) return;
  core.sendAck(d, seq === res.cseq.seq ? d.lastAck! : d.createRequest('ACK', { cseq: res.cseq.seq }));
}

/**
 * What the INVITE transaction reports to once the call is set up or over, in Accepted: a 2xx
 * retransmission on the confirmed dialog gets its ACK again, a 2xx from another fork (or one
 * that crossed our CANCEL) an ACK and a BYE (RFC 3261 §13.2.2.4) — as the call itself would.
 * It holds the dialog (or, for a call never answered, the INVITE), not the call.
 */
class LateAnswers implements ClientTransactionUser {
  constructor(
    private readonly core: UserAgentCore,
    private readonly dialog: Dialog | undefined,
    private readonly invite: SipRequest | undefined,
    private readonly inviteSeq: number,
    private readonly destination: Target,
    /** A held call, told when Timer M ends the transaction (then it lets go of it); none once the call ended. */
    private readonly owner: OutgoingCall | undefined,
  ) {}

  onResponse(res: SipResponse): void {
    if (res.status < 200 || res.status >= 300) return;
    const tag = toTag(res);
    if (!tag) return;
    if (this.dialog !== undefined) answeredAgain(this.core, this.dialog, this.inviteSeq, this.destination, res, tag);
    else if (this.invite !== undefined) this.core.ackAndBye(this.invite, res, this.destination);
  }

  onTerminated(tx: unknown): void {
    this.owner?.acceptedEnded(tx);
  }
}

/**
 * What an ended call's late-2xx answerer shares with every other one of its user agent over the
 * same Contact: one per core, Contact and sips, not one per call.
 */
class LocalSide {
  constructor(
    readonly core: UserAgentCore,
    readonly contact: string,
    readonly secure: boolean,
  ) {}
}

const localSides = new WeakMap<UserAgentCore, [Map<string, LocalSide>, Map<string, LocalSide>]>();

function localSideOf(core: UserAgentCore, contact: string, secure: boolean): LocalSide {
  let maps = localSides.get(core);
  if (maps === undefined) localSides.set(core, (maps = [new Map(), new Map()]));
  const m = maps[secure ? 1 : 0];
  let side = m.get(contact);
  if (side === undefined) m.set(contact, (side = new LocalSide(core, contact, secure)));
  return side;
}

/**
 * LateAnswers for a call that ended when its last ACK can be built again from a late 2xx itself:
 * it keeps no ACK and no dialog, only what the 2xx does not say — the peer address (the
 * destination, which the dialog's peer address is), our Contact and sips (shared per core,
 * LocalSide), the INVITE's CSeq number and the confirmed dialog's remote tag (a retransmission
 * of its 2xx is ACKed, another fork's is ACKed and BYEd) — ~0.3 KB less per ended call than
 * EndedAnswers for Timer M's 64·T1 (issue #16).
 *
 * Why the ACK so rebuilt is the one RFC 3261 §13.2.2.4 asks for, which the dialog built and sent
 * (Dialog.createRequest): its header fields are those of a request in the dialog (§12.2.1.1)
 * but for CSeq — the INVITE's number, method ACK — and authentication. Taken only when
 *   - the dialog has no route set: the Request-URI is the remote target, the 2xx's Contact
 *     (§12.1.2; the 2xx retransmitted is the one that set it, and the peer retransmits it only
 *     while our ACK has not reached it, so it is the target our ACK was built with), and no
 *     Route is written;
 *   - the last ACK is the INVITE's (CSeq `inviteSeq`, not a later re-INVITE's) and has no body
 *     (a late-offer answer is not in the 2xx: such an ACK is kept as text, EndedAnswers);
 *   - it carries no credentials: §13.2.2.4 has the ACK carry the INVITE's (Authorization,
 *     Proxy-Authorization, after a challenge), which a 2xx does not repeat — the dialog keeps
 *     them with the ACK (lastAck) and such an ACK is kept as text. The dialog builds its ACK from
 *     its CSeq, body and credentials only: no other header field is lost;
 *   - the dialog's peer address is the INVITE's destination (what is kept).
 * From, To and Call-ID are the dialog's: the 2xx copies From and Call-ID from the INVITE and its
 * To is the INVITE's with the remote tag (§8.2.6.2, §12.1.2: the local and remote URI are the
 * INVITE's From and To), and a 2xx reaches this transaction only by its branch, so it answers
 * our INVITE. A fork's 2xx builds its own dialog from itself as the call would (Dialog.fork).
 */
class RebuiltAnswers implements ClientTransactionUser {
  private constructor(
    private readonly side: LocalSide,
    private readonly destination: Target,
    private readonly remoteTag: string,
    private readonly inviteSeq: number,
  ) {}

  static of(core: UserAgentCore, d: Dialog, inviteSeq: number, destination: Target): RebuiltAnswers | undefined {
    if (d.routeSet.length > 0 || d.peerAddress !== destination || d.remoteTag === '' || !d.ackRebuildable(inviteSeq)) return undefined;
    return new RebuiltAnswers(localSideOf(core, d.localContact, d.secure), destination, d.remoteTag, inviteSeq);
  }

  onResponse(res: SipResponse): void {
    if (res.status < 200 || res.status >= 300) return;
    const tag = toTag(res);
    // The dialog is rebuilt from the 2xx itself: one whose From lost our tag (malformed: §8.2.6.2
    // copies it) is dropped, not answered with a dialog it cannot name.
    if (!tag || !res.from.tag) return;
    const side = this.side;
    const d = Dialog.fromAnswer(res, this.inviteSeq, this.destination, side.contact, side.secure);
    if (tag === this.remoteTag) {
      // Our ACK again; for a 2xx of another CSeq (none reaches this transaction), an ACK of its own.
      side.core.sendAck(d, res.cseq.seq === this.inviteSeq ? d.lastAck! : d.createRequest('ACK', { cseq: res.cseq.seq }));
    } else {
      side.core.ackAndByeDialog(d, this.inviteSeq);
    }
  }
}

/**
 * LateAnswers for a call that ended, when its dialog has no route set and an ACK went out: the
 * dialog's last ACK as text (without Via) and what the ACK does not say (peer address, our
 * Contact, sips), not the dialog — ~0.2 KB less per ended call for Timer M's 64·T1 (issue
 * #16). A late 2xx rebuilds the dialog from it (Dialog.fromAck), then is answered as LateAnswers
 * answers it: our ACK again, or an ACK and a BYE for another fork. With a route set the next
 * hop may be a host name whose located target is remembered per dialog: LateAnswers keeps it.
 */
class EndedAnswers implements ClientTransactionUser {
  private constructor(
    private readonly core: UserAgentCore,
    private readonly ack: string,
    private readonly inviteSeq: number,
    private readonly destination: Target,
    private readonly peerAddress: TransportAddress | undefined,
    private readonly localContact: string,
    private readonly secure: boolean,
  ) {}

  static of(core: UserAgentCore, d: Dialog, inviteSeq: number, destination: Target): EndedAnswers | undefined {
    if (d.routeSet.length > 0 || d.peerAddress === undefined || d.remoteTag === '') return undefined;
    const ack = d.lastAck;
    // No ACK yet (a late-offer answer still being computed): LateAnswers waits for it with the dialog.
    if (ack === undefined) return undefined;
    return new EndedAnswers(core, keepBytes(ack.toBytes()), inviteSeq, destination, d.peerAddress, d.localContact, d.secure);
  }

  onResponse(res: SipResponse): void {
    if (res.status < 200 || res.status >= 300) return;
    const tag = toTag(res);
    if (!tag) return;
    const ack = parseMessage(resendable(this.ack)) as SipRequest;
    answeredAgain(this.core, Dialog.fromAck(ack, this.peerAddress, this.localContact, this.secure), this.inviteSeq, this.destination, res, tag);
  }
}
