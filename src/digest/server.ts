import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createResponse, parseUri, type SipRequest, type SipResponse } from '../parser/index.js';
import { algorithmInfo, resolveAlgorithm, type DigestAlgorithm } from './algorithms.js';
import { computeUserhash, digestResponse, type Qop } from './compute.js';
import { DigestError } from './errors.js';
import { formatChallenge, parseCredentials, type DigestCredentials } from './header.js';
import { NonceCodec } from './nonce.js';
import { NonceUseTable } from './nonce-uses.js';
import { FailureThrottle, type ThrottleOptions } from './throttle.js';
import { checkServerOptions } from './server-options.js';

/** What the user callback returns: a password, or stored HA1 values per base algorithm. */
export interface DigestUserRecord {
  password?: string;
  ha1?: Partial<Record<'MD5' | 'SHA-256' | 'SHA-512-256', string>>;
  /**
   * The algorithms this user is accepted with (default: the realm's). Credentials with
   * another algorithm get a fresh challenge offering these — once the response checks out
   * (stale=true), or at once when no stored secret can check it. For clients that choke
   * on some algorithm in the realm's set.
   */
  algorithms?: readonly DigestAlgorithm[];
}

export type DigestUserLookup = (
  username: string,
  realm: string,
  request: SipRequest,
) => DigestUserRecord | undefined | Promise<DigestUserRecord | undefined>;

