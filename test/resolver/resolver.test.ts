import { describe, expect, it } from 'vitest';
import { parseUri, parseVia, type SipUri } from '../../src/parser/index.js';
import { FakeClock, seededRandom } from '../../src/transport/index.js';
import { ResolverError, SipResolver, type SipResolverOptions, type SipTarget } from '../../src/resolver/index.js';
import { FakeDns, addr, naptr, srv } from './fake-dns.js';

const brief = (t: SipTarget) => `${t.transport} ${t.address}:${t.port}`;
const uri = (s: string) => parseUri(s) as SipUri;

function setup(options: SipResolverOptions = {}) {
  const dns = new FakeDns();
  const clock = new FakeClock(1_000_000);
  const resolver = new SipResolver({ lookup: dns, clock, random: seededRandom(1), ...options });
  return { dns, clock, resolver };
}

async function rejection(p: Promise<unknown>): Promise<ResolverError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ResolverError);
    return err as ResolverError;
  }
  throw new Error('expected a rejection');
}

/** A domain with the three NAPTRs of RFC 3263 §4.1's example, SRVs and addresses behind them. */
function example(dns: FakeDns): void {
  dns.zone.NAPTR.set('example.com', [
    naptr(100, 50, 'SIP+D2U', '_sip._udp.example.com'),
    naptr(50, 50, 'SIPS+D2T', '_sips._tcp.example.com.'),
    naptr(90, 50, 'SIP+D2T', '_sip._tcp.example.com'),
    naptr(10, 10, 'SIP+D2S', '_sip._sctp.example.com'),
  ]);
  dns.zone.SRV.set('_sip._udp.example.com', [srv('udp.example.com', 5060)]);
  dns.zone.SRV.set('_sip._tcp.example.com', [srv('tcp.example.com', 5062)]);
  dns.zone.SRV.set('_sips._tcp.example.com', [srv('tls.example.com', 5061)]);
  dns.zone.SRV.set('_sip._sctp.example.com', [srv('sctp.example.com', 5060)]);
  dns.zone.A.set('udp.example.com', [addr('192.0.2.1')]);
  dns.zone.A.set('tcp.example.com', [addr('192.0.2.2')]);
  dns.zone.A.set('tls.example.com', [addr('192.0.2.3')]);
  dns.zone.A.set('sctp.example.com', [addr('192.0.2.4')]);
}

describe('SipResolver: IP literals (RFC 3263 §4.1, §4.2) never touch DNS', () => {
  it('literalTarget answers synchronously: address, default or given port, UDP for sip:, TLS for sips:', () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    expect(resolver.literalTarget(uri('sip:bob@192.0.2.7'))).toEqual({ address: '192.0.2.7', port: 5060, transport: 'udp', family: 4, hostname: undefined, host: undefined });
    expect(resolver.literalTarget(uri('sip:bob@[2001:db8::1]:5070'))).toMatchObject({ address: '2001:db8::1', port: 5070, transport: 'udp', family: 6 });
    expect(resolver.literalTarget(uri('sips:bob@192.0.2.7'))).toMatchObject({ port: 5061, transport: 'tls' });
    expect(resolver.literalTarget(uri('sip:bob@192.0.2.7;transport=TCP'))).toMatchObject({ port: 5060, transport: 'tcp' });
    // maddr overrides the host (RFC 3263 §4); the host name stays the TLS identity.
    expect(resolver.literalTarget(uri('sip:bob@example.com;maddr=192.0.2.9'))).toMatchObject({ address: '192.0.2.9', hostname: 'example.com' });
    expect(resolver.literalTarget(uri('sip:bob@example.com'))).toBeUndefined();
    expect(dns.queries).toEqual([]);
  });

  it('targets() of an IP literal gives that one target, then nothing, without a query', async () => {
    const { dns, resolver } = setup();
    const list = resolver.targets('sip:bob@192.0.2.7:5080');
    expect(brief((await list.next())!)).toBe('udp 192.0.2.7:5080');
    expect(await list.next()).toBeUndefined();
    expect(dns.queries).toEqual([]);
  });

  it('a transport the client does not use is NO_TRANSPORT: sips: without tls, transport=sctp', async () => {
    const { resolver } = setup({ transports: ['udp', 'tcp'] });
    expect(() => resolver.literalTarget(uri('sips:bob@192.0.2.7'))).toThrow(expect.objectContaining({ code: 'NO_TRANSPORT' }));
    expect(() => resolver.literalTarget(uri('sip:bob@192.0.2.7;transport=sctp'))).toThrow(expect.objectContaining({ code: 'NO_TRANSPORT' }));
    expect((await rejection(resolver.targets('sips:bob@example.com').next())).code).toBe('NO_TRANSPORT');
  });

  it('a string that is not a sip:/sips: URI is a SipParseError', () => {
    const { resolver } = setup();
    expect(() => resolver.targets('tel:+15551234567')).toThrow(expect.objectContaining({ code: 'BAD_URI' }));
  });
});

