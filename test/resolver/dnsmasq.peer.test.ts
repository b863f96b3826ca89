import type { ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/transport/index.js';
import { NodeDnsLookup, ResolverError, SipResolver, type DnsLookup, type SipTarget } from '../../src/resolver/index.js';
import { DNSMASQ, startDnsmasq } from '../support/dnsmasq.js';

// The resolver against a real DNS server nobody here wrote: Debian's dnsmasq, serving a
// zone from its command line (NAPTR, SRV, A/AAAA) and an addn-hosts file it rereads on SIGHUP.
if (DNSMASQ === undefined && process.env.CI) throw new Error('dnsmasq is not installed: .ci/run installs dnsmasq-base');
if (DNSMASQ === undefined) console.warn('dnsmasq not installed: skipping the resolver peer test (apt-get install dnsmasq-base)');

const ZONE = 'sipkit.test';
const brief = (t: SipTarget) => `${t.transport} ${t.address}:${t.port}`;

/** Queries per name and type as the resolver's lookup made them (to see a cache hit). */
class CountingLookup implements DnsLookup {
  readonly counts = new Map<string, number>();
  constructor(private readonly inner: DnsLookup) {}
  private n(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  naptr(name: string) {
    this.n('NAPTR ' + name);
    return this.inner.naptr(name);
  }
  srv(name: string) {
    this.n('SRV ' + name);
    return this.inner.srv(name);
  }
  a(name: string) {
    this.n('A ' + name);
    return this.inner.a(name);
  }
  aaaa(name: string) {
    this.n('AAAA ' + name);
    return this.inner.aaaa(name);
  }
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    expect(err).toBeInstanceOf(ResolverError);
    return (err as ResolverError).code;
  }
}

describe.skipIf(DNSMASQ === undefined)('SipResolver against dnsmasq', () => {
  let dnsmasq: ChildProcess | undefined;
  let server = '';
  let hostsFile = '';
  const dropping: Socket[] = [];

  async function start(): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'dnsmasq-'));
    hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, `127.0.0.5 moving.${ZONE}\n`);
    const d = await startDnsmasq(
      [
        `--addn-hosts=${hostsFile}`,
        // Answer for the zone only from here: an unknown name is NXDOMAIN, not REFUSED.
        `--local=/${ZONE}/`,
        '--local-ttl=1',
        // RFC 3263 §4.1: NAPTR → _sip._udp, two SRV targets of different priority.
        `--naptr-record=${ZONE},10,10,S,SIP+D2U,,_sip._udp.${ZONE}`,
        `--naptr-record=${ZONE},20,10,S,SIP+D2S,,_sip._sctp.${ZONE}`,
        `--srv-host=_sip._udp.${ZONE},backup.${ZONE},5080,20,0`,
        `--srv-host=_sip._udp.${ZONE},primary.${ZONE},5070,10,0`,
        `--host-record=primary.${ZONE},127.0.0.2,300`,
        `--host-record=backup.${ZONE},127.0.0.3,300`,
        `--host-record=aonly.${ZONE},127.0.0.4,7`,
      ],
      `primary.${ZONE}`,
    );
    dnsmasq = d.process;
    server = d.server;
  }

  beforeAll(start, 30_000);
  afterAll(() => {
    dnsmasq?.kill('SIGTERM');
    for (const s of dropping.splice(0)) s.close();
  });

  function resolver(clock = new FakeClock(1_000_000)) {
    const lookup = new CountingLookup(new NodeDnsLookup({ servers: [server], timeout: 1000, tries: 2 }));
    return { lookup, clock, resolver: new SipResolver({ lookup, clock, transports: ['udp', 'tcp'] }) };
  }

  it('NAPTR → SRV with two targets of different priority resolves in priority order', async () => {
    const { resolver: r } = resolver();
    const targets = await r.resolve(`sip:alice@${ZONE}`);
    expect(targets.map(brief)).toEqual(['udp 127.0.0.2:5070', 'udp 127.0.0.3:5080']);
    expect(targets[0]).toMatchObject({ hostname: ZONE, host: `primary.${ZONE}`, family: 4 });
  });

  it('a name with only A (and AAAA) records: no NAPTR, no SRV, so A/AAAA at 5060', async () => {
    const { resolver: r, lookup } = resolver();
    expect((await r.resolve(`sip:aonly.${ZONE}`)).map(brief)).toEqual(['udp 127.0.0.4:5060']);
    expect(lookup.counts.get(`NAPTR aonly.${ZONE}`)).toBe(1);
    expect(lookup.counts.get(`SRV _sip._udp.aonly.${ZONE}`)).toBe(1);
    expect(lookup.counts.get(`SRV _sip._tcp.aonly.${ZONE}`)).toBe(1);
  });

  it('NXDOMAIN is DNS_NOT_FOUND', async () => {
    const { resolver: r } = resolver();
    const err = await r.targets(`sip:nobody.${ZONE}`).next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResolverError);
    expect(err).toMatchObject({ code: 'DNS_NOT_FOUND', hostname: `nobody.${ZONE}` });
    expect(await code(new NodeDnsLookup({ servers: [server] }).a(`nobody.${ZONE}`))).toBe('DNS_NOT_FOUND');
  });

  it('reads the TTL dnsmasq gives and caches for exactly that long', async () => {
    const lookup = new NodeDnsLookup({ servers: [server] });
    expect(await lookup.a(`aonly.${ZONE}`)).toEqual([{ address: '127.0.0.4', ttl: 7 }]);
    const { resolver: r, lookup: counting, clock } = resolver();
    await r.resolve(`sip:aonly.${ZONE}:5060`);
    clock.advance(6_999);
    await r.resolve(`sip:aonly.${ZONE}:5060`);
    expect(counting.counts.get(`A aonly.${ZONE}`)).toBe(1);
    clock.advance(1);
    await r.resolve(`sip:aonly.${ZONE}:5060`);
    expect(counting.counts.get(`A aonly.${ZONE}`)).toBe(2);
  });

  it('an address changed in DNS is seen once the cached answer expires (TTL 1 s), not before', async () => {
    const { resolver: r, clock } = resolver();
    const uri = `sip:moving.${ZONE}:5060`;
    expect((await r.resolve(uri)).map(brief)).toEqual(['udp 127.0.0.5:5060']);
    writeFileSync(hostsFile, `127.0.0.6 moving.${ZONE}\n`);
    dnsmasq!.kill('SIGHUP');
    // Wait (bounded) until dnsmasq serves the new address.
    const direct = new NodeDnsLookup({ servers: [server], timeout: 500, tries: 1 });
    let served = '';
    for (let i = 0; i < 40 && served !== '127.0.0.6'; i++) {
      served = (await direct.a(`moving.${ZONE}`).catch(() => []))[0]?.address ?? '';
      if (served !== '127.0.0.6') await new Promise((res) => setTimeout(res, 50));
    }
    expect(served).toBe('127.0.0.6');
    expect((await r.resolve(uri)).map(brief)).toEqual(['udp 127.0.0.5:5060']);
    clock.advance(1_000);
    expect((await r.resolve(uri)).map(brief)).toEqual(['udp 127.0.0.6:5060']);
  });

  it('a DNS server that never answers is DNS_TIMEOUT (timeout 200 ms, one try)', async () => {
    const silent = createSocket('udp4');
    dropping.push(silent);
    silent.on('message', () => undefined);
    await new Promise<void>((res) => silent.bind(0, '127.0.0.1', () => res()));
    const r = new SipResolver({ servers: [`127.0.0.1:${silent.address().port}`], timeout: 200, tries: 1, clock: new FakeClock() });
    const err = await r.targets(`sip:alice@${ZONE}`).next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResolverError);
    expect(err).toMatchObject({ code: 'DNS_TIMEOUT', rrtype: 'NAPTR' });
  });
});
