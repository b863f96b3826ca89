import { describe, expect, it } from 'vitest';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { Destinations } from '../../src/transaction/destinations.js';
import { ClientRecorder, pair, request } from '../support/tx-harness.js';

// Issue #16: a transaction waiting out Timer J, K, L or M keeps a reference to where it sends,
// shared per peer, not a destination, an address object and an address string of its own.

describe('destinations interned per peer', () => {
  it('server transactions of requests from one peer share one frozen destination, and so do the sources', () => {
    const p = pair();
    p.bUser.answer = () => 200;
    const recs = [new ClientRecorder(), new ClientRecorder(), new ClientRecorder()];
    for (const [i, m] of ['INVITE', 'OPTIONS', 'BYE'].entries()) p.a.sendRequest(request(m), { address: '10.0.0.2', port: 5060 }, recs[i]!);
    p.clock.advance(10);
    const got = p.bUser.requests;
    expect(got).toHaveLength(3);
    const dest = got[0]!.tx.dest;
    for (const r of got) {
      expect(r.tx.dest).toBe(dest);
      expect(r.source).toBe(got[0]!.source);
    }
    expect(Object.isFrozen(dest)).toBe(true);
    expect(Object.isFrozen(dest.address)).toBe(true);
    expect(dest.address).toEqual({ address: '10.0.0.1', port: 5060 });
    for (const rec of recs) expect(rec.statuses).toEqual([200]);
  });

  it('client transactions to one target share one destination; another port or transport is another', () => {
    const p = pair();
    const a = p.a.sendRequest(request('OPTIONS'), { address: '10.0.0.2', port: 5060 }, new ClientRecorder());
    const b = p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, new ClientRecorder());
    const c = p.a.sendRequest(request('OPTIONS'), { address: '10.0.0.2', port: 5070 }, new ClientRecorder());
    expect(b.dest).toBe(a.dest);
    expect(c.dest).not.toBe(a.dest);
    expect(c.dest.address).toEqual({ address: '10.0.0.2', port: 5070 });
  });

  it('stays bounded: past its size the least recently heard peer goes, the busy one stays, and what it handed out stays as it was', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    const t = net.transport('10.0.0.9', 5060);
    const d = new Destinations(4);
    const busy = d.of(t, { address: '192.0.2.1', port: 1 });
    const first = d.of(t, { address: '192.0.2.9', port: 2 });
    // A flood of new source ports, the busy peer heard in between.
    for (let port = 3; port <= 20; port++) {
      d.of(t, { address: '192.0.2.2', port });
      expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(busy);
    }
    expect(d.size).toBe(4);
    expect(first.address).toEqual({ address: '192.0.2.9', port: 2 });
    expect(d.of(t, { address: '192.0.2.9', port: 2 })).not.toBe(first);
  });

  it('a TLS address with a server name is its own object, the server name kept', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    const t = net.transport('10.0.0.9', 5061, { reliable: true });
    const d = new Destinations();
    const a = { address: '192.0.2.1', port: 5061, serverName: 'example.com' };
    const x = d.of(t, a);
    expect(x.address).toEqual(a);
    expect(d.of(t, a)).not.toBe(x);
    expect(d.size).toBe(0);
  });
});

describe('destinations: the recency order', () => {
  it('evicts the least recently used peer across addresses and ports, a hit making a peer the newest', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    const t = net.transport('10.0.0.9', 5060);
    const d = new Destinations(3);
    const a = d.of(t, { address: '192.0.2.1', port: 1 });
    const b = d.of(t, { address: '192.0.2.1', port: 2 });
    const c = d.of(t, { address: '192.0.2.3', port: 1 });
    // Used in the order c, a, b: c is the least recently used now.
    expect(d.of(t, { address: '192.0.2.3', port: 1 })).toBe(c);
    expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(a);
    expect(d.of(t, { address: '192.0.2.1', port: 2 })).toBe(b);
    d.of(t, { address: '192.0.2.4', port: 1 });
    expect(d.size).toBe(3);
    expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(a);
    expect(d.of(t, { address: '192.0.2.1', port: 2 })).toBe(b);
    // c went first; its return evicts the oldest now (192.0.2.4), not a or b.
    const c2 = d.of(t, { address: '192.0.2.3', port: 1 });
    expect(c2).not.toBe(c);
    expect(c2.address).toEqual({ address: '192.0.2.3', port: 1 });
    expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(a);
    expect(d.of(t, { address: '192.0.2.1', port: 2 })).toBe(b);
    expect(d.of(t, { address: '192.0.2.3', port: 1 })).toBe(c2);
    expect(d.size).toBe(3);
  });

  it('a table of one keeps the last peer heard; an address whose last port went is found again', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    const t = net.transport('10.0.0.9', 5060);
    const d = new Destinations(1);
    const a = d.of(t, { address: '192.0.2.1', port: 1 });
    expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(a);
    const b = d.of(t, { address: '192.0.2.1', port: 2 });
    expect(d.of(t, { address: '192.0.2.1', port: 2 })).toBe(b);
    const a2 = d.of(t, { address: '192.0.2.1', port: 1 });
    expect(a2).not.toBe(a);
    expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(a2);
    expect(d.size).toBe(1);
    // Another transport has a table of its own.
    const u = net.transport('10.0.0.9', 5070);
    expect(d.of(u, { address: '192.0.2.1', port: 1 })).not.toBe(a2);
    expect(d.of(t, { address: '192.0.2.1', port: 1 })).toBe(a2);
    expect(d.size).toBe(2);
  });
});
