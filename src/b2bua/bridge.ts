import { randomInt } from 'node:crypto';
import { createResponse, parseReason, formatReason, reasonPhrase, SipError, type HeaderInit, type HeaderValue, type Reason, type SipRequest, type SipErrorCode, type SipResponse } from '../parser/index.js';
import type { Timer } from '../transport/index.js';
import { failureCause, isSynthesized, type ServerTransaction, type Target } from '../transaction/index.js';
import {
  reasonOf,
  SESSION_EXPIRED,
  type Call,
  type CallEvents,
  type CallHandlers,
  type HangupCause,
  type IncomingCall,
  type OfferAnswer,
  type OutgoingCall,
  type ReasonInit,
} from '../dialog/index.js';
import { q850For } from './causes.js';
import { crossHeaders, extraHeaders } from './headers.js';
import type { CallRecord, HangupRecord, RelayedBye } from './record.js';

/**
 * Why the last target failed, as a typed code: the innermost SipError of `failureCause` (the
 * TransportError under TARGETS_EXHAUSTED when the last target could not be reached: a refused
 * certificate is TLS_IDENTITY, not only a made-up 503). Undefined for an answer that simply came.
 */
function targetErrorOf(res: SipResponse): SipErrorCode | undefined {
  let code: SipErrorCode | undefined;
  for (let e: unknown = failureCause(res); e instanceof SipError; e = e.cause) code = e.code;
  return code;
}

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

/**
 * How one call is bridged, chosen by the application call by call (`B2bua.bridge`). The
 * names and defaults are those of drachtio-srf's `createB2BUA`, so they read as Node SIP
 * developers expect; what differs is stated where it does.
 */
export interface BridgeOptions {
  /**
   * B's final failure (after the last target) is relayed to A — same status, phrase and
   * Reason (default true). false: A is left unanswered, and the bridge's promise rejects with
   * `relayed: false`, so the application can bridge the call again (another target, a
   * voicemail) or reject it itself. A caller nobody answers can still CANCEL.
   */
  passFailure?: boolean;
  /**
   * B's 18x are relayed to A (default true). false: A hears nothing after its 100 Trying until
   * the final response; an answer B gave in an 18x then goes to A in the 200.
   */
  passProvisionalResponses?: boolean;
  /** Headers crossed A→B on the INVITE and in-dialog requests, besides the B2BUA's set. */
  proxyRequestHeaders?: readonly string[];
  /** Headers crossed B→A on responses to the INVITE, besides the B2BUA's set. */
  proxyResponseHeaders?: readonly string[];
  /** Extra headers on B's INVITE. Via, CSeq, Call-ID, From, To, Contact… are the bridge's: naming one is BAD_OPTION. */
  headers?: HeaderInit;
  /** Extra headers on every response to A's INVITE (18x, 200, relayed failure): fixed, or made from B's response. */
  responseHeaders?: HeaderInit | ((response: SipResponse) => HeaderInit);
  /**
   * The SDP A gets in its 18x and 200, instead of what the media hooks make of B's: a fixed
   * body, or a function of B's SDP and the response that carried it (called once per distinct
   * SDP, so the 183's and the 200's match). Re-INVITEs and UPDATEs later go through the media hooks.
   */
  localSdpA?: SdpBody | ((sdp: Uint8Array, response: SipResponse) => SdpBody | Promise<SdpBody>);
  /**
   * The SDP B gets in the INVITE, instead of what the media hooks make of A's offer: a fixed
   * body, or a function of A's offer (undefined when A sent none).
   */
  localSdpB?: SdpBody | ((offer: Uint8Array | undefined) => SdpBody | Promise<SdpBody>);
  /** No final answer from B within this long → `noAnswerStatus` (the B2BUA's `noAnswerTimeoutMs` by default). */
  noAnswerTimeoutMs?: number;
}

/** Both legs of a bridged call, once B answered and A got its 200. */
export interface BridgedCall {
  a: IncomingCall;
  b: OutgoingCall;
  record: CallRecord;
}

/**
 * A call that could not be bridged: the final status B gave (or the bridge made: 408 no
 * answer, 503 unreachable, 487 the caller cancelled), its phrase and Reason, and whether
 * A was told (`relayed`: false only with `passFailure: false`, A still waiting).
 */
