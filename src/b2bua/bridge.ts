import { createResponse, type HeaderInit, type Reason, type SipRequest, type SipResponse } from '../parser/index.js';
import type { Timer } from '../transport/index.js';
import { isSynthesized, type ServerTransaction, type Target } from '../transaction/index.js';
import { reasonOf, type Call, type HangupCause, type IncomingCall, type OfferAnswer, type OutgoingCall, type ReasonInit } from '../dialog/index.js';
import { q850For } from './causes.js';
import { crossHeaders } from './headers.js';
import type { CallRecord, HangupRecord, RelayedBye } from './record.js';

/** Where the B leg goes: a URI, and optionally an explicit next hop. */
export interface RouteTarget {
  uri: string;
  destination?: Target;
}

export interface MediaContext {
  record: CallRecord;
  /** The leg the SDP comes from. */
  from: 'caller' | 'callee';
  /** Where in the call: the initial INVITE, early media, the answer, or a later update. */
  phase: 'initial' | 'early' | 'answer' | 'update';
}

export type SdpBody = Uint8Array | string;

/**
 * Media hooks: where an RTP anchor plugs in. Sync or async. A hook may rewrite
 * SDP but not drop it: an early-media answer always reaches the caller.
 */
export interface MediaHooks {
  onOffer?(sdp: Uint8Array, ctx: MediaContext): SdpBody | Promise<SdpBody>;
  onAnswer?(sdp: Uint8Array, ctx: MediaContext): SdpBody | Promise<SdpBody>;
  /** The call is over: release what was anchored for it. */
  onEnd?(record: CallRecord): void;
}

/** What a bridge needs from the B2BUA that owns it. */
export interface BridgeHost {
  /** @internal */
  placeCall(target: RouteTarget, a: IncomingCall, bridge: Bridge, offer: Uint8Array | undefined): OutgoingCall;
  readonly media: MediaHooks;
  readonly responseHeaders: readonly string[];
  readonly requestHeaders: readonly string[];
  readonly relayMethods: readonly string[];
  readonly failoverStatuses: (status: number) => boolean;
  readonly q850: Readonly<Record<number, number>> | undefined;
  readonly noAnswerTimeoutMs: number;
  readonly noAnswerStatus: number;
  /** @internal */
  setTimer(ms: number, fn: () => void): Timer;
  /** @internal Wall-clock time (ms since the epoch) of the injected clock, for the record's timestamps. */
  now(): number;
  /** @internal B answered and A is about to get its 200: the moment a call journal writes the call down. */
  answering(bridge: Bridge, b: OutgoingCall): void;
  /** @internal */
  changed(bridge: Bridge): void;
  /** @internal */
  finished(bridge: Bridge): void;
}

function toBytes(b: SdpBody): Uint8Array {
  return typeof b === 'string' ? Buffer.from(b) : b;
}

function reasonInit(r: Reason | undefined): ReasonInit | undefined {
  return r ? { protocol: r.protocol, cause: r.cause, text: r.text } : undefined;
}

/** In-dialog headers that must cross with the request they qualify (RFC 6665, RFC 3515, RFC 6086). */
const IN_DIALOG_HEADERS = ['Event', 'Subscription-State', 'Refer-To', 'Referred-By', 'Info-Package', 'Allow-Events'];

/**
 * One bridged call: the A leg (caller) and the B leg (callee, one target after
 * another on fail-over). Every relay from B to A goes through one queue, so an
 * async media hook cannot let a 200 overtake the 183 before it.
 */
export class Bridge {
  b: OutgoingCall | undefined;
  private targets: RouteTarget[] = [];
  private attempt = 0;
  private queue: Promise<void> = Promise.resolve();
  /** SDP sent to A in an early (18x) answer, and whether that 18x was reliable (PRACKed). */
  private earlyAnswer: Uint8Array | undefined;
  private earlyAnswerReliable = false;
  private noAnswer: Timer | undefined;
  private offerToB: Uint8Array | undefined;
  private lateOfferAnswer: ((sdp: Uint8Array) => void) | undefined;
  private done = false;

  constructor(
    private readonly host: BridgeHost,
    readonly a: IncomingCall,
    readonly record: CallRecord,
  ) {}

  get ended(): boolean {
    return this.done;
  }

