import { describe, expect, it } from 'vitest';
import { pooledRandomBytes } from '../../src/util/random.js';

describe('pooledRandomBytes', () => {
  it('hands out each byte once, across pool refills, for any size', () => {
    const seen = new Set<string>();
    let total = 0;
    for (let i = 0; i < 2000; i++) {
      const n = 1 + (i % 24);
      const b = pooledRandomBytes(n);
      expect(b.length).toBe(n);
      total += n;
      if (n >= 8) seen.add(b.toString('hex'));
    }
    expect(total).toBeGreaterThan(4096 * 5); // several refills happened
    expect(seen.size).toBe([...Array(2000).keys()].filter((i) => 1 + (i % 24) >= 8).length);
    expect(pooledRandomBytes(10_000).length).toBe(10_000);
    expect(pooledRandomBytes(16).equals(pooledRandomBytes(16))).toBe(false);
  });
});
