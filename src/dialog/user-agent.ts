import {
  appendHeaders,
  createRequest,
  createResponse,
  generateCallId,
  parseUri,
  SipError,
  type SipRequest,
  type SipResponse,
  type SipUri,
  type ValidateOptions,
} from '../parser/index.js';
import { formatHost, type Clock, type Transport, type TransportAddress } from '../transport/index.js';
import { hostFamily, type SipResolver, type TargetList } from '../resolver/index.js';
import {
  TransactionLayer,
  failureCause,
  isSynthesized,
  targetFromUri,
  type OutboundUser,
  type ClientTransaction,
  type ClientTransactionUser,
  type InviteClientTransaction,
  type InviteServerTransaction,
  type MessageSource,
  type ServerTransaction,
  type Target,
  type TimerValues,
  type TransactionLayerOptions,
  type TransactionLayerStats,
  targetOf,
} from '../transaction/index.js';
import { Emitter } from '../util/events.js';
import { flatText } from '../util/own.js';
import { CallAcceptor, type AcceptOptions } from './call-acceptor.js';
import type { CallHandlers } from './call-base.js';
import { placeCall, type CallOptions } from './call-promise.js';
import type { ReasonInit, SendOptions } from './call-types.js';
import { ALLOWED_METHODS as ALLOW, type DialogOwner, type UserAgentCore } from './core.js';
import { credentialsOf, Dialog } from './dialog.js';
import { IncomingCall } from './incoming-call.js';
import { OutgoingCall, type InviteOptions } from './outgoing-call.js';
import { decideAsUas, resolveSessionTimer, type SessionTimerConfig, type SessionTimerOptions } from './session-timer-negotiation.js';
import { DialogTargets, nextHopUri, place, wantsSipsContact } from './targeting.js';

export interface UserAgentOptions {
  transports: Transport[];
  clock?: Clock;
  timers?: Partial<TimerValues>;
  /**
   * A new call arrived (INVITE outside a dialog). It may be async: if it throws or its promise
   * rejects before the call was answered or refused, the call is refused with 500; either way
   * the error goes to the `error` event (to console.error without a listener). Without
   * `onInvite`, calls wait for `accept()` once the application has called it, and are refused
   * with 480 before that.
   */
  onInvite?(call: IncomingCall): unknown;
  /**
   * Without `onInvite`: how many new calls may wait for `accept()` (default 16); a call beyond
   * that is refused with 486 Busy Here.
   */
  acceptBacklog?: number;
  /** Policies for incoming calls (re-INVITE/UPDATE answers, late offers), set before any request can arrive. */
  incomingCallHandlers?: CallHandlers;
  /** Other requests outside a dialog (OPTIONS too, unless `onOptions` is given). Default: OPTIONS answered as `onOptions` says, anything else → 405. */
  onRequest?(request: SipRequest, tx: ServerTransaction, source: MessageSource): void;
  /**
   * An OPTIONS outside a dialog (RFC 3261 §11.2). Default: answered by the user agent with the
   * status an INVITE would get — 200, 503 + Retry-After while draining or closing
   * (`setAvailability`), 480 without `onInvite` — and Allow, Accept, Supported. Give a function
   * to answer it yourself (it wins over `onRequest`).
   */
  onOptions?(request: SipRequest, tx: ServerTransaction, source: MessageSource): void;
  /**
   * RFC 3263 server location for requests whose next hop is a host name. Default: the
   * transaction layer's (node:dns, the system's servers, this user agent's clock).
   */
  resolver?: SipResolver;
  /** Host written in Contact (default: the transport's address). */
  contactHost?: string;
  /** Contact user part (default `sipkit`). */
  contactUser?: string;
  userAgent?: string;
  validate?: ValidateOptions;
  trace?: TransactionLayerOptions['trace'];
  tryingAfterMs?: number;
  /**
   * RFC 4028 session timers on every call (off when absent): `Supported: timer` and
   * Session-Expires on INVITEs, 422 for intervals below `minSeconds`, refreshes, and a BYE
   * when a session is not refreshed in time. `InviteOptions.sessionTimer` overrides it per call.
   */
  sessionTimer?: SessionTimerOptions;
  /**
   * Answer a new request outside a dialog before anything exists for it: a response returned is
   * sent statelessly, with no transaction and no call (see `TransactionUser.screen`).
   */
  screen?(request: SipRequest, source: MessageSource): SipResponse | undefined;
}

