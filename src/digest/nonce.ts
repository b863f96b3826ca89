import { createHmac, timingSafeEqual } from 'node:crypto';
import { pooledRandomBytes } from '../util/random.js';
import { DigestError } from './errors.js';
import { MIN_SECRET_BYTES } from './server-options.js';

const TS_BYTES = 6;
const RAND_BYTES = 9;
const MAC_BYTES = 16;
const PAYLOAD = TS_BYTES + RAND_BYTES;
const TOTAL = PAYLOAD + MAC_BYTES;

export type NonceStatus = 'valid' | 'stale' | 'invalid';

/**
 * Stateless nonces: timestamp ‖ random ‖ HMAC-SHA-256(secret, timestamp ‖ random ‖ binding).
 * Any server holding the secret can check a nonce another issued, nothing is
 * stored per challenge, and a forged or re-bound nonce fails the MAC.
 */
export class NonceCodec {
  private readonly secret: Buffer;
  constructor(
    secret: string | Uint8Array,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {
    this.secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
    if (this.secret.length < MIN_SECRET_BYTES) {
      throw new DigestError('BAD_OPTION', `digest secret must be at least ${MIN_SECRET_BYTES} bytes (got ${this.secret.length})`);
    }
  }

  private mac(payload: Uint8Array, binding: string): Buffer {
    return createHmac('sha256', this.secret).update(payload).update('\0' + binding).digest().subarray(0, MAC_BYTES);
  }

  issue(binding = ''): string {
    const buf = Buffer.allocUnsafe(TOTAL);
    buf.writeUIntBE(Math.floor(this.now()), 0, TS_BYTES);
    pooledRandomBytes(RAND_BYTES).copy(buf, TS_BYTES);
    this.mac(buf.subarray(0, PAYLOAD), binding).copy(buf, PAYLOAD);
    return buf.toString('base64url');
  }

  check(nonce: string, binding = ''): NonceStatus {
    if (nonce.length !== Math.ceil((TOTAL * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return 'invalid';
    const buf = Buffer.from(nonce, 'base64url');
    if (buf.length !== TOTAL) return 'invalid';
    const expected = this.mac(buf.subarray(0, PAYLOAD), binding);
    if (!timingSafeEqual(expected, buf.subarray(PAYLOAD))) return 'invalid';
    const issued = buf.readUIntBE(0, TS_BYTES);
    const age = this.now() - issued;
    // A nonce from the future (beyond a small clock skew between instances) is not ours.
    if (age < -30_000) return 'invalid';
    return age > this.ttlMs ? 'stale' : 'valid';
  }

  /** A derived value (e.g. the opaque) that every instance sharing the secret agrees on. */
  derive(label: string): string {
    return createHmac('sha256', this.secret).update('derive\0' + label).digest('base64url').slice(0, 22);
  }
}
