import type { AuthDecision } from 'sipkit/b2bua';
import { DigestServer, parseCredentials, type DigestAlgorithm, type DigestRejectReason, type DigestUserRecord } from 'sipkit/digest';
import { createResponse, type SipRequest, type SipResponse } from 'sipkit/parser';
import type { MessageSource } from 'sipkit/transaction';
import { AddressMatcher } from './cidr.js';
import type { Logger } from './log.js';
import { ownEntry, requestedHost } from './trunk-domain.js';

/** What the auth part needs of a trunk domain (a config.ts `DomainConfig` is one). */
export interface AuthDomain {
  /** Extensions by username: a password, or stored HA1s, and optionally the algorithms it may use. */
  extensions: Readonly<Record<string, DigestUserRecord>>;
  auth?: {
    /** The domain's challenge set, when it differs from `algorithms`. */
    algorithms?: readonly DigestAlgorithm[];
    /** How callers are authenticated (default digest; see createDigestAuth). */
    mode?: 'digest' | 'ip' | 'ip+digest' | 'ip-or-digest';
    /** The addresses `mode` trusts: IPv4/IPv6 CIDRs or bare addresses (cidr.ts). */
    allow?: readonly string[];
  };
}

export interface DigestAuthOptions {
  /**
   * Trunk domains by lower-case host. Read on every request, never copied: an extension
   * added to this object logs in from the next request on.
   */
  domains: Readonly<Record<string, AuthDomain>>;
  /** Signs the nonces (at least 16 bytes); trunks sharing it accept each other's nonces. */
  secret: string | Uint8Array;
  /** The challenge set, strongest first (default: DigestServer's). */
  algorithms?: readonly DigestAlgorithm[];
  /** How long a nonce is good for (default: DigestServer's, 300 s). */
  nonceTtlMs?: number;
  /** Live nonces whose nc is remembered; beyond, a new login gets 503 (default: DigestServer's). */
  maxLiveNonces?: number;
  /** The clock nonces are dated by (default Date.now). */
  now?: () => number;
  log?: Logger;
  /**
   * Failed authentications counted with the other instances of a cluster (pg-records.ts): its
   * blocks refuse here too (403), on top of this instance's own throttling.
   */
  sharedThrottle?: SharedThrottle;
}

/**
 * Throttling of failed authentications shared by the instances of a cluster. Users are keyed
 * `realm username` (as sent; a realm is a host name, so the space ends it), like DigestServer's
 * own per-(source, username) throttle; the key goes into a database, which takes no NUL.
 */
export interface SharedThrottle {
  /** 'all' while the source is blocked as a whole; else the user keys blocked from it, if any. */
  blocked(source: string): 'all' | ReadonlySet<string> | undefined;
  /** A failure that proves a wrong guess (wrong password, unknown user, wrong digest-uri) from `source` for `user`. */
  noteFailure(source: string, user: string): void;
}

/** The failures DigestServer counts toward throttling (a replayed nc, a foreign nonce are no guesses). */
const COUNTED_FAILURES: ReadonlySet<DigestRejectReason> = new Set(['BAD_RESPONSE', 'UNKNOWN_USER', 'URI_MISMATCH']);

/** The throttle key of the request's credentials for `realm` (`realm username`), if it has parsable ones. */
function credentialsUser(req: SipRequest, header: string, realm: string): string | undefined {
  try {
    for (const v of req.getAll(header)) {
      const c = parseCredentials(v);
      if (c.realm === realm) return `${realm} ${c.userhash ? c.username.toLowerCase() : c.username}`;
    }
  } catch {
    // Malformed credentials are refused (400) before any guess could be counted.
  }
  return undefined;
}

export interface DigestAuth {
  /**
   * The B2BUA's `authenticate` hook: a 407 challenge, a refusal, or the call let through with
   * the extension as identity (none for an IP-authenticated call), the domain as `tags.domain`
   * and how it was authenticated as `tags.auth` ('digest' | 'ip' | 'ip+digest').
   */
  authenticate(request: SipRequest, source: MessageSource): Promise<AuthDecision>;
  /**
   * The B2BUA's `challenge` pre-check: what can be answered before any state exists — the 407
   * for an INVITE without credentials (or with a nonce that is not this source's), the 403 for
   * a source an IP-authenticated domain does not allow, the 404 without a trunk domain — sent
   * statelessly; undefined for what `authenticate` has to check.
   */
  challenge(request: SipRequest, source: MessageSource): SipResponse | undefined;
  /** The digest server behind it (throttling state, challenge header names). */
  readonly digest: DigestServer;
}

