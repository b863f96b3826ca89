import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createResponse, parseUri, type SipRequest, type SipResponse } from '../parser/index.js';
import { LruMap } from '../util/lru.js';
import { algorithmInfo, resolveAlgorithm, type DigestAlgorithm } from './algorithms.js';
import { computeUserhash, digestResponse, type Qop } from './compute.js';
import { DigestError } from './errors.js';
import { formatChallenge, parseCredentials, type DigestCredentials } from './header.js';
import { NonceCodec } from './nonce.js';
import { checkServerOptions } from './server-options.js';

/** What the user callback returns: a password, or stored HA1 values per base algorithm. */
export interface DigestUserRecord {
  password?: string;
  ha1?: Partial<Record<'MD5' | 'SHA-256' | 'SHA-512-256', string>>;
}

export type DigestUserLookup = (
  username: string,
  realm: string,
  request: SipRequest,
) => DigestUserRecord | undefined | Promise<DigestUserRecord | undefined>;

export interface DigestServerOptions {
  /** HMAC key for stateless nonces (≥ 16 bytes); instances sharing it accept each other's nonces. */
  secret: string | Uint8Array;
  /** Realm for a request (a trunk uses the domain the caller dialled). */
  realm: string | ((request: SipRequest) => string);
  lookup: DigestUserLookup;
  /** Resolve a userhash (RFC 7616 §3.4.4) to a username; without it userhash credentials are refused. */
  lookupUserhash?: (userhash: string, realm: string, algorithm: DigestAlgorithm) => string | undefined | Promise<string | undefined>;
  /** Challenge order, most preferred first (RFC 8760 §2.4). Default SHA-256, MD5. */
  algorithms?: readonly DigestAlgorithm[];
  /** qop values offered. Default ['auth']. */
  qop?: readonly Qop[];
  /** 407/Proxy-* (default) or 401/WWW-*. */
  proxy?: boolean;
  nonceTtlMs?: number;
  /** Bind nonces to the source address or the Call-ID, so a nonce cannot be used elsewhere. */
  bindNonce?: 'none' | 'source' | 'call-id';
  /** Accept RFC 2069 responses without qop (each nonce then works once). Default true. */
  allowNoQop?: boolean;
  /** Advertise userhash=true. */
  userhash?: boolean;
  /** Nonces whose nc values are tracked (LRU). Default 10 000. */
  replayTableSize?: number;
  /** Largest forward jump of nc accepted on a nonce. Default 1000. */
  ncWindow?: number;
  /** Brute-force throttling per source address; false disables it. */
  throttle?: false | { maxFailures?: number; windowMs?: number; blockMs?: number; tableSize?: number };
  /** Clock in ms (injectable for tests). */
  now?: () => number;
}

export type DigestRejectReason =
  | 'MALFORMED'
  | 'WRONG_REALM'
  | 'UNSUPPORTED_ALGORITHM'
  | 'QOP_NOT_OFFERED'
  | 'OPAQUE_MISMATCH'
  | 'BAD_NONCE'
  | 'URI_MISMATCH'
  | 'UNKNOWN_USER'
  | 'BAD_RESPONSE'
  | 'USERHASH_UNSUPPORTED'
  | 'REPLAYED_NC'
  | 'NC_OUT_OF_WINDOW'
  | 'THROTTLED';

export type DigestVerifyResult =
  | { kind: 'ok'; username: string; realm: string; algorithm: DigestAlgorithm }
  /** No credentials for our realm, or an authentic but expired nonce: send `response` (a fresh challenge). */
  | { kind: 'challenge'; reason: 'MISSING_CREDENTIALS' | 'STALE_NONCE'; response: SipResponse }
  /**
   * Refused; `reason` is for logs only. `response` is what to send: a fresh challenge
   * for anything a caller could get right on retry (the same for an unknown user
   * and a wrong password), 400 for a malformed header, 403 while throttled.
   */
  | { kind: 'reject'; reason: DigestRejectReason; response: SipResponse };

export interface VerifyContext {
  /** Source address of the request (for throttling and source-bound nonces). */
  source?: string;
}

interface ThrottleEntry {
  failures: number;
  windowStart: number;
  blockedUntil: number;
}

const COUNTED: ReadonlySet<DigestRejectReason> = new Set(['BAD_RESPONSE', 'UNKNOWN_USER', 'BAD_NONCE', 'REPLAYED_NC', 'URI_MISMATCH']);

/** The authenticating side: challenges requests and verifies their credentials (RFC 3261 §22, RFC 7616). */
export class DigestServer {
  private readonly opts: Required<Omit<DigestServerOptions, 'lookupUserhash' | 'throttle' | 'secret'>> & {
    lookupUserhash: DigestServerOptions['lookupUserhash'];
  };
  private readonly nonces: NonceCodec;
  private readonly opaque: string;
  private readonly replay: LruMap<string, number>;
  private readonly throttle: { maxFailures: number; windowMs: number; blockMs: number; table: LruMap<string, ThrottleEntry> } | undefined;
  /** HA1 used for unknown users so they cost the same as known ones. */
  private readonly decoySecret = randomBytes(16).toString('hex');

