import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import type { InviteServerTransaction } from '../../src/transaction/index.js';
import { pair, send, T1 } from '../support/tx-harness.js';

const T2 = 4000;
const T4 = 5000;

describe('INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)', () => {
  it('sends 100 Trying when the user has not answered within 200 ms', () => {
    const p = pair();
    send(p, 'INVITE');
    p.clock.advance(150);
    expect(p.net.packets('SIP/2.0 100')).toHaveLength(0);
    p.clock.advance(100);
    expect(p.net.packets('SIP/2.0 100')).toHaveLength(1);
  });

  it('sends no 100 Trying when the user answered in time', () => {
    const p = pair();
    p.bUser.answer = () => 180;
    send(p, 'INVITE');
    p.clock.advance(1000);
    expect(p.net.packets('SIP/2.0 100')).toHaveLength(0);
    expect(p.net.packets('SIP/2.0 180')).toHaveLength(1);
  });

  it('a retransmitted INVITE gets the last provisional again and is not passed to the user', () => {
    const p = pair();
    p.bUser.answer = () => 180;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('SIP/2.0 180') && p.net.packets('SIP/2.0 180').length === 1 ? 'drop' : undefined);
    send(p, 'INVITE');
    p.clock.advance(T1 + 10);
    expect(p.bUser.requests).toHaveLength(1);
    expect(p.net.packets('SIP/2.0 180')).toHaveLength(2);
    expect(p.b.stats.retransmissionsAbsorbed).toBe(1);
  });

  it('retransmits a non-2xx final with Timer G (T1 doubling to T2) until the ACK; H gives up at 64·T1', () => {
    const p = pair();
    p.bUser.answer = () => 480;
    const finals: number[] = [];
    let invites = 0;
    p.net.filter = (pkt) => {
      // Only the first INVITE arrives, so every resend of the 480 is Timer G's.
      if (pkt.firstLine.startsWith('INVITE') && ++invites > 1) return 'drop';
      if (pkt.firstLine.startsWith('SIP/2.0 480')) {
        finals.push(p.clock.now() - 1_000_000);
        return 'drop';
      }
      return undefined;
    };
    send(p, 'INVITE');
    p.clock.advance(64 * T1 + 100);
    const gaps = finals.slice(1).map((t, i) => t - finals[i]!);
    expect(gaps.slice(0, 4)).toEqual([T1, 2 * T1, 4 * T1, T2]);
    expect(Math.max(...gaps)).toBe(T2);
    const tx = p.bUser.requests[0]!.tx as InviteServerTransaction;
    expect(tx.state).toBe('terminated');
    expect(tx.ackTimedOut).toBe(true);
    expect(p.b.stats).toMatchObject({ transactions: 0, timers: 0 });
  });

  it('the ACK moves Completed → Confirmed; Timer I (T4) ends it; ACK retransmissions are absorbed', () => {
    const p = pair();
    p.bUser.answer = () => 603;
    send(p, 'INVITE');
    p.clock.advance(10);
    const tx = p.bUser.requests[0]!.tx as InviteServerTransaction;
    expect(tx.state).toBe('confirmed');
    expect(p.bUser.acks).toHaveLength(0);
    p.clock.advance(T4);
    expect(tx.state).toBe('terminated');
  });

  it('a 2xx moves to Accepted: retransmitted INVITEs are absorbed, the 2xx ACK goes to the user; L ends it', () => {
    const p = pair();
    p.bUser.answer = () => 200;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('SIP/2.0 200') ? 'drop' : undefined);
    const { req: invite } = send(p, 'INVITE');
    p.clock.advance(3 * T1 + 10);
    const tx = p.bUser.requests[0]!.tx as InviteServerTransaction;
    expect(tx.state).toBe('accepted');
    expect(p.bUser.requests).toHaveLength(1);
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(1); // the transaction never resends a 2xx itself
    // An ACK for a 2xx has its own branch: it matches no transaction and reaches the user.
    const ack = invite.clone();
    ack.method = 'ACK';
    ack.set('CSeq', '1 ACK');
    ack.removeFirst('Via');
    p.a.sendStateless(ack.prepend('Via', p.a.createVia(p.aT)), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.bUser.acks).toHaveLength(1);
    p.clock.advance(64 * T1);
    expect(tx.state).toBe('terminated');
  });
});

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('absorbs retransmissions in Trying, resends the final in Completed, ends with Timer J', () => {
    const p = pair();
    const { tx: client, req: options } = send(p, 'OPTIONS');
    p.clock.advance(T1 + 10); // one retransmission while the user has not answered
    expect(p.bUser.requests).toHaveLength(1);
    expect(p.net.packets('SIP/2.0')).toHaveLength(0);
    const tx = p.bUser.requests[0]!.tx;
    tx.respond(createResponse(p.bUser.requests[0]!.req, 200));
    p.clock.advance(10);
    expect(client.state).toBe('completed');
    p.aT.send(options.toBytes(), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(2);
    // Resent from what Completed keeps (a string of its own, keepBytes): the same bytes.
    const [first, again] = p.net.packets('SIP/2.0 200');
    expect(Buffer.from(again!.bytes).equals(Buffer.from(first!.bytes))).toBe(true);
    expect(tx.state).toBe('completed');
    p.clock.advance(64 * T1);
    expect(tx.state).toBe('terminated');
    expect(p.b.stats).toMatchObject({ transactions: 0, timers: 0 });
  });
});
