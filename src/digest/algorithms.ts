import * as crypto from 'node:crypto';

/** Digest algorithms of RFC 7616 §3.3 / RFC 8760 (names compared case-insensitively). */
export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess' | 'SHA-512-256' | 'SHA-512-256-sess';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = [
  'SHA-512-256',
  'SHA-512-256-sess',
  'SHA-256',
  'SHA-256-sess',
  'MD5',
  'MD5-sess',
];

interface AlgorithmInfo {
  name: DigestAlgorithm;
  /** node:crypto hash name. SHA-512-256 is FIPS 180-4 SHA-512/256, not truncated SHA-512. */
  hash: 'md5' | 'sha256' | 'sha512-256';
  sess: boolean;
  /** Higher is stronger: the client picks the strongest offered (RFC 7616 §3.7). */
  strength: number;
}

const INFO: Record<string, AlgorithmInfo> = {};
for (const [name, hash, strength] of [
  ['MD5', 'md5', 1],
  ['SHA-256', 'sha256', 2],
  ['SHA-512-256', 'sha512-256', 3],
] as const) {
  INFO[name.toLowerCase()] = { name, hash, sess: false, strength };
  const sess = `${name}-sess` as DigestAlgorithm;
  INFO[sess.toLowerCase()] = { name: sess, hash, sess: true, strength };
}

/** Canonical algorithm for a name as written (absent means MD5, RFC 2617 §3.2.1), or undefined. */
export function resolveAlgorithm(name: string | undefined): DigestAlgorithm | undefined {
  if (name === undefined) return 'MD5';
  return INFO[name.toLowerCase()]?.name;
}

export function algorithmInfo(a: DigestAlgorithm): AlgorithmInfo {
  return INFO[a.toLowerCase()]!;
}

/** A hex hash function: the algorithm's, or one a caller supplies (tests of published vectors). */
export type HashFunction = (data: string | Uint8Array) => string;

const hashers: Record<string, HashFunction> = {};
/**
 * crypto.hash (Node 20.12, 21.7): one call, no Hash object — a third of createHash's cost for the
 * short inputs digest hashes (HA1, HA2, the response: three per verified request) and the nonce
 * MAC's two hashes (hmac.ts). Undefined on older Node 20: callers fall back to createHash/createHmac.
 */
export const oneShotHash = (
  crypto as {
    hash?: {
      (algorithm: string, data: string | Uint8Array, encoding: 'hex'): string;
      (algorithm: string, data: Uint8Array, encoding: 'buffer'): Buffer;
    };
  }
).hash;
export function hashFor(a: DigestAlgorithm): HashFunction {
  const h = algorithmInfo(a).hash;
  const oneShot = oneShotHash;
  return (hashers[h] ??= oneShot === undefined ? (data) => crypto.createHash(h).update(data).digest('hex') : (data) => oneShot(h, data, 'hex'));
}
