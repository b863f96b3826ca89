import { randomUUID } from 'node:crypto';
import { SipError, type HeaderValue, type SipRequest, type SipResponse } from '../parser/index.js';
import type { Clock, Transport, TransportAddress } from '../transport/index.js';
import type { MessageSource, TimerValues, TransactionLayerOptions } from '../transaction/index.js';
import {
  answerSnapshot,
  callSnapshot,
  UserAgent,
  type DialogSnapshot,
  type IncomingCall,
  type OutgoingCall,
  type ReasonInit,
  type SessionTimerOptions,
  type UserAgentCloseOptions,
  type UserAgentStats,
} from '../dialog/index.js';
import { Emitter } from '../util/events.js';
import { Fifo } from '../util/fifo.js';
import { ALeg, Bridge, type BLeg, type BridgedCall, type BridgeHost, type BridgeOptions, type MediaHooks, type RouteTarget } from './bridge.js';
import { q850For } from './causes.js';
import { DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS } from './headers.js';
import type { CallRecord } from './record.js';
import { TargetProber, type ProbeOptions, type TargetHealth } from './target-health.js';
import type { SipResolver } from '../resolver/index.js';
import { flatText, ownText } from '../util/own.js';

const SHUTDOWN: ReasonInit = { protocol: 'Q.850', cause: 16, text: 'Shutdown' };


/** A copy of a hook's tags whose values are strings of their own (see ownText). */
function ownTags(tags: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (tags !== undefined) for (const k of Object.keys(tags)) out[k] = ownText(tags[k]!);
  return out;
}

/** The `authenticate` hook's verdict: go on (as whom), or send this response (a 407, a 403…). */
export type AuthDecision = { ok: true; identity?: string; tags?: Record<string, string> } | { ok: false; response: SipResponse };

/** The `route` hook's verdict: targets in fail-over order, or a status to refuse the call with. */
export type RouteDecision = RouteTarget[] | { reject: number; phrase?: string };

export interface CallContext {
  source: MessageSource;
  identity: string | undefined;
  record: CallRecord;
}

