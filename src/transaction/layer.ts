import {
  createResponse,
  DEFAULT_LIMITS,
  generateBranch,
  generateTag,
  MAGIC_COOKIE,
  MAX_VIAS,
  parseMessage,
  SipError,
  SipParseError,
  validateRequest,
  validateResponse,
  type SipRequest,
  type SipResponse,
  type SipUri,
  type ValidateOptions,
  type ParseLimits,
  type Via,
} from '../parser/index.js';
import { RealClock, addressKey, bareHost, formatHost, type Clock, type Transport, type TransportAddress, type TransportError } from '../transport/index.js';
import { isIP } from 'node:net';
import { SipResolver, type SipTransportName, type TargetList } from '../resolver/index.js';
import type { Destination, MessageSource, Transaction, TransactionHost, TransactionTransition } from './base.js';
import type { ClientTransaction, ClientTransactionUser } from './client.js';
import { InviteClientTransaction } from './invite-client.js';
import { InviteServerTransaction } from './invite-server.js';
import { clientTableKey, serverKey } from './keys.js';
import { Destinations } from './destinations.js';
import { flatText, ownText } from '../util/own.js';
import { NonInviteClientTransaction } from './non-invite-client.js';
import { NonInviteServerTransaction } from './non-invite-server.js';
import { OutboundRequest, type OutboundUser, type PrepareAttempt } from './outbound.js';
import { responseAddress, stampVia, targetOf, type Target } from './routing.js';
import type { ServerTransaction } from './server.js';
import { DEFAULT_TIMERS, type TimerValues } from './timers.js';
import { WaitQueues } from './wait-queue.js';

export type { MessageSource };

/**
 * The transaction user (TU): the dialog layer, a B2BUA, or an application.
 * Given when the layer is created, so nothing can arrive before it exists.
 */
export interface TransactionUser {
  /** A new request with its server transaction (never an ACK, never a retransmission). */
  onRequest(request: SipRequest, tx: ServerTransaction, source: MessageSource): void;
  /** An ACK that matched no server transaction: the ACK for a 2xx (§17.2.3, §13.3.1.4). */
  onAck?(ack: SipRequest, source: MessageSource): void;
  /** A CANCEL matched an INVITE still proceeding; 200 was already sent to it. The TU answers the INVITE 487 (§9.2). */
  onCancel?(invite: InviteServerTransaction, cancel: SipRequest): void;
  /** A response that matched no client transaction (e.g. a 2xx retransmitted after Timer M). */
  onStrayResponse?(response: SipResponse, source: MessageSource): void;
  /**
   * A new request outside a dialog (no To tag; never an ACK or a CANCEL), after the stateless
   * checks and before any transaction exists for it. A response returned is sent statelessly
   * (RFC 3261 §8.2.6, as a stateless proxy answers, §16.11) and the request goes no further:
   * no transaction, no Timer G retransmission, nothing kept. A retransmission of the request
   * comes here again and is answered again; the ACK for a non-2xx final answered this way is
   * absorbed by the layer (its To tag says so). Undefined: the request goes on to `onRequest`.
   * For what can be decided at once, as a registrar or trunk challenges a request without
   * credentials (RFC 3261 §22.3): each answer costs the sender a request, never more.
   */
  screen?(request: SipRequest, source: MessageSource): SipResponse | undefined;
}

export interface TransactionLayerOptions {
  transports: Transport[];
  user: TransactionUser;
  clock?: Clock;
  timers?: Partial<TimerValues>;
  /** Stateless checks applied to every request (§8.2, §16.3). */
  validate?: ValidateOptions;
  parseLimits?: Partial<ParseLimits>;
  /** 100 Trying after this long without a response to an INVITE (default 200 ms; -1 disables). */
  tryingAfterMs?: number;
  /** Requests larger than this go over a stream transport when one exists (§18.1.1; default 1300). */
  udpSizeLimit?: number;
  /** Most live transactions; new requests beyond it get 503 (default 200 000). */
  maxTransactions?: number;
  /** Sees every message sent and received (tracing). */
  trace?: (direction: 'in' | 'out', bytes: Uint8Array, remote: TransportAddress, transport: Transport) => void;
  /**
   * Sees every event fed to every transaction's state machine, with the state before and
   * after it (tracing; the tables are in src/transaction/*: INVITE_CLIENT, …). Absorbed
   * events come too, marked `ignored`. Called before the transition's actions run, so a
   * transition it causes (a TU answering from onRequest) comes after it. It must not throw.
   */
  onTransition?: (transition: TransactionTransition) => void;
  /**
   * RFC 3263 server location for requests to a host name (`send`, and the user agents above).
   * Default: a `SipResolver` over node:dns with the system's servers, this layer's clock, and
   * the transports this layer has. IP-literal URIs never reach DNS either way.
   */
  resolver?: SipResolver;
}

