// Public face of sipkit/resolver: RFC 3263 server location — a SIP URI to the ordered
// (transport, address, port) targets to try, a response's Via to where it goes — over
// node:dns or an injected lookup, with a TTL cache on the injectable Clock.
export { SipResolver, defaultPort, type SipResolverOptions } from './resolver.js';
export { TargetList } from './target-list.js';
export { CachingDnsLookup, type DnsCacheOptions } from './cache.js';
export { NodeDnsLookup, type NodeDnsLookupOptions } from './node-dns.js';
export { orderSrv } from './srv.js';
export { hostFamily } from './literal.js';
export { ResolverError, type ResolverErrorCode, type DnsRecordType } from './errors.js';
export type { SipTarget, SipTransportName, SrvRecord, NaptrRecord, AddressRecord, DnsLookup } from './types.js';
