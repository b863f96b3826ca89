import { DigestClient, DigestError, type DigestClientOptions } from '../digest/index.js';
import {
  appendHeaders,
  createRequest,
  generateCallId,
  generateTag,
  parseNameAddr,
  parseUri,
  SipError,
  type HeaderInit,
  type NameAddr,
  type SipRequest,
  type SipResponse,
  type SipUri,
} from '../parser/index.js';
import type { Timer, Transport, TransportError } from '../transport/index.js';
import { isSynthesized, targetFromUri, type Target, type TransactionLayer } from '../transaction/index.js';
import { Emitter } from '../util/events.js';
import { formatContact, grantedBinding, instanceUrn, type OutboundParams } from './registration-contact.js';

/** What a registration needs of the user agent it registers (a `UserAgent` is one). */
export interface RegistrationHost {
  readonly layer: TransactionLayer;
  /** The Contact (name-addr) requests sent towards `target` carry. */
  contactFor(target: Target, secure?: boolean): string;
}

export interface RegistrationOptions {
  /** Request-URI of the REGISTER: the registrar's domain, no user part (§10.2), e.g. `sip:example.com`. */
  registrar: string;
  /** The address of record, written in To and From (§10.2), e.g. `sip:alice@example.com`. */
  aor: string;
  /** Where the REGISTER is sent (an outbound proxy); default: the registrar URI's host, port and transport. */
  destination?: Target;
  /** The Contact to bind (URI or name-addr); default: the user agent's Contact for the destination. */
  contact?: string;
  /** Binding lifetime asked for, in seconds (default 3600). A 423 raises it to the registrar's Min-Expires. */
  expires?: number;
  /** Credentials for 401 (WWW-Authenticate) and 407 (Proxy-Authenticate) challenges. */
  auth?: DigestClientOptions;
  /**
   * RFC 5626 outbound: `+sip.instance` (a URN, or a bare UUID taken as `urn:uuid:…`) and
   * `reg-id` (default 1) on the Contact, and `Supported: outbound, path`.
   */
  outbound?: { instanceId: string; regId?: number };
  /**
   * CRLF CRLF keep-alives (RFC 5626 §3.5.1, §4.4.1) while registered. Default: on when
   * `outbound` is set, the transport is reliable and the registrar's 2xx has `Require: outbound`.
   * `true` or an interval forces them on any transport — over UDP that is a NAT keep-alive many
   * registrars accept, not RFC 5626 (which keeps CRLF to streams and uses STUN over UDP, §4.4.2:
   * not implemented).
   */
  keepAlive?: boolean | { intervalMs: number };
  /** Back-off after a failure (RFC 5626 §4.5): min(maxMs, baseMs·2^failures), then 50–100 % of it. */
  retry?: { baseMs?: number; maxMs?: number };
  /** Random source in [0, 1) for back-off and keep-alive jitter (default Math.random). */
  random?: () => number;
  /** Extra headers on every REGISTER (Route for a preloaded route set, …). */
  headers?: HeaderInit;
  userAgent?: string;
}

export type RegistrationState = 'idle' | 'registering' | 'registered' | 'retrying' | 'closing' | 'closed';

/** A granted binding. */
export interface RegisteredInfo {
  /** Seconds the registrar granted our Contact. */
  expires: number;
  /** Every binding the registrar listed for the AOR (ours among them), as written. */
  contacts: string[];
  response: SipResponse;
}

/**
 * Why an attempt failed: `timeout` (no answer: Timer F), `transport` (could not send),
 * `auth` (a challenge we could not answer, or our credentials rejected), `interval` (423
 * without a usable Min-Expires), `rejected` (any other final response).
 */
export type RegistrationFailureCause = 'timeout' | 'transport' | 'auth' | 'interval' | 'rejected';

export interface RegistrationFailure {
  cause: RegistrationFailureCause;
  /** The final status (a synthesized 408/503 for `timeout`/`transport`), when there was one. */
  status?: number;
  response?: SipResponse;
  error?: SipError;
  /** When the next attempt goes out (ms, on the clock); undefined when none will (closing). */
  retryInMs?: number;
}