describe('SipResolver: NAPTR (RFC 3263 §4.1)', () => {
  it('follows NAPTR records in order, then preference; ignores SIP+D2S and transports not supported', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp'] });
    example(dns);
    expect((await resolver.resolve('sip:bob@example.com')).map(brief)).toEqual(['tcp 192.0.2.2:5062', 'udp 192.0.2.1:5060']);
    expect(dns.count('SRV', '_sips._tcp.example.com')).toBe(0);
    expect(dns.count('SRV', '_sip._sctp.example.com')).toBe(0);
  });

  it('a SIP URI keeps SIPS+D2T when the client supports TLS: TLS first, as the server prefers', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    example(dns);
    const targets = await resolver.resolve('sip:bob@example.com');
    expect(targets.map(brief)).toEqual(['tls 192.0.2.3:5061', 'tcp 192.0.2.2:5062', 'udp 192.0.2.1:5060']);
    expect(targets[0]).toMatchObject({ hostname: 'example.com', host: 'tls.example.com', family: 4 });
  });

  it('preference orders records of equal order', async () => {
    const { dns, resolver } = setup();
    dns.zone.NAPTR.set('pref.test', [naptr(10, 20, 'SIP+D2U', '_sip._udp.pref.test'), naptr(10, 5, 'SIP+D2T', '_sip._tcp.pref.test')]);
    dns.zone.SRV.set('_sip._udp.pref.test', [srv('h.pref.test', 5060)]);
    dns.zone.SRV.set('_sip._tcp.pref.test', [srv('h.pref.test', 5060)]);
    dns.zone.A.set('h.pref.test', [addr('192.0.2.5')]);
    expect((await resolver.resolve('sip:pref.test')).map(brief)).toEqual(['tcp 192.0.2.5:5060', 'udp 192.0.2.5:5060']);
  });

  it('a sips: URI uses SIPS+D2T only, so its targets are all TLS', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    example(dns);
    expect((await resolver.resolve('sips:bob@example.com')).map(brief)).toEqual(['tls 192.0.2.3:5061']);
    expect(dns.count('NAPTR', 'example.com')).toBe(1);
    expect(dns.count('SRV', '_sip._udp.example.com') + dns.count('SRV', '_sip._tcp.example.com')).toBe(0);
    // transport=tcp under sips: is TLS over TCP: _sips._tcp, no NAPTR.
    expect((await resolver.resolve('sips:bob@example.com;transport=tcp')).map(brief)).toEqual(['tls 192.0.2.3:5061']);
    expect(dns.count('NAPTR', 'example.com')).toBe(1);
  });

  it('a SIPS NAPTR may point at any SRV owner; the targets are TLS with the URI domain as identity', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    dns.zone.NAPTR.set('example.org', [naptr(10, 10, 'SIP+D2U', '_sip._udp.example.org'), naptr(20, 10, 'SIPS+D2T', '_sips._tcp.proxy.example.net')]);
    dns.zone.SRV.set('_sip._udp.example.org', [srv('udp.example.org', 5060)]);
    dns.zone.SRV.set('_sips._tcp.proxy.example.net', [srv('edge.example.net', 5071)]);
    dns.zone.A.set('edge.example.net', [addr('192.0.2.8')]);
    dns.zone.A.set('udp.example.org', [addr('192.0.2.9')]);
    const targets = await resolver.resolve('sips:bob@example.org');
    expect(targets.map(brief)).toEqual(['tls 192.0.2.8:5071']);
    expect(targets[0]).toMatchObject({ hostname: 'example.org', host: 'edge.example.net' });
    expect(dns.count('SRV', '_sip._udp.example.org')).toBe(0);
  });

  it('NAPTR records with other flags, a regexp or no replacement are not used', async () => {
    const { dns, resolver } = setup();
    dns.zone.NAPTR.set('odd.test', [naptr(1, 1, 'SIP+D2U', '_sip._udp.odd.test', 'a'), { ...naptr(1, 1, 'SIP+D2U', ''), regexp: '!^.*$!sip:x@y!' }, naptr(1, 1, 'SIP+D2U', '.')]);
    dns.zone.A.set('odd.test', [addr('192.0.2.6')]);
    expect((await resolver.resolve('sip:odd.test')).map(brief)).toEqual(['udp 192.0.2.6:5060']);
  });
});

