import * as crypto from 'node:crypto';
import { oneShotHash as oneShot } from './algorithms.js';

const BLOCK = 64; // SHA-256's block size
const OUT = 32; // and its output

/**
 * HMAC-SHA-256 (RFC 2104) with one key, from one-shot hashing: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)),
 * the two padded key blocks computed once. Two `crypto.hash` calls cost about half of a
 * `createHmac(…).update(…).digest()`, which builds a key object and a stream-like Hmac each time;
 * the digest server MACs a nonce once per challenge and once or twice per request with credentials.
 * The message is written into a scratch buffer after the inner key block: use the result before
 * the next call (it is a fresh Buffer, but `message` may be reused by the caller).
 */
export class HmacSha256 {
  /** (K ⊕ ipad) ‖ room for the message. */
  private inner: Buffer;
  /** (K ⊕ opad) ‖ the inner hash. */
  private readonly outer = Buffer.alloc(BLOCK + OUT);
  private readonly key: Buffer;

  constructor(key: Uint8Array) {
    this.key = Buffer.from(key);
    // RFC 2104 §2: a key longer than the block is hashed first; a shorter one is padded with zeros.
    const k = Buffer.alloc(BLOCK);
    (key.length > BLOCK ? crypto.createHash('sha256').update(key).digest() : Buffer.from(key)).copy(k);
    this.inner = Buffer.alloc(BLOCK + 256);
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = k[i]! ^ 0x36;
      this.outer[i] = k[i]! ^ 0x5c;
    }
  }

  /** HMAC(key, head ‖ tail), `tail` as UTF-8. */
  mac(head: Uint8Array, tail: string): Buffer {
    if (oneShot === undefined) return crypto.createHmac('sha256', this.key).update(head).update(tail).digest();
    const end = BLOCK + head.length;
    // A string writes at most 3 bytes per UTF-16 unit: grow the scratch (once) when that might not fit.
    if (end + tail.length * 3 > this.inner.length) {
      const grown = Buffer.alloc(Math.max(2 * this.inner.length, end + tail.length * 3));
      this.inner.copy(grown, 0, 0, BLOCK);
      this.inner = grown;
    }
    this.inner.set(head, BLOCK);
    const n = tail.length === 0 ? 0 : this.inner.write(tail, end, 'utf8');
    this.outer.set(oneShot('sha256', this.inner.subarray(0, end + n), 'buffer'), BLOCK);
    return oneShot('sha256', this.outer, 'buffer');
  }
}