export interface RegistrationEvents {
  /** A REGISTER was accepted (the first one and every refresh). */
  registered(info: RegisteredInfo): void;
  /** An attempt failed; another follows after `retryInMs` unless closing. */
  failed(failure: RegistrationFailure): void;
  /** close() removed the binding (a 2xx to `Expires: 0`). */
  unregistered(response: SipResponse): void;
}

const DEFAULT_EXPIRES = 3600;
// RFC 5626 §4.5: base-time 30 s when every flow failed, max-time 1800 s.
const DEFAULT_BASE_MS = 30_000;
const DEFAULT_MAX_MS = 1_800_000;
// Within one attempt: 401/407 rounds (the digest client also stops at a second non-stale one) and 423 rounds.
const MAX_CHALLENGES = 3;
const MAX_INTERVAL_RETRIES = 2;
const PING = new Uint8Array([13, 10, 13, 10]);

interface Waiter {
  resolve(info: RegisteredInfo): void;
  reject(err: SipError): void;
}

type Outcome = { ok: true; info: RegisteredInfo } | { ok: false; failure: RegistrationFailure };

/**
 * An outbound registration (RFC 3261 §10.2): binds a Contact of a user agent to an address of
 * record at a registrar and keeps it bound — refreshing at half the granted time, answering
 * digest challenges, raising the expiry on 423, backing off after failures — until close(),
 * which removes the binding. Every REGISTER shares one Call-ID, with the CSeq rising by one
 * each time (§10.2.4). Everything runs on the layer's clock.
 */
export class Registration extends Emitter<RegistrationEvents> {
  private readonly host: RegistrationHost;
  private readonly opts: RegistrationOptions;
  private destination: Target;
  /** The registrar's URI when its host is a name: each REGISTER is located (RFC 3263) with fail-over. */
  private readonly located: SipUri | undefined;
  private readonly contact: NameAddr;
  private readonly outbound: OutboundParams | undefined;
  private readonly digest: DigestClient | undefined;
  private readonly random: () => number;
  readonly callId = generateCallId();
  private readonly fromTag = generateTag();
  private cseq = 0;
  private requested: number;
  private st: RegistrationState = 'idle';
  /** The binding as last granted, until it lapses or is removed. */
  private bound: RegisteredInfo | undefined;
  /** Clock time the granted binding lapses at unless refreshed. */
  private boundUntil = 0;
  private failures = 0;
  /** Set once a REGISTER has gone out: from then on a binding may exist, so close() removes it. */
  private sent = false;
  private inFlight: Promise<Outcome> | undefined;
  private waiters: Waiter[] = [];
  private timer: Timer | undefined;
  private keepAliveTimer: Timer | undefined;
  private flowTimer: number | undefined;
  private registrarOutbound = false;
  private closing: Promise<void> | undefined;

  constructor(host: RegistrationHost, options: RegistrationOptions) {
    super();
    this.host = host;
    this.opts = options;
    const registrar = checked('registrar', options.registrar, parseUri);
    if (options.destination === undefined && registrar.kind !== 'sip') {
      throw new SipError('NO_DESTINATION', `cannot route to ${options.registrar} without a destination`);
    }
    checked('aor', options.aor, parseUri);
    this.destination = options.destination ?? targetFromUri(registrar as never);
    if (options.destination === undefined && locatable(host.layer, registrar as SipUri)) this.located = registrar as SipUri;
    const contact = options.contact ?? host.contactFor(this.destination, (registrar as SipUri).scheme === 'sips');
    this.contact = checked('contact', contact.includes('<') ? contact : `<${contact}>`, (s) => {
      const na = parseNameAddr(s, 'contact');
      void na.uri;
      return na;
    });
    const expires = options.expires ?? DEFAULT_EXPIRES;
    if (!Number.isInteger(expires) || expires < 1 || expires > 0xffffffff) throw new SipError('BAD_OPTION', `expires must be a whole number of seconds ≥ 1 (got ${expires})`);
    this.requested = expires;
    if (options.outbound) {
      const regId = options.outbound.regId ?? 1;
      if (!Number.isInteger(regId) || regId < 1 || regId > 0x7fffffff) throw new SipError('BAD_OPTION', `outbound.regId must be a positive whole number (got ${regId})`);
      this.outbound = { instance: instanceUrn(options.outbound.instanceId), regId };
    }
    const ka = options.keepAlive;
    if (typeof ka === 'object' && !(Number.isFinite(ka.intervalMs) && ka.intervalMs > 0)) throw new SipError('BAD_OPTION', `keepAlive.intervalMs must be a positive number (got ${ka.intervalMs})`);
    for (const k of ['baseMs', 'maxMs'] as const) {
      const v = options.retry?.[k];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new SipError('BAD_OPTION', `retry.${k} must be a positive number (got ${v})`);
    }
    this.digest = options.auth ? new DigestClient(options.auth) : undefined;
    this.random = options.random ?? Math.random;
  }

