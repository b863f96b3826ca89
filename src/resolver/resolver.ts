import { SipParseError, SipUri, parseUri, type Via } from '../parser/index.js';
import { bareHost } from '../transport/index.js';
import { CachingDnsLookup, type DnsCacheOptions } from './cache.js';
import { ResolverError } from './errors.js';
import { NodeDnsLookup, type NodeDnsLookupOptions } from './node-dns.js';
import { hostFamily } from './literal.js';
import { orderSrv } from './srv.js';
import { TargetList, type Hop, type TargetSource } from './target-list.js';
import type { AddressRecord, DnsLookup, NaptrRecord, SipTarget, SipTransportName } from './types.js';

export interface SipResolverOptions extends NodeDnsLookupOptions, Omit<DnsCacheOptions, 'size'> {
  /**
   * Where queries go. Default: a `NodeDnsLookup` with `servers`, `timeout`, `tries`. Tests
   * inject a fake; either way the answers are cached by the resolver.
   */
  lookup?: DnsLookup;
  /** Most DNS answers cached (LRU). Default 1000. */
  cacheSize?: number;
  /**
   * Transports this client can send on, most preferred first (RFC 3263 §4.1: NAPTR and SRV
   * records for others are discarded). Default `['udp', 'tcp']`; add `'tls'` to follow
   * SIPS+D2T / _sips._tcp and to resolve sips: URIs.
   */
  transports?: readonly SipTransportName[];
  /** Address families to look up, in the order their addresses are tried. Default `[4, 6]`. */
  families?: readonly (4 | 6)[];
  /** [0, 1) source for RFC 2782 weighted selection. Default Math.random (seeded in tests). */
  random?: () => number;
}

const TRANSPORT_NAMES: ReadonlySet<string> = new Set(['udp', 'tcp', 'tls']);

/** RFC 3263 §4.1 NAPTR services → transport (SIP+D2S, SCTP, and anything else: none). */
function naptrTransport(service: string): { transport: SipTransportName; secure: boolean } | undefined {
  switch (service.toUpperCase()) {
    case 'SIP+D2U':
      return { transport: 'udp', secure: false };
    case 'SIP+D2T':
      return { transport: 'tcp', secure: false };
    case 'SIPS+D2T':
      return { transport: 'tls', secure: true };
    default:
      return undefined;
  }
}

/** RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS. */
export function defaultPort(transport: SipTransportName): number {
  return transport === 'tls' ? 5061 : 5060;
}

/** RFC 3263 §4.2: the SRV owner for a transport (`_sips._tcp` for TLS, SIP or SIPS URI alike). */
function srvName(transport: SipTransportName, domain: string): string {
  return (transport === 'tls' ? '_sips._tcp.' : transport === 'tcp' ? '_sip._tcp.' : '_sip._udp.') + domain;
}

