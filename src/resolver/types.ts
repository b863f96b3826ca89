/** A transport the resolver can choose (RFC 3263 §4.1: SIP+D2U, SIP+D2T, SIPS+D2T). */
export type SipTransportName = 'udp' | 'tcp' | 'tls';

/**
 * One place to send a request (or a response): the result of RFC 3263 server location.
 * `address` is a bare IP (no IPv6 brackets), ready for a socket.
 */
export interface SipTarget {
  address: string;
  port: number;
  transport: SipTransportName;
  family: 4 | 6;
  /**
   * The domain of the URI that was resolved (its maddr, or its host), when it is a name:
   * what a TLS client sends as SNI and checks the server's certificate against (RFC 5922 §4:
   * the SIP domain, not the SRV target). Undefined for an IP-literal URI.
   */
  hostname: string | undefined;
  /** The name whose A/AAAA record gave `address`: an SRV target, or `hostname` itself. */
  host: string | undefined;
}

/** An SRV record (RFC 2782). `ttl` in seconds when the lookup knows it. */
export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
  ttl?: number;
}

/** A NAPTR record (RFC 3403). `ttl` in seconds when the lookup knows it. */
export interface NaptrRecord {
  order: number;
  preference: number;
  flags: string;
  service: string;
  regexp: string;
  replacement: string;
  ttl?: number;
}

/** An A or AAAA record: the address and its TTL in seconds. */
export interface AddressRecord {
  address: string;
  ttl: number;
}

/**
 * The DNS queries the resolver needs, small enough for a test to fake. Each resolves with
 * the records (never an empty array: no records is a rejection) or rejects with a
 * `ResolverError`: `DNS_NOT_FOUND` for NXDOMAIN or NODATA, `DNS_TIMEOUT`, `DNS_FAILED`.
 */
export interface DnsLookup {
  naptr(name: string): Promise<NaptrRecord[]>;
  srv(name: string): Promise<SrvRecord[]>;
  a(name: string): Promise<AddressRecord[]>;
  aaaa(name: string): Promise<AddressRecord[]>;
  /** Stop outstanding queries (they reject); optional. */
  cancel?(): void;
}
