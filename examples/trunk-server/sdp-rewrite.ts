/**
 * SDP rewriting for a media anchor: every connection address becomes the
 * relay's, every active stream's port a relay port. Pure functions over the
 * SDP text (RFC 4566); the relay decides the ports.
 */

export type AddressFamily = 'IP4' | 'IP6';

/** The relay's own address per family; null where the trunk has none. */
export type RelayAddresses = Readonly<Record<AddressFamily, string | null>>;

/** One m= section as the relay sees it. */
export interface SdpStream {
  /** Position of the m= line (0-based); stable across re-offers (RFC 3264 §8). */
  index: number;
  media: string;
  /** 0: the stream is disabled (RFC 3264 §6), nothing to relay. */
  port: number;
  proto: string;
  /** From the media-level c= if any, else the session-level one (RFC 4566 §5.7). */
  family: AddressFamily | undefined;
  address: string | undefined;
  /** Explicit RTCP port (a=rtcp, RFC 3605); otherwise RTP port + 1 (RFC 3550 §11). */
  rtcpPort: number | undefined;
}

export interface SdpOrigin {
  username: string;
  sessionId: string;
  version: string;
  addrtype: string;
  address: string;
}

/** Malformed SDP, or SDP the relay cannot carry; `code` is stable. */
export class SdpRewriteError extends Error {
  constructor(
    readonly code: 'sdp.malformed' | 'sdp.unsupported_family',
    message: string,
  ) {
    super(message);
    this.name = 'SdpRewriteError';
  }
}

