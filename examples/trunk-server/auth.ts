import type { AuthDecision } from 'sipkit/b2bua';
import { DigestServer, type DigestAlgorithm, type DigestUserRecord } from 'sipkit/digest';
import { createResponse, type SipRequest } from 'sipkit/parser';
import type { MessageSource } from 'sipkit/transaction';
import type { Logger } from './log.js';
import { ownEntry, requestedHost } from './trunk-domain.js';

/** What the auth part needs of a trunk domain (a config.ts `DomainConfig` is one). */
export interface AuthDomain {
  /** Extensions by username: a password, or stored HA1s, and optionally the algorithms it may use. */
  extensions: Readonly<Record<string, DigestUserRecord>>;
  /** The domain's challenge set, when it differs from `algorithms`. */
  auth?: { algorithms?: readonly DigestAlgorithm[] };
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
}

export interface DigestAuth {
  /** The B2BUA's `authenticate` hook: a 407 challenge, a refusal, or the extension and its domain (`tags.domain`). */
  authenticate(request: SipRequest, source: MessageSource): Promise<AuthDecision>;
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
  const { domains, log } = options;
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

  const authenticate = async (req: SipRequest, source: MessageSource): Promise<AuthDecision> => {
    const host = requestedHost(req);
    if (host === undefined) {
      // Not a sip:/sips: Request-URI: there is no domain to authenticate in.
      log?.('info', 'call.rejected', { reason: 'no trunk domain', from: source.address.address });
      return { ok: false, response: createResponse(req, 404) };
    }
    const r = await digest.verify(req, { source: source.address.address });
    const known = ownEntry(domains, host) !== undefined;
    if (r.kind === 'ok' && known) return { ok: true, identity: r.username, tags: { domain: host } };
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
  return { authenticate, digest };
}