export interface UserAgentCloseOptions {
  /** RFC 3326 Reason on every BYE, CANCEL and final response close() sends (default Q.850 16 "Shutdown"). */
  reason?: ReasonInit;
  /**
   * How long to wait, on the UA's clock, for those to be answered before the transports close
   * (default 4000 ms: four sends of a BYE over UDP at the default T1).
   */
  timeoutMs?: number;
}

const CLOSE_REASON: ReasonInit = { protocol: 'Q.850', cause: 16, text: 'Shutdown' };

export interface UserAgentEvents {
  /** The `onInvite` hook threw or rejected (the call, unless already answered or refused, got a 500). */
  error(err: unknown, call: IncomingCall): void;
}

export interface UserAgentStats extends TransactionLayerStats {
  calls: number;
  dialogs: number;
}


/**
 * What a user agent tells OPTIONS (and a load balancer probing with it): `available` (200),
 * `draining` (503 + Retry-After: finish the calls up, send no new ones; RFC 3261 §11.2 answers
 * OPTIONS as an INVITE would be answered).
 */
export type Availability = 'available' | 'draining';

/**
 * A SIP user agent: a transaction layer, the dialogs it holds, and calls in
 * both directions. What a softphone, a test UAC, or each leg of a B2BUA is.
 */
export class UserAgent extends Emitter<UserAgentEvents> implements UserAgentCore {
  readonly layer: TransactionLayer;
  readonly clock: Clock;
  readonly timers: TimerValues;
  /** @internal */
  readonly sessionTimer: SessionTimerConfig | undefined;
  private readonly opts: UserAgentOptions;
  /**
   * Registered dialogs, each with its owner (`dialog.owner`), by our tag — the string each
   * dialog keeps anyway, not a key joining Call-ID and both tags made per dialog (~64 bytes, two
   * per bridged call; issue #16) — then matched on Call-ID and remote tag (see TagIndex).
   */
  private readonly dialogs = new TagIndex<Dialog>();
  /** Outgoing calls by From tag and Call-ID (stray 2xx), incoming ones by INVITE transaction (CANCEL). */
  private readonly outgoing = new TagIndex<OutgoingCall>();
  private readonly incoming = new Map<InviteServerTransaction, IncomingCall>();
  private readonly calls = new Set<OutgoingCall | IncomingCall>();
  private closing: Promise<void> | undefined;
  /** Messages ending calls still waiting for their answer (see pendingEnd), and close()'s wake-up. */
  private unanswered = 0;
  private wake: (() => void) | undefined;
  /** Created by the first accept(): until then, with no onInvite, calls are refused. */
  private acceptor: CallAcceptor | undefined;
  private availability: Availability = 'available';
  private readonly supported: string;
  /** Per dialog, the target in-dialog requests reached for a next hop named by host (RFC 3263). */
  private readonly dialogTargets = new DialogTargets();
  /** Our Contact over each transport (contactFor), plain and sips:. */
  private readonly contacts = new WeakMap<Transport, string>();
  private readonly secureContacts = new WeakMap<Transport, string>();

  constructor(options: UserAgentOptions) {
    super();
    this.opts = options;
    this.sessionTimer = options.sessionTimer ? resolveSessionTimer(options.sessionTimer) : undefined;
    const validate = { supported: this.sessionTimer ? ['100rel', 'timer'] : ['100rel'], ...options.validate };
    this.supported = (validate.supported ?? []).join(', ');
    this.layer = new TransactionLayer({
      transports: options.transports,
      clock: options.clock,
      timers: options.timers,
      resolver: options.resolver,
      validate,
      trace: options.trace,
      tryingAfterMs: options.tryingAfterMs,
      user: {
        onRequest: (req, tx, source) => this.onRequest(req, tx, source),
        onAck: (ack) => this.onAck(ack),
        onCancel: (tx, cancel) => this.incoming.get(tx)?.handleCancel(cancel),
        onStrayResponse: (res) => this.onStray(res),
        screen: options.screen,
      },
    });
    this.clock = this.layer.clock;
    this.timers = this.layer.timers;
  }

