import { generateBranch, randomToken, type SipRequest, type SipResponse } from '../parser/index.js';
import { LruMap } from '../util/lru.js';
import { algorithmInfo, resolveAlgorithm, type DigestAlgorithm } from './algorithms.js';
import { computeUserhash, digestResponse, type Qop } from './compute.js';
import { DigestError } from './errors.js';
import { formatCredentials, parseChallenges, parseCredentials, type DigestChallenge } from './header.js';

export interface DigestClientOptions {
  username: string;
  password?: string;
  /** Stored HA1 per base algorithm, instead of the password. */
  ha1?: Partial<Record<'MD5' | 'SHA-256' | 'SHA-512-256', string>>;
  /** Answer only challenges for these realms (default: any realm). */
  realms?: readonly string[];
  /** Algorithms this client will use (default: all it knows). */
  algorithms?: readonly DigestAlgorithm[];
}

interface RealmState {
  challenge: DigestChallenge;
  algorithm: DigestAlgorithm;
  header: 'Authorization' | 'Proxy-Authorization';
  /** Challenges answered with no success in between (a second one means the password is wrong). */
  attempts: number;
  staleRetried: boolean;
}

/**
 * The UA side of digest (RFC 3261 §22.2, RFC 7616 §3.4): answers 401/407 with
 * a re-sent request, keeps nc per nonce, and signs later requests to the same realm.
 */
export class DigestClient {
  private readonly realms = new Map<string, RealmState>();
  private readonly nc = new LruMap<string, number>(256);

  constructor(private readonly options: DigestClientOptions) {
    if (options.password === undefined && options.ha1 === undefined) {
      throw new DigestError('BAD_PARAMS', 'DigestClient needs a password or HA1 values');
    }
  }

  private usable(a: DigestAlgorithm): boolean {
    if (this.options.algorithms && !this.options.algorithms.includes(a)) return false;
    if (this.options.password !== undefined) return true;
    return this.options.ha1?.[a.replace(/-sess$/, '') as 'MD5'] !== undefined;
  }

  /**
   * Build the request to re-send after `response` (401 or 407) challenged `request`:
   * CSeq + 1, same Call-ID and From tag, a new branch, one credentials header per
   * realm using the strongest algorithm offered there (every challenge is read).
   * Throws DigestError('AUTH_REJECTED') when a realm challenges again after we answered
   * (not stale), and 'NO_USABLE_CHALLENGE' when nothing offered can be answered.
   */
  authorize(request: SipRequest, response: SipResponse): SipRequest {
    const proxy = response.status === 407;
    if (!proxy && response.status !== 401) throw new DigestError('BAD_PARAMS', `not a challenge: ${response.status}`);
    const header = proxy ? 'Proxy-Authorization' : 'Authorization';
    const challenges: DigestChallenge[] = [];
    for (const v of response.getAll(proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate')) {
      try {
        challenges.push(...parseChallenges(v));
      } catch {
        // A challenge we cannot read (another scheme, bad syntax) does not stop the others.
      }
    }
    // Strongest usable algorithm per realm (RFC 7616 §3.7, RFC 8760 §2.4).
    const best = new Map<string, { c: DigestChallenge; a: DigestAlgorithm }>();
    for (const c of challenges) {
      if (this.options.realms && !this.options.realms.includes(c.realm)) continue;
      const a = resolveAlgorithm(c.algorithm);
      if (!a || !this.usable(a)) continue;
      const cur = best.get(c.realm);
      if (!cur || algorithmInfo(a).strength > algorithmInfo(cur.a).strength) best.set(c.realm, { c, a });
    }
    if (best.size === 0) throw new DigestError('NO_USABLE_CHALLENGE', `no usable digest challenge in ${response.status}`);

    for (const [realm, { c, a }] of best) {
      const st = this.realms.get(realm);
      if (st && st.attempts > 0) {
        if (c.stale && !st.staleRetried) {
          st.staleRetried = true;
        } else {
          this.realms.delete(realm);
          throw new DigestError('AUTH_REJECTED', `credentials for realm "${realm}" were rejected`);
        }
      }
      this.realms.set(realm, { challenge: c, algorithm: a, header, attempts: (st?.attempts ?? 0) + 1, staleRetried: st?.staleRetried ?? false });
    }

    const next = request.clone();
    next.set('CSeq', `${request.cseq.seq + 1} ${request.method}`);
    const top = next.topVia;
    if (top) {
      // A new request, so a new transaction: new branch (RFC 3261 §8.1.3.5).
      top.params.set('branch', generateBranch());
      next.removeFirst('Via');
      next.prepend('Via', top.toString());
    }
    this.applyCredentials(next, [...best.keys()]);
    return next;
  }

  /** Add credentials for every realm we hold a challenge for (later requests to the same servers). */
  sign(request: SipRequest): SipRequest {
    this.applyCredentials(request, [...this.realms.keys()]);
    return request;
  }

  /** A final non-challenge response to an authorized request: the realm's credentials worked. */
  succeeded(): void {
    for (const st of this.realms.values()) {
      st.attempts = 0;
      st.staleRetried = false;
    }
  }

  private applyCredentials(req: SipRequest, realms: string[]): void {
    for (const realm of realms) {
      const st = this.realms.get(realm)!;
      // Drop older credentials for this realm; keep those for other realms.
      const others = req.getAll(st.header).filter((v) => {
        try {
          return parseCredentials(v).realm !== realm;
        } catch {
          return false;
        }
      });
      req.remove(st.header);
      for (const o of others) req.append(st.header, o);
      req.append(st.header, this.credentials(req, st));
    }
  }

  private credentials(req: SipRequest, st: RealmState): string {
    const c = st.challenge;
    const a = st.algorithm;
    const qop: Qop | undefined = c.qop.includes('auth') ? 'auth' : c.qop.includes('auth-int') ? 'auth-int' : undefined;
    let cnonce: string | undefined;
    let nc: string | undefined;
    if (qop !== undefined) {
      const n = (this.nc.get(c.nonce) ?? 0) + 1;
      this.nc.set(c.nonce, n);
      nc = n.toString(16).padStart(8, '0');
      cnonce = randomToken(12);
    }
    const base = a.replace(/-sess$/, '') as 'MD5' | 'SHA-256' | 'SHA-512-256';
    const response = digestResponse({
      algorithm: a,
      username: this.options.username,
      realm: c.realm,
      password: this.options.password,
      ha1: this.options.password === undefined ? this.options.ha1?.[base] : undefined,
      method: req.method,
      uri: req.uri,
      nonce: c.nonce,
      cnonce,
      nc,
      qop,
      body: req.body,
    });
    return formatCredentials({
      username: c.userhash ? computeUserhash(a, this.options.username, c.realm) : this.options.username,
      userhash: c.userhash,
      realm: c.realm,
      nonce: c.nonce,
      uri: req.uri,
      response,
      algorithm: c.algorithm === undefined ? undefined : a,
      cnonce,
      nc,
      qop,
      opaque: c.opaque,
    });
  }
}