  /** @internal */
  /** Route chosen: place the B leg(s). */
  async dial(targets: RouteTarget[]): Promise<void> {
    this.targets = targets;
    const offer = this.a.invite.body.length > 0 ? this.a.invite.body : undefined;
    this.offerToB = offer && this.host.media.onOffer ? toBytes(await this.host.media.onOffer(offer, this.ctx('caller', 'initial'))) : offer;
    if (this.a.ended) return this.finishFromA();
    this.noAnswer = this.host.setTimer(this.host.noAnswerTimeoutMs, () => this.onNoAnswer());
    this.next();
  }

  private ctx(from: 'caller' | 'callee', phase: MediaContext['phase']): MediaContext {
    return { record: this.record, from, phase };
  }

  private next(): void {
    const target = this.targets[this.attempt++]!;
    this.record.bLeg.target = target.uri;
    this.record.bLeg.attempts++;
    const b = this.host.placeCall(target, this.a, this, this.offerToB);
    this.b = b;
    this.record.bLeg.callId = b.callId;
    this.host.changed(this);
    b.on('provisional', (res) => this.enqueue(() => this.relayProvisional(b, res)));
    b.on('answer', (res) => this.enqueue(() => this.relayAnswer(b, res)));
    b.on('failure', (res, cause) => this.enqueue(() => this.relayFailure(b, res, cause)));
    // A BYE from B is relayed by the onBye policy (relayBye), before B's call reports its end.
    b.on('request', (req, tx) => void this.relayRequest(this.a, req, tx));
  }

  private enqueue(step: () => void | Promise<void>): void {
    // A hook that throws must not leave either side hanging.
    this.queue = this.queue.then(step).catch(() => this.shutdown({ protocol: 'Q.850', cause: q850For(500, this.host.q850) }, 500));
  }

  // ---- B → A -------------------------------------------------------------------------

  /** A is answered or gone: provisionals no longer matter to it. */
  private callerSettled(): boolean {
    return this.a.ended || this.a.state === 'answered';
  }

  private async relayProvisional(b: OutgoingCall, res: SipResponse): Promise<void> {
    if (b !== this.b || this.callerSettled() || res.status === 100) return;
    let body: Uint8Array | undefined;
    if (res.body.length > 0) {
      body = this.host.media.onAnswer ? toBytes(await this.host.media.onAnswer(res.body, this.ctx('callee', 'early'))) : res.body;
    }
    // The hook may have been slow: look again.
    if (b !== this.b || this.callerSettled()) return;
    const t = this.host.now();
    if (body) {
      if (this.record.state !== 'progressing') {
        this.record.state = 'progressing';
        this.record.timestamps.progressing ??= t;
      }
    } else if (this.record.state === 'dialing') {
      this.record.state = 'ringing';
      this.record.timestamps.ringing ??= t;
    }
    this.host.changed(this);
    // Early media pass-through: the SDP always reaches A; reliably when A supports 100rel.
    const reliable = body !== undefined && this.a.peerSupports100rel;
    this.a.provisional(res.status, {
      phrase: res.reason,
      body,
      contentType: body ? (res.get('content-type') ?? 'application/sdp') : undefined,
      reliable,
      headers: crossHeaders(res, this.host.responseHeaders),
    });
    if (body) {
      this.earlyAnswer = body;
      this.earlyAnswerReliable = reliable;
    }
  }

  private async relayAnswer(b: OutgoingCall, res: SipResponse): Promise<void> {
    this.noAnswer?.cancel();
    if (b !== this.b) {
      void b.hangup();
      return;
    }
    if (this.a.ended || this.done) {
      // A cancelled while B answered: the B leg is ACKed; end it.
      void b.hangup({ reason: reasonInit(this.a.cause?.reason) });
      return;
    }
    const lateOffer = this.a.invite.body.length === 0 && res.body.length > 0;
    let body: Uint8Array | undefined;
    if (res.body.length > 0) {
      const hook = lateOffer ? this.host.media.onOffer : this.host.media.onAnswer;
      body = hook ? toBytes(await hook(res.body, this.ctx('callee', lateOffer ? 'initial' : 'answer'))) : res.body;
    } else if (this.earlyAnswer && !this.earlyAnswerReliable) {
      // The 200 must carry the answer A only saw in an unreliable 18x (RFC 3261 §13.2.1).
      body = this.earlyAnswer;
    }
    if (this.a.ended) {
      void b.hangup();
      return;
    }
    this.host.answering(this, b);
    await this.a.answer({ phrase: res.reason, body, headers: crossHeaders(res, this.host.responseHeaders) });
    if (this.a.state !== 'answered') {
      void b.hangup();
      return;
    }
    this.record.state = 'answered';
    this.record.timestamps.answered = this.host.now();
    this.host.changed(this);
  }

