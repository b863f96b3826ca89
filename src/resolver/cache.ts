import { RealClock, type Clock } from '../transport/index.js';
import { LruMap } from '../util/lru.js';
import { ResolverError, type DnsRecordType } from './errors.js';
import type { AddressRecord, DnsLookup, NaptrRecord, SrvRecord } from './types.js';

export interface DnsCacheOptions {
  /** Time source for expiry (FakeClock in tests). Default: RealClock. */
  clock?: Clock;
  /** Most answers kept (positive and negative); the least recently used goes first. Default 1000. */
  size?: number;
  /** Floor on any record TTL, seconds. Default 0 (a TTL-0 answer is used once, not cached). */
  minTtl?: number;
  /** Ceiling on any record TTL, seconds. Default 3600. */
  maxTtl?: number;
  /**
   * TTL, seconds, for records whose lookup gives none — SRV and NAPTR through node:dns.
   * Default 60: DNS changes to a SIP service's SRV/NAPTR reach this cache within a minute.
   */
  defaultTtl?: number;
  /** How long, seconds, NXDOMAIN/NODATA is remembered (RFC 2308 negative caching). Default 30. */
  negativeTtl?: number;
  /** Most distinct queries outstanding at once; beyond it a lookup fails at once with DNS_FAILED. Default 256. */
  maxPending?: number;
}

interface Entry {
  /** Clock time (ms) from which the entry is stale. */
  expires: number;
  records: readonly unknown[] | undefined;
  error: ResolverError | undefined;
}

function seconds(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!(v >= 0 && Number.isFinite(v))) throw new ResolverError('BAD_OPTION', `DnsCache ${what} must be a finite number ≥ 0`);
  return v;
}

/**
 * A `DnsLookup` that remembers answers for their TTL (clamped to [minTtl, maxTtl]) and
 * NXDOMAIN/NODATA for `negativeTtl`, in a bounded LRU, and makes concurrent lookups of the
 * same name and type share one query. Timeouts and other failures are not cached: the next
 * lookup asks again. Names are case-insensitive (RFC 4343), so keys are lower-cased.
 */
export class CachingDnsLookup implements DnsLookup {
  private readonly clock: Clock;
  private readonly entries: LruMap<string, Entry>;
  private readonly inFlight = new Map<string, Promise<readonly unknown[]>>();
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly defaultTtl: number;
  private readonly negativeTtl: number;
  private readonly maxPending: number;

  constructor(
    private readonly lookup: DnsLookup,
    options: DnsCacheOptions = {},
  ) {
    this.clock = options.clock ?? new RealClock();
    this.entries = new LruMap(options.size ?? 1000);
    this.minTtl = seconds(options.minTtl, 0, 'minTtl');
    this.maxTtl = seconds(options.maxTtl, 3600, 'maxTtl');
    this.defaultTtl = seconds(options.defaultTtl, 60, 'defaultTtl');
    this.negativeTtl = seconds(options.negativeTtl, 30, 'negativeTtl');
    this.maxPending = options.maxPending ?? 256;
    if (this.minTtl > this.maxTtl) throw new ResolverError('BAD_OPTION', 'DnsCache minTtl must not exceed maxTtl');
    if (!(this.maxPending >= 1)) throw new ResolverError('BAD_OPTION', 'DnsCache maxPending must be at least 1');
  }

  /** Answers held (fresh or not yet evicted). */
  get size(): number {
    return this.entries.size;
  }

  /** Distinct queries outstanding. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Forget every answer (queries in flight still complete and are cached). */
  clear(): void {
    this.entries.clear();
  }

  naptr(name: string): Promise<NaptrRecord[]> {
    return this.get('NAPTR', name, (n) => this.lookup.naptr(n)) as Promise<NaptrRecord[]>;
  }

  srv(name: string): Promise<SrvRecord[]> {
    return this.get('SRV', name, (n) => this.lookup.srv(n)) as Promise<SrvRecord[]>;
  }

  a(name: string): Promise<AddressRecord[]> {
    return this.get('A', name, (n) => this.lookup.a(n)) as Promise<AddressRecord[]>;
  }

  aaaa(name: string): Promise<AddressRecord[]> {
    return this.get('AAAA', name, (n) => this.lookup.aaaa(n)) as Promise<AddressRecord[]>;
  }

  cancel(): void {
    this.lookup.cancel?.();
  }

  private async get(rrtype: DnsRecordType, name: string, query: (name: string) => Promise<readonly unknown[]>): Promise<unknown[]> {
    const key = rrtype + ' ' + name.toLowerCase();
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      if (this.clock.now() < cached.expires) {
        if (cached.error !== undefined) throw cached.error;
        return cached.records!.slice();
      }
      this.entries.delete(key);
    }
    let shared = this.inFlight.get(key);
    if (shared === undefined) {
      if (this.inFlight.size >= this.maxPending) throw new ResolverError('DNS_FAILED', `${rrtype} ${name}: too many DNS lookups outstanding`, name, rrtype);
      shared = this.query(key, rrtype, name, query);
      this.inFlight.set(key, shared);
    }
    // Every caller gets its own copy: the resolver sorts and shuffles what it is given.
    return (await shared).slice();
  }

  private async query(key: string, rrtype: DnsRecordType, name: string, query: (name: string) => Promise<readonly unknown[]>): Promise<readonly unknown[]> {
    try {
      const records = await query(name);
      if (records.length === 0) throw new ResolverError('DNS_NOT_FOUND', `${rrtype} ${name}: no records`, name, rrtype);
      this.store(key, { expires: this.clock.now() + this.ttlOf(records) * 1000, records, error: undefined });
      return records;
    } catch (err) {
      const error = err instanceof ResolverError ? err : new ResolverError('DNS_FAILED', `${rrtype} ${name}: lookup failed`, name, rrtype, err);
      if (error.code === 'DNS_NOT_FOUND') this.store(key, { expires: this.clock.now() + this.negativeTtl * 1000, records: undefined, error });
      throw error;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /** The shortest TTL of an RRset governs it (RFC 2181 §5.2 says they are equal; be safe). */
  private ttlOf(records: readonly unknown[]): number {
    let ttl = Infinity;
    for (const r of records) {
      const t = (r as { ttl?: unknown }).ttl;
      if (typeof t === 'number' && t >= 0 && t < ttl) ttl = t;
    }
    if (ttl === Infinity) ttl = this.defaultTtl;
    return Math.min(this.maxTtl, Math.max(this.minTtl, ttl));
  }

  private store(key: string, entry: Entry): void {
    if (entry.expires > this.clock.now()) this.entries.set(key, entry);
  }
}
