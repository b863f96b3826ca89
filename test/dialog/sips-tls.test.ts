import { describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { SipResolver } from '../../src/resolver/index.js';
import { FakeClock, TestNetwork, type Transport, type TransportAddress, type TransportReceiver } from '../../src/transport/index.js';
import { addr, FakeDns } from '../resolver/fake-dns.js';

/** A TLS-like transport that records where each message went (what TlsTransport.send would get). */
class RecordingTls implements Transport {
  readonly protocol = 'tls';
  readonly reliable = true;
  readonly sent: Array<{ to: TransportAddress & { serverName?: string }; text: string }> = [];
  constructor(readonly local: TransportAddress) {}
  setReceiver(_r: TransportReceiver): void {}
  send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    this.sent.push({ to: { ...to }, text: Buffer.from(bytes).toString() });
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

describe('sips: and TLS on the next hop (RFC 3261 §26.2.2, RFC 5630, RFC 5922)', () => {
  it('the SIP domain of a located sips: URI reaches the TLS transport as serverName', async () => {
    const clock = new FakeClock(0);
    const dns = new FakeDns();
    dns.zone.SRV.set('_sips._tcp.secure.test', [{ name: 'edge7.provider.test', port: 5061, priority: 10, weight: 0 }]);
    dns.zone.A.set('edge7.provider.test', [addr('10.0.0.7')]);
    const tls = new RecordingTls({ address: '10.0.0.1', port: 5061 });
    const ua = new UserAgent({ transports: [tls], clock, resolver: new SipResolver({ lookup: dns, clock, transports: ['tls'], families: [4] }) });
    ua.invite('sips:bob@secure.test');
    await flush();
    expect(tls.sent).toHaveLength(1);
    // RFC 5922 §4: the certificate is checked against the URI's domain, not the SRV target.
    expect(tls.sent[0]!.to).toEqual({ address: '10.0.0.7', port: 5061, serverName: 'secure.test' });
    expect(tls.sent[0]!.text).toMatch(/^Via: SIP\/2\.0\/TLS 10\.0\.0\.1:5061;/m);
    // RFC 3261 §8.1.1.8: a sips: Request-URI → a sips: Contact (RFC 5630: no transport=tls).
    expect(tls.sent[0]!.text).toMatch(/^Contact: <sips:sipkit@10\.0\.0\.1:5061>/m);
  });

  it('an IP-literal sips: URI has no serverName; a transport=tls URI with a host name has one', async () => {
    const clock = new FakeClock(0);
    const dns = new FakeDns();
    dns.zone.A.set('gw.example.test', [addr('10.0.0.8')]);
    const tls = new RecordingTls({ address: '10.0.0.1', port: 5061 });
    const ua = new UserAgent({ transports: [tls], clock, resolver: new SipResolver({ lookup: dns, clock, transports: ['tls'], families: [4] }) });
    void ua.request('OPTIONS', 'sips:10.0.0.9');
    void ua.request('OPTIONS', 'sip:gw.example.test:5061;transport=tls');
    await flush();
    expect(tls.sent.map((s) => s.to)).toEqual([
      { address: '10.0.0.9', port: 5061 },
      { address: '10.0.0.8', port: 5061, serverName: 'gw.example.test' },
    ]);
  });

  it('a sips: request is never sent over UDP, even to an explicit destination: NO_TRANSPORT', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const ua = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock });
    await expect(ua.request('OPTIONS', 'sips:bob@10.0.0.2', { destination: { address: '10.0.0.2', port: 5060, transport: 'udp' } })).rejects.toMatchObject({ code: 'NO_TRANSPORT' });
    expect(() => ua.invite('sips:bob@10.0.0.2', { destination: { address: '10.0.0.2', port: 5060, transport: 'udp' } })).toThrow(expect.objectContaining({ code: 'NO_TRANSPORT' }));
    // Nor through a sips: Route (RFC 3261 §26.2.2: every hop up to the domain).
    await expect(ua.request('OPTIONS', 'sip:bob@10.0.0.2', { headers: { Route: '<sips:proxy.test;lr>' }, destination: { address: '10.0.0.2', port: 5060 } })).rejects.toMatchObject({ code: 'NO_TRANSPORT' });
    expect(net.log).toHaveLength(0);
  });

  it('a sips: URI whose only transport would be UDP: a synthesized 503 with NO_TRANSPORT, nothing sent', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const dns = new FakeDns();
    dns.zone.A.set('secure.test', [addr('10.0.0.7')]);
    const ua = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock, resolver: new SipResolver({ lookup: dns, clock, families: [4] }) });
    const res = ua.request('OPTIONS', 'sips:secure.test');
    await flush();
    const { failureCause } = await import('../../src/transaction/index.js');
    expect((await res).status).toBe(503);
    expect(failureCause(await res)?.code).toBe('NO_TRANSPORT');
    expect(net.log).toHaveLength(0);
  });
});