/**
 * Digest proxy-authentication per trunk domain (RFC 3261 §22.3, RFC 7616, RFC 8760): the realm
 * is the host the caller dialled, the users are that domain's extensions. A call that passes
 * carries the extension as its identity and the domain as `tags.domain`.
 *
 * Every domain is challenged the same way, configured or not, and refused the same way after
 * its credentials are checked: an unknown domain has no extensions, so its credentials fail
 * exactly like a wrong password (a fresh 407, the same decoy-HA1 work — see DigestServer.verify).
 * Neither domains nor users can be enumerated. Only a domain whose own `auth.algorithms` differ
 * from the global set is told apart by its challenge, which is the point of configuring it.
 * Nonces are bound to the caller's address, so a spoofed source cannot count failures against
 * (and lock out) someone else; throttling is per (address, extension).
 *
 * IP-based authentication per domain (`auth: { mode, allow }`): `ip` lets a source in `allow`
 * through without a challenge and refuses any other with 403; `ip+digest` refuses other
 * sources with 403 and challenges the allowed ones; `ip-or-digest` lets allowed sources
 * through and challenges the rest. The 403 (RFC 3261 §21.4.4: authorization will not help)
 * tells a caller from outside `allow` that an IP trunk by that name exists, where an unknown
 * domain would be challenged. That is accepted: the trunk's domain is its published server
 * address, not a secret, and an IP trunk has no credentials to guess — what enumeration
 * protection guards (which extensions exist, a password oracle) is not on offer; challenging
 * instead would invite password guessing against a trunk that takes no passwords.
 *
 * On its own, with a plain B2BUA:
 *
 *     const auth = createDigestAuth({
 *       domains: { 'pbx.example.test': { extensions: { '1000': { password: 'secret-1000' } } } },
 *       secret: process.env.NONCE_SECRET!,
 *     });
 *     const b2bua = new B2bua({
 *       transports: [await UdpTransport.bind({ port: 5060 })],
 *       authenticate: auth.authenticate,
 *       route: (req, { identity }) => [{ uri: `sip:${identity}@192.0.2.10` }],
 *     });
 */
