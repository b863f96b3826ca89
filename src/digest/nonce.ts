import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { pooledRandomBytes } from '../util/random.js';
import { DigestError } from './errors.js';
import { HmacSha256 } from './hmac.js';
import { MIN_SECRET_BYTES } from './server-options.js';

// Layout (bytes): issued-at ms (6) ‖ issuing instance (6) ‖ random (9) ‖ MAC (16).
// Each field before the MAC starts on a multiple of 3 bytes, so it is a whole run of
// base64url characters that can be read from the nonce string without decoding it all.
const TS_BYTES = 6;
const INSTANCE_BYTES = 6;
const RAND_BYTES = 9;
const MAC_BYTES = 16;
const PAYLOAD = TS_BYTES + INSTANCE_BYTES + RAND_BYTES;
const TOTAL = PAYLOAD + MAC_BYTES;
const NONCE_CHARS = Math.ceil((TOTAL * 4) / 3);
const TS_CHAR = 0;
const INSTANCE_CHAR = (TS_BYTES * 4) / 3;
const RAND_CHAR = ((TS_BYTES + INSTANCE_BYTES) * 4) / 3;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** A nonce from the future beyond this (clock skew) is not ours. */
const MAX_SKEW_MS = 30_000;

/**
 * - `valid`: issued by this instance, for this binding, within its lifetime.
 * - `stale`: ours and for this binding, but older than the TTL.
 * - `foreign`: authentic (MAC and binding check) but issued by another instance holding the
 *   secret — or by this server before a restart. Its nc history is not here, so it must not
 *   be honoured as valid (RFC 7616 §3.3: answer stale=true once the digest checks out).
 * - `invalid`: malformed, forged, from another secret, or bound to another source/Call-ID.
 */
export type NonceStatus = 'valid' | 'stale' | 'foreign' | 'invalid';

/**
 * Stateless nonces: issued ‖ instance ‖ random ‖ HMAC-SHA-256(secret, issued ‖ instance ‖ random ‖ binding).
 * Nothing is stored per challenge, and a forged or re-bound nonce fails the MAC. The
 * instance id is random per codec (per server start), so a nonce issued before a restart
 * is recognised as not this run's: replay state (nc) lives in memory and died with the
 * old process. The nonce names its issuer (`issuerOf`), so instances sharing a secret
 * could later honour each other's nonces by sharing that state; today they answer stale.
 */
export class NonceCodec {
  private readonly secret: Buffer;
  private readonly hmac: HmacSha256;
  /** A nonce being issued or checked (used within one call, never kept). */
  private readonly scratch = Buffer.alloc(TOTAL);
  /**
   * The last nonce and binding whose MAC checked out. A request with credentials is checked twice
   * in a row — the stateless pre-check, then `verify` — and a MAC is a function of the two alone,
   * so the second check reuses the first's. (Nonces travel in the clear: remembering one is no secret kept.)
   */
  private authenticNonce = '';
  private authenticBinding = '';
  private readonly instance: Buffer = randomBytes(INSTANCE_BYTES);
  /** This codec's instance id as it appears in its nonces (8 base64url characters). */
  readonly instanceId: string = this.instance.toString('base64url');
  constructor(
    secret: string | Uint8Array,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {
    this.secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
    if (this.secret.length < MIN_SECRET_BYTES) {
      throw new DigestError('BAD_OPTION', `digest secret must be at least ${MIN_SECRET_BYTES} bytes (got ${this.secret.length})`);
    }
    this.hmac = new HmacSha256(this.secret);
  }

  /** HMAC(secret, payload ‖ NUL ‖ binding), the first MAC_BYTES of it. */
  private mac(payload: Uint8Array, binding: string): Buffer {
    return this.hmac.mac(payload, '\0' + binding).subarray(0, MAC_BYTES);
  }

  issue(binding = ''): string {
    const buf = this.scratch;
    buf.writeUIntBE(Math.floor(this.now()), 0, TS_BYTES);
    this.instance.copy(buf, TS_BYTES);
    pooledRandomBytes(RAND_BYTES).copy(buf, TS_BYTES + INSTANCE_BYTES);
    this.mac(buf.subarray(0, PAYLOAD), binding).copy(buf, PAYLOAD);
    return buf.toString('base64url');
  }

  check(nonce: string, binding = ''): NonceStatus {
    if (nonce.length !== NONCE_CHARS || !BASE64URL.test(nonce)) return 'invalid';
    if (nonce !== this.authenticNonce || binding !== this.authenticBinding) {
      // Decoded into the scratch buffer: no Buffer per check.
      const buf = this.scratch;
      if (buf.write(nonce, 0, 'base64url') !== TOTAL) return 'invalid';
      const expected = this.mac(buf.subarray(0, PAYLOAD), binding);
      if (!timingSafeEqual(expected, buf.subarray(PAYLOAD, TOTAL))) return 'invalid';
      this.authenticNonce = nonce;
      this.authenticBinding = binding;
    }
    // The date and the issuer straight from the characters (each field is a whole run of them).
    const age = this.now() - readBase64url48(nonce, TS_CHAR);
    if (age < -MAX_SKEW_MS) return 'invalid';
    if (this.issuerOf(nonce) !== this.instanceId) return 'foreign';
    return age > this.ttlMs ? 'stale' : 'valid';
  }

  /** When a well-formed nonce was issued (ms); meaningful once `check` has passed it. */
  issuedAt(nonce: string): number {
    return readBase64url48(nonce, TS_CHAR);
  }

  /** The id of the instance that issued a well-formed nonce (compare with `instanceId`). */
  issuerOf(nonce: string): string {
    return nonce.slice(INSTANCE_CHAR, INSTANCE_CHAR + 8);
  }

  /**
   * 48 random bits of a well-formed nonce as a number: a compact key for per-nonce state
   * that does not keep the (sliced) nonce string — and the message it came from — alive.
   */
  keyOf(nonce: string): number {
    return readBase64url48(nonce, RAND_CHAR);
  }

  /** A derived value (e.g. the opaque) that every instance sharing the secret agrees on. */
  derive(label: string): string {
    return createHmac('sha256', this.secret).update('derive\0' + label).digest('base64url').slice(0, 22);
  }
}

/** Eight base64url characters (48 bits, big-endian) from `at`, as an exact integer. */
function readBase64url48(s: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) v = v * 64 + base64urlValue(s.charCodeAt(i));
  return v;
}

function base64urlValue(c: number): number {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  return c === 45 ? 62 : 63;
}