/** Drop the root label's dot: `example.com.` and `example.com` are one name. */
function absolute(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function isNotFound(err: unknown): boolean {
  return err instanceof ResolverError && err.code === 'DNS_NOT_FOUND';
}

/**
 * RFC 3263 server location: a SIP or SIPS URI → the (transport, address, port) targets to
 * try in order (§4), and a response's Via → where to send it (§5). Answers are cached for
 * their TTL through the injected `Clock`; an IP-literal URI never touches DNS
 * (`literalTarget` answers it synchronously).
 */
export class SipResolver {
  /** The cache every query goes through (size, pending, clear()). */
  readonly cache: CachingDnsLookup;
  private readonly transports: readonly SipTransportName[];
  private readonly families: readonly (4 | 6)[];
  private readonly random: () => number;
  private readonly tls: boolean;
  /** §4.1's UDP for a SIP URI, or TCP when the client has no UDP. */
  private readonly sipDefault: SipTransportName;

  constructor(options: SipResolverOptions = {}) {
    const lookup = options.lookup ?? new NodeDnsLookup(options);
    this.cache = new CachingDnsLookup(lookup, { ...options, size: options.cacheSize ?? 1000 });
    this.transports = options.transports ?? ['udp', 'tcp'];
    this.families = options.families ?? [4, 6];
    this.random = options.random ?? Math.random;
    if (this.transports.length === 0 || this.transports.some((t) => !TRANSPORT_NAMES.has(t))) throw new ResolverError('BAD_OPTION', 'SipResolver transports must be a non-empty list of udp, tcp, tls');
    this.tls = this.transports.includes('tls');
    this.sipDefault = this.transports.includes('udp') ? 'udp' : this.transports.includes('tcp') ? 'tcp' : 'tls';
    if (this.families.length === 0 || this.families.some((f) => f !== 4 && f !== 6)) throw new ResolverError('BAD_OPTION', 'SipResolver families must be a non-empty list of 4, 6');
  }

  /**
   * The target of a URI whose host (or maddr) is an IP address, synchronously — no DNS, no
   * promise; undefined when it is a name (use `targets()`). Throws `NO_TRANSPORT` when the
   * URI asks for a transport this client does not have.
   */
  literalTarget(uri: SipUri): SipTarget | undefined {
    // maddr is rare: test for it before decoding it.
    const maddr = uri.params.size === 0 || !uri.params.has('maddr') ? undefined : uri.param('maddr');
    const host = maddr ?? uri.host;
    const family = hostFamily(host);
    if (family === 0) return undefined;
    const transport = this.transportOf(uri) ?? this.defaultTransport(uri.scheme);
    const hostname = maddr !== undefined && hostFamily(uri.host) === 0 ? uri.hostname : undefined;
    return { address: bareHost(host), port: uri.port ?? defaultPort(transport), transport, family, hostname, host: undefined };
  }

  /**
   * The targets of a SIP/SIPS URI in the order to try them (RFC 3263 §4), pulled one at a
   * time: NAPTR → SRV → A/AAAA for a bare host name, SRV for the fixed transport when the
   * URI names one (`transport=` or sips:), A/AAAA alone when it has a port.
   */
  targets(uri: SipUri | string): TargetList {
    let u: SipUri;
    let literal: SipTarget | undefined;
    try {
      u = toSipUri(uri);
      literal = this.literalTarget(u);
    } catch (err) {
      if (err instanceof ResolverError) return TargetList.failed(err);
      throw err;
    }
    if (literal !== undefined) return TargetList.of([literal]);
    const target = absolute(u.params.has('maddr') ? (u.param('maddr') ?? u.hostname) : u.hostname);
    return TargetList.resolving(this.source(u.hostname, () => this.uriHops(u, target)));
  }

  /** Every target of `uri` (all of `targets(uri)`), for callers that want the whole list. */
  async resolve(uri: SipUri | string): Promise<SipTarget[]> {
    const out: SipTarget[] = [];
    for await (const t of this.targets(uri)) out.push(t);
    return out;
  }

  /**
   * Where to send a response whose top Via is `via` (RFC 3263 §5, RFC 3261 §18.2.2,
   * RFC 3581): to `received` (at `rport` when filled in) when present, else to the sent-by:
   * its address when it is one, A/AAAA at its port when it has one, otherwise the SRV
   * records of `_sip._<transport>` (`_sips._tcp` for TLS) and, failing those, A/AAAA at the
   * default port. A reliable transport should first reuse the request's connection.
   */
  responseTargets(via: Via): TargetList {
    const transport = via.transport.toLowerCase();
    if (!TRANSPORT_NAMES.has(transport)) return TargetList.failed(new ResolverError('NO_TRANSPORT', `cannot send a response over ${via.transport}`));
    const t = transport as SipTransportName;
    const rport = via.rport;
    const received = via.received;
    const maddr = via.maddr;
    const host = maddr !== undefined ? bareHost(maddr) : received !== undefined ? bareHost(received) : bareHost(via.host);
    const port = received !== undefined && maddr === undefined && typeof rport === 'number' ? rport : via.port;
    const family = hostFamily(host);
    const hostname = hostFamily(bareHost(via.host)) === 0 ? absolute(bareHost(via.host)) : undefined;
    if (family !== 0) return TargetList.of([{ address: host, port: port ?? defaultPort(t), transport: t, family: family, hostname, host: undefined }]);
    const name = absolute(host);
    return TargetList.resolving(
      this.source(hostname, async () => {
        if (port !== undefined) return [{ host: name, port, transport: t }];
        const srv = await this.srvHops(t, name);
        return srv ?? [{ host: name, port: defaultPort(t), transport: t }];
      }),
    );
  }

  /** Cancel outstanding queries (they reject); the resolver can still be used afterwards. */
  cancel(): void {
    this.cache.cancel();
  }

  private source(hostname: string | undefined, hops: () => Promise<Hop[]>): TargetSource {
    return { hops, expand: (hop) => this.addresses(hop, hostname) };
  }

  /** RFC 3263 §4.1 (transport) and §4.2 (port, SRV) for a host name. */
  private async uriHops(uri: SipUri, target: string): Promise<Hop[]> {
    const fixed = this.transportOf(uri);
    if (uri.scheme === 'sips' && !this.tls) throw new ResolverError('NO_TRANSPORT', 'sips: URI needs tls, which this client does not use');
    if (uri.port !== undefined) return [{ host: target, port: uri.port, transport: fixed ?? this.defaultTransport(uri.scheme) }];
    if (fixed !== undefined) return (await this.srvHops(fixed, target)) ?? [{ host: target, port: defaultPort(fixed), transport: fixed }];

    const secure = uri.scheme === 'sips';
    let naptr: NaptrRecord[] = [];
    try {
      naptr = await this.cache.naptr(target);
    } catch (err) {
      // A server that does not answer NAPTR will not answer SRV either: stop here. Any
      // other failure (SERVFAIL from a server that does not know NAPTR) falls back to SRV.
      if (!isNotFound(err) && (err as ResolverError).code === 'DNS_TIMEOUT') throw err;
    }
    const services = naptr
      .filter((r) => r.flags.toLowerCase() === 's' && r.regexp === '' && r.replacement !== '' && r.replacement !== '.')
      .map((r) => ({ r, s: naptrTransport(r.service) }))
      // §4.1: a SIPS URI keeps only SIPS services; a SIP URI keeps SIPS ones if TLS is supported.
      .filter((x) => x.s !== undefined && (!secure || x.s.secure) && this.transports.includes(x.s.transport))
      .sort((x, y) => x.r.order - y.r.order || x.r.preference - y.r.preference);

    // The most preferred NAPTR's SRV targets first, the others' after them (more to fail over to).
    const owners: Array<{ transport: SipTransportName; name: string }> =
      services.length > 0
        ? services.map((x) => ({ transport: x.s!.transport, name: absolute(x.r.replacement) }))
        : // §4.1: no NAPTR: an SRV query per transport the client supports, in its preference.
          this.transports.filter((t) => !secure || t === 'tls').map((t) => ({ transport: t, name: srvName(t, target) }));
    const found = await Promise.all(owners.map((o) => this.srvHopsAt(o.transport, o.name)));
    const hops: Hop[] = [];
    let anySrv = false;
    for (const h of found) {
      if (h === undefined) continue;
      anySrv = true;
      hops.push(...h);
    }
    if (anySrv) return hops;
    // §4.2: no SRV records: A/AAAA at the default port; UDP for SIP, TLS (over TCP) for SIPS.
    const t = this.defaultTransport(uri.scheme);
    return [{ host: target, port: defaultPort(t), transport: t }];
  }

  private srvHops(transport: SipTransportName, domain: string): Promise<Hop[] | undefined> {
    return this.srvHopsAt(transport, srvName(transport, domain));
  }

  /** SRV records at `owner` as hops in RFC 2782 order; undefined when there are none (NXDOMAIN/NODATA, or a failure other than a timeout). */
  private async srvHopsAt(transport: SipTransportName, owner: string): Promise<Hop[] | undefined> {
    try {
      const records = await this.cache.srv(owner);
      return orderSrv(records, this.random).map((r) => ({ host: absolute(r.name), port: r.port, transport }));
    } catch (err) {
      if (err instanceof ResolverError && err.code === 'DNS_TIMEOUT') throw err;
      return undefined;
    }
  }

  /** A hop's addresses: A and AAAA asked at once, given in the configured family order. */
  private async addresses(hop: Hop, hostname: string | undefined): Promise<SipTarget[]> {
    const literal = hostFamily(hop.host);
    if (literal !== 0) return [{ address: hop.host, port: hop.port, transport: hop.transport, family: literal, hostname, host: undefined }];
    const answers = await Promise.allSettled(this.families.map((f) => (f === 4 ? this.cache.a(hop.host) : this.cache.aaaa(hop.host))));
    const out: SipTarget[] = [];
    let error: unknown;
    answers.forEach((answer, i) => {
      if (answer.status === 'rejected') {
        if (error === undefined || isNotFound(error)) error = answer.reason;
        return;
      }
      const family = this.families[i]!;
      for (const r of answer.value as AddressRecord[]) out.push({ address: r.address, port: hop.port, transport: hop.transport, family, hostname, host: hop.host });
    });
    if (out.length === 0) throw error;
    return out;
  }

  /**
   * The transport a URI's `transport=` parameter fixes (RFC 3263 §4.1). Under sips: it is
   * TLS whatever the parameter says (RFC 3261 §26.2.2: transport=tcp is TLS over TCP); a
   * sips: URI without one still goes through NAPTR, keeping only SIPS services.
   */
  private transportOf(uri: SipUri): SipTransportName | undefined {
    let t = uri.transport;
    if (t === undefined) return undefined;
    if (uri.scheme === 'sips') t = 'tls';
    if (t !== 'udp' && t !== 'tcp' && t !== 'tls') throw new ResolverError('NO_TRANSPORT', `${uri.scheme}: URI needs ${t}, which sipkit's resolver does not know`);
    if (!this.transports.includes(t)) throw new ResolverError('NO_TRANSPORT', `${uri.scheme}: URI needs ${t}, which this client does not use`);
    return t as SipTransportName;
  }

  /** §4.1: without a fixed transport, UDP for SIP (TCP if UDP is not used), TLS for SIPS. */
  private defaultTransport(scheme: 'sip' | 'sips'): SipTransportName {
    if (scheme === 'sips') {
      if (!this.tls) throw new ResolverError('NO_TRANSPORT', 'sips: URI needs tls, which this client does not use');
      return 'tls';
    }
    return this.sipDefault;
  }
}

function toSipUri(uri: SipUri | string): SipUri {
  if (typeof uri !== 'string') return uri;
  const u = parseUri(uri);
  if (!(u instanceof SipUri)) throw new SipParseError('BAD_URI', `not a sip: or sips: URI: ${uri.slice(0, 64)}`);
  return u;
}
