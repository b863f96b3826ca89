import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork, TransportError, type TestTransport, type Transport, type TransportAddress, type TransportReceiver } from '../../src/transport/index.js';
import { TransactionLayer, type InviteServerTransaction, type ServerTransaction } from '../../src/transaction/index.js';
import { ClientRecorder, RecordingUser, request, T1 } from '../support/tx-harness.js';

/** A test transport whose sends can be made to fail (a socket that errors, a route that vanished). */
class FlakyTransport implements Transport {
  failing = false;
  constructor(private readonly inner: TestTransport) {}
  get protocol() {
    return this.inner.protocol;
  }
  get reliable() {
    return this.inner.reliable;
  }
  get local() {
    return this.inner.local;
  }
  setReceiver(r: TransportReceiver): void {
    this.inner.setReceiver({ onMessage: (bytes, from) => r.onMessage(bytes, from, this), onError: (e) => r.onError?.(e, this) });
  }
  send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    if (this.failing) return Promise.reject(new TransportError('SEND_FAILED', 'send failed (test)', to));
    return this.inner.send(bytes, to);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function setup() {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: 1 });
  const aT = net.transport('10.0.0.1', 5060);
  const bT = new FlakyTransport(net.transport('10.0.0.2', 5060));
  const aUser = new RecordingUser();
  const bUser = new RecordingUser();
  const a = new TransactionLayer({ transports: [aT], user: aUser, clock });
  const b = new TransactionLayer({ transports: [bT], user: bUser, clock });
  return { clock, net, a, b, aT, bT, aUser, bUser };
}

describe('INVITE server transaction in Accepted (RFC 6026 §7.1, §8.7)', () => {
  it('a 2xx retransmission that fails to send leaves Accepted absorbing INVITE retransmissions until Timer L', async () => {
    const p = setup();
    const rec = new ClientRecorder();
    p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, rec);
    p.clock.advance(10);
    expect(p.bUser.requests).toHaveLength(1);
    const { req, tx } = p.bUser.requests[0]!;
    const errors: unknown[] = [];
    (tx as ServerTransaction).onTransportError = (err) => errors.push(err);
    const ok = createResponse(req, 200, { toTag: 'uas-tag' });
    ok.set('Contact', '<sip:bob@10.0.0.2:5060>');
    tx.respond(ok);
    p.clock.advance(10);
    expect(rec.finals.map((r) => r.status)).toEqual([200]);
    expect(tx.state).toBe('accepted');

    // The TU's 2xx retransmission (§13.3.1.4) cannot be sent.
    p.bT.failing = true;
    tx.respond(ok);
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(1);
    expect(tx.state).toBe('accepted');
    p.bT.failing = false;

    // The caller's INVITE arrives again (it never saw a 2xx it could ACK): absorbed, not a new call.
    const invite = p.net.packets('INVITE')[0]!;
    p.b.receive(invite.bytes, invite.from, p.bT);
    p.clock.advance(10);
    expect(p.bUser.requests).toHaveLength(1);
    expect(p.b.stats.retransmissionsAbsorbed).toBe(1);

    // Timer L still ends it at 64·T1, and then the transaction is gone.
    p.clock.advance(64 * T1);
    expect(tx.state).toBe('terminated');
    expect(p.b.stats.transactions).toBe(0);
  });

  it('a transport error outside Accepted still ends the transaction (RFC 3261 §17.2.4)', async () => {
    const p = setup();
    p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, new ClientRecorder());
    p.clock.advance(10);
    const { req, tx } = p.bUser.requests[0]!;
    p.bT.failing = true;
    tx.respond(createResponse(req, 486));
    await new Promise((r) => setImmediate(r));
    expect((tx as InviteServerTransaction).state).toBe('terminated');
  });
});