export interface B2buaOptions {
  transports: Transport[];
  clock?: Clock;
  timers?: Partial<TimerValues>;
  trace?: TransactionLayerOptions['trace'];
  /**
   * Runs before `authenticate`, synchronously, on each new INVITE outside a dialog, before a
   * transaction or a call exists for it: a response returned (a 407 challenge for an INVITE
   * without credentials, a 403 for a source not allowed) is sent statelessly — no transaction,
   * no retransmission of it, no call, no record; its ACK is absorbed and a retransmitted INVITE
   * is asked again. Undefined: the INVITE goes on to `authenticate`. This is what keeps a flood
   * of unauthenticated INVITEs from costing memory or being reflected several times over
   * (`DigestServer.challengeIfNoCredentials` is the ready-made one). A throw is reported as an
   * `error` event and the INVITE goes on to `authenticate`.
   */
  challenge?(request: SipRequest, source: MessageSource): SipResponse | undefined;
  /** Runs first; nothing is forwarded until it says ok (the digest server is the ready-made one). */
  authenticate?(request: SipRequest, source: MessageSource): AuthDecision | Promise<AuthDecision>;
  /** Where the call goes: one or more targets, tried in order. Give this or `onInvite`. */
  route?(request: SipRequest, ctx: CallContext): RouteDecision | Promise<RouteDecision>;
  /**
   * Per-call bridging, instead of `route`: each authenticated call (after `authenticate` and
   * the call limits, with its record already made) is handed to the application, which
   * decides what to do with it — `b2bua.bridge(call, targets, options)`, perhaps several
   * times with `passFailure: false`, or `call.reject(…)`. The call keeps its record and its
   * `call`/`update`/`end` events whatever the application does. When the returned promise
   * settles, a call left neither answered, ended nor being bridged gets 500 (nothing hangs);
   * a throw or rejection is a failed hook (500 and an `error` event).
   *
   * ```ts
   * const b2bua = new B2bua({
   *   transports,
   *   authenticate,
   *   async onInvite(call, { identity }) {
   *     try {
   *       await b2bua.bridge(call, [{ uri: 'sip:desk@10.0.0.2' }], { passFailure: false, noAnswerTimeoutMs: 20_000 });
   *     } catch (err) {
   *       if (err instanceof BridgeError && !err.relayed) await b2bua.bridge(call, [{ uri: 'sip:voicemail@10.0.0.9' }]);
   *     }
   *   },
   * });
   * ```
   */
  onInvite?(call: IncomingCall, ctx: CallContext): void | Promise<void>;
  media?: MediaHooks;
  /** Headers crossed A→B on the INVITE and in-dialog requests, besides the default set. */
  proxyRequestHeaders?: readonly string[];
  /** Headers crossed B→A on responses, besides the default set. */
  proxyResponseHeaders?: readonly string[];
  /** Fail over to the next target on these statuses (default: 408 and 5xx; never 4xx other than 408, never 6xx). */
  failover?: (status: number) => boolean;
  /** SIP status → Q.850 overrides for derived Reason headers. */
  q850?: Readonly<Record<number, number>>;
  /** No final answer from B within this long → `noAnswerStatus` to A (default 60 s). */
  noAnswerTimeoutMs?: number;
  /** 408 (default) or 480. */
  noAnswerStatus?: 408 | 480;
  /** In-dialog methods relayed between legs (re-INVITE and UPDATE always are). */
  relayMethods?: readonly string[];
  /** Most concurrent calls (503 + Retry-After beyond). */
  maxCalls?: number;
  /** Most concurrent calls from one source address. */
  maxCallsPerSource?: number;
  /**
   * The caller's address when it is not the packet's source — a caller behind a front proxy
   * the application trusts, read from its Via: what `maxCallsPerSource` counts by and the
   * record's `source`. Default: the packet's source. The hooks still get the packet's source.
   */
  sourceOf?(request: SipRequest, source: MessageSource): TransportAddress;
  /** Contact user part on both legs. */
  contactUser?: string;
  userAgent?: string;
  /**
   * Ended calls kept for lookups (default 10 000): beyond, the one that ended first is dropped
   * when a new call is stored. Calls still up are always kept, and never hold the others back.
   */
  keepRecords?: number;
  /**
   * Writes answered calls down so that a restart can end them (see `byeFromSnapshot`).
   * Called synchronously: `answered` before the caller's 200 leaves, `ended` when the call is over.
   */
  journal?: CallJournal;
  /**
   * RFC 4028 session timers, negotiated on each leg on its own: one side's refreshes never keep
   * the other leg up. A leg whose session expires or whose refresh fails (408/481) is ended with
   * a BYE, and the other leg with the same Reason (Q.850 102 for an expiry).
   */
  sessionTimer?: SessionTimerOptions;
  /**
   * RFC 3263 server location for B legs (and probes) whose URI names a host. Default: one over
   * node:dns with the system's servers and this B2BUA's clock.
   */
  resolver?: SipResolver;
  /**
   * OPTIONS probing of targets (see `TargetProber`): a route target whose host, port and
   * transport match a probed target that is `down` is skipped when the bridge fails over —
   * unless every target of the call is down, when all are tried anyway, in order.
   */
  probe?: ProbeOptions;
}

/** Both legs' dialogs of an answered call, as data. */
export interface AnsweredCall {
  record: CallRecord;
  /** The dialog with the caller (A leg), confirmed by the 200 about to be sent. */
  caller: DialogSnapshot;
  /** The dialog with the callee (B leg), confirmed by its 200. */
  callee: DialogSnapshot;
}

export interface CallJournal {
  answered(call: AnsweredCall): void;
  ended(record: CallRecord): void;
}