  get stats(): UserAgentStats {
    return { ...this.layer.stats, calls: this.calls.size, dialogs: this.dialogs.size };
  }

  /** The transport used for a destination. */
  transportFor(target: Target): Transport {
    return this.layer.transportFor(target.transport);
  }

  /**
   * The Contact for requests and responses sent towards `target`. `secure`: a sips: URI —
   * required when the request's Request-URI or top Route is one (RFC 3261 §8.1.1.8, §12.1.1;
   * RFC 5630 §3.1.3), and then without a transport parameter (sips: means TLS).
   */
  contactFor(target: Target, secure = false): string {
    const t = this.transportFor(target);
    // One string per transport, shared by every dialog over it (each keeps its Contact for as long as it lasts).
    const cache = secure ? this.secureContacts : this.contacts;
    const known = cache.get(t);
    if (known !== undefined) return known;
    const host = this.opts.contactHost ?? formatHost(t.local.address);
    const tp = secure || t.protocol === 'udp' ? '' : `;transport=${t.protocol}`;
    const contact = flatText(`<${secure ? 'sips' : 'sip'}:${this.opts.contactUser ?? 'sipkit'}@${host}:${t.local.port}${tp}>`);
    cache.set(t, contact);
    return contact;
  }

  /**
   * What OPTIONS is answered with (see `Availability`): `draining` answers 503 + Retry-After so
   * that a load balancer or a carrier's probe sends no new calls here, while calls go on.
   */
  setAvailability(availability: Availability): void {
    this.availability = availability;
  }

  /** The current availability (see setAvailability). */
  get available(): Availability {
    return this.availability;
  }

  /**
   * The target a URI names before it is located: its own address and transport — or, when
   * this user agent has no transport of that kind, its first (RFC 3263 then picks one it has).
   */
  private standIn(uri: SipUri): Target {
    const t = targetFromUri(uri);
    if (!this.layer.transports.some((x) => x.protocol === t.transport)) t.transport = this.layer.transports[0]!.protocol;
    return t;
  }

  private localAddress(target: Target): TransportAddress {
    return this.transportFor(target).local;
  }

  // ---- placing calls -------------------------------------------------------------

  /** Place a call. Listeners in `options.on` are attached before the INVITE leaves. */
  invite(target: string, options: InviteOptions = {}): OutgoingCall {
    if (this.closing) throw new SipError('CLOSED', 'the user agent is closing');
    const uri = parseUri(target);
    if (uri.kind !== 'sip' && !options.destination) throw new SipError('NO_DESTINATION', `cannot route to ${target} without a destination`);
    // Where it goes is known only once the request is built (a Route in options.headers is the next hop).
    let destination = options.destination ?? this.standIn(uri as SipUri);
    const local = this.localAddress(destination);
    const headers: Array<[string, string]> = [];
    const rel = options.reliableProvisionals ?? 'supported';
    if (rel === 'supported') headers.push(['Supported', '100rel']);
    if (rel === 'required') headers.push(['Require', '100rel']);
    headers.push(['Allow', ALLOW]);
    if (this.opts.userAgent) headers.push(['User-Agent', this.opts.userAgent]);
    const invite = createRequest({
      method: 'INVITE',
      uri: target,
      from: options.from ?? `<sip:anonymous@${formatHost(local.address)}>`,
      to: options.to ?? `<${target}>`,
      callId: options.callId ?? generateCallId(),
      maxForwards: options.maxForwards,
      contact: this.contactFor(destination),
      headers,
      body: options.body,
      contentType: options.body !== undefined ? (options.contentType ?? 'application/sdp') : undefined,
    });
    appendHeaders(invite, options.headers);
    // The Request-URI is parsed already: no second parse on the hot path.
    const placed = place(this.layer, invite, options.destination, () => destination, uri.kind === 'sip' ? (uri as SipUri) : undefined);
    destination = placed.target;
    const secure = wantsSipsContact(invite);
    if (placed.list !== undefined || secure) invite.set('Contact', this.contactFor(destination, secure));
    const call = new OutgoingCall(this, invite, destination, options, placed.list);
    this.calls.add(call);
    this.outgoing.add(call.localTag, call, sameCall);
    call.start();
    return call;
  }

