import { Resolver } from 'node:dns/promises';
import { ResolverError, type DnsRecordType } from './errors.js';
import type { AddressRecord, DnsLookup, NaptrRecord, SrvRecord } from './types.js';

export interface NodeDnsLookupOptions {
  /**
   * DNS servers, as `dns.setServers` takes them: `'127.0.0.1'`, `'127.0.0.1:5353'`,
   * `'[::1]:5353'`. Default: the system's (/etc/resolv.conf).
   */
  servers?: readonly string[];
  /** Milliseconds to wait for the first try's answer; c-ares doubles it on each retry. Default 2000. */
  timeout?: number;
  /** Tries per server before giving up. Default 2. */
  tries?: number;
}

/** c-ares error codes (node:dns) → the resolver's. NXDOMAIN and NODATA are both "not found". */
function mapError(err: unknown, name: string, rrtype: DnsRecordType): ResolverError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOTFOUND' || code === 'ENODATA') return new ResolverError('DNS_NOT_FOUND', `${rrtype} ${name}: not found`, name, rrtype, err);
  if (code === 'ETIMEOUT') return new ResolverError('DNS_TIMEOUT', `${rrtype} ${name}: no answer from the DNS server in time`, name, rrtype, err);
  return new ResolverError('DNS_FAILED', `${rrtype} ${name}: ${typeof code === 'string' ? code : 'lookup failed'}`, name, rrtype, err);
}

function notEmpty<T>(records: T[], name: string, rrtype: DnsRecordType): T[] {
  if (records.length === 0) throw new ResolverError('DNS_NOT_FOUND', `${rrtype} ${name}: no records`, name, rrtype);
  return records;
}

/**
 * `DnsLookup` over node:dns (c-ares): its own Resolver, so the servers, timeout and tries
 * set here touch nothing else in the process. c-ares retries, falls back to TCP on a
 * truncated answer and rotates servers; what it does not give is the TTL of SRV and NAPTR
 * records (only `resolve4/6` have `{ ttl: true }`), so those carry none and the cache
 * applies its configured TTL to them.
 */
export class NodeDnsLookup implements DnsLookup {
  private readonly resolver: Resolver;

  constructor(options: NodeDnsLookupOptions = {}) {
    const timeout = options.timeout ?? 2000;
    const tries = options.tries ?? 2;
    if (!(Number.isInteger(timeout) && timeout > 0)) throw new ResolverError('BAD_OPTION', 'NodeDnsLookup timeout must be a positive integer (ms)');
    if (!(Number.isInteger(tries) && tries >= 1)) throw new ResolverError('BAD_OPTION', 'NodeDnsLookup tries must be an integer ≥ 1');
    this.resolver = new Resolver({ timeout, tries });
    if (options.servers !== undefined) this.resolver.setServers([...options.servers]);
  }

  async naptr(name: string): Promise<NaptrRecord[]> {
    try {
      return notEmpty(await this.resolver.resolveNaptr(name), name, 'NAPTR');
    } catch (err) {
      throw err instanceof ResolverError ? err : mapError(err, name, 'NAPTR');
    }
  }

  async srv(name: string): Promise<SrvRecord[]> {
    try {
      return notEmpty(await this.resolver.resolveSrv(name), name, 'SRV');
    } catch (err) {
      throw err instanceof ResolverError ? err : mapError(err, name, 'SRV');
    }
  }

  async a(name: string): Promise<AddressRecord[]> {
    try {
      return notEmpty(await this.resolver.resolve4(name, { ttl: true }), name, 'A');
    } catch (err) {
      throw err instanceof ResolverError ? err : mapError(err, name, 'A');
    }
  }

  async aaaa(name: string): Promise<AddressRecord[]> {
    try {
      return notEmpty(await this.resolver.resolve6(name, { ttl: true }), name, 'AAAA');
    } catch (err) {
      throw err instanceof ResolverError ? err : mapError(err, name, 'AAAA');
    }
  }

  cancel(): void {
    this.resolver.cancel();
  }
}