  constructor(options: DigestServerOptions) {
    checkServerOptions(options);
    const now = options.now ?? Date.now;
    this.opts = {
      realm: options.realm,
      lookup: options.lookup,
      lookupUserhash: options.lookupUserhash,
      algorithms: options.algorithms ?? ['SHA-256', 'MD5'],
      qop: options.qop ?? ['auth'],
      proxy: options.proxy ?? true,
      nonceTtlMs: options.nonceTtlMs ?? 300_000,
      bindNonce: options.bindNonce ?? 'none',
      allowNoQop: options.allowNoQop ?? true,
      userhash: options.userhash ?? false,
      replayTableSize: options.replayTableSize ?? 10_000,
      ncWindow: options.ncWindow ?? 1000,
      now,
    };
    this.nonces = new NonceCodec(options.secret, this.opts.nonceTtlMs, now);
    this.opaque = this.nonces.derive('opaque');
    this.replay = new LruMap(this.opts.replayTableSize);
    if (options.throttle !== false) {
      const t = options.throttle ?? {};
      this.throttle = {
        maxFailures: t.maxFailures ?? 10,
        windowMs: t.windowMs ?? 60_000,
        blockMs: t.blockMs ?? 300_000,
        table: new LruMap(t.tableSize ?? 10_000),
      };
    }
  }

  private realmOf(req: SipRequest): string {
    const r = this.opts.realm;
    return typeof r === 'string' ? r : r(req);
  }

  private binding(req: SipRequest, ctx: VerifyContext | undefined): string {
    switch (this.opts.bindNonce) {
      case 'source':
        return 'src:' + (ctx?.source ?? '');
      case 'call-id':
        return 'cid:' + (req.get('call-id') ?? '');
      default:
        return '';
    }
  }

  get challengeHeader(): 'Proxy-Authenticate' | 'WWW-Authenticate' {
    return this.opts.proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate';
  }

  get credentialsHeader(): 'Proxy-Authorization' | 'Authorization' {
    return this.opts.proxy ? 'Proxy-Authorization' : 'Authorization';
  }

  /** A 407 (or 401) with one challenge per enabled algorithm, in preference order. */
  challenge(request: SipRequest, ctx?: VerifyContext & { stale?: boolean }): SipResponse {
    const res = createResponse(request, this.opts.proxy ? 407 : 401);
    const realm = this.realmOf(request);
    const nonce = this.nonces.issue(this.binding(request, ctx));
    for (const algorithm of this.opts.algorithms) {
      res.append(
        this.challengeHeader,
        formatChallenge({
          realm,
          nonce,
          algorithm,
          qop: this.opts.qop,
          opaque: this.opaque,
          stale: ctx?.stale === true,
          userhash: this.opts.userhash,
          // RFC 7616 §3.3: charset=UTF-8 tells the client non-ASCII usernames are expected as UTF-8.
          charset: algorithm !== 'MD5' && algorithm !== 'MD5-sess',
        }),
      );
    }
    return res;
  }

  /** True while `source` is blocked for too many failures. */
  isThrottled(source: string | undefined): boolean {
    if (!this.throttle || source === undefined) return false;
    const e = this.throttle.table.peek(source);
    return e !== undefined && e.blockedUntil > this.opts.now();
  }

  private noteFailure(source: string | undefined): void {
    const t = this.throttle;
    if (!t || source === undefined) return;
    const now = this.opts.now();
    let e = t.table.get(source);
    if (!e || now - e.windowStart > t.windowMs) {
      e = { failures: 0, windowStart: now, blockedUntil: e?.blockedUntil ?? 0 };
      t.table.set(source, e);
    }
    e.failures++;
    if (e.failures >= t.maxFailures) {
      e.blockedUntil = now + t.blockMs;
      e.failures = 0;
      e.windowStart = now;
    }
  }

  private reject(request: SipRequest, reason: DigestRejectReason, ctx: VerifyContext | undefined): DigestVerifyResult {
    if (COUNTED.has(reason)) this.noteFailure(ctx?.source);
    let response: SipResponse;
    if (reason === 'THROTTLED') response = createResponse(request, 403);
    else if (reason === 'MALFORMED') response = createResponse(request, 400, { reason: 'Malformed Credentials' });
    else response = this.challenge(request, ctx);
    return { kind: 'reject', reason, response };
  }

