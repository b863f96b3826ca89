import { describe, expect, it } from 'vitest';
import { parseMessage, type SipRequest } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { ClientRecorder, RecordingUser, request, T1 } from '../support/tx-harness.js';

/** A (10.0.0.1) has UDP and TCP; B (10.0.0.2) is UDP-only: nothing listens for TCP there. */
function udpOnlyPeer() {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock });
  const aUser = new RecordingUser();
  const bUser = new RecordingUser();
  bUser.answer = () => 200;
  const a = new TransactionLayer({
    transports: [net.transport('10.0.0.1', 5060), net.transport('10.0.0.1', 5062, { reliable: true })],
    user: aUser,
    clock,
    timers: { T1 },
  });
  const b = new TransactionLayer({ transports: [net.transport('10.0.0.2', 5060)], user: bUser, clock, timers: { T1 } });
  return { clock, net, a, b, aUser, bUser };
}

/** A refused connection is reported through a rejected promise: let it settle. */
const settle = () => new Promise<void>((r) => setImmediate(r));

function large(method: string): SipRequest {
  const req = request(method);
  req.body = Buffer.alloc(1600, 'x');
  req.set('Content-Type', 'text/plain');
  return req;
}

describe('a request sent over TCP only for its size falls back to UDP (RFC 3261 §18.1.1)', () => {
  it('retries a large INVITE over UDP, same branch, Via back to UDP, when the TCP connection is refused', async () => {
    const p = udpOnlyPeer();
    const rec = new ClientRecorder();
    const tx = p.a.sendRequest(large('INVITE'), { address: '10.0.0.2', port: 5060 }, rec);
    const branch = tx.request!.topVia!.branch;
    await settle();
    p.clock.advance(10);
    expect(p.bUser.requests).toHaveLength(1);
    const got = p.bUser.requests[0]!.req;
    expect(got.topVia!.transport).toBe('UDP');
    // The UDP transport's sent-by, not the TCP one's: responses must come back to where UDP listens.
    expect(got.topVia!.port).toBe(5060);
    expect(got.topVia!.branch).toBe(branch);
    expect(rec.statuses).toEqual([200]);
    expect(rec.transportErrors).toBe(0);
    expect(tx.dest.transport.protocol).toBe('udp');
    expect(tx.reliable).toBe(false);
  });

  it('retransmits the fallen-back request on Timer A, as UDP needs', async () => {
    const p = udpOnlyPeer();
    let dropped = 0;
    // Lose the first UDP INVITE: only a running Timer A gets the call through.
    p.net.filter = (pk) => (pk.firstLine.startsWith('INVITE') && dropped++ === 0 ? 'drop' : undefined);
    const rec = new ClientRecorder();
    p.a.sendRequest(large('INVITE'), { address: '10.0.0.2', port: 5060 }, rec);
    await settle();
    p.clock.advance(10);
    expect(rec.statuses).toEqual([]);
    p.clock.advance(T1);
    expect(p.net.packets('INVITE').map((pk) => pk.to.port)).toEqual([5060, 5060]);
    expect(rec.statuses).toEqual([200]);
  });

  it('retries a large non-INVITE (MESSAGE) the same way', async () => {
    const p = udpOnlyPeer();
    const rec = new ClientRecorder();
    p.a.sendRequest(large('MESSAGE'), { address: '10.0.0.2', port: 5060 }, rec);
    await settle();
    p.clock.advance(10);
    expect(rec.statuses).toEqual([200]);
    expect(parseMessage(p.net.packets('MESSAGE')[0]!.bytes).type).toBe('request');
  });

  it('does not fall back when TCP was asked for, not chosen for size: 503 as before', async () => {
    const p = udpOnlyPeer();
    const rec = new ClientRecorder();
    p.a.sendRequest(large('MESSAGE'), { address: '10.0.0.2', port: 5060, transport: 'tcp' }, rec);
    await settle();
    p.clock.advance(10);
    expect(rec.statuses).toEqual([503]);
    expect(rec.transportErrors).toBe(1);
    expect(p.bUser.requests).toHaveLength(0);
  });
});