export interface TransactionLayerStats {
  /** Live transactions (client and server). */
  transactions: number;
  /** Live timers held by those transactions. */
  timers: number;
  requestsReceived: number;
  responsesReceived: number;
  malformedRequests: number;
  /** Malformed responses: dropped and counted (§18.1.2). */
  malformedResponses: number;
  strayResponses: number;
  statelessResponses: number;
  /** The same, by status (400, 407, 420, 483, 503…): what the stateless checks and `screen` refused. */
  statelessByStatus: Record<number, number>;
  /** ACKs for a non-2xx final sent statelessly (a `screen` answer): matched by To tag and dropped. */
  statelessAcksAbsorbed: number;
  retransmissionsAbsorbed: number;
  transportErrors: number;
}

/**
 * The layer receiving on each transport. A transport has one receiver, so a second layer given
 * the same transport would silently take every incoming message from the first: it is refused.
 * Kept on globalThis so that two copies of sipkit in one process (ESM and CJS) share it.
 */
const CLAIMS = Symbol.for('sipkit.transport.claims');
const claims = ((globalThis as Record<symbol, unknown>)[CLAIMS] ??= new WeakMap<Transport, object>()) as WeakMap<Transport, object>;

const PARSE_PHRASE: Record<string, string> = {
  BAD_START_LINE: 'Bad Request-Line',
  BAD_HEADER: 'Bad Header',
  BAD_URI: 'Bad URI',
  BAD_CONTENT_LENGTH: 'Bad Content-Length',
  CONTENT_LENGTH_MISMATCH: 'Content-Length Mismatch',
  TOO_MANY_HEADERS: 'Too Many Headers',
  LINE_TOO_LONG: 'Header Line Too Long',
};

/** What a salvaged request keeps (compact forms included), by its canonical name. */
const RESPONSE_HEADERS: Record<string, string | undefined> = Object.assign(Object.create(null) as Record<string, string>, {
  via: 'via', v: 'via', from: 'from', f: 'from', to: 'to', t: 'to', 'call-id': 'call-id', i: 'call-id', cseq: 'cseq',
});

/**
 * RFC 3261 §17 transaction layer: matches what arrives to the four state
 * machines, answers what fails the stateless checks, routes responses back per
 * §18.2.2, and hands everything else to the transaction user.
 */
export class TransactionLayer {
  readonly clock: Clock;
  readonly timers: TimerValues;
  private readonly user: TransactionUser;
  private readonly transportList: Transport[];
  private readonly clients = new Map<string, ClientTransaction>();
  private readonly servers = new Map<string, ServerTransaction>();
  /** Where transactions send and where messages came from: one frozen object per peer (issue #16). */
  private readonly destinations = new Destinations();
  private readonly opts: TransactionLayerOptions;
  private readonly host: TransactionHost;
  /** Timers D, I, J, K, L, M of every transaction: one FIFO and one clock timer per wait (issue #16). */
  private readonly waits: WaitQueues;
  /**
   * Starts the To tag of every final this layer sends statelessly for a screened request, so the
   * ACK for it is recognised without state (as Kamailio's sl module does). Random per layer, and
   * with a '.' that generateTag's hex tags never contain: no dialog's tag can look like one.
   */
  private readonly statelessTagPrefix = generateTag().slice(0, 8) + '.';
  private resolverInUse: SipResolver | undefined;
  /** §18.2.2 fall-backs under way, by server transaction (made only when a response could not be sent). */
  private readonly responseRetries = new WeakMap<ServerTransaction, { tried: Set<string>; received: boolean; list: TargetList | undefined }>();
  private readonly retryResponse = (tx: ServerTransaction): Promise<Destination | undefined> => this.nextResponseDestination(tx);
  private isClosed = false;
  private readonly counters = {
    requestsReceived: 0,
    responsesReceived: 0,
    malformedRequests: 0,
    malformedResponses: 0,
    strayResponses: 0,
    statelessResponses: 0,
    statelessAcksAbsorbed: 0,
    retransmissionsAbsorbed: 0,
    transportErrors: 0,
  };
  /** Stateless answers by status (a status is 100–699: bounded). */
  private readonly statelessStatus = new Map<number, number>();
  /** What every received message is parsed with: one object, not one per message. */
  private readonly parseOptions: { limits?: Partial<ParseLimits> };

