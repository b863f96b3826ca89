import { isIPv4, isIPv6 } from 'node:net';

/** An address as a number: IPv4 in 32 bits, IPv6 in 128. An IPv4-mapped IPv6 address is IPv4. */
export interface IpNumber {
  family: 4 | 6;
  value: bigint;
}

/** One parsed rule: the network part of `value` in its top `bits` bits. */
export interface CidrRule {
  family: 4 | 6;
  /** The network, host bits cleared. */
  value: bigint;
  bits: number;
  /** The rule as written. */
  text: string;
}

const V4_MAPPED = 0xffffn << 32n; // ::ffff:0:0/96 (RFC 4291 §2.5.5.2)

function ipv4Number(s: string): bigint {
  let n = 0n;
  for (const part of s.split('.')) n = (n << 8n) | BigInt(Number(part));
  return n;
}

function ipv6Number(s: string): bigint {
  // A trailing dotted quad (::ffff:1.2.3.4, ::1.2.3.4) is the last 32 bits.
  let tail: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail = ipv4Number(s.slice(lastColon + 1));
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = s.split('::');
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const rest = halves.length > 1 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const groups = halves.length > 1 ? [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest] : head;
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  if (tail !== undefined) n = (n & ~0xffffffffn) | tail;
  return n;
}

/**
 * An IP literal as a number, or undefined when it is not one. A zone (`fe80::1%eth0`) is
 * dropped; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a dual-stack socket reports
 * an IPv4 peer) is the IPv4 address, so IPv4 rules match it.
 */
export function parseIp(text: string): IpNumber | undefined {
  if (isIPv4(text)) return { family: 4, value: ipv4Number(text) };
  const zone = text.indexOf('%');
  const bare = zone < 0 ? text : text.slice(0, zone);
  if (!isIPv6(bare)) return undefined;
  const value = ipv6Number(bare.toLowerCase());
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** Why a rule is refused, for the error naming its field. */
export class CidrError extends Error {
  override name = 'CidrError';
}

/**
 * Parse "203.0.113.0/24", "2001:db8::/32", or a bare address (a /32 or /128). Host bits below
 * the prefix must be zero ("10.0.0.1/8" is refused: it is usually a typo for a /32). An IPv6
 * rule inside ::ffff:0:0/96 becomes the IPv4 rule it stands for.
 */
export function parseCidr(text: string): CidrRule {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  if (addr.includes('%')) throw new CidrError('a zone index (%) is not allowed in a rule');
  const ip = parseIp(addr);
  if (!ip) throw new CidrError('must be an IPv4 or IPv6 address, optionally with a /prefix');
  const written = isIPv4(addr) ? 4 : 6;
  const max = written === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) throw new CidrError(`the prefix length must be 0 to ${max}`);
    bits = Number(p);
  }
  let { family, value } = ip;
  if (written === 6 && family === 4) {
    // ::ffff:a.b.c.d/n: an IPv4 rule when n ≥ 96; a shorter one reaches outside the mapped range.
    if (bits < 96) {
      family = 6;
      value = V4_MAPPED | value;
    } else bits -= 96;
  }
  const width = family === 4 ? 32 : 128;
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  if ((value & hostMask) !== 0n) throw new CidrError(`host bits are set below the /${slash < 0 ? max : text.slice(slash + 1)} prefix`);
  return { family, value, bits, text };
}

/**
 * A set of CIDR rules, parsed once. `matches(address)` compares numbers: no string work
 * beyond parsing the address. IPv4-mapped IPv6 sources match IPv4 rules, and the
 * ::ffff:0:0/96-or-shorter IPv6 rules match IPv4 sources (they cover all of them).
 */
export class AddressMatcher {
  /** Each rule as [shift, network >> shift]: an address matches when its own value >> shift is equal. */
  private readonly v4: Array<[bigint, bigint]> = [];
  private readonly v6: Array<[bigint, bigint]> = [];

  constructor(rules: readonly string[]) {
    for (const r of rules) {
      const rule = parseCidr(r);
      const shift = BigInt((rule.family === 4 ? 32 : 128) - rule.bits);
      (rule.family === 4 ? this.v4 : this.v6).push([shift, rule.value >> shift]);
    }
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  matches(address: string): boolean {
    const ip = parseIp(address);
    if (!ip) return false;
    if (ip.family === 4) {
      for (const [shift, net] of this.v4) if (ip.value >> shift === net) return true;
    }
    const v6 = ip.family === 4 ? V4_MAPPED | ip.value : ip.value;
    for (const [shift, net] of this.v6) if (v6 >> shift === net) return true;
    return false;
  }
}
