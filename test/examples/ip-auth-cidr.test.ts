import { BlockList } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressMatcher, CidrError, parseCidr, parseIp } from '../../examples/trunk-server/cidr.js';

// The CIDR matcher of IP-based trunk auth, against two references: bit strings compared
// character by character, and Node's own BlockList.

const v4Text = (b: number[]) => b.join('.');
const v6Text = (b: number[]) => Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':');
const bitsOf = (b: number[]) => b.map((x) => x.toString(2).padStart(8, '0')).join('');
/** The rule's network: the address with the bits below the prefix cleared. */
function network(b: number[], bits: number): number[] {
  const s = bitsOf(b).slice(0, bits).padEnd(b.length * 8, '0');
  return b.map((_, i) => parseInt(s.slice(i * 8, i * 8 + 8), 2));
}

const bytes = (n: number) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n });
/** An address and a rule near it: sharing a random-length prefix, so matches and misses both occur. */
const case4 = fc.tuple(bytes(4), bytes(4), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 32 })).map(([a, r, bits, shared]) => {
  const rb = bitsOf(a).slice(0, shared) + bitsOf(r).slice(shared);
  const rule = Array.from({ length: 4 }, (_, i) => parseInt(rb.slice(i * 8, i * 8 + 8), 2));
  return { addr: a, rule: network(rule, bits), bits };
});
const case6 = fc.tuple(bytes(16), bytes(16), fc.integer({ min: 0, max: 128 }), fc.integer({ min: 0, max: 128 })).map(([a, r, bits, shared]) => {
  const rb = bitsOf(a).slice(0, shared) + bitsOf(r).slice(shared);
  const rule = Array.from({ length: 16 }, (_, i) => parseInt(rb.slice(i * 8, i * 8 + 8), 2));
  return { addr: a, rule: network(rule, bits), bits };
});

describe('CIDR matcher', () => {
  it('IPv4: matches exactly when the first `bits` bits are equal (bit-string reference and BlockList)', () => {
    fc.assert(
      fc.property(case4, ({ addr, rule, bits }) => {
        const expected = bitsOf(addr).slice(0, bits) === bitsOf(rule).slice(0, bits);
        const m = new AddressMatcher([`${v4Text(rule)}/${bits}`]);
        expect(m.matches(v4Text(addr))).toBe(expected);
        const bl = new BlockList();
        bl.addSubnet(v4Text(rule), bits, 'ipv4');
        expect(bl.check(v4Text(addr), 'ipv4')).toBe(expected);
        // The same source seen through a dual-stack socket.
        expect(m.matches(`::ffff:${v4Text(addr)}`)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('IPv6: matches exactly when the first `bits` bits are equal (bit-string reference and BlockList)', () => {
    fc.assert(
      fc.property(case6, ({ addr, rule, bits }) => {
        const expected = bitsOf(addr).slice(0, bits) === bitsOf(rule).slice(0, bits);
        const mapped = addr.slice(0, 12).every((x, i) => x === (i < 10 ? 0 : 255));
        fc.pre(!mapped); // mapped sources are IPv4 (next test)
        const m = new AddressMatcher([`${v6Text(rule)}/${bits}`]);
        expect(m.matches(v6Text(addr))).toBe(expected);
        const bl = new BlockList();
        bl.addSubnet(v6Text(rule), bits, 'ipv6');
        expect(bl.check(v6Text(addr), 'ipv6')).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('IPv4-mapped IPv6: ::ffff:a.b.c.d (either spelling) matches IPv4 rules; ::ffff:a.b.c.d/n≥96 rules match IPv4 sources', () => {
    const m = new AddressMatcher(['203.0.113.0/24']);
    expect(m.matches('::ffff:203.0.113.7')).toBe(true);
    expect(m.matches('::FFFF:cb00:7107')).toBe(true);
    expect(m.matches('::ffff:203.0.114.7')).toBe(false);
    expect(m.matches('203.0.113.7')).toBe(true);
    const mappedRule = new AddressMatcher(['::ffff:198.51.100.0/120']);
    expect(mappedRule.matches('198.51.100.9')).toBe(true);
    expect(mappedRule.matches('::ffff:198.51.100.9')).toBe(true);
    expect(mappedRule.matches('198.51.101.9')).toBe(false);
    // A rule wider than the mapped range covers every IPv4 source.
    expect(new AddressMatcher(['::/64']).matches('192.0.2.1')).toBe(true);
    expect(new AddressMatcher(['2001:db8::/32']).matches('192.0.2.1')).toBe(false);
    // ...but an IPv4 rule never matches a native IPv6 source.
    expect(new AddressMatcher(['0.0.0.0/0']).matches('2001:db8::1')).toBe(false);
  });

  it('bare addresses are /32 and /128; zones on sources are ignored; garbage never matches', () => {
    const m = new AddressMatcher(['127.0.0.1', '::1', 'fe80::1/128']);
    expect(m.matches('127.0.0.1')).toBe(true);
    expect(m.matches('127.0.0.2')).toBe(false);
    expect(m.matches('::1')).toBe(true);
    expect(m.matches('0:0:0:0:0:0:0:1')).toBe(true);
    expect(m.matches('fe80::1%lo')).toBe(true);
    for (const bad of ['', 'localhost', '127.0.0.1:5060', '::1::', '1.2.3.4.5']) expect(m.matches(bad)).toBe(false);
    expect(parseIp('::1.2.3.4')).toEqual({ family: 6, value: 0x01020304n });
  });

  it('refuses malformed rules with a reason: bad address, prefix out of range, host bits set, zones', () => {
    for (const bad of ['', 'x', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/08', '10.0.0.1/8', '2001:db8::/129', '2001:db8::1/32', 'fe80::1%eth0/128', '10.0.0.0/24/1']) {
      expect(() => parseCidr(bad), bad).toThrow(CidrError);
    }
    expect(parseCidr('2001:DB8::/32')).toMatchObject({ family: 6, bits: 32 });
    expect(parseCidr('0.0.0.0/0')).toMatchObject({ family: 4, bits: 0, value: 0n });
  });
});