export interface B2buaEvents {
  /** A hook (authenticate, route, media) threw or rejected; the call was refused with 500 (its record, once authenticated). */
  error(error: unknown, call: CallRecord | undefined): void;
  /**
   * An authenticated call got its record (before routing). Every such call ends with `end`,
   * also when it is refused (no route, `{ reject }`, call limits, a failing hook, shutdown).
   * A request that did not authenticate gets no record and no event.
   */
  call(record: CallRecord): void;
  /** Any change of a call's record. */
  update(record: CallRecord): void;
  /** The call is over; `record.hangup` says how. */
  end(record: CallRecord): void;
  /** A probed target stopped answering OPTIONS (`probe.failureThreshold` failures in a row). */
  'target-down'(health: TargetHealth): void;
  /** A probed target answers OPTIONS again (`probe.successThreshold` in a row), or for the first time. */
  'target-up'(health: TargetHealth): void;
}

export interface B2buaStats extends UserAgentStats {
  bridges: number;
}

/**
 * A back-to-back user agent: each call in on the A leg becomes a new call out
 * on the B leg, kept in step until one side hangs up. Early media and hangup
 * causes always cross; handlers and policies are options, so none can be late.
 */
export class B2bua extends Emitter<B2buaEvents> implements BridgeHost {
  readonly ua: UserAgent;
  readonly media: MediaHooks;
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  readonly relayMethods: readonly string[];
  readonly failoverStatuses: (status: number) => boolean;
  readonly q850: Readonly<Record<number, number>> | undefined;
  readonly noAnswerTimeoutMs: number;
  readonly noAnswerStatus: number;
  private readonly opts: B2buaOptions;
  /** Live bridged calls, by their caller's leg (one index: its values are the live bridges). */
  private readonly bridges = new Map<IncomingCall, Bridge>();
  private readonly perSource = new Map<string, number>();
  private readonly records = new Map<string, CallRecord>();
  /**
   * The ids of the stored records that ended, in the order they ended: what `keepRecords` drops
   * from, first first. A queue, not a Set: deleting a Set's oldest entries one by one leaves holes
   * that every later walk from its start steps over again (~7 µs a call once `keepRecords` is reached).
   */
  private readonly endedOrder = new Fifo<string>();
  /** Bridges the journal holds an entry for. */
  private readonly journaled = new Set<Bridge>();
  private accepting = true;
  /** OPTIONS probing of targets, when the `probe` option asks for it. */
  readonly prober: TargetProber | undefined;

  constructor(options: B2buaOptions) {
    super();
    if (!options.route === !options.onInvite) {
      throw new SipError('BAD_OPTION', options.route ? 'give route or onInvite, not both' : 'give route (server-wide routing) or onInvite (per-call bridging)');
    }
    this.opts = options;
    this.media = options.media ?? {};
    this.requestHeaders = Object.freeze([...DEFAULT_REQUEST_HEADERS, ...(options.proxyRequestHeaders ?? [])]);
    this.responseHeaders = Object.freeze([...DEFAULT_RESPONSE_HEADERS, ...(options.proxyResponseHeaders ?? [])]);
    this.relayMethods = options.relayMethods ?? ['INFO', 'NOTIFY', 'MESSAGE'];
    this.failoverStatuses = options.failover ?? ((s) => s === 408 || (s >= 500 && s < 600));
    this.q850 = options.q850;
    this.noAnswerTimeoutMs = options.noAnswerTimeoutMs ?? 60_000;
    this.noAnswerStatus = options.noAnswerStatus ?? 408;
    this.ua = new UserAgent({
      transports: options.transports,
      clock: options.clock,
      timers: options.timers,
      trace: options.trace,
      contactUser: options.contactUser ?? 'b2bua',
      userAgent: options.userAgent,
      resolver: options.resolver,
      // A UAS to the caller: Require is checked against what the bridge really does (100rel: reliable
      // provisionals and PRACK, src/dialog; session timers when configured); it forwards, so Max-Forwards 0 is a 483.
      validate: { role: 'b2bua', supported: options.sessionTimer ? ['100rel', 'timer'] : ['100rel'] },
      sessionTimer: options.sessionTimer,
      screen: options.challenge ? (req, source) => this.screen(req, source) : undefined,
      onInvite: (call) => void this.onInvite(call).catch((err: unknown) => this.callHookFailed(call, err)),
      incomingCallHandlers: {
        onUpdate: (req, call) => this.bridges.get(call as IncomingCall)?.relayUpdate(call, req) ?? { status: 481 },
        onBye: (_req, cause, call) => this.bridges.get(call as IncomingCall)?.relayBye('caller', cause),
      },
    });
    if (options.probe) {
      const prober = new TargetProber(this.ua, options.probe);
      prober.on('target-down', (h) => this.emit('target-down', h));
      prober.on('target-up', (h) => this.emit('target-up', h));
      this.prober = prober;
      prober.start();
    }
  }

