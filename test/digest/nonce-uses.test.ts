import { describe, expect, it } from 'vitest';
import { NonceCodec } from '../../src/digest/index.js';
import { NonceUseTable } from '../../src/digest/nonce-uses.js';

describe('NonceUseTable', () => {
  it('keeps an entry until its nonce expires, drops it within one bucket (TTL/16) after, and refuses when full', () => {
    const ttl = 160_000; // buckets of 10 s
    const t = new NonceUseTable(2, ttl);
    expect(t.add(1, 1, 100_000 + ttl, 100_000)).toBe(true);
    expect(t.add(2, 1, 150_000 + ttl, 150_000)).toBe(true);
    expect(t.add(3, 1, 200_000 + ttl, 200_000)).toBe(false); // full: nothing live is evicted
    expect(t.get(1)).toBe(1);
    expect(t.msUntilNextExpiry(200_000)).toBe(260_000 - 200_000);
    // Just before nonce 1 expires, it is still there and the table still full.
    expect(t.add(3, 1, 259_999 + ttl, 259_999)).toBe(false);
    expect(t.get(1)).toBe(1);
    // Once its bucket is due, it goes, and a new nonce fits.
    expect(t.add(3, 1, 260_000 + ttl, 260_000)).toBe(true);
    expect(t.get(1)).toBeUndefined();
    expect(t.get(2)).toBe(1);
    expect(t.size).toBe(2);
  });
});

describe('NonceCodec', () => {
  it('names its instance in each nonce; another instance with the secret finds it authentic but foreign; bindings are MAC-covered', () => {
    let now = 1_700_000_000_000;
    const a = new NonceCodec('0123456789abcdef0123', 60_000, () => now);
    const b = new NonceCodec('0123456789abcdef0123', 60_000, () => now);
    const n = a.issue('src:192.0.2.1');
    expect(a.issuerOf(n)).toBe(a.instanceId);
    expect(a.issuedAt(n)).toBe(now);
    expect(a.check(n, 'src:192.0.2.1')).toBe('valid');
    expect(b.check(n, 'src:192.0.2.1')).toBe('foreign');
    expect(a.check(n, 'src:192.0.2.2')).toBe('invalid');
    expect(a.keyOf(n)).not.toBe(a.keyOf(a.issue('src:192.0.2.1')));
    now += 60_001;
    expect(a.check(n, 'src:192.0.2.1')).toBe('stale');
  });
});