const C_LINE = /^c=(\S+) (\S+) (\S+)$/;
const M_LINE = /^m=(\S+) (\d+)(?:\/\d+)? (\S+)(.*)$/;
const O_LINE = /^o=(\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$/;
const RTCP_ATTR = /^a=rtcp:(\d+)(?: .*)?$/;

function familyOf(nettype: string, addrtype: string): AddressFamily | undefined {
  if (nettype.toUpperCase() !== 'IN') return undefined;
  const t = addrtype.toUpperCase();
  return t === 'IP4' || t === 'IP6' ? t : undefined;
}

/** RFC 4566 §5: CRLF, but a parser should accept a bare LF. */
function linesOf(sdp: string): string[] {
  return sdp.split(/\r?\n/);
}

/** Streams that carry media over UDP and so can go through the relay (RTP/AVP, RTP/SAVP(F), UDP/TLS/RTP/SAVPF, udptl…). */
export function isRelayable(stream: SdpStream): boolean {
  return !/^TCP\b/i.test(stream.proto);
}

/** What a relay needs to know of an SDP: its streams and where each one's media comes from. */
export function readSdp(sdp: string): { origin: SdpOrigin | undefined; streams: SdpStream[] } {
  let origin: SdpOrigin | undefined;
  let session: { family: AddressFamily | undefined; address: string } | undefined;
  const streams: SdpStream[] = [];
  let current: SdpStream | undefined;
  let currentHasC = false;
  for (const line of linesOf(sdp)) {
    if (line.startsWith('m=')) {
      const m = M_LINE.exec(line);
      if (!m) throw new SdpRewriteError('sdp.malformed', `bad m= line: ${line.slice(0, 80)}`);
      current = { index: streams.length, media: m[1]!, port: Number(m[2]), proto: m[3]!, family: session?.family, address: session?.address, rtcpPort: undefined };
      if (current.port > 65535) throw new SdpRewriteError('sdp.malformed', `bad m= port: ${m[2]}`);
      currentHasC = false;
      streams.push(current);
    } else if (line.startsWith('c=')) {
      const c = C_LINE.exec(line);
      if (!c) throw new SdpRewriteError('sdp.malformed', `bad c= line: ${line.slice(0, 80)}`);
      // A multicast TTL or address count follows a slash (RFC 4566 §5.7): the address is before it.
      const conn = { family: familyOf(c[1]!, c[2]!), address: c[3]!.split('/')[0]! };
      if (!current) session = conn;
      else if (!currentHasC) {
        // Several media-level c= lines name layered multicast addresses; the first is the stream's.
        current.family = conn.family;
        current.address = conn.address;
        currentHasC = true;
      }
    } else if (line.startsWith('o=') && !current) {
      const o = O_LINE.exec(line);
      if (o) origin = { username: o[1]!, sessionId: o[2]!, version: o[3]!, addrtype: o[5]!, address: o[6]! };
    } else if (current && line.startsWith('a=rtcp:')) {
      const r = RTCP_ATTR.exec(line);
      if (r) current.rtcpPort = Number(r[1]);
    }
  }
  for (const s of streams) {
    if (s.port !== 0 && s.address === undefined) throw new SdpRewriteError('sdp.malformed', `m= line ${s.index} has no c= line (RFC 4566 §5.7)`);
  }
  return { origin, streams };
}

/**
 * The families the relay must have an address for to carry this SDP: those of
 * its active, relayable streams. Anything else is 488 material (RFC 3261 §21.4.26).
 */
export function unsupportedFamily(streams: readonly SdpStream[], addresses: RelayAddresses): string | undefined {
  for (const s of streams) {
    if (s.port === 0 || !isRelayable(s)) continue;
    if (s.family === undefined) return `stream ${s.index} (${s.media}) uses a connection type other than IN IP4/IP6`;
    if (addresses[s.family] === null) return `stream ${s.index} (${s.media}) is ${s.family}, and the trunk has no ${s.family} media address`;
  }
  return undefined;
}

export interface RewritePlan {
  addresses: RelayAddresses;
  /** The relay port announced for an active stream; 0 disables the stream (RFC 3264 §6). */
  port(stream: SdpStream): number;
  /**
   * The o= line to send, given the one received (its address already the
   * relay's) and the rest of the rewritten SDP, so a caller can keep the
   * version rule of RFC 3264 §8 per recipient. Default: the received one.
   */
  origin?(received: SdpOrigin, rest: string): SdpOrigin;
}

function relayAddress(family: AddressFamily | undefined, addresses: RelayAddresses): { family: AddressFamily; address: string } {
  // A c= line of a family the trunk lacks can only be one that carries no active
  // media here (readers check that first): it still must not leak the peer's address.
  if (family && addresses[family] !== null) return { family, address: addresses[family]! };
  return addresses.IP4 !== null ? { family: 'IP4', address: addresses.IP4 } : { family: 'IP6', address: addresses.IP6! };
}

/**
 * Rewrite an SDP so that all media goes through the relay: every c= line (session
 * and media level) names the relay's address of its family, every active m= port
 * is the plan's relay port (the "/<count>" of layered streams is dropped: one
 * pair per stream is relayed), a=rtcp follows the relay's RTCP port, disabled
 * streams (port 0) stay as they are. Throws SdpRewriteError when an active
 * stream's family has no relay address.
 */
export function rewriteSdp(sdp: string, plan: RewritePlan): string {
  const { streams } = readSdp(sdp);
  const bad = unsupportedFamily(streams, plan.addresses);
  if (bad) throw new SdpRewriteError('sdp.unsupported_family', bad);
  const ports = streams.map((s) => (s.port === 0 ? 0 : isRelayable(s) ? plan.port(s) : 0));
  const out: string[] = [];
  let originAt = -1;
  let received: SdpOrigin | undefined;
  let index = -1;
  for (const line of linesOf(sdp)) {
    if (line.startsWith('m=')) {
      index++;
      const m = M_LINE.exec(line)!;
      const s = streams[index]!;
      out.push(s.port === 0 ? line : `m=${m[1]} ${ports[index]} ${m[3]}${m[4]}`);
    } else if (line.startsWith('c=')) {
      const c = C_LINE.exec(line)!;
      const r = relayAddress(familyOf(c[1]!, c[2]!), plan.addresses);
      out.push(`c=IN ${r.family} ${r.address}`);
    } else if (line.startsWith('o=') && index < 0 && O_LINE.test(line)) {
      const o = O_LINE.exec(line)!;
      const fam = familyOf(o[4]!, o[5]!);
      // The o= address only names the originating host (RFC 4566 §5.2): ours where we have that family.
      const address = fam && plan.addresses[fam] !== null ? plan.addresses[fam]! : o[6]!;
      received = { username: o[1]!, sessionId: o[2]!, version: o[3]!, addrtype: o[5]!, address };
      originAt = out.length;
      out.push('');
    } else if (index >= 0 && line.startsWith('a=rtcp:') && RTCP_ATTR.test(line)) {
      const p = ports[index]!;
      if (p === 0) continue;
      const s = streams[index]!;
      const r = relayAddress(s.family, plan.addresses);
      // RTCP goes to the relay's RTCP socket, next to its RTP port (RFC 3605 §2.1 allows the address too).
      out.push(line.includes(' ') ? `a=rtcp:${p + 1} IN ${r.family} ${r.address}` : `a=rtcp:${p + 1}`);
    } else {
      out.push(line);
    }
  }
  if (received) {
    const rest = out.filter((_, i) => i !== originAt).join('\r\n');
    const o = plan.origin ? plan.origin(received, rest) : received;
    out[originAt] = `o=${o.username} ${o.sessionId} ${o.version} IN ${o.addrtype} ${o.address}`;
  }
  return out.join('\r\n');
}
