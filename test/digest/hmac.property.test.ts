import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HmacSha256 } from '../../src/digest/hmac.js';

const reference = (key: Uint8Array, head: Uint8Array, tail: string) => createHmac('sha256', key).update(head).update(tail).digest('hex');

describe('HmacSha256 (one-shot hashing with precomputed key blocks)', () => {
  it('equals createHmac for any key (shorter, equal to, longer than the 64-byte block), head and UTF-8 tail', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.uint8Array({ maxLength: 100 }), fc.string({ unit: 'grapheme', maxLength: 40 }), (key, head, tail) => {
        expect(new HmacSha256(key).mac(head, tail).toString('hex')).toBe(reference(key, head, tail));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps equal to createHmac across calls on one instance, including tails longer than its scratch space', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 80 }),
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 400 })), { minLength: 1, maxLength: 8 }),
        (key, messages) => {
          const h = new HmacSha256(key);
          for (const [head, tail] of messages) expect(h.mac(head, tail).toString('hex')).toBe(reference(key, head, tail));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('gives RFC 4231 test case 2 and the long-key case 6', () => {
    expect(new HmacSha256(Buffer.from('Jefe')).mac(Buffer.alloc(0), 'what do ya want for nothing?').toString('hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    expect(new HmacSha256(Buffer.alloc(131, 0xaa)).mac(Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'), '').toString('hex')).toBe(
      '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
    );
  });
});
