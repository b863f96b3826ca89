import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { isSynthesized, type InviteClientTransaction } from '../../src/transaction/index.js';
import { pair, send, T1 } from '../support/tx-harness.js';

describe('INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)', () => {
  it('over UDP sends exactly 7 INVITEs (0, T1, 3T1, 7T1, …) before Timer B fires at 64·T1', () => {
    const p = pair();
    const sentAt: number[] = [];
    p.net.filter = (pkt) => {
      if (pkt.firstLine.startsWith('INVITE')) sentAt.push(p.clock.now() - 1_000_000);
      return 'drop';
    };
    const { tx, rec } = send(p, 'INVITE');
    p.clock.advance(64 * T1 - 1);
    expect(tx.state).toBe('calling');
    expect(sentAt).toEqual([0, 1, 3, 7, 15, 31, 63].map((k) => k * T1));
    p.clock.advance(1);
    expect(tx.state).toBe('terminated');
    expect(rec.statuses).toEqual([408]);
    expect(isSynthesized(rec.responses[0]!)).toBe(true);
    expect(rec.timeouts).toBe(1);
    expect(rec.terminated).toBe(1);
    expect(p.a.stats).toMatchObject({ transactions: 0, timers: 0 });
  });

  it('over a reliable transport sends once and still times out with B', () => {
    const p = pair({ reliable: true });
    p.net.filter = () => 'drop';
    const { tx, rec } = send(p, 'INVITE');
    p.clock.advance(64 * T1);
    expect(p.net.packets('INVITE')).toHaveLength(1);
    expect(tx.state).toBe('terminated');
    expect(rec.statuses).toEqual([408]);
  });

  it('a provisional stops retransmissions (Proceeding); a 2xx moves to Accepted and later 2xx still reach the user', () => {
    const p = pair();
    p.bUser.answer = () => 180;
    const { tx, rec } = send(p, 'INVITE');
    p.clock.advance(10);
    expect(tx.state).toBe('proceeding');
    expect(rec.statuses).toEqual([180]);
    p.clock.advance(10 * T1);
    expect(p.net.packets('INVITE')).toHaveLength(1);
    const server = p.bUser.requests[0]!.tx;
    const ok = createResponse(server.request!, 200, { toTag: 'b1' });
    server.respond(ok);
    p.clock.advance(10);
    expect(tx.state).toBe('accepted');
    // A 2xx retransmitted by the UAS core (or another fork) goes to the user, who ACKs it.
    server.respond(ok);
    p.clock.advance(10);
    expect(rec.statuses).toEqual([180, 200, 200]);
    // The transaction layer does not ACK a 2xx: that is the dialog's job (§17.1.1.3).
    expect(p.net.packets('ACK')).toHaveLength(0);
    p.clock.advance(64 * T1);
    expect(tx.state).toBe('terminated');
    expect(p.a.stats).toMatchObject({ transactions: 0, timers: 0 });
  });

  it('a non-2xx final is ACKed by the transaction; retransmissions are re-ACKed, not passed up; Timer D ends it', () => {
    const p = pair();
    p.bUser.answer = () => 486;
    // Lose the first ACK, so B retransmits its 486 (Timer G).
    let ackCount = 0;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('ACK') && ++ackCount === 1 ? 'drop' : undefined);
    const { tx, rec, req } = send(p, 'INVITE');
    p.clock.advance(10);
    expect(tx.state).toBe('completed');
    expect(rec.statuses).toEqual([486]);
    const acks = p.net.packets('ACK');
    expect(acks).toHaveLength(1);
    const ack = acks[0]!.bytes.toString();
    expect(ack).toContain('CSeq: 1 ACK');
    expect(ack).toContain(req.topVia!.branch!);
    // A re-ACKs the retransmitted 486 without telling the user.
    p.clock.advance(T1 + 10);
    expect(p.net.packets('SIP/2.0 486')).toHaveLength(2);
    expect(p.net.packets('ACK')).toHaveLength(2);
    expect(p.b.stats.transactions).toBe(1); // B's server transaction is Confirmed (Timer I)
    expect(rec.statuses).toEqual([486]);
    p.clock.advance(32_000);
    expect(tx.state).toBe('terminated');
    expect(p.a.stats).toMatchObject({ transactions: 0, timers: 0 });
  });

  it('Timer D is zero on a reliable transport', () => {
    const p = pair({ reliable: true });
    p.bUser.answer = () => 404;
    const { tx } = send(p, 'INVITE');
    p.clock.advance(2);
    expect(tx.state).toBe('terminated');
  });

  it('cancel() before a provisional waits for one (§9.1); CANCEL reuses the INVITE branch', () => {
    const p = pair();
    const { tx, rec } = send(p, 'INVITE');
    (tx as InviteClientTransaction).cancel();
    p.clock.advance(100);
    expect(p.net.packets('CANCEL')).toHaveLength(0);
    const server = p.bUser.requests[0]!.tx;
    server.respond(createResponse(server.request!, 180, { toTag: 'x' }));
    p.clock.advance(10);
    const cancels = p.net.packets('CANCEL');
    expect(cancels).toHaveLength(1);
    expect(cancels[0]!.bytes.toString()).toContain('branch=' + tx.request!.topVia!.branch);
    p.clock.advance(10);
    // B's layer answered 200 to the CANCEL and told its user, who sends 487.
    expect(p.bUser.cancels).toHaveLength(1);
    const inv = p.bUser.cancels[0]!.invite;
    inv.respond(createResponse(inv.request!, 487, { toTag: 'x' }));
    p.clock.advance(10);
    expect(rec.statuses).toEqual([180, 487]);
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(1);
    expect(p.net.packets('ACK')).toHaveLength(1);
  });

  it('a transport failure gives the user a synthesized 503 and a typed event', () => {
    const p = pair({ reliable: true });
    const { tx, rec } = send(p, 'INVITE', { address: '10.9.9.9', port: 5060 });
    p.clock.advance(0);
    return Promise.resolve().then(() => {
      expect(rec.statuses).toEqual([503]);
      expect(isSynthesized(rec.responses[0]!)).toBe(true);
      expect(rec.transportErrors).toBe(1);
      expect(tx.state).toBe('terminated');
      expect(p.a.stats.transactions).toBe(0);
    });
  });
});