  get state(): RegistrationState {
    return this.st;
  }

  /** The binding as last granted, while it lasts: undefined before the first 2xx, once it lapsed unrefreshed, and after close. */
  get binding(): RegisteredInfo | undefined {
    return this.bound !== undefined && this.host.layer.clock.now() < this.boundUntil ? this.bound : undefined;
  }

  /** The Expires value REGISTERs ask for (raised by a 423's Min-Expires). */
  get expires(): number {
    return this.requested;
  }

  /**
   * Register now (or refresh at once when registered) and resolve with the granted binding.
   * Rejects with SipError('REGISTRATION_FAILED') when this attempt fails — the registration
   * keeps trying after its back-off all the same, until close() — and with 'CLOSED' after close().
   */
  register(): Promise<RegisteredInfo> {
    if (this.closing) return Promise.reject(new SipError('CLOSED', 'the registration is closed'));
    const p = new Promise<RegisteredInfo>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.inFlight) this.attempt();
    return p;
  }

  /**
   * Stop refreshing and remove the binding (§10.2.2: `Expires: 0` and the Contact with
   * `expires=0`), answering a challenge if one comes. Waits for a REGISTER in flight first.
   * Resolves when the registrar has answered or the transaction has given up (Timer F);
   * never rejects — `unregistered` or `failed` says how it went. Calling it again returns
   * the same promise.
   */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.st = 'closing';
    this.cancelTimers();
    if (this.inFlight) await this.inFlight;
    for (const w of this.waiters.splice(0)) w.reject(new SipError('CLOSED', 'the registration was closed'));
    if (this.sent) {
      const out = await this.run(0);
      if (out.ok) this.emit('unregistered', out.info.response);
      else this.emit('failed', out.failure);
    }
    this.bound = undefined;
    this.st = 'closed';
    this.removeAllListeners();
  }

  // ---- one attempt ------------------------------------------------------------------

  private attempt(): void {
    this.cancelTimers();
    this.st = 'registering';
    const p = (this.inFlight = this.run(this.requested));
    void p.then((out) => {
      this.inFlight = undefined;
      this.settle(out);
    });
  }

  private settle(out: Outcome): void {
    const waiters = this.waiters.splice(0);
    if (out.ok) {
      this.failures = 0;
      this.bound = out.info;
      this.boundUntil = this.host.layer.clock.now() + out.info.expires * 1000;
      if (!this.closing) {
        this.st = 'registered';
        // Refresh at half the granted time: well before expiry, whatever the transaction's delay (§10.2.4 leaves the margin to us).
        this.timer = this.host.layer.clock.setTimer((out.info.expires * 1000) / 2, () => this.attempt());
        this.startKeepAlive();
      }
      this.emit('registered', out.info);
      for (const w of waiters) w.resolve(out.info);
      return;
    }
    const f = out.failure;
    if (!this.closing) {
      this.failures++;
      const delay = this.backoff(f.response);
      f.retryInMs = delay;
      this.st = 'retrying';
      this.timer = this.host.layer.clock.setTimer(delay, () => this.attempt());
    }
    this.emit('failed', f);
    const what = f.status !== undefined ? `${f.status}${f.response ? ' ' + f.response.reason : ''}` : f.cause;
    for (const w of waiters) w.reject(new SipError('REGISTRATION_FAILED', `REGISTER failed (${f.cause}: ${what})`, { cause: f.error ?? f.response }));
  }

  /** RFC 5626 §4.5: min(max, base·2^failures), a random 50–100 % of it; never before a 5xx's Retry-After (§20.33). */
  private backoff(res: SipResponse | undefined): number {
    const base = this.opts.retry?.baseMs ?? DEFAULT_BASE_MS;
    const max = this.opts.retry?.maxMs ?? DEFAULT_MAX_MS;
    const wait = Math.min(max, base * 2 ** Math.min(this.failures, 30));
    let delay = Math.round(wait * (0.5 + 0.5 * this.random()));
    if (res && res.status >= 500 && !isSynthesized(res)) {
      const m = /^\s*(\d{1,10})/.exec(res.get('retry-after') ?? '');
      if (m) delay = Math.max(delay, Math.min(Number(m[1]) * 1000, max));
    }
    return delay;
  }

  /**
   * One REGISTER asking for `expires` (0 removes the binding), through its challenges and
   * 423s, to an outcome. Never rejects.
   */
  private run(expires: number): Promise<Outcome> {
    return this.exchange(expires).catch((err: unknown) => ({ ok: false, failure: { cause: 'transport', error: asSipError(err) } }));
  }

  private async exchange(expires: number): Promise<Outcome> {
    let req = this.build(expires);
    let challenges = 0;
    let intervals = 0;
    for (;;) {
      const res = await this.send(req);
      if (res === undefined) return { ok: false, failure: { cause: 'transport', error: new SipError('CLOSED', 'the transaction layer was closed') } };
      const s = res.status;
      if (s >= 200 && s < 300) {
        this.digest?.succeeded();
        return this.accepted(res, expires);
      }
      if ((s === 401 || s === 407) && !isSynthesized(res)) {
        if (!this.digest) return { ok: false, failure: { cause: 'auth', status: s, response: res } };
        if (++challenges > MAX_CHALLENGES) return { ok: false, failure: { cause: 'auth', status: s, response: res } };
        try {
          req = this.digest.authorize(req, res);
        } catch (err) {
          if (!(err instanceof DigestError)) throw err;
          return { ok: false, failure: { cause: 'auth', status: s, response: res, error: err } };
        }
        // The digest client kept the Via (with a new branch); the layer writes its own.
        req.removeFirst('Via');
        this.cseq = req.cseq.seq;
        continue;
      }
      if (s === 423 && expires > 0) {
        // §10.2.8: ask again with at least Min-Expires (same Call-ID, next CSeq).
        const min = Number(/^\s*(\d{1,10})\s*$/.exec(res.get('min-expires') ?? '')?.[1] ?? NaN);
        if (!(min > expires) || min > 0xffffffff || ++intervals > MAX_INTERVAL_RETRIES) {
          return { ok: false, failure: { cause: 'interval', status: s, response: res } };
        }
        this.requested = expires = min;
        req = this.build(expires);
        continue;
      }
      const cause: RegistrationFailureCause = isSynthesized(res) ? (s === 408 ? 'timeout' : 'transport') : 'rejected';
      return { ok: false, failure: { cause, status: s, response: res } };
    }
  }

  private accepted(res: SipResponse, expires: number): Outcome {
    if (expires === 0) return { ok: true, info: { expires: 0, contacts: [], response: res } };
    const g = grantedBinding(res, this.contact, this.outbound);
    // A registrar must say (§10.3 step 8); one that does not has granted what we asked.
    const granted = g.expires ?? expires;
    if (granted === 0) {
      return { ok: false, failure: { cause: 'rejected', status: res.status, response: res, error: new SipError('REGISTRATION_FAILED', 'the registrar granted our Contact 0 seconds') } };
    }
    this.flowTimer = Number(/^\s*(\d{1,10})\s*$/.exec(res.get('flow-timer') ?? '')?.[1] ?? NaN) || undefined;
    this.registrarOutbound = res.getAll('require').some((t) => t.trim().toLowerCase() === 'outbound');
    return { ok: true, info: { expires: granted, contacts: g.contacts, response: res } };
  }

  /** Send one REGISTER in a client transaction; its final response, or undefined when the transaction died without one. */
  private send(req: SipRequest): Promise<SipResponse | undefined> {
    this.sent = true;
    return new Promise((resolve) => {
      let final: SipResponse | undefined;
      if (this.located !== undefined) {
        const out = this.host.layer.send(req, this.host.layer.resolver.targets(this.located), {
          onResponse: (res) => {
            if (res.status >= 200 && final === undefined) {
              final = res;
              // Keep-alives and the flow go where the registrar answered.
              if (out.target !== undefined) this.destination = out.target;
              resolve(res);
            }
          },
          onTerminated: () => {
            if (final === undefined) resolve(undefined);
          },
        });
        return;
      }
      try {
        this.host.layer.sendRequest(req, this.destination, {
          onResponse: (res) => {
            if (res.status >= 200 && final === undefined) {
              final = res;
              resolve(res);
            }
          },
          onTerminated: () => {
            if (final === undefined) resolve(undefined);
          },
        });
      } catch (err) {
        // No transport for the destination, a request that cannot be written: no answer will come.
        if (!(err instanceof SipError)) throw err;
        resolve(undefined);
      }
    });
  }

  /** A new REGISTER: same Call-ID and From tag, next CSeq (§10.2.4), credentials we already hold. */
  private build(expires: number): SipRequest {
    this.cseq++;
    const headers: Array<[string, string]> = [];
    // RFC 5626 §4.2.1; Path (RFC 3327) lets an edge proxy between us and the registrar be used.
    if (this.outbound) headers.push(['Supported', 'outbound, path']);
    headers.push(['Expires', String(expires)]);
    if (this.opts.userAgent) headers.push(['User-Agent', this.opts.userAgent]);
    const req = createRequest({
      method: 'REGISTER',
      uri: this.opts.registrar,
      from: `<${this.opts.aor}>;tag=${this.fromTag}`,
      to: `<${this.opts.aor}>`,
      callId: this.callId,
      cseq: this.cseq,
      // §10.2.2: removing a binding names it with expires=0 as well as the Expires header.
      contact: formatContact(this.contact, this.outbound, expires === 0 ? 0 : undefined),
      headers,
    });
    appendHeaders(req, this.opts.headers);
    this.digest?.sign(req);
    return req;
  }

  // ---- keep-alives ----------------------------------------------------------------

  private keepAliveInterval(reliable: boolean): number | undefined {
    const k = this.opts.keepAlive;
    if (k === false) return undefined;
    if (typeof k === 'object') return k.intervalMs;
    if (k !== true && !(this.outbound && reliable && this.registrarOutbound)) return undefined;
    // RFC 5626 §4.4.1: 80–100 % of the Flow-Timer the registrar gave, else 95–120 s on a
    // stream (24–29 s for a datagram keep-alive).
    const jitter = this.random();
    if (this.flowTimer !== undefined) return Math.round(this.flowTimer * 1000 * (0.8 + 0.2 * jitter));
    return reliable ? Math.round(95_000 + 25_000 * jitter) : Math.round(24_000 + 5_000 * jitter);
  }

  private startKeepAlive(): void {
    this.keepAliveTimer?.cancel();
    this.keepAliveTimer = undefined;
    let transport: Transport;
    try {
      transport = this.host.layer.transportFor(this.destination.transport);
    } catch {
      return;
    }
    const ms = this.keepAliveInterval(transport.reliable);
    if (ms === undefined) return;
    this.keepAliveTimer = this.host.layer.clock.setTimer(ms, () => {
      if (this.st !== 'registered') return;
      const to = { address: this.destination.address, port: this.destination.port };
      transport.send(PING, to).then(
        () => {
          if (this.st === 'registered') this.startKeepAlive();
        },
        (err: TransportError) => {
          // RFC 5626 §4.4.1/§4.5: the flow failed; register again over a new one at once.
          if (this.st !== 'registered') return;
          this.emit('failed', { cause: 'transport', error: err, retryInMs: 0 });
          this.attempt();
        },
      );
    });
  }

  private cancelTimers(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.keepAliveTimer?.cancel();
    this.keepAliveTimer = undefined;
  }
}

function checked<T>(what: string, value: string, parse: (s: string) => T): T {
  try {
    return parse(value);
  } catch (err) {
    throw new SipError('BAD_OPTION', `${what} is malformed: ${JSON.stringify(String(value).slice(0, 64))}`, { cause: err });
  }
}

function asSipError(err: unknown): SipError {
  return err instanceof SipError ? err : new SipError('REGISTRATION_FAILED', String(err), { cause: err });
}

/** True for a registrar whose host is a name (RFC 3263 locates it); an IP literal, or a URI the layer cannot use, goes as before. */
function locatable(layer: TransactionLayer, registrar: SipUri): boolean {
  try {
    return layer.literalTarget(registrar) === undefined;
  } catch {
    return false;
  }
}