export class BridgeError extends SipError {
  declare readonly code: 'BRIDGE_FAILED';
  readonly status: number;
  readonly phrase: string;
  /** The RFC 3326 Reason: B's, or derived from the status (Q.850, RFC 3398). */
  readonly reason: Reason | undefined;
  /** Who ended the attempt: the callee's failure, the caller (CANCEL, hang-up), or the system (timeouts, hooks, shutdown). */
  readonly by: 'caller' | 'callee' | 'system';
  /** A got this failure (or hung up itself); false when A is still waiting for a final response. */
  readonly relayed: boolean;
  constructor(f: { status: number; phrase: string; reason: Reason | undefined; by: BridgeError['by']; relayed: boolean }, options?: { cause?: unknown }) {
    super('BRIDGE_FAILED', `call not bridged: ${f.status} ${f.phrase}`, options);
    this.name = 'BridgeError';
    this.status = f.status;
    this.phrase = f.phrase;
    this.reason = f.reason;
    this.by = f.by;
    this.relayed = f.relayed;
  }

  static {
    this.brand(Symbol.for('sipkit.error.BridgeError'));
  }
}

/** The options of one bridge with every default resolved. */
interface Settings {
  requestHeaders: readonly string[];
  responseHeaders: readonly string[];
  passFailure: boolean;
  passProvisional: boolean;
  headers: Array<[string, HeaderValue]>;
  responseExtra: BridgeOptions['responseHeaders'];
  localSdpA: BridgeOptions['localSdpA'];
  localSdpB: BridgeOptions['localSdpB'];
  noAnswerTimeoutMs: number;
}

/** What a bridge needs from the B2BUA that owns it. */
export interface BridgeHost {
  /** @internal Send the B leg's INVITE (a new dialog) with what the bridge chose to put in it; `leg` is its hooks and observer. */
  placeCall(target: RouteTarget, bridge: Bridge, invite: { body: Uint8Array | undefined; contentType: string | undefined; headers: Array<[string, HeaderValue]> }, leg: BLeg): OutgoingCall;
  /** @internal The targets to try, in order (those probed down left out). */
  usableTargets?(targets: readonly RouteTarget[]): RouteTarget[];
  /** @internal A user hook or bridge option function threw or rejected during a bridge: report it. */
  hookFailed(bridge: Bridge, error: unknown): void;
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
const IN_DIALOG_HEADERS: readonly string[] = Object.freeze(['Event', 'Subscription-State', 'Refer-To', 'Referred-By', 'Info-Package', 'Allow-Events']);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const NO_TARGETS: readonly RouteTarget[] = Object.freeze([]);

/** Where each bridge's relay queue starts (and starts again once the call is up). */
const SETTLED: Promise<void> = Promise.resolve();

/** The settings of a bridge dialled without options, per host: one object for all its calls. */
const defaultSettings = new WeakMap<BridgeHost, Settings>();

/**
 * @internal
 * What a B leg tells its bridge — its hooks (re-INVITE/UPDATE, late offer, BYE) and its events —
 * as one small object per leg with methods, rather than a closure per hook and per event.
 */
export class BLeg implements CallHandlers, Partial<CallEvents> {
  /** The leg, once placed (its events name it: a later attempt's leg replaces it in the bridge). */
  call: OutgoingCall | undefined = undefined;
  constructor(private readonly bridge: Bridge) {}

  onUpdate(req: SipRequest, call: Call): Promise<OfferAnswer> {
    return this.bridge.relayUpdate(call, req);
  }

  onLateOffer(): Promise<Uint8Array> {
    return this.bridge.lateOffer();
  }

  onBye(_req: SipRequest, cause: HangupCause): void {
    this.bridge.relayBye('callee', cause);
  }

  provisional(res: SipResponse): void {
    const b = this.call;
    if (b) this.bridge.fromB('provisional', b, res);
  }

  answer(res: SipResponse): void {
    const b = this.call;
    if (b) this.bridge.fromB('answer', b, res);
  }

  failure(res: SipResponse, cause: HangupCause): void {
    const b = this.call;
    if (b) this.bridge.fromB('failure', b, res, cause);
  }