export function createDigestAuth(options: DigestAuthOptions): DigestAuth {
  const { domains, log, sharedThrottle } = options;
  const digest = new DigestServer({
    secret: options.secret,
    realm: (req) => requestedHost(req) ?? '',
    algorithms: options.algorithms,
    realmAlgorithms: (realm) => ownEntry(domains, realm)?.auth?.algorithms,
    nonceTtlMs: options.nonceTtlMs,
    replayTableSize: options.maxLiveNonces,
    bindNonce: 'source',
    now: options.now,
    lookup: (username, realm) => {
      const domain = ownEntry(domains, realm);
      const ext = domain ? ownEntry(domain.extensions, username) : undefined;
      return ext ? { password: ext.password, ha1: ext.ha1, algorithms: ext.algorithms } : undefined;
    },
  });

  // Parsed once per list: a domain replaced (provisioning.ts) brings a new list, hence a new matcher.
  const matchers = new WeakMap<readonly string[], AddressMatcher>();
  const allowed = (allow: readonly string[] | undefined, address: string): boolean => {
    if (!allow) return false;
    let m = matchers.get(allow);
    if (!m) matchers.set(allow, (m = new AddressMatcher(allow)));
    return m.matches(address);
  };

  /** What needs no digest check: no domain (404), an IP decision (let through, or 403), or the digest check to make. */
  const screenByAddress = (req: SipRequest, source: MessageSource): { response: SipResponse } | { ok: AuthDecision } | { digest: string; ipOk: boolean } => {
    const host = requestedHost(req);
    if (host === undefined) {
      // Not a sip:/sips: Request-URI: there is no domain to authenticate in.
      log?.('info', 'call.rejected', { reason: 'no trunk domain', from: source.address.address });
      return { response: createResponse(req, 404) };
    }
    const domain = ownEntry(domains, host);
    const mode = domain?.auth?.mode ?? 'digest';
    const from = source.address.address;
    const ipOk = mode !== 'digest' && allowed(domain?.auth?.allow, from);
    if (ipOk && (mode === 'ip' || mode === 'ip-or-digest')) return { ok: { ok: true, tags: { domain: host, auth: 'ip' } } };
    if (!ipOk && (mode === 'ip' || mode === 'ip+digest')) {
      log?.('warn', 'auth.rejected', { reason: 'source not allowed', domain: host, mode, from: `${from}:${source.address.port}` });
      return { response: createResponse(req, 403) };
    }
    return { digest: host, ipOk };
  };

  const challenge = (req: SipRequest, source: MessageSource): SipResponse | undefined => {
    const s = screenByAddress(req, source);
    if ('response' in s) return s.response;
    if ('ok' in s) return undefined;
    if (sharedThrottle?.blocked(source.address.address) === 'all') {
      log?.('warn', 'auth.rejected', { reason: 'THROTTLED', shared: true, stateless: true, domain: s.digest, from: `${source.address.address}:${source.address.port}` });
      return createResponse(req, 403);
    }
    const response = digest.challengeIfNoCredentials(req, { source: source.address.address });
    if (response !== undefined) {
      // The same events and reasons as the stateful path (metrics count them): only what needs no lookup ends here.
      const reason =
        response.status === 403 ? 'THROTTLED' : response.status === 400 ? 'MALFORMED' : /\bstale\s*=\s*"?true/i.test(response.get(digest.challengeHeader) ?? '') ? 'STALE_NONCE' : 'MISSING_CREDENTIALS';
      const rejected = response.status !== 407;
      log?.(rejected ? 'warn' : 'debug', rejected ? 'auth.rejected' : 'auth.challenge', { reason, stateless: true, domain: s.digest, from: `${source.address.address}:${source.address.port}` });
    }
    return response;
  };

  const authenticate = async (req: SipRequest, source: MessageSource): Promise<AuthDecision> => {
    const s = screenByAddress(req, source);
    if ('response' in s) return { ok: false, response: s.response };
    if ('ok' in s) return s.ok;
    const host = s.digest;
    const ipOk = s.ipOk;
    const domain = ownEntry(domains, host);
    const from = source.address.address;
    // The cluster's blocks (other instances saw the failures) refuse as this instance's own would.
    const shared = sharedThrottle?.blocked(from);
    if (shared !== undefined && (shared === 'all' || shared.has(credentialsUser(req, digest.credentialsHeader, host) ?? ''))) {
      log?.('warn', 'auth.rejected', { reason: 'THROTTLED', shared: true, domain: host, known: domain !== undefined, from: `${from}:${source.address.port}` });
      return { ok: false, response: createResponse(req, 403) };
    }
    const r = await digest.verify(req, { source: from });
    if (sharedThrottle && r.kind === 'reject' && COUNTED_FAILURES.has(r.reason)) {
      const user = credentialsUser(req, digest.credentialsHeader, host);
      if (user !== undefined) sharedThrottle.noteFailure(from, user);
    }
    const known = domain !== undefined;
    if (r.kind === 'ok' && known) return { ok: true, identity: r.username, tags: { domain: host, auth: ipOk ? 'ip+digest' : 'digest' } };
    // (An unknown domain has no extensions, so `ok` cannot happen without `known`; refuse anyway.)
    const response = r.kind === 'ok' ? createResponse(req, 403) : r.response;
    const rejected = r.kind === 'reject' || r.kind === 'ok';
    log?.(rejected ? 'warn' : 'debug', rejected ? 'auth.rejected' : 'auth.challenge', {
      reason: r.kind === 'ok' ? 'unknown domain' : r.reason,
      domain: host,
      known,
      from: `${source.address.address}:${source.address.port}`,
    });
    return { ok: false, response };
  };
  return { authenticate, challenge, digest };
}
