import { DigestError } from './errors.js';
import { algorithmInfo, hashFor, resolveAlgorithm, type DigestAlgorithm, type HashFunction } from './algorithms.js';

export type Qop = 'auth' | 'auth-int';

export interface DigestParams {
  algorithm?: DigestAlgorithm | string;
  username: string;
  realm: string;
  /** The password, or… */
  password?: string;
  /** …the stored H(username:realm:password) for this algorithm's hash, so no plaintext is kept. */
  ha1?: string;
  method: string;
  /** The digest-uri exactly as sent in the credentials. */
  uri: string;
  nonce: string;
  cnonce?: string;
  /** 8 hex digits, as sent. */
  nc?: string;
  /** Absent means the RFC 2069 form (no nc / cnonce). */
  qop?: Qop;
  /** Message body, hashed for qop=auth-int. */
  body?: Uint8Array | string;
  /** Override the algorithm's hash (to reproduce RFC 7616 §3.9.2's printed values). */
  hashFunction?: HashFunction;
}

/** H(username ":" realm ":" password) — what a server may store instead of the password. */
export function computeHA1(algorithm: DigestAlgorithm | string, username: string, realm: string, password: string, hashFunction?: HashFunction): string {
  const alg = resolveAlgorithm(algorithm);
  if (!alg) throw new DigestError('UNSUPPORTED_ALGORITHM', `unsupported digest algorithm ${algorithm}`);
  return (hashFunction ?? hashFor(alg))(`${username}:${realm}:${password}`);
}

/** RFC 7616 §3.4.4: userhash = H(username ":" realm). */
export function computeUserhash(algorithm: DigestAlgorithm | string, username: string, realm: string, hashFunction?: HashFunction): string {
  const alg = resolveAlgorithm(algorithm);
  if (!alg) throw new DigestError('UNSUPPORTED_ALGORITHM', `unsupported digest algorithm ${algorithm}`);
  return (hashFunction ?? hashFor(alg))(`${username}:${realm}`);
}

/**
 * The `response` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2, RFC 3261 §22.4):
 *   with qop:    H(H(A1):nonce:nc:cnonce:qop:H(A2))
 *   without qop: H(H(A1):nonce:H(A2))  (RFC 2069)
 * A1 = username:realm:password (for -sess: H(username:realm:password):nonce:cnonce);
 * A2 = method:uri (for auth-int: method:uri:H(body)). Strings are hashed as UTF-8.
 */
export function digestResponse(p: DigestParams): string {
  const alg = resolveAlgorithm(p.algorithm);
  if (!alg) throw new DigestError('UNSUPPORTED_ALGORITHM', `unsupported digest algorithm ${p.algorithm}`);
  const H = p.hashFunction ?? hashFor(alg);
  let ha1: string;
  if (p.ha1 !== undefined) ha1 = p.ha1.toLowerCase();
  else if (p.password !== undefined) ha1 = H(`${p.username}:${p.realm}:${p.password}`);
  else throw new DigestError('BAD_PARAMS', 'digestResponse needs a password or an HA1');
  if (algorithmInfo(alg).sess) {
    if (p.cnonce === undefined) throw new DigestError('BAD_PARAMS', `${alg} needs a cnonce`);
    ha1 = H(`${ha1}:${p.nonce}:${p.cnonce}`);
  }
  let a2 = `${p.method}:${p.uri}`;
  if (p.qop === 'auth-int') a2 += ':' + H(p.body ?? '');
  const ha2 = H(a2);
  if (p.qop === undefined) return H(`${ha1}:${p.nonce}:${ha2}`);
  if (p.nc === undefined || p.cnonce === undefined) throw new DigestError('BAD_PARAMS', 'qop needs nc and cnonce');
  return H(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`);
}