  // A BYE from B is relayed by onBye (relayBye), before B's call reports its end.
  request(req: SipRequest, tx: ServerTransaction): void {
    void this.bridge.relayRequest(this.bridge.a, req, tx);
  }

  /** The B leg ended itself (its session expired, a refresh failed): the caller gets the same Reason. */
  ended(cause: HangupCause): void {
    // (The caller's leg doing so reaches the bridge as onCallerEnded with by 'system'.)
    if (cause.by === 'system' && cause.method === 'BYE') {
      const r = cause.reason;
      this.bridge.shutdown(r ? { protocol: r.protocol, cause: r.cause, text: r.text } : SESSION_EXPIRED);
    }
  }
}

/** @internal What the A leg tells its bridge: its end, its ACK, and requests in its dialog. */
export class ALeg implements Partial<CallEvents> {
  constructor(private readonly bridge: Bridge) {}

  ended(cause: HangupCause): void {
    this.bridge.onCallerEnded(cause);
  }

  ack(ack: SipRequest): void {
    this.bridge.onCallerAck(ack);
  }

  request(req: SipRequest, tx: ServerTransaction): void {
    void this.bridge.relayRequest(this.bridge.b, req, tx);
  }
}

/**
 * One bridged call: the A leg (caller) and the B leg (callee, one target after
 * another on fail-over). Every relay from B to A goes through one queue, so an
 * async media hook cannot let a 200 overtake the 183 before it.
 *
 * A bridge exists from the moment a call authenticated (it holds the record); `dial`
 * starts an attempt to reach B, and with `passFailure: false` a failed attempt leaves the
 * bridge ready to dial again.
 */
export class Bridge {
  b: OutgoingCall | undefined;
  private settings: Settings;
  private targets: readonly RouteTarget[] = [];
  private attempt = 0;
  private queue: Promise<void> = SETTLED;
  /** SDP sent to A in an early (18x) answer, and whether that 18x was reliable (PRACKed). */
  private earlyAnswer: Uint8Array | undefined;
  private earlyAnswerReliable = false;
  /** B's early SDP and its 18x, kept when provisionals are not relayed: A gets it in the 200. */
  private heldEarly: { sdp: Uint8Array; response: SipResponse } | undefined;
  /** B's answer came in a reliable 18x: our offer to B is answered before the 200 (RFC 3262). */
  private bAnsweredEarly = false;
  /** localSdpA's last input and result: the same SDP in B's 183 and 200 gives A the same SDP. */
  private sdpAMemo: { sdp: Uint8Array; out: Promise<Uint8Array> } | undefined;
  private noAnswer: Timer | undefined;
  private offerToB: Uint8Array | undefined;
  private lateOfferAnswer: ((sdp: Uint8Array) => void) | undefined;
  /** An attempt in progress: settled when A got its 200, or when the attempt failed. */
  private pending: { resolve: (c: BridgedCall) => void; reject: (e: BridgeError) => void } | undefined;
  /** A's ACK came (or the call ended): what a re-INVITE from B waits for before it is relayed to A. */
  private aAcked = false;
  private ackWaiters: Array<() => void> | undefined = undefined;
  /** The bridge itself is ending A (relayed failure, no answer, a BYE, shutdown): not the application. */
  private endingA = false;
  private done = false;

  constructor(
    private readonly host: BridgeHost,
    readonly a: IncomingCall,
    readonly record: CallRecord,
  ) {
    this.settings = this.settingsFor(undefined);
  }

  get ended(): boolean {
    return this.done;
  }

  /** @internal An attempt to reach B is in progress. */
  get dialing(): boolean {
    return this.pending !== undefined;
  }

  private settingsFor(options: BridgeOptions | undefined): Settings {
    const h = this.host;
    if (options === undefined) {
      let d = defaultSettings.get(h);
      if (d === undefined) defaultSettings.set(h, (d = this.settingsFor({})));
      return d;
    }
    const o = options;
    if (o.responseHeaders !== undefined && typeof o.responseHeaders !== 'function') extraHeaders(o.responseHeaders, 'responseHeaders');
    return {
      requestHeaders: o.proxyRequestHeaders ? [...h.requestHeaders, ...o.proxyRequestHeaders] : h.requestHeaders,
      responseHeaders: o.proxyResponseHeaders ? [...h.responseHeaders, ...o.proxyResponseHeaders] : h.responseHeaders,
      passFailure: o.passFailure ?? true,
      passProvisional: o.passProvisionalResponses ?? true,
      headers: extraHeaders(o.headers, 'headers'),
      responseExtra: o.responseHeaders,
      localSdpA: o.localSdpA,
      localSdpB: o.localSdpB,
      noAnswerTimeoutMs: o.noAnswerTimeoutMs ?? h.noAnswerTimeoutMs,
    };
  }

