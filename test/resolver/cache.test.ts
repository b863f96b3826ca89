import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/transport/index.js';
import { CachingDnsLookup, ResolverError, SipResolver } from '../../src/resolver/index.js';
import { FakeDns, addr, srv } from './fake-dns.js';

function setup(options: ConstructorParameters<typeof CachingDnsLookup>[1] = {}) {
  const dns = new FakeDns();
  const clock = new FakeClock(1_000_000);
  const cache = new CachingDnsLookup(dns, { clock, ...options });
  return { dns, clock, cache };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ResolverError);
    return (err as ResolverError).code;
  }
  return 'resolved';
}

describe('CachingDnsLookup: TTLs on the injected clock', () => {
  it('an A answer is reused until its TTL runs out, then asked again', async () => {
    const { dns, clock, cache } = setup();
    dns.zone.A.set('h.test', [addr('192.0.2.1', 10)]);
    await cache.a('h.test');
    clock.advance(9_999);
    expect(await cache.a('H.TEST')).toEqual([addr('192.0.2.1', 10)]);
    expect(dns.count('A')).toBe(1);
    clock.advance(1);
    await cache.a('h.test');
    expect(dns.count('A')).toBe(2);
  });

  it('the shortest TTL of the set governs; minTtl and maxTtl clamp it; TTL 0 is not cached', async () => {
    const { dns, clock, cache } = setup({ minTtl: 5, maxTtl: 60 });
    dns.zone.A.set('short.test', [addr('192.0.2.1', 300), addr('192.0.2.2', 1)]);
    dns.zone.A.set('long.test', [addr('192.0.2.3', 86_400)]);
    await cache.a('short.test');
    await cache.a('long.test');
    clock.advance(4_999);
    await cache.a('short.test');
    expect(dns.count('A', 'short.test')).toBe(1);
    clock.advance(1);
    await cache.a('short.test');
    expect(dns.count('A', 'short.test')).toBe(2);
    clock.advance(55_000);
    await cache.a('long.test');
    expect(dns.count('A', 'long.test')).toBe(2);

    const zero = setup();
    zero.dns.zone.A.set('zero.test', [addr('192.0.2.4', 0)]);
    await zero.cache.a('zero.test');
    await zero.cache.a('zero.test');
    expect(zero.dns.count('A')).toBe(2);
  });

  it('records without a TTL (SRV, NAPTR from node:dns) are kept for defaultTtl', async () => {
    const { dns, clock, cache } = setup({ defaultTtl: 20 });
    dns.zone.SRV.set('_sip._udp.x.test', [srv('h.x.test', 5060)]);
    await cache.srv('_sip._udp.x.test');
    clock.advance(19_999);
    await cache.srv('_sip._udp.x.test');
    expect(dns.count('SRV')).toBe(1);
    clock.advance(1);
    await cache.srv('_sip._udp.x.test');
    expect(dns.count('SRV')).toBe(2);
  });

  it('NXDOMAIN/NODATA is remembered for negativeTtl; timeouts and failures are not', async () => {
    const { dns, clock, cache } = setup({ negativeTtl: 30 });
    expect(await code(cache.a('nx.test'))).toBe('DNS_NOT_FOUND');
    clock.advance(29_999);
    dns.zone.A.set('nx.test', [addr('192.0.2.5')]);
    expect(await code(cache.a('nx.test'))).toBe('DNS_NOT_FOUND');
    expect(dns.count('A')).toBe(1);
    clock.advance(1);
    expect(await code(cache.a('nx.test'))).toBe('resolved');

    dns.zone.A.set('slow.test', 'TIMEOUT');
    dns.zone.A.set('broken.test', 'SERVFAIL');
    expect(await code(cache.a('slow.test'))).toBe('DNS_TIMEOUT');
    expect(await code(cache.a('slow.test'))).toBe('DNS_TIMEOUT');
    expect(await code(cache.a('broken.test'))).toBe('DNS_FAILED');
    expect(await code(cache.a('broken.test'))).toBe('DNS_FAILED');
    expect(dns.count('A', 'slow.test')).toBe(2);
    expect(dns.count('A', 'broken.test')).toBe(2);
  });
});

describe('CachingDnsLookup: bounded and shared', () => {
  it('concurrent lookups of one name share one query, and each gets its own copy', async () => {
    const { dns, cache } = setup();
    dns.zone.A.set('h.test', [addr('192.0.2.1'), addr('192.0.2.2')]);
    dns.hold();
    const both = Promise.all([cache.a('h.test'), cache.a('h.test'), cache.a('H.test')]);
    expect(cache.pending).toBe(1);
    dns.release();
    const [x, y] = await both;
    expect(dns.count('A')).toBe(1);
    expect(x).toEqual(y);
    x!.reverse();
    expect(y![0]!.address).toBe('192.0.2.1');
    expect(cache.pending).toBe(0);
  });

  it('resolving one URI twice at once queries each name once', async () => {
    const dns = new FakeDns();
    const resolver = new SipResolver({ lookup: dns, clock: new FakeClock(), transports: ['udp'] });
    dns.zone.SRV.set('_sip._udp.s.test', [srv('h.s.test', 5060)]);
    dns.zone.A.set('h.s.test', [addr('192.0.2.1')]);
    dns.hold();
    const both = Promise.all([resolver.resolve('sip:s.test'), resolver.resolve('sip:s.test')]);
    for (let i = 0; i < 20 && dns.queries.length < 3; i++) {
      dns.release();
      dns.hold();
      await new Promise((r) => setImmediate(r));
    }
    dns.release();
    await both;
    expect(dns.queries.sort()).toEqual(['A h.s.test', 'AAAA h.s.test', 'NAPTR s.test', 'SRV _sip._udp.s.test']);
  });

  it('holds at most `size` answers, dropping the least recently used', async () => {
    const { dns, cache } = setup({ size: 2 });
    for (const n of ['a', 'b', 'c']) dns.zone.A.set(`${n}.test`, [addr('192.0.2.1')]);
    await cache.a('a.test');
    await cache.a('b.test');
    await cache.a('a.test');
    await cache.a('c.test');
    expect(cache.size).toBe(2);
    await cache.a('a.test');
    expect(dns.count('A', 'a.test')).toBe(1);
    await cache.a('b.test');
    expect(dns.count('A', 'b.test')).toBe(2);
  });

  it('at most maxPending distinct queries at once: beyond, DNS_FAILED without a query', async () => {
    const { dns, cache } = setup({ maxPending: 2 });
    dns.hold();
    const held = [cache.a('a.test'), cache.a('b.test')];
    expect(await code(cache.a('c.test'))).toBe('DNS_FAILED');
    expect(dns.queries).toEqual(['A a.test', 'A b.test']);
    dns.release();
    await Promise.allSettled(held);
    expect(await code(cache.a('c.test'))).toBe('DNS_NOT_FOUND');
  });

  it('options out of range are BAD_OPTION', () => {
    expect(() => new CachingDnsLookup(new FakeDns(), { minTtl: 10, maxTtl: 5 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new CachingDnsLookup(new FakeDns(), { negativeTtl: -1 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new SipResolver({ lookup: new FakeDns(), transports: [] })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});