describe('SipResolver: SRV without NAPTR, A/AAAA without SRV (RFC 3263 §4.1, §4.2)', () => {
  it('no NAPTR: an SRV query per supported transport, their targets in the client’s preference', async () => {
    const { dns, resolver } = setup({ transports: ['tcp', 'udp', 'tls'] });
    dns.zone.SRV.set('_sip._udp.srv.test', [srv('a.srv.test', 5070)]);
    dns.zone.SRV.set('_sip._tcp.srv.test', [srv('a.srv.test', 5080)]);
    dns.zone.A.set('a.srv.test', [addr('192.0.2.10')]);
    expect((await resolver.resolve('sip:srv.test')).map(brief)).toEqual(['tcp 192.0.2.10:5080', 'udp 192.0.2.10:5070']);
    expect(dns.count('SRV', '_sips._tcp.srv.test')).toBe(1);
  });

  it('a sips: URI without NAPTR asks only _sips._tcp, then A at 5061 over TLS', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    dns.zone.A.set('secure.test', [addr('192.0.2.11')]);
    expect((await resolver.resolve('sips:secure.test')).map(brief)).toEqual(['tls 192.0.2.11:5061']);
    expect(dns.queries.filter((q) => q.startsWith('SRV'))).toEqual(['SRV _sips._tcp.secure.test']);
  });

  it('no SRV: A then AAAA records at 5060 over UDP, each address a target', async () => {
    const { dns, resolver } = setup();
    dns.zone.A.set('plain.test', [addr('192.0.2.20'), addr('192.0.2.21')]);
    dns.zone.AAAA.set('plain.test', [addr('2001:db8::20')]);
    const targets = await resolver.resolve('sip:plain.test');
    expect(targets.map(brief)).toEqual(['udp 192.0.2.20:5060', 'udp 192.0.2.21:5060', 'udp 2001:db8::20:5060']);
    expect(targets.map((t) => t.family)).toEqual([4, 4, 6]);
  });

  it('families order and restrict the address lookups', async () => {
    const { dns, resolver } = setup({ families: [6] });
    dns.zone.A.set('plain.test', [addr('192.0.2.20')]);
    dns.zone.AAAA.set('plain.test', [addr('2001:db8::20')]);
    expect((await resolver.resolve('sip:plain.test')).map(brief)).toEqual(['udp 2001:db8::20:5060']);
    expect(dns.count('A')).toBe(0);
  });

  it('an explicit port: A/AAAA only, no NAPTR or SRV', async () => {
    const { dns, resolver } = setup();
    example(dns);
    dns.zone.A.set('example.com', [addr('192.0.2.30')]);
    expect((await resolver.resolve('sip:bob@example.com:5090')).map(brief)).toEqual(['udp 192.0.2.30:5090']);
    expect(dns.count('NAPTR') + dns.count('SRV')).toBe(0);
  });

  it('transport= fixes the transport: SRV for it alone, no NAPTR; A at its default port without SRV', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    example(dns);
    expect((await resolver.resolve('sip:bob@example.com;transport=tcp')).map(brief)).toEqual(['tcp 192.0.2.2:5062']);
    expect(dns.count('NAPTR')).toBe(0);
    expect(dns.queries.filter((q) => q.startsWith('SRV'))).toEqual(['SRV _sip._tcp.example.com']);
    dns.zone.A.set('nosrv.test', [addr('192.0.2.31')]);
    expect((await resolver.resolve('sip:nosrv.test;transport=tls')).map(brief)).toEqual(['tls 192.0.2.31:5061']);
    expect(dns.count('SRV', '_sips._tcp.nosrv.test')).toBe(1);
  });

  it('SRV target "." means the service is not offered: no target from it, and no A fallback', async () => {
    const { dns, resolver } = setup({ transports: ['udp'] });
    dns.zone.SRV.set('_sip._udp.none.test', [srv('.', 0)]);
    dns.zone.A.set('none.test', [addr('192.0.2.40')]);
    expect((await rejection(resolver.resolve('sip:none.test'))).code).toBe('DNS_NOT_FOUND');
  });
});