  /**
   * @internal
   * Place the B leg(s): targets in fail-over order. Resolves when B answered and A got its
   * 200; rejects with `BridgeError` when the call could not be bridged (see `passFailure`),
   * with `SipError` `BAD_OPTION` (nothing sent) or `NOT_BRIDGEABLE` (A answered, ended, or dialing).
   */
  dial(targets: readonly RouteTarget[], options: BridgeOptions = {}): Promise<BridgedCall> {
    if (this.done || this.a.ended || this.a.state === 'answered' || this.pending) {
      return Promise.reject(new SipError('NOT_BRIDGEABLE', this.pending ? 'this call is already being bridged' : 'this call is answered or over'));
    }
    let settings: Settings;
    try {
      settings = this.settingsFor(Object.keys(options).length === 0 ? undefined : options);
    } catch (err) {
      return Promise.reject(err);
    }
    this.settings = settings;
    this.targets = this.host.usableTargets?.(targets) ?? [...targets];
    this.attempt = 0;
    const result = new Promise<BridgedCall>((resolve, reject) => (this.pending = { resolve, reject }));
    void this.start();
    return result;
  }

  private async start(): Promise<void> {
    if (this.targets.length === 0) {
      return this.failed({ status: 404, phrase: undefined, reason: undefined, headers: [], by: 'system', response: undefined });
    }
    // A's offer as the call keeps it (a buffer of its own): B's INVITE and B's call then share it.
    const offer = this.a.remoteSdp;
    try {
      const l = this.settings.localSdpB;
      const chosen = l === undefined ? (offer && this.host.media.onOffer ? await this.host.media.onOffer(offer, this.ctx('caller', 'initial')) : offer) : typeof l === 'function' ? await l(offer) : l;
      const bytes = chosen === undefined ? undefined : toBytes(chosen);
      this.offerToB = bytes && bytes.length > 0 ? bytes : undefined;
    } catch (err) {
      return this.hookError(err);
    }
    if (this.a.ended) return this.finishFromA();
    if (this.done || !this.pending) return;
    this.noAnswer = this.host.setTimer(this.settings.noAnswerTimeoutMs, () => this.onNoAnswer());
    this.next();
  }

  private ctx(from: 'caller' | 'callee', phase: MediaContext['phase']): MediaContext {
    return { record: this.record, from, phase };
  }

  private next(): void {
    const target = this.targets[this.attempt++]!;
    this.record.bLeg.target = target.uri;
    this.record.bLeg.attempts++;
    this.heldEarly = undefined;
    this.bAnsweredEarly = false;
    this.sdpAMemo = undefined;
    const offer = this.offerToB;
    const inv = this.a.invite;
    const leg = new BLeg(this);
    const b = this.host.placeCall(
      target,
      this,
      {
        body: offer,
        contentType: offer ? (this.settings.localSdpB === undefined ? (inv.get('content-type') ?? 'application/sdp') : 'application/sdp') : undefined,
        headers: [...crossHeaders(inv, this.settings.requestHeaders), ...this.settings.headers],
      },
      leg,
    );
    leg.call = b;
    this.b = b;
    this.record.bLeg.callId = b.callId;
    this.host.changed(this);
  }

  /** @internal An event of B leg `b` (see BLeg): relayed to A in order, through the queue. */
  fromB(event: 'provisional' | 'answer' | 'failure', b: OutgoingCall, res: SipResponse, cause?: HangupCause): void {
    if (event === 'provisional') this.enqueue(() => this.relayProvisional(b, res));
    else if (event === 'answer') this.enqueue(() => this.relayAnswer(b, res));
    else this.enqueue(() => this.relayFailure(b, res, cause!));
  }