  /** The health of every probed target (the `probe` option); empty without probing. */
  targetHealth(): TargetHealth[] {
    return this.prober?.health() ?? [];
  }

  /** @internal The targets a bridge tries, in order: those probed down left out — unless that leaves none. */
  usableTargets(targets: readonly RouteTarget[]): RouteTarget[] {
    const prober = this.prober;
    if (prober === undefined) return [...targets];
    const up = targets.filter((t) => prober.stateOf(t.uri) !== 'down');
    return up.length > 0 ? up : [...targets];
  }

  get stats(): B2buaStats {
    return { ...this.ua.stats, bridges: this.bridges.size };
  }

  /** A call's record by id (live or recently ended). */
  get(id: string): CallRecord | undefined {
    return this.records.get(id);
  }

  /** Records, newest last. */
  list(): CallRecord[] {
    return [...this.records.values()];
  }

  /** @internal */
  setTimer(ms: number, fn: () => void) {
    return this.ua.clock.setTimer(ms, fn);
  }

  /** @internal */
  now(): number {
    return this.ua.clock.now();
  }

  /** The `challenge` pre-check, for new INVITEs while calls are taken (a refusal at shutdown stays stateful: it has a Reason). */
  private screen(req: SipRequest, source: MessageSource): SipResponse | undefined {
    if (req.method !== 'INVITE' || !this.accepting) return undefined;
    try {
      return this.opts.challenge!(req, source);
    } catch (err) {
      this.reportError(err, undefined);
      return undefined;
    }
  }

  /** A user hook failed: the caller gets 500 and the error is reported, never an unhandled rejection. */
  private callHookFailed(a: IncomingCall, err: unknown): void {
    const bridge = this.bridges.get(a);
    const reason = { protocol: 'Q.850', cause: 41 };
    if (bridge) bridge.shutdown(reason, 500, {}, err);
    else if (!a.ended) void a.reject(500, { reason });
    this.reportError(err, bridge?.record);
  }

  /** @internal */
  hookFailed(bridge: Bridge, err: unknown): void {
    this.reportError(err, bridge.record);
  }

  private reportError(err: unknown, record: CallRecord | undefined): void {
    if (this.listenerCount('error') > 0) this.emit('error', err, record);
    else queueMicrotask(() => console.error('sipkit B2BUA: a hook failed:', err));
  }

  /**
   * Bridge one call, as the application decides for it (see the `onInvite` option): place the
   * B leg to `targets` in fail-over order, relay early media, the answer or the failure, then
   * keep both legs in step until one hangs up — the same relay the server-wide `route` uses.
   *
   * Resolves with both legs once B answered and A got its 200. Rejects with `BridgeError`
   * (`BRIDGE_FAILED`: final status, phrase, Reason, `relayed`) when the call could not be
   * bridged — relayed to A already unless `passFailure: false`; with `SipError` `BAD_OPTION`
   * for an option it cannot use, or `NOT_BRIDGEABLE` for a call that is not one of this
   * B2BUA's authenticated calls, is answered or over, or is being bridged (nothing is sent).
   */
  bridge(call: IncomingCall, targets: readonly RouteTarget[], options: BridgeOptions = {}): Promise<BridgedCall> {
    const bridge = this.bridges.get(call);
    if (!bridge) return Promise.reject(new SipError('NOT_BRIDGEABLE', 'not a call of this B2BUA in progress (only calls handed to onInvite can be bridged)'));
    return bridge.dial(targets, options);
  }

