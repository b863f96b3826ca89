import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork, TransportError, type TestTransport, type Transport, type TransportAddress, type TransportReceiver } from '../../src/transport/index.js';
import { createNon2xxAck, TransactionLayer, type TransactionTransition } from '../../src/transaction/index.js';
import { ClientRecorder, RecordingUser, request, T1 } from '../support/tx-harness.js';

/**
 * A transport whose sends go out but report failure only when told: an error that arrives
 * after the peer already answered (an ICMP error for an earlier datagram, a write that failed late).
 */
class LateFailingTransport implements Transport {
  private pending: Array<(err: TransportError) => void> = [];
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
    void this.inner.send(bytes, to);
    return new Promise((_, reject) => this.pending.push((err) => reject(err)));
  }
  failPending(): void {
    for (const fail of this.pending.splice(0)) fail(new TransportError('SEND_FAILED', 'late send failure (test)', { address: '10.0.0.2', port: 5060 }));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function setup() {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: 1 });
  const aT = new LateFailingTransport(net.transport('10.0.0.1', 5060));
  const bT = net.transport('10.0.0.2', 5060);
  const steps: TransactionTransition[] = [];
  const bUser = new RecordingUser();
  const a = new TransactionLayer({ transports: [aT], user: new RecordingUser(), clock, onTransition: (t) => steps.push(t) });
  const b = new TransactionLayer({ transports: [bT], user: bUser, clock });
  return { clock, net, a, b, aT, bT, bUser, steps };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('a transport error where the figures draw none is absorbed', () => {
  it('INVITE client in Accepted (RFC 6026 Figure 5): no 503 after the 2xx, Timer M still ends it', async () => {
    const p = setup();
    p.bUser.answer = () => 200;
    const rec = new ClientRecorder();
    const tx = p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, rec);
    p.clock.advance(10);
    expect(tx.state).toBe('accepted');
    p.aT.failPending();
    await flush();
    expect(rec.statuses).toEqual([200]);
    expect(rec.transportErrors).toBe(0);
    expect(tx.state).toBe('accepted');
    expect(p.steps.at(-1)).toMatchObject({ from: 'accepted', event: 'transport_error', ignored: true });
    p.clock.advance(64 * T1);
    expect(tx.state).toBe('terminated');
  });

  it('non-INVITE client in Completed (RFC 3261 Figure 6): the final stands, Timer K ends it', async () => {
    const p = setup();
    p.bUser.answer = () => 200;
    const rec = new ClientRecorder();
    const tx = p.a.sendRequest(request('OPTIONS'), { address: '10.0.0.2', port: 5060 }, rec);
    p.clock.advance(10);
    expect(tx.state).toBe('completed');
    p.aT.failPending();
    await flush();
    expect(rec.statuses).toEqual([200]);
    expect(rec.transportErrors).toBe(0);
    p.clock.advance(T1 * 10 + 1);
    expect(tx.state).toBe('terminated');
    expect(rec.terminated).toBe(1);
  });

  it('where Figure 5 draws the arrow (Calling) an error still informs the TU and ends the transaction', async () => {
    const p = setup();
    p.net.filter = () => 'drop';
    const rec = new ClientRecorder();
    const tx = p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, rec);
    p.aT.failPending();
    await flush();
    expect(rec.statuses).toEqual([503]);
    expect(rec.transportErrors).toBe(1);
    expect(tx.state).toBe('terminated');
  });
});

describe('failed sends are counted by the layer', () => {
  it('every failed send of a transaction counts once in stats.transportErrors, the retransmissions too, and the TU hears once', async () => {
    const p = setup();
    p.net.filter = () => 'drop';
    const rec = new ClientRecorder();
    const tx = p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, rec);
    // Timer A: the INVITE again at T1 and 3·T1: three sends, all failing afterwards.
    p.clock.advance(3 * T1 + 1);
    expect(p.a.stats.transportErrors).toBe(0);
    p.aT.failPending();
    await flush();
    expect(p.a.stats.transportErrors).toBe(3);
    expect(rec.statuses).toEqual([503]);
    expect(rec.transportErrors).toBe(1);
    expect(tx.state).toBe('terminated');
  });

  it('a send failing after the final is still counted, and absorbed', async () => {
    const p = setup();
    p.bUser.answer = () => 200;
    const rec = new ClientRecorder();
    const tx = p.a.sendRequest(request('OPTIONS'), { address: '10.0.0.2', port: 5060 }, rec);
    p.clock.advance(10);
    expect(tx.state).toBe('completed');
    p.aT.failPending();
    await flush();
    expect(p.a.stats.transportErrors).toBe(1);
    expect(rec.transportErrors).toBe(0);
  });
});

describe('INVITE server: an ACK is only the transaction’s to take once a final was sent', () => {
  it('an ACK matching a transaction still in Proceeding is absorbed (RFC 3261 Figure 7 draws none)', () => {
    const p = setup();
    const tx = p.a.sendRequest(request('INVITE'), { address: '10.0.0.2', port: 5060 }, new ClientRecorder());
    p.clock.advance(10);
    const server = p.bUser.requests[0]!.tx;
    expect(server.state).toBe('proceeding');
    // Same branch as the INVITE: it matches the server transaction (§17.2.3).
    void p.a.sendStateless(createNon2xxAck(tx.request!, createResponse(server.request!, 486, { toTag: 'x' })), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.bUser.acks).toHaveLength(0);
    expect(server.state).toBe('proceeding');
  });
});