  /** Check the request's credentials for our realm. */
  async verify(request: SipRequest, ctx?: VerifyContext): Promise<DigestVerifyResult> {
    if (this.isThrottled(ctx?.source)) return this.reject(request, 'THROTTLED', ctx);
    const realm = this.realmOf(request);
    const values = request.getAll(this.credentialsHeader);
    if (values.length === 0) return { kind: 'challenge', reason: 'MISSING_CREDENTIALS', response: this.challenge(request, ctx) };
    let creds: DigestCredentials | undefined;
    try {
      // One set of credentials per realm (RFC 3261 §22.3); others are for other proxies.
      for (const v of values) {
        const c = parseCredentials(v);
        if (c.realm === realm) {
          creds = c;
          break;
        }
      }
    } catch (err) {
      if (err instanceof DigestError) return this.reject(request, 'MALFORMED', ctx);
      throw err;
    }
    if (!creds) return this.reject(request, 'WRONG_REALM', ctx);
    const algorithm = resolveAlgorithm(creds.algorithm);
    if (!algorithm || !this.opts.algorithms.includes(algorithm)) return this.reject(request, 'UNSUPPORTED_ALGORITHM', ctx);
    let qop: Qop | undefined;
    if (creds.qop !== undefined) {
      if (!(this.opts.qop as readonly string[]).includes(creds.qop)) return this.reject(request, 'QOP_NOT_OFFERED', ctx);
      qop = creds.qop as Qop;
      if (creds.nc === undefined || !/^[0-9a-fA-F]{8}$/.test(creds.nc) || !creds.cnonce) return this.reject(request, 'MALFORMED', ctx);
    } else if (!this.opts.allowNoQop || algorithmInfo(algorithm).sess) {
      return this.reject(request, 'QOP_NOT_OFFERED', ctx);
    }
    const nonceStatus = this.nonces.check(creds.nonce, this.binding(request, ctx));
    if (nonceStatus === 'invalid') return this.reject(request, 'BAD_NONCE', ctx);
    if (creds.opaque !== undefined && creds.opaque !== this.opaque) return this.reject(request, 'OPAQUE_MISMATCH', ctx);
    if (!sameUri(creds.uri, request.uri)) return this.reject(request, 'URI_MISMATCH', ctx);

    let username = creds.username;
    if (creds.userhash) {
      const resolved = this.opts.lookupUserhash ? await this.opts.lookupUserhash(creds.username, realm, algorithm) : undefined;
      if (!this.opts.lookupUserhash) return this.reject(request, 'USERHASH_UNSUPPORTED', ctx);
      username = resolved ?? '';
    }
    const record = username === '' ? undefined : await this.opts.lookup(username, realm, request);
    const base = algorithm.replace(/-sess$/, '') as 'MD5' | 'SHA-256' | 'SHA-512-256';
    const known = record !== undefined && (record.password !== undefined || record.ha1?.[base] !== undefined);
    // Unknown users are hashed against a decoy secret: same work, same answer as a wrong password.
    const expected = digestResponse({
      algorithm,
      username,
      realm,
      password: known ? record.password : this.decoySecret,
      ha1: known && record.password === undefined ? record.ha1![base] : undefined,
      method: request.method,
      uri: creds.uri,
      nonce: creds.nonce,
      cnonce: creds.cnonce,
      nc: creds.nc,
      qop,
      body: request.body,
    });
    const match = constantTimeEqualHex(expected, creds.response);
    if (!known) return this.reject(request, 'UNKNOWN_USER', ctx);
    if (!match) return this.reject(request, 'BAD_RESPONSE', ctx);
    if (creds.userhash && computeUserhash(algorithm, username, realm) !== creds.username.toLowerCase()) {
      return this.reject(request, 'BAD_RESPONSE', ctx);
    }
    if (nonceStatus === 'stale') {
      return { kind: 'challenge', reason: 'STALE_NONCE', response: this.challenge(request, { ...ctx, stale: true }) };
    }
    // Replay protection after the response is proven, so forged requests cannot poison the table.
    const nc = qop === undefined ? 0 : parseInt(creds.nc!, 16);
    const last = this.replay.get(creds.nonce);
    if (last !== undefined && (qop === undefined || nc <= last)) return this.reject(request, 'REPLAYED_NC', ctx);
    if (qop !== undefined && nc - (last ?? 0) > this.opts.ncWindow) return this.reject(request, 'NC_OUT_OF_WINDOW', ctx);
    this.replay.set(creds.nonce, nc);
    return { kind: 'ok', username, realm, algorithm };
  }
}

/** The digest-uri must be the Request-URI (RFC 3261 §22.4): exact, or equal once scheme and host case are folded. */
function sameUri(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  try {
    const a = parseUri(digestUri);
    const b = parseUri(requestUri);
    if (a.kind !== 'sip' || b.kind !== 'sip') return false;
    return (
      a.scheme === b.scheme &&
      a.userRaw === b.userRaw &&
      a.host.toLowerCase() === b.host.toLowerCase() &&
      a.port === b.port &&
      a.params.toString().toLowerCase() === b.params.toString().toLowerCase() &&
      a.headersRaw === b.headersRaw
    );
  } catch {
    return false;
  }
}

function constantTimeEqualHex(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'latin1');
  const b = Buffer.from(given.toLowerCase(), 'latin1');
  // Compare against itself on a length mismatch so the time taken does not depend on the input.
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}