describe('SipResolver: failover list (RFC 3263 §4.3)', () => {
  it('next() hands out targets in order, looking up a later SRV target only when it is reached', async () => {
    const { dns, resolver } = setup({ transports: ['udp'] });
    dns.zone.SRV.set('_sip._udp.fo.test', [srv('b.fo.test', 5060, 20), srv('a.fo.test', 5060, 10)]);
    dns.zone.A.set('a.fo.test', [addr('192.0.2.50')]);
    dns.zone.A.set('b.fo.test', [addr('192.0.2.51')]);
    const list = resolver.targets('sip:fo.test');
    expect(brief((await list.next())!)).toBe('udp 192.0.2.50:5060');
    expect(dns.count('A', 'b.fo.test')).toBe(0);
    expect(brief((await list.next())!)).toBe('udp 192.0.2.51:5060');
    expect(await list.next()).toBeUndefined();
    expect(list.tried).toBe(2);
  });

  it('a target whose addresses cannot be found is skipped; a duplicate is given once', async () => {
    const { dns, resolver } = setup({ transports: ['udp'] });
    dns.zone.SRV.set('_sip._udp.fo.test', [srv('gone.fo.test', 5060, 1), srv('a.fo.test', 5060, 2), srv('alias.fo.test', 5060, 3)]);
    dns.zone.A.set('gone.fo.test', 'SERVFAIL');
    dns.zone.A.set('a.fo.test', [addr('192.0.2.50')]);
    dns.zone.A.set('alias.fo.test', [addr('192.0.2.50')]);
    const seen: string[] = [];
    for await (const t of resolver.targets('sip:fo.test')) seen.push(brief(t));
    expect(seen).toEqual(['udp 192.0.2.50:5060']);
  });

  it('a list that yields nothing rejects with the most telling error: NXDOMAIN → DNS_NOT_FOUND, a timeout → DNS_TIMEOUT', async () => {
    const { dns, resolver } = setup();
    expect((await rejection(resolver.targets('sip:nowhere.test').next())).code).toBe('DNS_NOT_FOUND');
    dns.zone.NAPTR.set('slow.test', 'TIMEOUT');
    const err = await rejection(resolver.targets('sip:slow.test').next());
    expect(err).toMatchObject({ code: 'DNS_TIMEOUT', hostname: 'slow.test', rrtype: 'NAPTR' });
    // A timeout at NAPTR stops there: a server that does not answer NAPTR will not answer SRV.
    expect(dns.count('SRV', '_sip._udp.slow.test')).toBe(0);
    dns.zone.A.set('sf.test', 'SERVFAIL');
    expect((await rejection(resolver.targets('sip:sf.test:5060').next())).code).toBe('DNS_FAILED');
  });

  it('a timeout on one target and NXDOMAIN on the next: the list rejects with DNS_TIMEOUT', async () => {
    const { dns, resolver } = setup({ transports: ['udp'] });
    dns.zone.SRV.set('_sip._udp.mix.test', [srv('slow.mix.test', 5060, 1), srv('gone.mix.test', 5060, 2)]);
    dns.zone.A.set('slow.mix.test', 'TIMEOUT');
    expect(await rejection(resolver.targets('sip:mix.test').next())).toMatchObject({ code: 'DNS_TIMEOUT', hostname: 'slow.mix.test' });
  });

  it('a NAPTR SERVFAIL falls back to SRV', async () => {
    const { dns, resolver } = setup({ transports: ['udp'] });
    dns.zone.NAPTR.set('sf.test', 'SERVFAIL');
    dns.zone.SRV.set('_sip._udp.sf.test', [srv('h.sf.test', 5070)]);
    dns.zone.A.set('h.sf.test', [addr('192.0.2.60')]);
    expect((await resolver.resolve('sip:sf.test')).map(brief)).toEqual(['udp 192.0.2.60:5070']);
  });

  it('concurrent next() calls are served in order, each target once', async () => {
    const { dns, resolver } = setup({ transports: ['udp'] });
    dns.zone.SRV.set('_sip._udp.fo.test', [srv('a.fo.test', 5060, 1), srv('b.fo.test', 5060, 2)]);
    dns.zone.A.set('a.fo.test', [addr('192.0.2.50')]);
    dns.zone.A.set('b.fo.test', [addr('192.0.2.51')]);
    const list = resolver.targets('sip:fo.test');
    const got = await Promise.all([list.next(), list.next(), list.next()]);
    expect(got.map((t) => t && brief(t))).toEqual(['udp 192.0.2.50:5060', 'udp 192.0.2.51:5060', undefined]);
  });
});