  private async relayFailure(b: OutgoingCall, res: SipResponse, cause: HangupCause): Promise<void> {
    if (b !== this.b || this.done) return;
    if (this.a.ended) return this.finishFromA();
    const more = this.attempt < this.targets.length;
    if (more && this.host.failoverStatuses(res.status) && !this.a.ended) {
      this.next();
      return;
    }
    this.noAnswer?.cancel();
    const synthesized = isSynthesized(res);
    // Hangup-cause relay: same status and phrase, B's Reason or one derived from the status.
    const status = res.status;
    const phrase = synthesized ? undefined : res.reason;
    const reason: ReasonInit = reasonInit(reasonOf(res)) ?? { protocol: 'Q.850', cause: q850For(status, this.host.q850) };
    await this.a.reject(status, { phrase, reason, headers: synthesized ? [] : crossHeaders(res, this.host.responseHeaders) });
    this.end({ by: synthesized || cause.by === 'system' ? 'system' : 'callee', status, phrase: phrase ?? res.reason, q850: reason.protocol === 'Q.850' ? reason.cause : q850For(status, this.host.q850) });
  }

  private onNoAnswer(): void {
    if (this.done || this.a.state === 'answered' || this.a.ended) return;
    const status = this.host.noAnswerStatus;
    const cause = q850For(status, this.host.q850);
    this.b?.cancel({ protocol: 'Q.850', cause, text: 'No answer' });
    void this.a.reject(status, { reason: { protocol: 'Q.850', cause } });
    this.end({ by: 'system', status, phrase: undefined, q850: cause });
  }

  /** @internal */
  /**
   * A BYE from one leg: it is answered at once — that dialog is over whatever the other leg
   * does (RFC 3261 §15.1.2) — and relayed to the other leg with the same Reason. What became
   * of the relayed BYE is written into `record.hangup.relayedBye` when its final response
   * comes (a dead leg: 408 after Timer F), followed by an 'update' of the record.
   */
  relayBye(from: 'caller' | 'callee', cause: HangupCause): void {
    if (this.done) return;
    const other: Call | undefined = from === 'caller' ? this.b : this.a;
    const r = cause.reason;
    const answered = other !== undefined && other.state === 'answered';
    this.end({
      by: from,
      status: undefined,
      phrase: undefined,
      q850: r && r.protocol.toUpperCase() === 'Q.850' ? r.cause : 16,
      ...(answered ? { relayedBye: { to: from === 'caller' ? 'callee' : 'caller', outcome: 'pending' } } : {}),
    });
    if (!answered) return;
    void other.hangup({ reason: reasonInit(r) });
    const relayed = this.record.hangup!.relayedBye!;
    const settle = (outcome: RelayedBye['outcome'], status?: number) => {
      relayed.outcome = outcome;
      if (status !== undefined) relayed.status = status;
      this.host.changed(this);
    };
    const sent = other.byeResponse;
    if (!sent) return settle('transport-error');
    sent.then(
      (res) => settle(!isSynthesized(res) ? 'answered' : res.status === 408 ? 'timeout' : 'transport-error', res.status),
      () => settle('transport-error'),
    );
  }

  // ---- A → B -------------------------------------------------------------------------

  /** @internal */
  /** The caller's call ended (CANCEL before answer, BYE after): end the B leg with the same Reason. */
  onCallerEnded(cause: HangupCause): void {
    if (this.done) return;
    this.noAnswer?.cancel();
    const reason = reasonInit(cause.reason);
    if (cause.by === 'remote') {
      if (this.b && this.b.state === 'answered') void this.b.hangup({ reason });
      else this.b?.cancel(reason);
      this.end({
        by: 'caller',
        status: cause.status,
        phrase: cause.phrase,
        q850: cause.reason?.protocol.toUpperCase() === 'Q.850' ? cause.reason.cause : cause.status ? q850For(cause.status, this.host.q850) : 16,
      });
    } else if (cause.by === 'system') {
      // A's leg failed on its own (its ACK never came): take B down too.
      if (this.b && this.b.state === 'answered') void this.b.hangup({ reason });
      else this.b?.cancel(reason);
      this.end({ by: 'system', status: cause.status, phrase: cause.phrase, q850: cause.reason?.cause ?? 41 });
    }
    // by === 'local': the bridge ended A itself (relayed failure, no answer, B's BYE) and records that.
  }

  private finishFromA(): void {
    if (this.a.cause) this.onCallerEnded(this.a.cause);
  }

