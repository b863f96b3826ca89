import { isIP } from 'node:net';
import type { SipRequest } from 'sipkit/parser';
import type { MessageSource } from 'sipkit/transaction';
import { AddressMatcher } from './cidr.js';
import type { Logger } from './log.js';

/** Where the caller is, as far as per-source decisions go. */
export interface CallerAddress {
  address: string;
  port: number;
}

/** An address without the brackets an IPv6 reference has in a Via (sent-by, and some stacks' received). */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The caller's address when the request came through a trusted front proxy: the Via below
 * the top one (the top is the front's own) as the front saw it. RFC 3261 §18.2.1: a server
 * adds `received` when sent-by differs from the packet's source, so `received` (else an IP
 * sent-by) is the address the front got the request from; RFC 3581 `rport`, when filled in,
 * the port. Anything else — a packet source outside `trusted`, one Via only, a host name
 * without `received`, a malformed Via — keeps the packet's source: a caller that reaches the
 * trunk directly cannot pick its address by adding Vias of its own.
 *
 * `hostName` is told when a Via names a host and has no `received` (the front should add one).
 */
export function callerSource(
  request: SipRequest,
  packetSource: CallerAddress,
  trusted: AddressMatcher,
  hostName?: (sentBy: string) => void,
): CallerAddress {
  if (trusted.size === 0 || !trusted.matches(packetSource.address)) return packetSource;
  try {
    const vias = request.via;
    if (vias.length < 2) return packetSource;
    const below = vias[1]!;
    const received = below.received;
    const address = received !== undefined ? unbracket(received) : unbracket(below.host);
    if (isIP(address) === 0) {
      hostName?.(below.sentBy);
      return packetSource;
    }
    const rport = below.rport;
    return { address, port: typeof rport === 'number' && rport > 0 ? rport : (below.port ?? 5060) };
  } catch {
    // A malformed Via is no evidence of anything: the request is judged by its packet source.
    return packetSource;
  }
}

/**
 * The trunk's `sip.trustedProxies`, ready for each request: `of(request, source)` is the
 * MessageSource to make per-source decisions with (the packet's own when nothing is trusted,
 * the same object then). A host name in a Via is logged once per sent-by.
 */
export function createCallerSource(trustedProxies: readonly string[], log?: Logger): {
  of(request: SipRequest, source: MessageSource): MessageSource;
  address(request: SipRequest, source: MessageSource): CallerAddress;
} {
  const trusted = new AddressMatcher(trustedProxies);
  const named = new Set<string>();
  const hostName = (sentBy: string) => {
    // Bounded: a front relays for a fixed set of hosts; past that, nobody reads the repeats.
    if (named.has(sentBy) || named.size >= 1000) return;
    named.add(sentBy);
    log?.('warn', 'proxy.via_host_name', { sentBy, note: 'no received parameter: the front proxy is taken as the source' });
  };
  const address = (request: SipRequest, source: MessageSource): CallerAddress =>
    trusted.size === 0 ? source.address : callerSource(request, source.address, trusted, hostName);
  return {
    address,
    of(request, source) {
      const a = address(request, source);
      return a === source.address ? source : { transport: source.transport, address: { ...source.address, address: a.address, port: a.port } };
    },
  };
}