describe('SipResolver: responses (RFC 3263 §5)', () => {
  it('received (and rport) win, without DNS', async () => {
    const { dns, resolver } = setup();
    const list = resolver.responseTargets(parseVia('SIP/2.0/UDP client.test:5070;branch=z9hG4bK1;received=192.0.2.70;rport=40000'));
    expect(brief((await list.next())!)).toBe('udp 192.0.2.70:40000');
    expect(dns.queries).toEqual([]);
  });

  it('a sent-by name with a port: A/AAAA at that port', async () => {
    const { dns, resolver } = setup();
    dns.zone.A.set('client.test', [addr('192.0.2.71')]);
    expect(brief((await resolver.responseTargets(parseVia('SIP/2.0/TCP client.test:5072;branch=z9hG4bK1')).next())!)).toBe('tcp 192.0.2.71:5072');
    expect(dns.count('SRV')).toBe(0);
  });

  it('a sent-by name without a port: SRV _sip._udp (or _sips._tcp for TLS), then A/AAAA at the default port', async () => {
    const { dns, resolver } = setup({ transports: ['udp', 'tcp', 'tls'] });
    dns.zone.SRV.set('_sip._udp.client.test', [srv('backup.client.test', 5080, 2), srv('primary.client.test', 5070, 1)]);
    dns.zone.A.set('primary.client.test', [addr('192.0.2.72')]);
    dns.zone.A.set('backup.client.test', [addr('192.0.2.73')]);
    const via = parseVia('SIP/2.0/UDP client.test;branch=z9hG4bK1');
    const got: string[] = [];
    for await (const t of resolver.responseTargets(via)) got.push(brief(t));
    expect(got).toEqual(['udp 192.0.2.72:5070', 'udp 192.0.2.73:5080']);
    dns.zone.A.set('client.test', [addr('192.0.2.74')]);
    expect(brief((await resolver.responseTargets(parseVia('SIP/2.0/TLS client.test;branch=z9hG4bK1')).next())!)).toBe('tls 192.0.2.74:5061');
    expect(dns.count('SRV', '_sips._tcp.client.test')).toBe(1);
  });

  it('a Via transport the resolver cannot send on is NO_TRANSPORT', async () => {
    const { resolver } = setup();
    expect((await rejection(resolver.responseTargets(parseVia('SIP/2.0/SCTP client.test;branch=z9hG4bK1')).next())).code).toBe('NO_TRANSPORT');
  });
});
