import { describe, expect, it } from 'vitest';
import { UserAgent, type IncomingCall } from '../../src/dialog/index.js';
import { SipResolver } from '../../src/resolver/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { addr, FakeDns } from '../resolver/fake-dns.js';
import { drive } from '../support/ua-harness.js';

const SDP = 'v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

describe('in-dialog requests whose next hop is a host name (RFC 3263)', () => {
  it('are located, and the dialog keeps the target that worked for that host', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const dns = new FakeDns();
    dns.zone.A.set('edge.provider.test', [addr('10.0.0.4')]);
    const resolver = new SipResolver({ lookup: dns, clock, families: [4] });
    const alice = new UserAgent({ transports: [net.transport('10.0.0.1')], clock, resolver });
    const incoming: IncomingCall[] = [];
    new UserAgent({ transports: [net.transport('10.0.0.2')], clock, onInvite: (c) => incoming.push(c) });
    // The proxy the callee's answer Record-Routes through, named by host. (A user agent stands in
    // for it: it knows no such dialog and answers 481 — an answer all the same, so no fail-over.)
    new UserAgent({ transports: [net.transport('10.0.0.4')], clock });
    new UserAgent({ transports: [net.transport('10.0.0.6')], clock });
    const call = alice.invite('sip:bob@10.0.0.2', { body: SDP });
    await drive({ clock }, Promise.resolve(), 50);
    await incoming[0]!.answer({ body: SDP, headers: { 'Record-Route': '<sip:edge.provider.test;lr>' } });
    await drive({ clock }, Promise.resolve(), 50);
    expect(call.state).toBe('answered');
    const first = await drive({ clock }, call.request('INFO'));
    expect(first.status).toBe(481);
    expect(net.packets('INFO ').map((p) => p.to.address)).toEqual(['10.0.0.4']);
    // The ACK for the 2xx went there too (located: it has no answer to remember a target by).
    expect(net.packets('ACK ').map((p) => p.to.address)).toEqual(['10.0.0.4']);
    const lookups = dns.count('A', 'edge.provider.test');
    expect(lookups).toBeGreaterThanOrEqual(1);
    // DNS moves the name; the dialog stays with the server it was using.
    dns.zone.A.set('edge.provider.test', [addr('10.0.0.6')]);
    resolver.cache.clear();
    const second = await drive({ clock }, call.request('INFO'));
    expect(second.status).toBe(481);
    expect(net.packets('INFO ').map((p) => p.to.address)).toEqual(['10.0.0.4', '10.0.0.4']);
    expect(dns.count('A', 'edge.provider.test')).toBe(lookups);
  });
});