  private enqueue(step: () => void | Promise<void>): void {
    // A hook that throws must not leave either side hanging.
    this.queue = this.queue.then(step).catch((err: unknown) => this.hookError(err));
  }

  /** A media hook or an option function failed: both legs end (A gets 500) and the error is reported. */
  private hookError(err: unknown): void {
    if (this.done) return;
    this.shutdown({ protocol: 'Q.850', cause: q850For(500, this.host.q850) }, 500, {}, err);
    this.host.hookFailed(this, err);
  }

  // ---- B → A -------------------------------------------------------------------------

  /** A is answered or gone: provisionals no longer matter to it. */
  private callerSettled(): boolean {
    return this.a.ended || this.a.state === 'answered';
  }

  /** Headers on a response to A made from B's `res`: the crossed ones, then the application's. */
  private responseHeadersFor(res: SipResponse, cross = true): Array<[string, HeaderValue]> {
    const extra = this.settings.responseExtra;
    const crossed: Array<[string, HeaderValue]> = cross ? crossHeaders(res, this.settings.responseHeaders) : [];
    if (extra === undefined) return crossed;
    return [...crossed, ...extraHeaders(typeof extra === 'function' ? extra(res) : extra, 'responseHeaders')];
  }

  /** The SDP A gets for B's `sdp`: localSdpA when the application gave one, else the media hook's. */
  private async sdpForA(sdp: Uint8Array, res: SipResponse, phase: 'initial' | 'early' | 'answer'): Promise<Uint8Array> {
    const l = this.settings.localSdpA;
    if (l !== undefined) {
      if (typeof l !== 'function') return toBytes(l);
      if (this.sdpAMemo && sameBytes(this.sdpAMemo.sdp, sdp)) return this.sdpAMemo.out;
      const out = Promise.resolve(l(sdp, res)).then(toBytes);
      this.sdpAMemo = { sdp, out };
      return out;
    }
    const hook = phase === 'initial' ? this.host.media.onOffer : this.host.media.onAnswer;
    return hook ? toBytes(await hook(sdp, this.ctx('callee', phase))) : sdp;
  }

