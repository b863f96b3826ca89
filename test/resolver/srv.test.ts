import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/transport/index.js';
import { orderSrv, type SrvRecord } from '../../src/resolver/index.js';
import { srv } from './fake-dns.js';

describe('orderSrv (RFC 2782 usage rules)', () => {
  it('lowest priority first, whatever the weights', () => {
    const ordered = orderSrv([srv('c', 1, 30, 100), srv('a', 1, 10, 0), srv('b', 1, 20, 100)], seededRandom(3));
    expect(ordered.map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });

  it('within a priority, the first pick follows the weights (seeded, 4000 draws)', () => {
    const random = seededRandom(42);
    const records = [srv('light', 1, 10, 10), srv('heavy', 1, 10, 30), srv('zero', 1, 10, 0)];
    const first = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const name = orderSrv(records, random)[0]!.name;
      first.set(name, (first.get(name) ?? 0) + 1);
    }
    // Expected shares: zero 1/41, light 10/41, heavy 30/41 (a draw in [0, 40], zero wins on 0).
    expect(first.get('heavy')! / 4000).toBeGreaterThan(0.68);
    expect(first.get('heavy')! / 4000).toBeLessThan(0.78);
    expect(first.get('light')! / 4000).toBeGreaterThan(0.2);
    expect(first.get('light')! / 4000).toBeLessThan(0.29);
    expect(first.get('zero') ?? 0).toBeGreaterThan(40);
    expect(first.get('zero') ?? 0).toBeLessThan(160);
  });

  it('all weights zero: the order DNS gave', () => {
    expect(orderSrv([srv('x', 1), srv('y', 1), srv('z', 1)], () => 0.99).map((r) => r.name)).toEqual(['x', 'y', 'z']);
  });

  it('targets "." are left out', () => {
    expect(orderSrv([srv('.', 0), srv('', 0), srv('h', 1)], Math.random).map((r) => r.name)).toEqual(['h']);
  });

  it('property: the result is a permutation of the records, priorities never decrease', () => {
    const record = fc.record({ name: fc.stringMatching(/^[a-z]{1,3}$/), port: fc.integer({ min: 1, max: 65535 }), priority: fc.integer({ min: 0, max: 3 }), weight: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 12 }), fc.integer(), (records: SrvRecord[], seed) => {
        const ordered = orderSrv(records, seededRandom(seed));
        expect(ordered).toHaveLength(records.length);
        const key = (r: SrvRecord) => JSON.stringify(r);
        expect(ordered.map(key).sort()).toEqual(records.map(key).sort());
        for (let i = 1; i < ordered.length; i++) expect(ordered[i]!.priority).toBeGreaterThanOrEqual(ordered[i - 1]!.priority);
      }),
      { numRuns: 300 },
    );
  });

  it('property: a record of weight w > 0 is picked first in proportion to w (deterministic draws)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 6 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (weights, u) => {
        const records = weights.map((w, i) => srv(`r${i}`, 1, 1, w));
        const sum = weights.reduce((a, b) => a + b, 0);
        const pick = Math.floor(u * (sum + 1));
        // The first record whose running sum reaches the draw (RFC 2782).
        let running = 0;
        let expected = records.length - 1;
        for (let i = 0; i < records.length; i++) {
          running += weights[i]!;
          if (running >= pick) {
            expected = i;
            break;
          }
        }
        let first = true;
        const ordered = orderSrv(records, () => (first ? ((first = false), u) : 0));
        expect(ordered[0]!.name).toBe(`r${expected}`);
      }),
      { numRuns: 300 },
    );
  });
});