  /**
   * Place a call and resolve with it once answered (`await ua.call(target)`), or reject with
   * a `CallFailedError`: `CALL_REJECTED` (a final non-2xx: its status, phrase and Reason, by
   * `remote`), `RING_TIMEOUT` (`ringTimeoutMs` passed: CANCELled), `CALL_CANCELLED` (`signal`
   * aborted: CANCELled), `TIMEOUT` / `TRANSPORT_FAILED` (no response / could not send, by
   * `system`), `CLOSED` (close() came first). Built on invite(): every event fires as it does
   * there, and `options.on` listeners are attached as there. `SipError` `CLOSED` or
   * `NO_DESTINATION` when invite() would throw.
   */
  call(target: string, options: CallOptions = {}): Promise<OutgoingCall> {
    return placeCall((t, o) => this.invite(t, o), this.clock, target, options);
  }

  /**
   * The next incoming call, for an application that pulls calls rather than being called
   * (`onInvite`): `while (true) { const call = await ua.accept(); … }`. Calls that arrive
   * between two accept()s wait in a backlog (`acceptBacklog`); one the caller CANCELs
   * meanwhile is skipped. Rejects with `SipError` `CLOSED` once close() was called, `ABORTED`
   * when `options.signal` fires, and `BAD_OPTION` when the user agent has an `onInvite`
   * (which takes every call).
   */
  accept(options: AcceptOptions = {}): Promise<IncomingCall> {
    if (this.opts.onInvite) return Promise.reject(new SipError('BAD_OPTION', 'accept() is for a user agent without onInvite'));
    if (this.closing) return Promise.reject(new SipError('CLOSED', 'the user agent is closing'));
    return (this.acceptor ??= new CallAcceptor(this.opts.acceptBacklog ?? 16)).take(options);
  }