  constructor(options: TransactionLayerOptions) {
    if (options.transports.length === 0) throw new SipError('NO_TRANSPORT', 'a transaction layer needs at least one transport');
    for (const t of options.transports) {
      const owner = claims.get(t);
      if (owner !== undefined && owner !== this) {
        throw new SipError(
          'TRANSPORT_IN_USE',
          `the ${t.protocol} transport on ${addressKey(t.local)} is already used by another transaction layer (user agent, B2BUA): a transport delivers to one layer; close that one first or bind another transport`,
        );
      }
    }
    for (const t of options.transports) claims.set(t, this);
    this.opts = options;
    this.parseOptions = { limits: options.parseLimits };
    this.user = options.user;
    this.clock = options.clock ?? new RealClock();
    this.timers = { ...DEFAULT_TIMERS, ...options.timers };
    this.transportList = options.transports;
    this.waits = new WaitQueues(this.clock);
    this.host = {
      clock: this.clock,
      timers: this.timers,
      transmit: (bytes, dest, onError) => this.transmit(bytes, dest, onError),
      sendFailed: () => {
        this.counters.transportErrors++;
      },
      release: (tx) => this.release(tx),
      deliverAck: (ack, source) => this.user.onAck?.(ack, source),
      onTransition: options.onTransition,
      waits: this.waits,
    };
    for (const t of options.transports) {
      t.setReceiver({
        onMessage: (bytes, from, transport) => this.receive(bytes, from, transport),
        onError: () => {
          this.counters.transportErrors++;
        },
      });
    }
  }

  get transports(): readonly Transport[] {
    return this.transportList;
  }