export interface DigestServerOptions {
  /**
   * HMAC key for stateless nonces (≥ 16 bytes). Each server instance (each start) names
   * itself in its nonces: a nonce from another instance or an earlier start is authentic
   * but answered stale=true, because its nc history is not here.
   */
  secret: string | Uint8Array;
  /** Realm for a request (a trunk uses the domain the caller dialled). */
  realm: string | ((request: SipRequest) => string);
  lookup: DigestUserLookup;
  /** Resolve a userhash (RFC 7616 §3.4.4) to a username; without it userhash credentials are refused. */
  lookupUserhash?: (userhash: string, realm: string, algorithm: DigestAlgorithm) => string | undefined | Promise<string | undefined>;
  /** Challenge order, most preferred first (RFC 8760 §2.4). Default SHA-256, MD5. */
  algorithms?: readonly DigestAlgorithm[];
  /**
   * The challenge set for one realm (e.g. a trunk domain whose phones only do MD5);
   * undefined means `algorithms`. Must return canonical names (DIGEST_ALGORITHMS).
   */
  realmAlgorithms?: (realm: string, request: SipRequest) => readonly DigestAlgorithm[] | undefined;
  /** qop values offered. Default ['auth']. */
  qop?: readonly Qop[];
  /** 407/Proxy-* (default) or 401/WWW-*. */
  proxy?: boolean;
  nonceTtlMs?: number;
  /**
   * Bind nonces to the source address (default) or the Call-ID, so a nonce cannot be used
   * elsewhere. With 'source' a nonce presented from another address is answered with a
   * fresh stale=true challenge and not counted as a failure: that is what keeps a spoofed
   * source from locking anyone out. With 'none'/'call-id' failures are still counted per
   * claimed source — spoofable over UDP.
   */
  bindNonce?: 'none' | 'source' | 'call-id';
  /** Accept RFC 2069 responses without qop (each nonce then works once). Default true. */
  allowNoQop?: boolean;
  /** Advertise userhash=true. */
  userhash?: boolean;
  /**
   * Live nonces whose nc values are tracked. An entry lives until its nonce expires and is
   * never evicted early, so size it as (new nonces used per second) × nonce TTL; when it is
   * full, credentials on a nonce not yet tracked get 503 + Retry-After (never a forgotten
   * nonce, which would open a replay window). Default 1 000 000 (≈ 3 300 new logins/s for
   * a 300 s TTL; a few tens of bytes each).
   */
  replayTableSize?: number;
  /** Largest forward jump of nc accepted on a nonce. Default 1000. */
  ncWindow?: number;
  /** Brute-force throttling per (source address, username); false disables it. */
  throttle?: false | ThrottleOptions;
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
  | 'NONCE_TABLE_FULL'
  | 'THROTTLED';

export type DigestVerifyResult =
  | { kind: 'ok'; username: string; realm: string; algorithm: DigestAlgorithm }
  /**
   * Send `response`, a fresh challenge: no credentials for our realm, a right response on
   * an expired (or another instance's) nonce, or a right response with an algorithm this
   * user is not accepted with (the challenge then offers the user's algorithms).
   */
  | { kind: 'challenge'; reason: 'MISSING_CREDENTIALS' | 'STALE_NONCE' | 'USER_ALGORITHMS'; response: SipResponse }
  /**
   * Refused; `reason` is for logs only. `response` is what to send: a fresh challenge
   * for anything a caller could get right on retry (the same for an unknown user
   * and a wrong password), a stale=true challenge for a nonce that was not issued to this
   * source (or is not ours at all), 400 for a malformed header, 403 while throttled, 503
   * when the replay table is full.
   */
  | { kind: 'reject'; reason: DigestRejectReason; response: SipResponse };

export interface VerifyContext {
  /** Source address of the request (for throttling and source-bound nonces). */
  source?: string;
}

/**
 * Failures that count toward throttling. Only reached with an authentic nonce bound to
 * this request's binding (an unattributable nonce returns earlier), so with source-bound
 * nonces each one was made by whoever received the challenge at that address. A replayed
 * nc is not a guess (it proves nothing about the password), so it does not count: else a
 * replayer could lock its victim out.
 */
const COUNTED: ReadonlySet<DigestRejectReason> = new Set(['BAD_RESPONSE', 'UNKNOWN_USER', 'URI_MISMATCH']);

/** Stored for an RFC 2069 (no-qop) use: above every 8-hex-digit nc, so any reuse of the nonce is a replay. */
const USED_WITHOUT_QOP = 0x1_0000_0000;

/** The authenticating side: challenges requests and verifies their credentials (RFC 3261 §22, RFC 7616). */
export class DigestServer {
  private readonly opts: Required<Omit<DigestServerOptions, 'lookupUserhash' | 'realmAlgorithms' | 'throttle' | 'secret'>> & {
    lookupUserhash: DigestServerOptions['lookupUserhash'];
  };
  private readonly nonces: NonceCodec;
  private readonly opaque: string;
  private readonly replay: NonceUseTable;
  private readonly throttle: FailureThrottle | undefined;
  private readonly realmAlgorithms: DigestServerOptions['realmAlgorithms'];
  /**
   * The last request whose credentials were parsed, with its header values and what was found:
   * the pre-check and `verify` look at the same request one after the other, so it is parsed once.
   */
  private parsed: { request: SipRequest; values: readonly string[]; realm: string; found: DigestCredentials | undefined } | undefined;
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
      bindNonce: options.bindNonce ?? 'source',
      allowNoQop: options.allowNoQop ?? true,
      userhash: options.userhash ?? false,
      replayTableSize: options.replayTableSize ?? 1_000_000,
      ncWindow: options.ncWindow ?? 1000,
      now,
    };
    this.nonces = new NonceCodec(options.secret, this.opts.nonceTtlMs, now);
    this.opaque = this.nonces.derive('opaque');
    this.replay = new NonceUseTable(this.opts.replayTableSize, this.opts.nonceTtlMs);
    this.throttle = options.throttle === false ? undefined : new FailureThrottle(options.throttle);
    this.realmAlgorithms = options.realmAlgorithms;
  }

  /** This instance's id, as named in the nonces it issues (see NonceCodec). */
  get instanceId(): string {
    return this.nonces.instanceId;
  }

  private realmOf(req: SipRequest): string {
    const r = this.opts.realm;
    return typeof r === 'string' ? r : r(req);
  }

  /** The challenge set for a realm: the realm's own, else the server's. */
  private algorithmsFor(realm: string, req: SipRequest): readonly DigestAlgorithm[] {
    const set = this.realmAlgorithms?.(realm, req);
    if (set === undefined) return this.opts.algorithms;
    if (set.length === 0 || set.some((a) => resolveAlgorithm(a) !== a)) {
      throw new DigestError('BAD_PARAMS', `realmAlgorithms for ${realm} must be a non-empty list of canonical algorithm names`);
    }
    return set;
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

  /**
   * A 407 (or 401) with one challenge per algorithm of the realm (or `ctx.algorithms`), in
   * preference order. Stateless: nothing is stored until a response has been verified.
   */
  challenge(request: SipRequest, ctx?: VerifyContext & { stale?: boolean; algorithms?: readonly DigestAlgorithm[] }): SipResponse {
    const realm = this.realmOf(request);
    return this.buildChallenge(request, realm, ctx?.algorithms ?? this.algorithmsFor(realm, request), ctx?.stale === true, ctx);
  }

  private buildChallenge(request: SipRequest, realm: string, algorithms: readonly DigestAlgorithm[], stale: boolean, ctx: VerifyContext | undefined): SipResponse {
    const res = createResponse(request, this.opts.proxy ? 407 : 401);
    const nonce = this.nonces.issue(this.binding(request, ctx));
    for (const algorithm of algorithms) {
      res.append(
        this.challengeHeader,
        formatChallenge({
          realm,
          nonce,
          algorithm,
          qop: this.opts.qop,
          opaque: this.opaque,
          stale,
          userhash: this.opts.userhash,
          // RFC 7616 §3.3: charset=UTF-8 tells the client non-ASCII usernames are expected as UTF-8.
          charset: algorithm !== 'MD5' && algorithm !== 'MD5-sess',
        }),
      );
    }
    return res;
  }

  /**
   * True while `source` is blocked as a whole (it failed on too many usernames), or — with
   * `user` — while that username is blocked from that source.
   */
  isThrottled(source: string | undefined, user?: { realm: string; username: string }): boolean {
    if (!this.throttle || source === undefined) return false;
    return this.throttle.isBlocked(source, user === undefined ? undefined : throttleKey(user.realm, user.username), this.opts.now());
  }

  /** Source addresses throttled now, as a whole or for some username (for metrics; scans the bounded table). */
  throttledSources(): number {
    return this.throttle?.blockedSources(this.opts.now()) ?? 0;
  }

  private reject(
    request: SipRequest,
    reason: DigestRejectReason,
    ctx: VerifyContext | undefined,
    realm: string,
    algorithms: readonly DigestAlgorithm[],
    user?: string,
  ): DigestVerifyResult {
    if (COUNTED.has(reason) && this.throttle && ctx?.source !== undefined && user !== undefined) {
      this.throttle.noteFailure(ctx.source, user, this.opts.now());
    }
    let response: SipResponse;
    if (reason === 'THROTTLED') response = createResponse(request, 403);
    else if (reason === 'MALFORMED') response = createResponse(request, 400, { reason: 'Malformed Credentials' });
    else if (reason === 'NONCE_TABLE_FULL') {
      const retryAfter = Math.max(1, Math.ceil(this.replay.msUntilNextExpiry(this.opts.now()) / 1000));
      response = createResponse(request, 503, { headers: { 'Retry-After': String(retryAfter) } });
    }
    // A nonce we cannot attribute (forged, another secret, or issued to another source) is
    // answered stale=true without checking the response: checking it would be a password
    // oracle that is never counted. A client that moved address retries without re-prompting.
    else response = this.buildChallenge(request, realm, algorithms, reason === 'BAD_NONCE', ctx);
    return { kind: 'reject', reason, response };
  }

  /**
   * The request's credentials for `realm`: 'none' without any, undefined when none is for this
   * realm (one set per realm, RFC 3261 §22.3; others are for other proxies), 'malformed'.
   */
  private credentialsFor(request: SipRequest, realm: string): DigestCredentials | 'none' | 'malformed' | undefined {
    const values = request.getAll(this.credentialsHeader);
    if (values.length === 0) return 'none';
    const p = this.parsed;
    if (p !== undefined && p.request === request && p.realm === realm && sameValues(p.values, values)) return p.found;
    let found: DigestCredentials | undefined;
    try {
      for (const v of values) {
        const c = parseCredentials(v);
        if (c.realm === realm) {
          found = c;
          break;
        }
      }
    } catch (err) {
      if (err instanceof DigestError) return 'malformed';
      throw err;
    }
    this.parsed = { request, values, realm, found };
    return found;
  }

  /**
   * The part of `verify` that needs no user lookup and changes nothing, synchronous, for a
   * stateless pre-check (`B2buaOptions.challenge`): the answer to a request that can be
   * challenged or refused at once — a 407 (401) when it has no credentials for our realm, 400
   * for malformed credentials, a 407 stale=true for a nonce that is not ours or was issued to
   * another source, 403 while its source is throttled as a whole — or undefined when its
   * credentials have to be checked (`verify`, which gives the same answers to these). Nothing
   * is counted, nothing stored: a nonce is issued statelessly (HMAC), so a request answered
   * here leaves no trace.
   */
  challengeIfNoCredentials(request: SipRequest, ctx?: VerifyContext): SipResponse | undefined {
    const realm = this.realmOf(request);
    if (this.isThrottled(ctx?.source)) return createResponse(request, 403);
    const creds = this.credentialsFor(request, realm);
    if (creds === 'malformed') return createResponse(request, 400, { reason: 'Malformed Credentials' });
    if (creds === 'none' || creds === undefined) return this.buildChallenge(request, realm, this.algorithmsFor(realm, request), false, ctx);
    // Unattributable (forged, another secret, another source): verify answers it stale=true without checking the response.
    if (this.nonces.check(creds.nonce, this.binding(request, ctx)) === 'invalid') {
      return this.buildChallenge(request, realm, this.algorithmsFor(realm, request), true, ctx);
    }
    return undefined;
  }

  /** Check the request's credentials for our realm. */
  async verify(request: SipRequest, ctx?: VerifyContext): Promise<DigestVerifyResult> {
    const source = ctx?.source;
    const realm = this.realmOf(request);
    const realmAlgorithms = this.algorithmsFor(realm, request);
    if (this.isThrottled(source)) return this.reject(request, 'THROTTLED', ctx, realm, realmAlgorithms);
    const creds = this.credentialsFor(request, realm);
    this.parsed = undefined; // verify is the last to look: the request is not kept
    if (creds === 'none') {
      return { kind: 'challenge', reason: 'MISSING_CREDENTIALS', response: this.buildChallenge(request, realm, realmAlgorithms, false, ctx) };
    }
    if (creds === 'malformed') return this.reject(request, 'MALFORMED', ctx, realm, realmAlgorithms);
    if (!creds) return this.reject(request, 'WRONG_REALM', ctx, realm, realmAlgorithms);
    // Throttled per (source, username as sent): one extension guessed at does not block the rest.
    const user = this.throttle ? throttleKey(realm, creds.userhash ? creds.username.toLowerCase() : creds.username) : undefined;
    if (user !== undefined && source !== undefined && this.throttle!.isBlocked(source, user, this.opts.now())) {
      return this.reject(request, 'THROTTLED', ctx, realm, realmAlgorithms);
    }
    const algorithm = resolveAlgorithm(creds.algorithm);
    if (!algorithm) return this.reject(request, 'UNSUPPORTED_ALGORITHM', ctx, realm, realmAlgorithms);
    let qop: Qop | undefined;
    if (creds.qop !== undefined) {
      if (!(this.opts.qop as readonly string[]).includes(creds.qop)) return this.reject(request, 'QOP_NOT_OFFERED', ctx, realm, realmAlgorithms);
      qop = creds.qop as Qop;
      if (creds.nc === undefined || !/^[0-9a-fA-F]{8}$/.test(creds.nc) || !creds.cnonce) return this.reject(request, 'MALFORMED', ctx, realm, realmAlgorithms);
    } else if (!this.opts.allowNoQop || algorithmInfo(algorithm).sess) {
      return this.reject(request, 'QOP_NOT_OFFERED', ctx, realm, realmAlgorithms);
    }
    const nonceStatus = this.nonces.check(creds.nonce, this.binding(request, ctx));
    if (nonceStatus === 'invalid') return this.reject(request, 'BAD_NONCE', ctx, realm, realmAlgorithms);
    if (creds.opaque !== undefined && creds.opaque !== this.opaque) return this.reject(request, 'OPAQUE_MISMATCH', ctx, realm, realmAlgorithms);
    if (!sameUri(creds.uri, request.uri)) return this.reject(request, 'URI_MISMATCH', ctx, realm, realmAlgorithms, user);

    let username = creds.username;
    if (creds.userhash) {
      const resolved = this.opts.lookupUserhash ? await this.opts.lookupUserhash(creds.username, realm, algorithm) : undefined;
      if (!this.opts.lookupUserhash) return this.reject(request, 'USERHASH_UNSUPPORTED', ctx, realm, realmAlgorithms);
      username = resolved ?? '';
    }
    const record = username === '' ? undefined : await this.opts.lookup(username, realm, request);
    const base = algorithm.replace(/-sess$/, '') as 'MD5' | 'SHA-256' | 'SHA-512-256';
    const known = record !== undefined && (record.password !== undefined || record.ha1?.[base] !== undefined);
    // The set this request is judged against: the user's own when it has one (it was
    // challenged with it after a first try), else the realm's — for unknown users too.
    const userAlgorithms = record?.algorithms !== undefined && record.algorithms.length > 0 ? record.algorithms : undefined;
    const accepted = userAlgorithms ?? realmAlgorithms;
    if (!accepted.includes(algorithm) && (userAlgorithms === undefined || !known)) {
      // Not ours to check: the realm's set (or a user's set when no stored secret can check
      // this algorithm: then the user's set is offered without proof — documented price).
      return this.reject(request, 'UNSUPPORTED_ALGORITHM', ctx, realm, userAlgorithms ?? realmAlgorithms);
    }
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
    if (!known) return this.reject(request, 'UNKNOWN_USER', ctx, realm, realmAlgorithms, user);
    if (!match) return this.reject(request, 'BAD_RESPONSE', ctx, realm, realmAlgorithms, user);
    if (creds.userhash && computeUserhash(algorithm, username, realm) !== creds.username.toLowerCase()) {
      return this.reject(request, 'BAD_RESPONSE', ctx, realm, realmAlgorithms, user);
    }
    if (!accepted.includes(algorithm)) {
      // The right password with an algorithm this user is not accepted with: offer the user's
      // set, stale=true (RFC 7616 §3.3: the digest was valid, no need to re-prompt).
      return { kind: 'challenge', reason: 'USER_ALGORITHMS', response: this.buildChallenge(request, realm, accepted, true, ctx) };
    }
    if (nonceStatus !== 'valid') {
      // Expired, or issued by another instance / before a restart (RFC 7616 §3.3 stale=true).
      return { kind: 'challenge', reason: 'STALE_NONCE', response: this.buildChallenge(request, realm, accepted, true, ctx) };
    }
    // Replay protection after the response is proven, so forged requests cannot poison the table.
    const nc = qop === undefined ? USED_WITHOUT_QOP : parseInt(creds.nc!, 16);
    const key = this.nonces.keyOf(creds.nonce);
    const last = this.replay.get(key);
    if (last !== undefined) {
      if (nc <= last) return this.reject(request, 'REPLAYED_NC', ctx, realm, accepted);
      if (nc - last > this.opts.ncWindow) return this.reject(request, 'NC_OUT_OF_WINDOW', ctx, realm, accepted);
      this.replay.update(key, nc);
    } else {
      if (qop !== undefined && nc > this.opts.ncWindow) return this.reject(request, 'NC_OUT_OF_WINDOW', ctx, realm, accepted);
      // Kept until the nonce expires; a full table refuses rather than forgets (a forgotten
      // nonce could be replayed for the rest of its life).
      const now = this.opts.now();
      if (!this.replay.add(key, nc, this.nonces.issuedAt(creds.nonce) + this.opts.nonceTtlMs, now)) {
        return this.reject(request, 'NONCE_TABLE_FULL', ctx, realm, accepted);
      }
    }
    return { kind: 'ok', username, realm, algorithm };
  }
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function throttleKey(realm: string, username: string): string {
  return realm + '\0' + username;
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