  /** @internal */
  /** The caller's ACK (late offer: it carries the answer for B's ACK). */
  onCallerAck(ack: SipRequest): void {
    const resolve = this.lateOfferAnswer;
    if (!resolve) return;
    this.lateOfferAnswer = undefined;
    if (ack.body.length === 0) return resolve(new Uint8Array(0));
    const hook = this.host.media.onAnswer;
    if (!hook) return resolve(ack.body);
    void Promise.resolve(hook(ack.body, this.ctx('caller', 'answer'))).then((b) => resolve(toBytes(b)));
  }

  /** @internal */
  /** B's 2xx carried an offer (late offer): its ACK waits for A's answer. */
  lateOffer(): Promise<Uint8Array> {
    return new Promise((resolve) => (this.lateOfferAnswer = resolve));
  }

  /** @internal */
  /** A re-INVITE or UPDATE from one leg, relayed to the other with the media hooks. */
  async relayUpdate(from: Call, req: SipRequest): Promise<OfferAnswer> {
    const to: Call | undefined = from === this.a ? this.b : this.a;
    if (!to || to.state !== 'answered' || from.state !== 'answered') return { status: 491 };
    const fromSide = from === this.a ? 'caller' : 'callee';
    const toSide = fromSide === 'caller' ? 'callee' : 'caller';
    const offer = req.body.length > 0 ? (this.host.media.onOffer ? toBytes(await this.host.media.onOffer(req.body, this.ctx(fromSide, 'update'))) : req.body) : undefined;
    const headers = crossHeaders(req, this.host.requestHeaders);
    const res = req.method === 'INVITE' ? await to.reinvite({ body: offer, headers, retryOn491: false }) : await to.update({ body: offer, headers });
    if (res.status < 200 || res.status >= 300) return { status: res.status };
    const answer = res.body.length > 0 ? (this.host.media.onAnswer ? toBytes(await this.host.media.onAnswer(res.body, this.ctx(toSide, 'update'))) : res.body) : undefined;
    return { status: 200, body: answer };
  }

  /** @internal */
  /** INFO, NOTIFY, MESSAGE, … from one leg: relayed to the other when policy allows, the answer relayed back. */
  async relayRequest(to: Call | undefined, req: SipRequest, tx: ServerTransaction): Promise<void> {
    if (!to || to.state !== 'answered' || !this.host.relayMethods.includes(req.method)) {
      tx.respond(createResponse(req, req.method === 'OPTIONS' ? 200 : 405));
      return;
    }
    const res = await to
      .request(req.method, {
        body: req.body.length > 0 ? req.body : undefined,
        contentType: req.get('content-type'),
        headers: [...crossHeaders(req, this.host.requestHeaders), ...crossHeaders(req, IN_DIALOG_HEADERS)],
      })
      // CLOSED: the user agent closed with the relay pending, and this transaction went with it.
      .catch(() => undefined);
    if (res) tx.respond(createResponse(req, res.status, { reason: res.reason }));
  }

  /**
   * @internal
   * End both legs now (shutdown, a refusal, a failed hook), with `reason`: BYE the answered
   * legs, CANCEL a ringing B leg, and answer a caller not answered yet with `status` (default
   * 503). The record gets the status the caller got — none once answered (a BYE carries no
   * status). A status reject() cannot send throws BAD_STATUS before anything changed.
   */
  shutdown(reason: ReasonInit, status = 503, extra: { phrase?: string; headers?: HeaderInit } = {}): void {
    if (this.done) return;
    // Read before hanging up: hangup() moves the call to 'ended'.
    const answered = this.a.state === 'answered';
    if (answered) void this.a.hangup({ reason });
    else void this.a.reject(status, { reason, phrase: extra.phrase, headers: extra.headers });
    this.b?.hangup({ reason }).catch(() => undefined);
    const got = answered ? undefined : this.a.cause;
    this.end({
      by: 'system',
      status: got?.status,
      phrase: got?.phrase,
      q850: reason.protocol.toUpperCase() === 'Q.850' ? reason.cause : got?.status ? q850For(got.status, this.host.q850) : undefined,
    });
  }

  // ---- bookkeeping ---------------------------------------------------------------------

  private end(h: HangupRecord): void {
    if (this.done) return;
    this.done = true;
    this.noAnswer?.cancel();
    this.record.state = 'hangup';
    this.record.timestamps.hangup = this.host.now();
    this.record.hangup = h;
    this.host.media.onEnd?.(this.record);
    this.host.finished(this);
  }
}