  private async onInvite(a: IncomingCall): Promise<void> {
    if (!this.accepting) {
      // Refused before authentication: nothing is recorded for a request nobody vouched for.
      void a.reject(503, { headers: { 'Retry-After': '30' }, reason: { protocol: 'Q.850', cause: 41 } });
      return;
    }
    // The layer already answered Max-Forwards: 0 with 483 (role proxy); the B leg gets one less.
    let identity: string | undefined;
    let tags: Record<string, string> = {};
    if (this.opts.authenticate) {
      const d = await this.opts.authenticate(a.invite, a.source);
      if (!d.ok) {
        a.rejectWith(d.response);
        return;
      }
      // Often read out of the INVITE (a Request-URI host, a header): copied, as the record keeps them.
      identity = d.identity === undefined ? undefined : ownText(d.identity);
      tags = ownTags(d.tags);
    }
    if (a.ended) return;
    // 100 Trying at once for an authenticated call (a challenge goes out alone, as the trunk flow shows);
    // a slow authenticate hook is covered by the transaction layer's own 100 after 200 ms.
    a.trying();
    // Kept as long as the call (and after: keepRecords), the record's strings are copied out of
    // the INVITE's text, which they would otherwise keep whole (see ownText).
    const inv = a.invite;
    // Asked only for a call that gets a record: a challenged INVITE needs no caller address here.
    const caller = this.opts.sourceOf?.(inv, a.source) ?? a.source.address;
    const source = ownText(caller.address);
    const record: CallRecord = {
      // Made here, not cut out of a message: only flattened (node builds it of 2-character pieces).
      id: flatText(randomUUID()),
      state: 'dialing',
      from: ownText(inv.get('from') ?? ''),
      to: ownText(inv.uri),
      identity,
      source: { address: source, port: caller.port, transport: a.source.transport.protocol },
      aLeg: { callId: ownText(inv.callId) },
      bLeg: { callId: undefined, target: undefined, attempts: 0 },
      // Every timestamp named now, so setting one later does not grow the object.
      timestamps: { created: this.now(), ringing: undefined, progressing: undefined, answered: undefined, hangup: undefined },
      hangup: undefined,
      tags,
    };
    // From here on the call has a record and ends with an `end` event whatever happens to it
    // (a carrier bills and debugs refused calls too). It counts against the limits while routed.
    const bridge = new Bridge(this, a, record);
    this.bridges.set(a, bridge);
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    this.remember(record);
    // One object with methods follows the caller's leg: no closure and no listener list per event.
    a.observer = new ALeg(bridge);
    this.emit('call', record);
    if (!this.accepting) return bridge.shutdown({ protocol: 'Q.850', cause: 41 }, 503, { headers: { 'Retry-After': '30' } });
    const max = this.opts.maxCalls;
    const perSourceMax = this.opts.maxCallsPerSource;
    if ((max !== undefined && this.bridges.size > max) || (perSourceMax !== undefined && this.perSource.get(source)! > perSourceMax)) {
      return bridge.shutdown({ protocol: 'Q.850', cause: 42 }, 503, { headers: { 'Retry-After': '5' } });
    }
    const ctx: CallContext = { source: a.source, identity, record };
    if (this.opts.onInvite) {
      await this.opts.onInvite(a, ctx);
      // The application is done with the call: one it left waiting, with no B leg on the way, is refused.
      if (!bridge.ended && !bridge.dialing && !a.ended && a.state !== 'answered') bridge.shutdown({ protocol: 'Q.850', cause: 41 }, 500);
      return;
    }
    const route = await this.opts.route!(a.invite, ctx);
    if (bridge.ended) return;
    if (!Array.isArray(route)) {
      // A status reject() cannot send throws BAD_STATUS here: a hook error, answered 500.
      return bridge.shutdown({ protocol: 'Q.850', cause: q850For(route.reject, this.q850) }, route.reject, { phrase: route.phrase });
    }
    // The server-wide path is the per-call bridge with the B2BUA's defaults; its outcome is in the record.
    await bridge.dial(route).catch(() => undefined);
  }