  /** Send a request outside any dialog (OPTIONS, MESSAGE, REGISTER …) and resolve with the final response. */
  request(method: string, target: string, options: SendOptions & { from?: string; to?: string; destination?: Target } = {}): Promise<SipResponse> {
    const uri = parseUri(target);
    if (uri.kind !== 'sip' && !options.destination) return Promise.reject(new SipError('NO_DESTINATION', `cannot route to ${target} without a destination`));
    const stand = options.destination ?? this.standIn(uri as SipUri);
    const local = this.localAddress(stand);
    const req = createRequest({
      method,
      uri: target,
      from: options.from ?? `<sip:anonymous@${formatHost(local.address)}>`,
      to: options.to ?? `<${target}>`,
      headers: options.headers,
      body: options.body,
      contentType: options.body !== undefined ? (options.contentType ?? 'text/plain') : undefined,
    });
    let placed;
    try {
      placed = place(this.layer, req, options.destination, () => stand, uri.kind === 'sip' ? (uri as SipUri) : undefined);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.finalOf(req, placed.list ?? placed.target);
  }

  /**
   * The final response to a request sent in a new client transaction (a synthesized 408/503 on
   * timeout or transport failure); `SipError` `CLOSED` when the transaction ends without one
   * (the layer was closed while it was pending).
   */
  private finalOf(req: SipRequest, target: Target | TargetList, onLater2xx?: (res: SipResponse) => void, onTarget?: (target: Target | undefined, final: SipResponse) => void): Promise<SipResponse> {
    let pending: { resolve(res: SipResponse): void; reject(err: unknown): void } | undefined;
    const final = new Promise<SipResponse>((resolve, reject) => {
      pending = { resolve, reject };
    });
    const user = new FinalWaiter(pending!, req.method, onLater2xx, onTarget);
    try {
      // A target list (a next hop named by host) fails over per RFC 3263 §4.3; an address is sent to as it is.
      if ('address' in target) {
        user.direct = true;
        this.layer.sendRequest(req, target, user);
      }
      else user.out = this.layer.send(req, target, user);
    } catch (err) {
      user.fail(err);
    }
    return final;
  }

  // ---- UserAgentCore (used by calls) ---------------------------------------------------

  /** @internal */
  sendInvite(invite: SipRequest, destination: Target, user: ClientTransactionUser): InviteClientTransaction {
    return this.layer.sendRequest(invite, destination, user) as InviteClientTransaction;
  }

  /** @internal An INVITE whose next hop is a host name: located, with RFC 3263 fail-over; `onTarget` sees each attempt. */
  sendLocatedInvite(invite: SipRequest, targets: TargetList, user: OutboundUser, onTarget: (request: SipRequest, target: Target) => void): { cancel(reason?: string): void } {
    const secure = wantsSipsContact(invite);
    return this.layer.send(invite, targets, user, (req, target) => {
      req.set('Contact', this.contactFor(target, secure));
      onTarget(req, target);
    });
  }

  /** @internal */
  sendInDialog(dialog: Dialog, request: SipRequest): Promise<SipResponse> {
    const target = dialog.destination(request, this.transportOf(dialog));
    // A re-INVITE's 2xx retransmitted while its transaction is in Accepted (RFC 6026) means our
    // ACK was lost: send it again (§13.2.2.4), or the peer gives up on the call after 64·T1.
    const later = request.method === 'INVITE' ? (res: SipResponse) => this.ackAgain(dialog, res) : undefined;
    if (hostFamily(target.address) !== 0) return this.finalOf(request, target, later);
    // The next hop is a host name (a Route, or a remote target with no peer address to fall back on).
    const uri = nextHopUri(request);
    if (uri === undefined) return this.finalOf(request, target, later);
    const host = uri.hostname;
    const known = this.dialogTargets.get(dialog, host);
    if (known !== undefined) {
      return this.finalOf(request, known, later).then((res) => {
        if (res.status === 503 || (res.status === 408 && isSynthesized(res))) this.dialogTargets.failed(dialog, host);
        return res;
      });
    }
    return this.finalOf(request, this.layer.resolver.targets(uri), later, (t, final) => {
      if (t !== undefined && failureCause(final) === undefined) this.dialogTargets.worked(dialog, host, t);
    });
  }

  private ackAgain(dialog: Dialog, res: SipResponse): void {
    const last = dialog.lastAck;
    if (last && last.cseq.seq === res.cseq.seq) this.sendAck(dialog, last);
  }

  private transportOf(dialog: Dialog): string | undefined {
    // Stay on the transport the dialog was set up over (its Contact says which).
    const m = /;transport=([a-z]+)/i.exec(dialog.localContact);
    return m ? m[1]!.toLowerCase() : undefined;
  }

  /** @internal */
  sendAck(dialog: Dialog, ack: SipRequest): void {
    const target = dialog.destination(ack, this.transportOf(dialog));
    if (hostFamily(target.address) !== 0) {
      this.sendAckTo(ack, target);
      return;
    }
    // A next hop named by host: where the dialog's requests went, else the first located target.
    const uri = nextHopUri(ack);
    const known = uri && this.dialogTargets.get(dialog, uri.hostname);
    if (uri === undefined || known) {
      this.sendAckTo(ack, known || target);
      return;
    }
    this.layer.resolver.targets(uri).next().then(
      (t) => {
        if (t !== undefined) this.sendAckTo(ack, targetOf(t));
      },
      () => undefined,
    );
  }

  private sendAckTo(ack: SipRequest, target: Target): void {
    const a = ack.clone();
    // An ACK for a 2xx is its own transaction: a new branch each time it is built (§17.1.1.3).
    a.remove('Via');
    try {
      a.prepend('Via', this.layer.createVia(this.layer.transportFor(target.transport)));
    } catch {
      return;
    }
    void this.layer.sendStateless(a, target).catch(() => undefined);
  }

  /** @internal */
  ackAndBye(invite: SipRequest, response: SipResponse, destination: Target): void {
    const d = Dialog.fromUac(invite, response, destination, this.contactFor(destination, wantsSipsContact(invite)));
    d.state = 'confirmed';
    this.ackAndByeDialog(d, invite.cseq.seq, credentialsOf(invite));
  }

  /** @internal */
  ackAndByeDialog(d: Dialog, inviteSeq: number, credentials?: Array<[string, string]>): void {
    this.sendAck(d, d.createRequest('ACK', { cseq: inviteSeq, headers: credentials }));
    const answered = this.pendingEnd();
    void this.sendInDialog(d, d.createRequest('BYE')).then(answered, answered);
  }

  pendingEnd(): () => void {
    this.unanswered++;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--this.unanswered === 0) this.wake?.();
    };
  }

  /** @internal */
  register(dialog: Dialog, owner: DialogOwner): void {
    dialog.owner = owner;
    this.dialogs.add(dialog.localTag, dialog, sameDialog);
  }

  /** @internal */
  unregister(dialog: Dialog): void {
    this.dialogs.delete(dialog.localTag, dialog);
    dialog.owner = undefined;
  }

  /** @internal The core only ever gets back the calls this user agent created. */
  release(call: OutgoingCall | IncomingCall): void {
    this.calls.delete(call);
    if (call.direction === 'outgoing') this.outgoing.delete(call.localTag, call);
    else this.incoming.delete(call.tx);
  }

  // ---- receiving ---------------------------------------------------------------------

  private onRequest(req: SipRequest, tx: ServerTransaction, source: MessageSource): void {
    const toTag = req.to.tag;
    if (toTag !== undefined) {
      const d = this.dialogs.find(toTag, req.callId, req.from.tag ?? '');
      if (!d || d.state === 'terminated' || !d.owner) {
        // §12.2.2: a request for a dialog we do not know.
        tx.respond(createResponse(req, 481));
        return;
      }
      if (!d.acceptRemoteSeq(req)) {
        tx.respond(createResponse(req, 500, { reason: 'Out of Order CSeq', headers: { 'Retry-After': '1' } }));
        return;
      }
      d.owner.handleInDialog(req, tx, d);
      return;
    }
    if (req.method === 'INVITE') {
      if (this.closing) {
        tx.respond(createResponse(req, 503, { headers: { 'Retry-After': '30' } }));
        return;
      }
      // RFC 4028 §9: an interval below our Min-SE gets its 422 before any call exists.
      const refused = this.sessionTimer && decideAsUas(req, this.sessionTimer);
      if (refused && 'refuse' in refused) {
        tx.respond(refused.refuse);
        return;
      }
      const call = new IncomingCall(this, req, tx as InviteServerTransaction, source, this.opts.incomingCallHandlers);
      this.calls.add(call);
      this.incoming.set(tx as InviteServerTransaction, call);
      if (this.opts.onInvite) this.runOnInvite(call, this.opts.onInvite);
      else if (!this.acceptor) void call.reject(480);
      else if (!this.acceptor.offer(call)) void call.reject(486);
      return;
    }
    if (req.method === 'OPTIONS' && this.opts.onOptions) {
      this.opts.onOptions(req, tx, source);
      return;
    }
    if (this.opts.onRequest) {
      this.opts.onRequest(req, tx, source);
      return;
    }
    if (req.method === 'OPTIONS') {
      this.answerOptions(req, tx);
    } else if (req.method === 'BYE') {
      tx.respond(createResponse(req, 481));
    } else {
      tx.respond(createResponse(req, 405, { headers: { Allow: ALLOW } }));
    }
  }

  private runOnInvite(call: IncomingCall, onInvite: (call: IncomingCall) => unknown): void {
    let pending: unknown;
    try {
      pending = onInvite(call);
    } catch (err) {
      this.inviteHookFailed(call, err);
      return;
    }
    if (isThenable(pending)) pending.then(undefined, (err: unknown) => this.inviteHookFailed(call, err));
  }

  /** onInvite failed: a call it left unanswered gets a 500 (§21.5.1), and the error goes where the app can see it. */
  private inviteHookFailed(call: IncomingCall, err: unknown): void {
    if (call.state !== 'answered' && !call.ended && !call.tx.finalSent) void call.reject(500);
    if (this.listenerCount('error') > 0) this.emit('error', err, call);
    else queueMicrotask(() => console.error('sipkit UserAgent: onInvite failed:', err));
  }

  /**
   * RFC 3261 §11.2: OPTIONS gets the status an INVITE would get — 503 while draining or
   * closing, 480 when no one takes calls, else 200 — and says what this user agent does:
   * Allow, Accept, Supported (its option tags, as its validation knows them).
   */
  private answerOptions(req: SipRequest, tx: ServerTransaction): void {
    const unavailable = this.closing !== undefined || this.availability === 'draining';
    const status = unavailable ? 503 : this.opts.onInvite ? 200 : 480;
    const headers: Record<string, string> = { Allow: ALLOW, Accept: 'application/sdp' };
    if (this.supported !== '') headers.Supported = this.supported;
    if (unavailable) headers['Retry-After'] = '30';
    tx.respond(createResponse(req, status, { headers }));
  }

  private onAck(ack: SipRequest): void {
    const toTag = ack.to.tag;
    if (toTag === undefined) return;
    this.dialogs.find(toTag, ack.callId, ack.from.tag ?? '')?.owner?.handleAck(ack);
  }

  private onStray(res: SipResponse): void {
    if (res.cseq.method !== 'INVITE' || res.status < 200 || res.status >= 300) return;
    const fromTag = res.from.tag ?? '';
    const call = this.outgoing.find(fromTag, res.callId, undefined);
    if (call) {
      call.handleResponse(res, false);
      return;
    }
    // A 2xx to a re-INVITE retransmitted after its transaction ended: the same ACK again.
    const d = this.dialogs.find(fromTag, res.callId, res.to.tag ?? '');
    if (d) this.ackAgain(d, res);
  }

  /**
   * Stop: end every call as its state requires, each with an RFC 3326 Reason — BYE when
   * answered, CANCEL for an outgoing call not answered yet, 503 for an incoming one — so
   * every call emits `ended` before close() returns its promise; then wait (bounded, on the
   * clock) for those to be answered, terminate the transactions and close the transports.
   * New calls are refused meanwhile (incoming with 503, `invite()` with `CLOSED`).
   * Calling it again returns the same promise.
   */
  close(options: UserAgentCloseOptions = {}): Promise<void> {
    return (this.closing ??= this.shutdown(options));
  }

  private async shutdown(options: UserAgentCloseOptions): Promise<void> {
    const reason = options.reason ?? CLOSE_REASON;
    this.acceptor?.close();
    for (const call of [...this.calls]) call.shutdown(reason);
    await this.answersOrTimeout(options.timeoutMs ?? 4000);
    await this.layer.close();
  }

  private async answersOrTimeout(ms: number): Promise<void> {
    if (this.unanswered === 0) return;
    let timedOut = false;
    const timer = this.clock.setTimer(ms, () => {
      timedOut = true;
      this.wake?.();
    });
    // Looked at again after each wake-up: answering one message can send another (a 2xx that
    // crossed our CANCEL is ACKed and BYEd at once).
    while (this.unanswered > 0 && !timedOut) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    timer.cancel();
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** What TagIndex finds: a dialog or an outgoing call, by Call-ID (and, for a dialog, remote tag). */
interface Tagged {
  readonly callId: string;
  readonly remoteTag?: string;
}

/** Whether `x` answers to `callId` and, when given, `remoteTag`. */
function answersTo(x: Tagged, callId: string, remoteTag: string | undefined): boolean {
  return x.callId === callId && (remoteTag === undefined || x.remoteTag === remoteTag);
}

const sameDialog = (a: Dialog, b: Dialog): boolean => a.callId === b.callId && a.remoteTag === b.remoteTag;
const sameCall = (a: OutgoingCall, b: OutgoingCall): boolean => a.callId === b.callId;

/**
 * An index by our tag (a From tag we chose, or the To tag of a dialog we answered): one entry
 * per tag, a list only when several share it (the early dialogs of a forked INVITE; a From tag
 * an application set on several calls). Lookups need no key string joining Call-ID and tags,
 * and the index keeps none: the tag is the dialog's or the call's own string.
 */
class TagIndex<V extends Tagged> {
  private readonly byTag = new Map<string, V | V[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  find(tag: string, callId: string, remoteTag: string | undefined): V | undefined {
    const e = this.byTag.get(tag);
    if (e === undefined) return undefined;
    if (!Array.isArray(e)) return answersTo(e, callId, remoteTag) ? e : undefined;
    for (const v of e) if (answersTo(v, callId, remoteTag)) return v;
    return undefined;
  }

  /** Add `v` under `tag`, replacing one `same` says it is (as a Map's set replaces its key's value). */
  add(tag: string, v: V, same: (a: V, b: V) => boolean): void {
    const e = this.byTag.get(tag);
    if (e === undefined) {
      this.byTag.set(tag, v);
      this.count++;
    } else if (!Array.isArray(e)) {
      if (same(e, v)) this.byTag.set(tag, v);
      else {
        this.byTag.set(tag, [e, v]);
        this.count++;
      }
    } else {
      const i = e.findIndex((x) => same(x, v));
      if (i >= 0) e[i] = v;
      else {
        e.push(v);
        this.count++;
      }
    }
  }

  /** Remove `v` (itself, not another with its tag). */
  delete(tag: string, v: V): void {
    const e = this.byTag.get(tag);
    if (e === v) {
      this.byTag.delete(tag);
      this.count--;
    } else if (Array.isArray(e)) {
      const i = e.indexOf(v);
      if (i < 0) return;
      e.splice(i, 1);
      this.count--;
      if (e.length === 1) this.byTag.set(tag, e[0]!);
    }
  }
}

/** What a settled non-INVITE transaction of `finalOf` reports to while it waits out Timer K: nothing is left to hear. */
const SETTLED: ClientTransactionUser = Object.freeze({ onResponse: () => undefined });

/**
 * The user of a request sent by `request`/`finalOf`: settles the promise with the final. The
 * transaction keeps it through Timer K (or M): one object with methods, not a closure per
 * callback, and once settled it holds neither the promise nor the request (no field names it).
 */
class FinalWaiter {
  /** The fail-over request, when the next hop was a host name (its target is reported with the final). */
  out: { readonly target: Target | undefined } | undefined = undefined;
  /** Sent by `sendRequest` itself: the transaction passed to onResponse is the one this user is bound to. */
  direct = false;
  constructor(
    private pending: { resolve(res: SipResponse): void; reject(err: unknown): void } | undefined,
    private readonly method: string,
    private onLater2xx: ((res: SipResponse) => void) | undefined,
    private onTarget: ((target: Target | undefined, final: SipResponse) => void) | undefined,
  ) {}

  onResponse(res: SipResponse, tx: ClientTransaction): void {
    if (res.status < 200) return;
    const p = this.pending;
    if (p !== undefined) {
      this.pending = undefined;
      const out = this.out;
      if (out) this.onTarget?.(out.target, res);
      this.onTarget = undefined;
      this.out = undefined;
      // Only an INVITE's transaction passes 2xx after its final (retransmissions, other forks).
      if (this.method !== 'INVITE') {
        this.onLater2xx = undefined;
        // Nothing is left for this user to do: the transaction waits out Timer K with a shared
        // one, not this (a BYE's, per ended call, issue #16). A fail-over request keeps its own.
        if (this.direct) tx.rebind(SETTLED);
        this.direct = false;
      }
      p.resolve(res);
    } else if (res.status < 300) this.onLater2xx?.(res);
  }

  onTerminated(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    p.reject(new SipError('CLOSED', `${this.method} ended without a final response: the transaction layer closed`));
  }

  fail(err: unknown): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }
}
