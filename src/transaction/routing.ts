import { isIP } from 'node:net';
import type { SipRequest, SipUri, Via } from '../parser/index.js';
import { bareHost, type Transport, type TransportAddress } from '../transport/index.js';
import type { SipTarget } from '../resolver/index.js';

/**
 * Stamp the top Via of a received request (RFC 3261 §18.2.1, RFC 3581 §4):
 * `received` when sent-by is not the source address, and `rport` filled with
 * the source port when the sender asked for it. Returns the updated Via.
 */
export function stampVia(req: SipRequest, source: TransportAddress): Via | undefined {
  const top = req.topVia;
  if (!top) return undefined;
  const wantsRport = top.params.has('rport');
  if (bareHost(top.host) === source.address && !wantsRport) return top;
  const v = top.clone();
  v.params.set('received', source.address);
  if (wantsRport) v.params.set('rport', String(source.port));
  req.removeFirst('Via');
  req.prepend('Via', v.toString());
  return v;
}

/**
 * Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4): back over the
 * connection it came on for reliable transports; otherwise to `received`
 * (at `rport` when filled in) or the sent-by address — so NATed callers are reached.
 */
export function responseAddress(top: Via, source: TransportAddress, transport: Transport): TransportAddress {
  if (transport.reliable) return source;
  const maddr = top.maddr;
  const defaultPort = top.transport === 'TLS' ? 5061 : 5060;
  if (maddr) return { address: bareHost(maddr), port: top.port ?? defaultPort };
  const rport = top.rport;
  const received = top.received;
  if (received !== undefined) {
    return { address: bareHost(received), port: typeof rport === 'number' ? rport : (top.port ?? defaultPort) };
  }
  const host = bareHost(top.host);
  // A sent-by hostname would need DNS (RFC 3263 §5); the source address is where it really came from.
  if (isIP(host) === 0) return source;
  return { address: host, port: top.port ?? defaultPort };
}

/** Where to send a request: an address and port (an IP: RFC 3263 has located it), and the transport. */
export interface Target {
  address: string;
  port: number;
  /** Transport protocol (udp, tcp, …); default udp. */
  transport?: string;
  /**
   * The SIP domain the next hop must prove over TLS (RFC 5922 §4: the host name of the
   * `sips:` or `transport=tls` URI that was resolved, not the SRV target): sent as SNI and
   * checked against the server's certificate. Undefined for an IP-literal URI, where the
   * certificate must be for the address itself.
   */
  serverName?: string;
}

/** Where to send a request for a SIP URI with an IP host (maddr, host, port, transport param). */
export function targetFromUri(uri: SipUri): Target {
  const maddr = uri.param('maddr');
  const host = bareHost(maddr ?? uri.host);
  const transport = uri.transport ?? (uri.scheme === 'sips' ? 'tls' : 'udp');
  const tls = uri.scheme === 'sips' || transport === 'tls';
  const target: Target = { address: host, port: uri.port ?? (tls ? 5061 : 5060), transport: uri.scheme === 'sips' ? 'tls' : transport };
  // RFC 5922 §7.2: the identity checked is the URI's domain, whatever maddr says.
  if (tls && isIP(bareHost(uri.host)) === 0) target.serverName = uri.hostname;
  return target;
}

/** A located target (RFC 3263) as the layer sends to it: TLS carries the SIP domain as its server name. */
export function targetOf(t: SipTarget): Target {
  const target: Target = { address: t.address, port: t.port, transport: t.transport };
  if (t.transport === 'tls' && t.hostname !== undefined) target.serverName = t.hostname;
  return target;
}
