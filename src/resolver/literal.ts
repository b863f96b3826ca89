import { isIP } from 'node:net';

/**
 * 4 or 6 when a host (bracketed IPv6 or not) is an IP literal, 0 for a name. Dotted-quad
 * IPv4 is recognized by one scan of its characters: node:net's isIP (regular expressions)
 * costs several times a target's construction on the hot path of every request to an
 * IP-literal URI. A host name never contains ':', so only a would-be IPv6 address is
 * examined further.
 */
export function hostFamily(host: string): 0 | 4 | 6 {
  const len = host.length;
  if (len === 0 || len > 15) return ipv6(host);
  let dots = 0;
  let digits = 0;
  let octet = 0;
  for (let i = 0; i < len; i++) {
    const c = host.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return ipv6(host);
      digits = 0;
      octet = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros: "01" is octal to some parsers, and node:net rejects it too.
      if (digits === 1 && octet === 0) return ipv6(host);
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return ipv6(host);
    } else return ipv6(host);
  }
  return dots === 3 && digits > 0 ? 4 : 0;
}

function ipv6(host: string): 0 | 6 {
  // A bracketed host is an IPv6reference (RFC 3261 §25.1) whose characters the parser has
  // checked; a bare one (maddr, received: any token) must prove it is an address.
  if (host.charCodeAt(0) === 91 /* [ */) return host.charCodeAt(host.length - 1) === 93 /* ] */ && host.includes(':') ? 6 : 0;
  return host.includes(':') && isIP(host) === 6 ? 6 : 0;
}
