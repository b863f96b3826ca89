import { ResolverError, type DnsRecordType } from '../../src/resolver/errors.js';
import type { AddressRecord, DnsLookup, NaptrRecord, SrvRecord } from '../../src/resolver/types.js';

type Answer<T> = T[] | 'NXDOMAIN' | 'TIMEOUT' | 'SERVFAIL';

/**
 * An in-memory DNS for the resolver's unit tests: a zone per record type, every query
 * logged, and a gate that holds answers back until released (for in-flight sharing).
 */
export class FakeDns implements DnsLookup {
  readonly zone = {
    NAPTR: new Map<string, Answer<NaptrRecord>>(),
    SRV: new Map<string, Answer<SrvRecord>>(),
    A: new Map<string, Answer<AddressRecord>>(),
    AAAA: new Map<string, Answer<AddressRecord>>(),
  };
  readonly queries: string[] = [];
  private held: Array<() => void> | undefined;

  naptr(name: string): Promise<NaptrRecord[]> {
    return this.answer('NAPTR', name);
  }
  srv(name: string): Promise<SrvRecord[]> {
    return this.answer('SRV', name);
  }
  a(name: string): Promise<AddressRecord[]> {
    return this.answer('A', name);
  }
  aaaa(name: string): Promise<AddressRecord[]> {
    return this.answer('AAAA', name);
  }

  /** Hold every answer until `release()`. */
  hold(): void {
    this.held = [];
  }
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }

  count(rrtype: DnsRecordType, name?: string): number {
    return this.queries.filter((q) => q.startsWith(rrtype + ' ') && (name === undefined || q === rrtype + ' ' + name)).length;
  }

  private async answer<T>(rrtype: DnsRecordType, name: string): Promise<T[]> {
    this.queries.push(rrtype + ' ' + name);
    if (this.held) await new Promise<void>((go) => this.held!.push(go));
    const a = (this.zone[rrtype] as Map<string, Answer<T>>).get(name);
    if (a === 'TIMEOUT') throw new ResolverError('DNS_TIMEOUT', `${rrtype} ${name}: timeout`, name, rrtype);
    if (a === 'SERVFAIL') throw new ResolverError('DNS_FAILED', `${rrtype} ${name}: SERVFAIL`, name, rrtype);
    if (a === undefined || a === 'NXDOMAIN' || a.length === 0) throw new ResolverError('DNS_NOT_FOUND', `${rrtype} ${name}: not found`, name, rrtype);
    return a.map((r) => ({ ...r }));
  }
}

export const naptr = (order: number, preference: number, service: string, replacement: string, flags = 's'): NaptrRecord => ({ order, preference, flags, service, regexp: '', replacement });
export const srv = (name: string, port: number, priority = 10, weight = 0): SrvRecord => ({ name, port, priority, weight });
export const addr = (address: string, ttl = 300): AddressRecord => ({ address, ttl });