  /** The RFC 3263 resolver requests to host names go through (the `resolver` option, or one made on first use). */
  get resolver(): SipResolver {
    return (this.resolverInUse ??= this.opts.resolver ?? new SipResolver({ clock: this.clock, transports: this.resolverTransports() }));
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** The transports a default resolver may choose: the ones this layer has (UDP, then TCP, then TLS). */
  private resolverTransports(): SipTransportName[] {
    const have = new Set(this.transportList.map((t) => t.protocol));
    const out = (['udp', 'tcp', 'tls'] as const).filter((p) => have.has(p));
    return out.length > 0 ? out : ['udp'];
  }

  get stats(): TransactionLayerStats {
    let timers = 0;
    for (const t of this.clients.values()) timers += t.timerCount;
    for (const t of this.servers.values()) timers += t.timerCount;
    return { transactions: this.clients.size + this.servers.size, timers, ...this.counters, statelessByStatus: Object.fromEntries(this.statelessStatus) };
  }

  /** The transport for a protocol (default: the first one). */
  transportFor(protocol?: string): Transport {
    if (protocol === undefined) return this.transportList[0]!;
    const p = protocol.toLowerCase();
    const t = this.transportList.find((x) => x.protocol === p);
    if (!t) throw new SipError('NO_TRANSPORT', `no ${p} transport`);
    return t;
  }

  /** A Via for requests sent on `transport`, with a fresh branch and rport (RFC 3581). */
  createVia(transport: Transport, branch = generateBranch()): string {
    return `SIP/2.0/${transport.protocol.toUpperCase()} ${formatHost(transport.local.address)}:${transport.local.port};branch=${branch};rport`;
  }

  // ---- sending -----------------------------------------------------------------

  /**
   * Send a request in a new client transaction. A Via with a new branch is
   * added on top unless `keepVia` (CANCEL reuses the INVITE's). ACK is not a
   * transaction: use `sendStateless`.
   */
  sendRequest(request: SipRequest, target: Target, user: ClientTransactionUser, options: { keepVia?: boolean } = {}): ClientTransaction {
    if (request.method === 'ACK') throw new SipError('ACK_NOT_A_TRANSACTION', 'ACK is sent with sendStateless');
    let transport = this.transportFor(target.transport);
    if (transport.protocol !== 'tls') refuseSipsOver(request, transport);
    let bytes: Uint8Array | undefined;
    // Set when the request goes over TCP only because of its size: the datagram transport is the way back.
    let sizedOutOf: Transport | undefined;
    if (!options.keepVia) {
      request.prepend('Via', this.createVia(transport));
      bytes = request.toBytes();
      // §18.1.1: too large for UDP and a congestion-controlled transport is at hand → use it.
      if (!transport.reliable && bytes.length > (this.opts.udpSizeLimit ?? 1300) && target.serverName === undefined) {
        const stream = this.transportList.find((t) => t.reliable && t.protocol === 'tcp');
        if (stream) {
          sizedOutOf = transport;
          transport = stream;
          request.removeFirst('Via');
          request.prepend('Via', this.createVia(transport));
          bytes = undefined;
        }
      }
    }
    const branch = request.topVia?.branch;
    if (!branch) throw new SipError('NO_BRANCH', 'request has no Via branch');
    // Shared with every transaction to the same peer (a TLS target with a server name has its own).
    const dest = this.destinations.of(transport, target);
    // Kept for the transaction's life (64·T1 in a wait state): flat, not holding the request's text.
    const key = request.method === 'INVITE' ? ownText(branch) : flatText(clientTableKey(branch, request.method));
    bytes ??= request.toBytes();
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(this.host, key, request, dest, user, bytes, this.cancelSender)
        : new NonInviteClientTransaction(this.host, key, request, dest, user, bytes);
    if (sizedOutOf) {
      const udp = sizedOutOf;
      tx.retryOver = (err) => {
        if (!refusedOrReset(err)) return undefined;
        // §18.1.1: the peer has no TCP; the same request (same branch: the same transaction)
        // goes over UDP after all, its Via saying so.
        request.removeFirst('Via');
        request.prepend('Via', this.createVia(udp, branch));
        return { transport: udp, bytes: request.toBytes() };
      };
    }
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /** How every INVITE client transaction of this layer sends its CANCEL: one function, not a closure per INVITE. */
  private readonly cancelSender = (cancel: SipRequest, invite: InviteClientTransaction): void => this.sendCancel(cancel, invite);

  private sendCancel(cancel: SipRequest, invite: InviteClientTransaction): void {
    const target: Target = { ...invite.dest.address, transport: invite.dest.transport.protocol };
    this.sendRequest(cancel, target, { onResponse: () => undefined }, { keepVia: true });
  }

  /**
   * Send a request with RFC 3263 §4.3 fail-over: to each target of `targets` in turn (a new
   * client transaction, new branch, each time) until one answers with something other than a
   * timeout, a transport error or a 503 — an INVITE commits to a target at its first
   * provisional. The user sees the responses of the attempt that counts and one final;
   * `failureCause(final)` says why when all failed. `prepare` sees each attempt's request
   * and target before it leaves (to write a Contact for that transport).
   */
  send(request: SipRequest, targets: TargetList, user: OutboundUser, prepare?: PrepareAttempt): OutboundRequest {
    const out = new OutboundRequest(this, request, targets, user, prepare);
    out.start();
    return out;
  }

  /**
   * Where a request to `uri` goes when its host is an IP address: the target, synchronously —
   * no DNS, no promise (the hot path). Undefined for a host name: use `resolver.targets(uri)`
   * and `send`. Throws `NO_TRANSPORT` for a URI asking for a transport this layer lacks.
   */
  literalTarget(uri: SipUri): Target | undefined {
    const t = this.resolver.literalTarget(uri);
    return t === undefined ? undefined : targetOf(t);
  }

  /** Send a message outside any transaction (ACK for 2xx, stateless responses). */
  sendStateless(message: SipRequest | SipResponse, target: Target): Promise<void> {
    const transport = this.transportFor(target.transport);
    if (message.type === 'request' && transport.protocol !== 'tls') {
      try {
        refuseSipsOver(message, transport);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const bytes = message.toBytes();
    const address = destinationAddress(target);
    this.opts.trace?.('out', bytes, address, transport);
    return transport.send(bytes, address).catch((err: TransportError) => {
      this.counters.transportErrors++;
      throw err;
    });
  }

  private transmit(bytes: Uint8Array, dest: Destination, onError: (err: TransportError) => void): void {
    if (this.opts.trace) this.opts.trace('out', bytes, dest.address, dest.transport);
    // onError counts the failure itself (TransactionHost.sendFailed): no closure per send here.
    post(dest.transport, bytes, dest.address, onError);
  }

  private release(tx: Transaction): void {
    const map: Map<string, Transaction> = tx.kind.endsWith('client') ? this.clients : this.servers;
    if (map.get(tx.key) === tx) map.delete(tx.key);
  }

  // ---- receiving -----------------------------------------------------------------

  /** Feed a received message (transports call this through their receiver). */
  receive(bytes: Uint8Array, from: TransportAddress, transport: Transport): void {
    this.opts.trace?.('in', bytes, from, transport);
    // The same object for every message from this peer: what a dialog keeps as its peer address.
    const source: MessageSource = this.destinations.of(transport, from);
    let msg: SipRequest | SipResponse;
    try {
      msg = parseMessage(bytes, this.parseOptions);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      this.malformed(bytes, err, source);
      return;
    }
    try {
      if (msg.type === 'response') this.receiveResponse(msg, source);
      else this.receiveRequest(msg, source);
    } catch (err) {
      // A typed view that fails on a message validate() let through must not take the stack down.
      if (!(err instanceof SipParseError)) throw err;
      if (msg.type === 'response') this.counters.malformedResponses++;
      else this.counters.malformedRequests++;
    }
  }

  private malformed(bytes: Uint8Array, err: SipParseError, source: MessageSource): void {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.subarray(0, 4).toString('latin1') === 'SIP/') {
      this.counters.malformedResponses++;
      return;
    }
    this.counters.malformedRequests++;
    // Salvage what a response copies (§8.2.6.2: Via, From, To, Call-ID, CSeq) under a stand-in
    // request line, so the 400 can reach the sender. Only those lines: whatever broke the parse
    // (a bad line, too many headers) stays behind, and what is kept is bounded.
    let end = buf.indexOf('\r\n\r\n');
    if (end < 0) end = buf.length;
    const lines = buf.toString('utf8', 0, end).split(/\r?\n/);
    const maxVias = this.opts.validate?.maxVias ?? MAX_VIAS;
    const kept = ['SALVAGED sip:invalid SIP/2.0'];
    const seen = new Set<string>();
    const maxLine = this.opts.parseLimits?.maxLineLength ?? DEFAULT_LIMITS.maxLineLength;
    let keeping = false;
    let viaLines = 0;
    // Set when Vias were left behind: the answer then carries the top one only.
    let viasCut = false;
    for (let i = 1; i < lines.length; i++) {
      let l = lines[i]!;
      if (l.startsWith(' ') || l.startsWith('\t')) {
        if (keeping) kept.push(l);
        continue;
      }
      const name = RESPONSE_HEADERS[/^([!-9;-~]+)[ \t]*:/.exec(l)?.[1]?.toLowerCase() ?? ''];
      // One more Via line than allowed is enough to know there are too many.
      if (name === 'via') {
        keeping = ++viaLines <= maxVias + 1;
        // A Via list too long for one line: its first element is the top Via, all the answer needs.
        if (l.length > maxLine && l.indexOf(',') > 0) {
          l = l.slice(0, l.indexOf(','));
          viasCut = true;
        }
      } else keeping = name !== undefined && !seen.has(name);
      if (name !== undefined) seen.add(name);
      if (keeping) kept.push(l);
    }
    let req: SipRequest | SipResponse;
    try {
      req = parseMessage(kept.join('\r\n') + '\r\n\r\n');
    } catch {
      return;
    }
    if (req.type !== 'request') return;
    let phrase = PARSE_PHRASE[err.code] ?? 'Bad Request';
    try {
      // §17: never answer an ACK.
      if (req.cseq.method === 'ACK' || !req.has('via')) return;
      if (req.getAll('via').length > maxVias) {
        phrase = 'Too Many Via Headers';
        viasCut = true;
      }
    } catch {
      return;
    }
    this.respondStatelessly(req, 400, phrase, source, undefined, viasCut);
  }

  /**
   * Answer without a transaction. `topViaOnly` answers a request refused for its number of Vias
   * with only the top one: that is where the response goes and what the sender matches (§18.2.2,
   * §17.1.3). Copying them all (§8.2.6.2) would send back what was refused; the cost is that the
   * response stops at the previous hop, which has no Via of its own left to route it on (§16.7 item 3).
   */
  private respondStatelessly(req: SipRequest, status: number, reason: string, source: MessageSource, headers?: Array<[string, string]>, topViaOnly = false): void {
    let address = source.address;
    try {
      // Stamped first, so the response carries received/rport as the sender expects (RFC 3581 §4).
      const top = stampVia(req, source.address);
      if (top) address = responseAddress(top, source.address, source.transport);
    } catch {
      // A Via we cannot read: answer where the request came from (symmetric response).
    }
    const res = createResponse(req, status, { reason, headers });
    if (topViaOnly) {
      const top = res.get('via');
      res.remove('via');
      if (top !== undefined) res.prepend('Via', top);
    }
    this.postStateless(res, address, source.transport);
  }

  private postStateless(res: SipResponse, address: TransportAddress, transport: Transport): void {
    this.counters.statelessResponses++;
    this.statelessStatus.set(res.status, (this.statelessStatus.get(res.status) ?? 0) + 1);
    const bytes = res.toBytes();
    this.opts.trace?.('out', bytes, address, transport);
    post(transport, bytes, address, () => {
      this.counters.transportErrors++;
    });
  }

  /**
   * The To tag of a stateless answer to `req`: the layer's prefix and a hash of what identifies
   * the request (Call-ID, From tag, branch), so a retransmission gets the same tag — one answer,
   * however often it is sent (§8.2.6.2 wants the tag to stay the same for a request).
   */
  private statelessTag(req: SipRequest, branch: string): string {
    // FNV-1a over Call-ID, NUL, From tag, NUL, branch: part by part, with no string joined to hash.
    let h = fnv1a(0x811c9dc5, req.callId);
    h = fnv1a(Math.imul(h, 0x01000193), req.from.tag ?? '');
    h = fnv1a(Math.imul(h, 0x01000193), branch);
    return this.statelessTagPrefix + (h >>> 0).toString(16);
  }

  private receiveResponse(res: SipResponse, source: MessageSource): void {
    this.counters.responsesReceived++;
    if (validateResponse(res) !== null) {
      this.counters.malformedResponses++;
      return;
    }
    const branch = res.topVia?.branch;
    const method = res.cseq.method;
    const tx = branch ? this.clients.get(clientTableKey(branch, method)) : undefined;
    // (See clientTableKey: the kind is checked, a branch's text alone could name another method's key.)
    if (tx !== undefined && (tx.kind === 'invite-client') === (method === 'INVITE')) {
      tx.receive(res);
      return;
    }
    this.counters.strayResponses++;
    this.user.onStrayResponse?.(res, source);
  }

  private receiveRequest(req: SipRequest, source: MessageSource): void {
    this.counters.requestsReceived++;
    const failure = validateRequest(req, this.opts.validate);
    if (failure) {
      this.counters.malformedRequests++;
      // §17: an ACK is never answered.
      if (req.method !== 'ACK' && req.has('via')) {
        this.respondStatelessly(req, failure.status, failure.reason, source, failure.headers, failure.code === 'TOO_MANY_VIAS');
      }
      return;
    }
    const t = stampVia(req, source.address)!;
    // RFC 4475 §3.2.1: a branch that is only the magic cookie is malformed; reject statelessly.
    if (t.branch === MAGIC_COOKIE) {
      this.counters.malformedRequests++;
      if (req.method !== 'ACK') this.respondStatelessly(req, 400, 'Bad Branch', source);
      return;
    }
    let key = serverKey(req, t);
    const existing = this.servers.get(key);
    if (req.method === 'ACK') {
      // The INVITE's transaction decides (its table): Completed takes the ACK for its non-2xx,
      // Accepted hands the ACK for its 2xx to the TU. With no transaction it is the TU's (§17.2.3).
      if (existing instanceof InviteServerTransaction) existing.receiveAck(req, source);
      else if (req.to.tag?.startsWith(this.statelessTagPrefix)) {
        // The ACK for a final sent statelessly (screen): there is nothing to confirm and nothing
        // to stop (no Timer G ran). It ends here, as Kamailio's sl_filter_ACK ends it.
        this.counters.statelessAcksAbsorbed++;
      } else this.user.onAck?.(req, source);
      return;
    }
    if (existing) {
      this.counters.retransmissionsAbsorbed++;
      existing.receiveRetransmission();
      return;
    }
    const screen = this.user.screen;
    if (screen !== undefined && req.method !== 'CANCEL' && req.to.tag === undefined) {
      const answer = screen(req, source);
      if (answer !== undefined) {
        this.answerScreened(req, answer, t, source);
        return;
      }
    }
    if (this.servers.size + this.clients.size >= (this.opts.maxTransactions ?? 200_000)) {
      this.respondStatelessly(req, 503, 'Service Unavailable', source, [['Retry-After', '5']]);
      return;
    }
    // The source itself when responses go back where the request came from (it is interned already).
    const to = responseAddress(t, source.address, source.transport);
    const dest = to === source.address ? source : this.destinations.of(source.transport, to);
    key = flatText(key);
    if (req.method === 'CANCEL') {
      const tx = new NonInviteServerTransaction(this.host, key, req, dest);
      this.servers.set(key, tx);
      // §9.2: the CANCEL matches the INVITE with the same branch and sent-by.
      const invite = this.servers.get(serverKey(req, t, 'INVITE'));
      if (!(invite instanceof InviteServerTransaction)) {
        tx.respond(createResponse(req, 481));
        return;
      }
      tx.respond(createResponse(req, 200));
      if (invite.state === 'proceeding') this.user.onCancel?.(invite, req);
      return;
    }
    const tx: ServerTransaction =
      req.method === 'INVITE'
        ? new InviteServerTransaction(this.host, key, req, dest, this.opts.tryingAfterMs ?? 200)
        : new NonInviteServerTransaction(this.host, key, req, dest);
    // §18.2.2: over a connection, responses go back on it; when it is gone, elsewhere.
    if (source.transport.reliable) tx.retryElsewhere = this.retryResponse;
    this.servers.set(key, tx);
    this.user.onRequest(req, tx, source);
  }

  /** Send the TU's stateless answer to a screened request: its To tag marked as ours (see statelessTag). */
  private answerScreened(req: SipRequest, res: SipResponse, top: Via, source: MessageSource): void {
    // §8.2.6.2: a final carries a To tag; ours replaces whatever tag createResponse drew, so the
    // ACK is recognised and a retransmission gets the very same answer.
    if (res.status > 100) {
      const to = req.get('to');
      if (to !== undefined) res.set('To', to + ';tag=' + this.statelessTag(req, top.branch ?? ''));
    }
    this.postStateless(res, responseAddress(top, source.address, source.transport), source.transport);
  }

  /**
   * Where a response goes after sending it back over the request's connection failed
   * (RFC 3261 §18.2.2): a new connection to `received` at the sent-by port, then the sent-by
   * as RFC 3263 §5 locates it (SRV of `_sip._tcp`/`_sips._tcp`, A/AAAA). Each address once.
   */
  private async nextResponseDestination(tx: ServerTransaction): Promise<Destination | undefined> {
    const via = tx.topVia;
    if (via === undefined) return undefined;
    let st = this.responseRetries.get(tx);
    if (st === undefined) {
      st = { tried: new Set([addressKey(tx.dest.address)]), received: false, list: undefined };
      this.responseRetries.set(tx, st);
    }
    if (!st.received) {
      st.received = true;
      const received = via.received;
      if (received !== undefined) {
        const tls = via.transport.toUpperCase() === 'TLS';
        const sentBy = bareHost(via.host);
        // RFC 5922 §4: over TLS the client proves its sent-by domain.
        const serverName = tls && isIP(sentBy) === 0 ? sentBy : undefined;
        const address = destinationAddress({ address: bareHost(received), port: via.port ?? (tls ? 5061 : 5060), serverName });
        const key = addressKey(address);
        if (!st.tried.has(key)) {
          st.tried.add(key);
          return { transport: tx.dest.transport, address };
        }
      }
    }
    if (st.list === undefined) {
      const sentBy = via.clone();
      sentBy.params.delete('received');
      sentBy.params.delete('rport');
      st.list = this.resolver.responseTargets(sentBy);
    }
    // Bounded: a sent-by's SRV set is small, and each address is tried once.
    for (let i = 0; i < 16; i++) {
      const t = await st.list.next();
      if (t === undefined) return undefined;
      const target = targetOf(t);
      const address = destinationAddress(target);
      const key = addressKey(address);
      if (st.tried.has(key) || !this.transportList.some((x) => x.protocol === t.transport)) continue;
      st.tried.add(key);
      return { transport: this.transportFor(t.transport), address };
    }
    return undefined;
  }

  /** Terminate every transaction and close the transports (which may then be given to a new layer). */
  async close(): Promise<void> {
    this.isClosed = true;
    for (const t of [...this.clients.values(), ...this.servers.values()]) t.abort();
    // Every waiter left with its abort; whatever the queues still hold goes with their clock timers.
    this.waits.close();
    for (const t of this.transportList) if (claims.get(t) === this) claims.delete(t);
    await Promise.all(this.transportList.map((t) => t.close()));
  }
}

// RFC 3261 §18.1.1 retries over UDP when the TCP connection attempt "generates either an ICMP
// Protocol Not Supported, or results in a TCP reset": a reset is ECONNREFUSED on connect (or
// ECONNRESET), and Linux reports ICMP protocol-unreachable as ENOPROTOOPT. A timeout is neither.
const RETRY_OVER_UDP = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOPROTOOPT', 'EPROTONOSUPPORT']);

function refusedOrReset(err: TransportError): boolean {
  if (err.code !== 'CONNECT_FAILED') return false;
  const errno = (err.cause as { code?: unknown } | undefined)?.code;
  return typeof errno === 'string' && RETRY_OVER_UDP.has(errno);
}

/** The address a transport sends to; for TLS, with the SIP domain its certificate must prove. */
function destinationAddress(target: Target): TransportAddress {
  return target.serverName === undefined ? { address: target.address, port: target.port } : { address: target.address, port: target.port, serverName: target.serverName } as TransportAddress;
}

/** FNV-1a of `s`'s UTF-16 code units, from `h`. */
function fnv1a(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** `sips:` (any case) at offset `i` of `s`. */
function sipsAt(s: string, i: number): boolean {
  return (s.charCodeAt(i + 3) | 32) === 115 && s.charCodeAt(i + 4) === 58 && (s.charCodeAt(i) | 32) === 115 && (s.charCodeAt(i + 1) | 32) === 105 && (s.charCodeAt(i + 2) | 32) === 112;
}

/**
 * RFC 3261 §26.2.2: a request for a sips: URI (Request-URI, or the top Route it goes through)
 * is secured with TLS on every hop — it is not sent over anything else (RFC 5630 §3.1.3).
 */
function refuseSipsOver(request: SipRequest, transport: Transport): void {
  if (sipsAt(request.uri, 0)) throw new SipError('NO_TRANSPORT', `a sips: request is not sent over ${transport.protocol} (RFC 3261 §26.2.2: TLS on every hop)`);
  const route = request.get('route');
  if (route !== undefined && sipsAt(route, route.indexOf('<') + 1)) throw new SipError('NO_TRANSPORT', `a request routed through a sips: URI is not sent over ${transport.protocol} (RFC 3261 §26.2.2)`);
}

/** Send without waiting: through the transport's promise-free `post` when it has one. */
function post(t: Transport, bytes: Uint8Array, to: TransportAddress, failed: (err: TransportError) => void): void {
  if (t.post !== undefined) t.post(bytes, to, failed);
  else t.send(bytes, to).catch(failed);
}