  /** @internal */
  placeCall(target: RouteTarget, bridge: Bridge, invite: { body: Uint8Array | undefined; contentType: string | undefined; headers: Array<[string, HeaderValue]> }, leg: BLeg): OutgoingCall {
    const inv = bridge.a.invite;
    const from = inv.from;
    // The B leg is a new dialog: new Call-ID and tags; the caller's identity, not its tag.
    const fromValue = (from.displayName ? `"${from.displayName.replace(/["\\]/g, '\\$&')}" ` : '') + `<${from.uriText}>`;
    const b = this.ua.invite(target.uri, {
      destination: target.destination,
      from: fromValue,
      to: `<${target.uri}>`,
      body: invite.body,
      contentType: invite.contentType,
      maxForwards: Math.max(0, (inv.maxForwards ?? 70) - 1),
      headers: invite.headers,
      reliableProvisionals: 'supported',
      // The leg's hooks and events go to one object of the bridge's (see BLeg).
      handlers: leg,
      observer: leg,
    });
    return b;
  }

  /** @internal */
  answering(bridge: Bridge, b: OutgoingCall): void {
    const journal = this.opts.journal;
    const callee = journal && callSnapshot(b);
    if (!journal || !callee) return;
    this.journaled.add(bridge);
    journal.answered({ record: bridge.record, caller: answerSnapshot(this.ua, bridge.a), callee });
  }

  /** @internal */
  changed(bridge: Bridge): void {
    this.emit('update', bridge.record);
  }

  /** @internal */
  finished(bridge: Bridge): void {
    this.bridges.delete(bridge.a);
    const src = bridge.record.source.address;
    const n = (this.perSource.get(src) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(src);
    else this.perSource.set(src, n);
    if (this.journaled.delete(bridge)) this.opts.journal!.ended(bridge.record);
    if (this.records.get(bridge.record.id) === bridge.record) this.endedOrder.push(bridge.record.id);
    this.emit('update', bridge.record);
    this.emit('end', bridge.record);
  }

  /**
   * Keep the record of a call this B2BUA did not bridge itself — one a restart ended, say —
   * for lookups and events ('update', then 'end' when its state is hangup).
   */
  addRecord(record: CallRecord): void {
    this.remember(record);
    this.emit('update', record);
    if (record.state === 'hangup') this.emit('end', record);
  }

  private remember(record: CallRecord): void {
    const keep = this.opts.keepRecords ?? 10_000;
    this.records.set(record.id, record);
    if (record.state === 'hangup') this.endedOrder.push(record.id);
    // In the order the calls ended, not were created: a call up for hours at the head of the
    // records must not keep every call after it (issue #18: the in-process store stays bounded).
    const q = this.endedOrder;
    while (this.records.size > keep && q.length > 0) this.records.delete(q.shift()!);
  }

  /** Refuse new calls (503 + Retry-After); calls in progress go on. */
  stopAccepting(): void {
    this.accepting = false;
    // RFC 3261 §11.2: OPTIONS is answered as an INVITE would be — 503 — so probes see it too.
    this.ua.setAvailability('draining');
  }

  /** Live bridged calls. */
  get activeCalls(): number {
    return this.bridges.size;
  }

  /**
   * Hang up every live call on both legs (shutdown), with a Reason: BYE when answered (the
   * record then has no SIP status), 503 to a caller not answered yet, CANCEL to a B leg ringing.
   */
  hangupAll(reason: ReasonInit = SHUTDOWN): void {
    for (const b of [...this.bridges.values()]) b.shutdown(reason);
  }

  /**
   * Stop: refuse new calls, hang up every call (as hangupAll; each gets its `end` event), wait
   * (bounded, on the clock: `timeoutMs`) for the far ends to answer, then close the transports.
   */
  close(options: UserAgentCloseOptions = {}): Promise<void> {
    this.accepting = false;
    this.prober?.stop();
    const reason = options.reason ?? SHUTDOWN;
    this.hangupAll(reason);
    return this.ua.close({ ...options, reason });
  }
}