  private async relayProvisional(b: OutgoingCall, res: SipResponse): Promise<void> {
    if (b !== this.b || this.callerSettled() || res.status === 100) return;
    if (res.body.length > 0 && res.getAll('require').some((t) => t.toLowerCase() === '100rel')) this.bAnsweredEarly = true;
    const t = this.host.now();
    const relay = this.settings.passProvisional;
    let body: Uint8Array | undefined;
    if (res.body.length > 0) {
      if (relay) body = await this.sdpForA(res.body, res, 'early');
      else this.heldEarly = { sdp: res.body, response: res };
    }
    // The hook may have been slow: look again.
    if (b !== this.b || this.callerSettled()) return;
    if (res.body.length > 0) {
      if (this.record.state !== 'progressing') {
        this.record.state = 'progressing';
        this.record.timestamps.progressing ??= t;
      }
    } else if (this.record.state === 'dialing') {
      this.record.state = 'ringing';
      this.record.timestamps.ringing ??= t;
    }
    this.host.changed(this);
    if (!relay) return;
    // Early media pass-through: the SDP always reaches A; reliably when A supports 100rel.
    const reliable = body !== undefined && this.a.peerSupports100rel;
    this.a.provisional(res.status, {
      phrase: res.reason,
      body,
      contentType: body ? (res.get('content-type') ?? 'application/sdp') : undefined,
      reliable,
      headers: this.responseHeadersFor(res),
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
    // B's 2xx carries an offer only when B got none (late offer, RFC 3261 §13.2.1).
    const lateOffer = this.offerToB === undefined && res.body.length > 0;
    let body: Uint8Array | undefined;
    if (res.body.length > 0) {
      // B's SDP as B's call keeps it (a buffer of its own): passed through, A's call shares it.
      const kept = b.remoteSdp;
      body = await this.sdpForA(kept !== undefined && sameBytes(kept, res.body) ? kept : res.body, res, lateOffer ? 'initial' : 'answer');
    } else if (this.earlyAnswer && !this.earlyAnswerReliable) {
      // The 200 must carry the answer A only saw in an unreliable 18x (RFC 3261 §13.2.1).
      body = this.earlyAnswer;
    } else if (!this.earlyAnswer && this.heldEarly) {
      // B answered in an 18x that was not relayed: A has no answer yet, so the 200 carries it.
      body = await this.sdpForA(this.heldEarly.sdp, this.heldEarly.response, 'answer');
    }
    if (this.a.ended || this.done) {
      void b.hangup({ reason: reasonInit(this.a.cause?.reason) });
      return;
    }
    this.host.answering(this, b);
    await this.a.answer({ phrase: res.reason, body, headers: this.responseHeadersFor(res) });
    if (this.a.state !== 'answered' || this.done) {
      void b.hangup();
      return;
    }
    this.record.state = 'answered';
    this.record.timestamps.answered = this.host.now();
    this.answered();
    this.host.changed(this);
    const p = this.pending;
    this.pending = undefined;
    p?.resolve({ a: this.a, b, record: this.record });
  }

  /** Both legs are up: what only setting the call up needed is let go of, for as long as the call lasts. */
  private answered(): void {
    this.targets = NO_TARGETS;
    this.offerToB = undefined;
    this.heldEarly = undefined;
    this.sdpAMemo = undefined;
    this.noAnswer = undefined;
  }

  private async relayFailure(b: OutgoingCall, res: SipResponse, cause: HangupCause): Promise<void> {
    if (b !== this.b || this.done) return;
    if (this.a.ended) return this.finishFromA();
    const more = this.attempt < this.targets.length;
    if (more && this.host.failoverStatuses(res.status) && !this.a.ended) {
      this.next();
      return;
    }
    const synthesized = isSynthesized(res);
    // The target's domain does not exist (NXDOMAIN/NODATA all the way down): a definitive
    // answer, unlike the 503 the user agent reports it as (RFC 3261 §8.1.3.1). The caller gets
    // 404 — no one here handles that domain (§21.4.5) — rather than a 503 that would send it
    // trying this B2BUA's siblings for a name none of them can reach (§21.5.4, §16.7 item 6).
    const status = synthesized && failureCause(res)?.code === 'DNS_NOT_FOUND' ? 404 : res.status;
    // Hangup-cause relay: same status and phrase, B's Reason or one derived from the status.
    await this.failed({
      status,
      phrase: synthesized ? undefined : res.reason,
      reason: reasonInit(reasonOf(res)),
      headers: this.responseHeadersFor(res, !synthesized),
      by: synthesized || cause.by === 'system' ? 'system' : 'callee',
      response: res,
    });
  }

  /**
   * The attempt is over without an answer: relay the failure to A (passFailure), or leave A
   * unanswered for the application and let it dial again.
   */
  private async failed(f: {
    status: number;
    phrase: string | undefined;
    reason: ReasonInit | undefined;
    headers: Array<[string, HeaderValue]>;
    by: 'callee' | 'system';
    response: SipResponse | undefined;
  }): Promise<void> {
    this.noAnswer?.cancel();
    const reason: ReasonInit = f.reason ?? { protocol: 'Q.850', cause: q850For(f.status, this.host.q850) };
    const phrase = f.phrase ?? f.response?.reason ?? reasonPhrase(f.status);
    if (!this.settings.passFailure) {
      // A waits on: a late answer or failure of this B leg no longer concerns it.
      this.b = undefined;
      this.settle(new BridgeError({ status: f.status, phrase, reason: parseReason(formatReason(reason)), by: f.by, relayed: false }));
      return;
    }
    this.endingA = true;
    await this.a.reject(f.status, { phrase: f.phrase, reason, headers: f.headers });
    const h: HangupRecord = { by: f.by, status: f.status, phrase, q850: reason.protocol.toUpperCase() === 'Q.850' ? reason.cause : q850For(f.status, this.host.q850) };
    const targetError = f.response && targetErrorOf(f.response);
    if (targetError !== undefined) h.targetError = targetError;
    this.end(h);
  }

  private onNoAnswer(): void {
    if (this.done || this.a.state === 'answered' || this.a.ended || !this.pending) return;
    const status = this.host.noAnswerStatus;
    const cause = q850For(status, this.host.q850);
    this.b?.cancel({ protocol: 'Q.850', cause, text: 'No answer' });
    void this.failed({ status, phrase: undefined, reason: { protocol: 'Q.850', cause }, headers: [], by: 'system', response: undefined });
  }

  /** Settle the attempt in progress with a failure (the promise `dial` returned). */
  private settle(err: BridgeError): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  /** @internal */
  /**
   * A BYE from one leg: it is answered at once — that dialog is over whatever the other leg
   * does (RFC 3261 §15.1.2) — and relayed to the other leg with the same Reason. What became
   * of the relayed BYE is written into `record.hangup.relayedBye` when its final response
   * comes (a dead leg: 408 after Timer F), followed by an 'update' of the record.
   * A leg not answered yet is ended too: A with 480 and the Reason (B hung up before A's 200
   * left), B with a CANCEL (A's BYE in its early dialog, RFC 3261 §15).
   */
  relayBye(from: 'caller' | 'callee', cause: HangupCause): void {
    if (this.done) return;
    const other: Call | undefined = from === 'caller' ? this.b : this.a;
    const r = cause.reason;
    const answered = other !== undefined && other.state === 'answered';
    if (!answered && other === this.a) {
      this.endingA = true;
      void this.a.hangup({ reason: reasonInit(r) });
    } else if (!answered && other) (other as OutgoingCall).cancel(reasonInit(r));
    const got = !answered && other === this.a ? this.a.cause : undefined;
    this.end({
      by: from,
      status: got?.status,
      phrase: got?.phrase,
      q850: r && r.protocol.toUpperCase() === 'Q.850' ? r.cause : 16,
      ...(answered ? { relayedBye: { to: from === 'caller' ? 'callee' : 'caller', outcome: 'pending', status: undefined } } : {}),
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
  /**
   * The caller's call ended (CANCEL before answer, BYE after): end the B leg with the same Reason.
   * Ended by the application (it rejected or hung up A itself) counts as the system's doing.
   */
  onCallerEnded(cause: HangupCause): void {
    this.releaseAckWaiters();
    if (this.done) return;
    if (cause.by === 'local' && this.endingA) return; // the bridge ended A and records that itself
    this.noAnswer?.cancel();
    const reason = reasonInit(cause.reason);
    if (this.b && this.b.state === 'answered') void this.b.hangup({ reason });
    else this.b?.cancel(reason);
    if (cause.by === 'remote') {
      this.end({
        by: 'caller',
        status: cause.status,
        phrase: cause.phrase,
        q850: cause.reason?.protocol.toUpperCase() === 'Q.850' ? cause.reason.cause : cause.status ? q850For(cause.status, this.host.q850) : 16,
      });
    } else {
      // A's leg failed on its own (its ACK never came), or the application ended it: take B down too.
      this.end({
        by: 'system',
        status: cause.status,
        phrase: cause.phrase,
        q850: cause.reason?.protocol.toUpperCase() === 'Q.850' ? cause.reason.cause : cause.status ? q850For(cause.status, this.host.q850) : 41,
      });
    }
  }

  private finishFromA(): void {
    if (this.a.cause) this.onCallerEnded(this.a.cause);
  }

  /** @internal */
  /** The caller's ACK (late offer: it carries the answer for B's ACK). */
  onCallerAck(ack: SipRequest): void {
    this.releaseAckWaiters();
    const resolve = this.lateOfferAnswer;
    if (!resolve) return;
    this.lateOfferAnswer = undefined;
    if (ack.body.length === 0) return resolve(new Uint8Array(0));
    const hook = this.host.media.onAnswer;
    if (!hook) return resolve(ack.body);
    void Promise.resolve(hook(ack.body, this.ctx('caller', 'answer'))).then((b) => resolve(toBytes(b)));
  }

  private releaseAckWaiters(): void {
    this.aAcked = true;
    const w = this.ackWaiters;
    if (w === undefined) return;
    this.ackWaiters = undefined;
    for (const f of w) f();
  }

  /** @internal */
  /** B's 2xx carried an offer (late offer): its ACK waits for A's answer. */
  lateOffer(): Promise<Uint8Array> {
    return new Promise((resolve) => (this.lateOfferAnswer = resolve));
  }

  /** @internal */
  /**
   * A re-INVITE or UPDATE from one leg, relayed to the other with the media hooks. One that
   * comes while the call is still being set up is never dropped:
   * - from A before its 200: A's own offer is still unanswered, so a re-INVITE gets 500 with
   *   Retry-After (RFC 3261 §14.2), an UPDATE with an offer too (RFC 3311 §5.2);
   * - from B after its 200 but before A's ACK: held until A's ACK, then relayed (B's ACK for a
   *   late offer still pending: 491, our INVITE to B is in progress, §14.2);
   * - from B before its 200 (an UPDATE in the early dialog): 491 while our offer to B is
   *   unanswered, else 500 with Retry-After (RFC 3311 §5.2).
   */
  async relayUpdate(from: Call, req: SipRequest): Promise<OfferAnswer> {
    const fromA = from === this.a;
    if (!fromA && from !== this.b) return { status: 481 };
    if (this.done) return { status: 481 };
    const offered = req.body.length > 0;
    if (from.state !== 'answered') {
      if (req.method === 'UPDATE' && !offered) return { status: 200 };
      if (!fromA && (req.method === 'INVITE' || !this.bAnsweredEarly)) return { status: 491 };
      return { status: 500, headers: [['Retry-After', String(randomInt(0, 11))]] };
    }
    if (!fromA && !this.aAcked) {
      if (this.lateOfferAnswer) return { status: 491 };
      // Bounded: A's ACK comes, or A's 2xx times out (64·T1) and the call ends.
      await new Promise<void>((resolve) => (this.ackWaiters ??= []).push(resolve));
      if (this.done || this.a.state !== 'answered') return { status: 481 };
    }
    const to: Call | undefined = fromA ? this.b : this.a;
    if (!to || to.state !== 'answered') return { status: 491 };
    const fromSide = fromA ? 'caller' : 'callee';
    const toSide = fromSide === 'caller' ? 'callee' : 'caller';
    const offer = offered ? (this.host.media.onOffer ? toBytes(await this.host.media.onOffer(req.body, this.ctx(fromSide, 'update'))) : req.body) : undefined;
    const headers = crossHeaders(req, this.settings.requestHeaders);
    let res: SipResponse;
    try {
      res = req.method === 'INVITE' ? await to.reinvite({ body: offer, headers, retryOn491: false }) : await to.update({ body: offer, headers });
    } catch (err) {
      // Our own re-INVITE to that leg is in progress: glare (§14.2).
      if (err instanceof SipError && err.code === 'INVITE_PENDING') return { status: 491 };
      throw err;
    }
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
        headers: [...crossHeaders(req, this.settings.requestHeaders), ...crossHeaders(req, IN_DIALOG_HEADERS)],
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
  shutdown(reason: ReasonInit, status = 503, extra: { phrase?: string; headers?: HeaderInit } = {}, cause?: unknown): void {
    if (this.done) return;
    // Read before hanging up: hangup() moves the call to 'ended'.
    const answered = this.a.state === 'answered';
    this.endingA = true;
    try {
      if (answered) void this.a.hangup({ reason });
      else void this.a.reject(status, { reason, phrase: extra.phrase, headers: extra.headers });
    } finally {
      this.endingA = this.a.ended;
    }
    this.b?.hangup({ reason }).catch(() => undefined);
    const got = answered ? undefined : this.a.cause;
    this.end(
      {
        by: 'system',
        status: got?.status,
        phrase: got?.phrase,
        q850: reason.protocol.toUpperCase() === 'Q.850' ? reason.cause : got?.status ? q850For(got.status, this.host.q850) : undefined,
      },
      cause,
    );
  }

  // ---- bookkeeping ---------------------------------------------------------------------

  private end(h: HangupRecord, cause?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.noAnswer?.cancel();
    this.releaseAckWaiters();
    this.record.state = 'hangup';
    this.record.timestamps.hangup = this.host.now();
    this.record.hangup = h;
    if (this.pending) {
      const got = this.a.cause;
      const status = got?.status ?? h.status ?? 500;
      this.settle(
        new BridgeError(
          { status, phrase: got?.phrase ?? h.phrase ?? reasonPhrase(status), reason: got?.reason, by: h.by, relayed: this.a.ended },
          cause === undefined ? undefined : { cause },
        ),
      );
    }
    this.host.media.onEnd?.(this.record);
    this.host.finished(this);
  }
}
