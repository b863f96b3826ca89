import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostFamily } from '../../src/resolver/literal.js';

describe('hostFamily: the IP-literal test of the fast path', () => {
  it('dotted quads are 4, bracketed or bare IPv6 is 6, names and near-misses are 0', () => {
    for (const h of ['192.0.2.7', '0.0.0.0', '255.255.255.255', '10.1.2.3']) expect(hostFamily(h), h).toBe(4);
    for (const h of ['[2001:db8::1]', '[::1]', '2001:db8::1', '::ffff:192.0.2.1']) expect(hostFamily(h), h).toBe(6);
    for (const h of ['example.com', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1..2.3', '1.2.3.', '.1.2.3', '1.2.3.4a', 'a:b', '[nope', '', 'host1']) expect(hostFamily(h), h).toBe(0);
  });

  it('property: agrees with node:net isIP on dotted strings of digits and on host names', () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.stringMatching(/^[0-9]{1,4}$/));
    const dotted = fc.array(octet, { minLength: 1, maxLength: 6 }).map((p) => p.join('.'));
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,20}$/);
    fc.assert(
      fc.property(fc.oneof(dotted, name), (h) => {
        expect(hostFamily(h)).toBe(isIP(h));
      }),
      { numRuns: 2000 },
    );
  });
});
