import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { pair, send, T1 } from '../support/tx-harness.js';

const T2 = 4000;
const T4 = 5000;

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('retransmits at T1, 2T1, 4T1 … capped at T2, and times out with F at 64·T1', () => {
    const p = pair();
    const sentAt: number[] = [];
    p.net.filter = (pkt) => {
      sentAt.push(p.clock.now() - 1_000_000);
      return 'drop';
    };
    const { tx, rec } = send(p, 'OPTIONS');
    p.clock.advance(64 * T1);
    expect(sentAt).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    const gaps = sentAt.slice(1).map((t, i) => t - sentAt[i]!);
    expect(Math.max(...gaps)).toBe(T2);
    expect(tx.state).toBe('terminated');
    expect(rec.statuses).toEqual([408]);
    expect(rec.timeouts).toBe(1);
  });

  it('after a provisional, retransmits every T2 (Proceeding)', () => {
    const p = pair();
    const { tx, rec } = send(p, 'REGISTER');
    p.clock.advance(5);
    const server = p.bUser.requests[0]!.tx;
    server.respond(createResponse(server.request!, 100));
    p.clock.advance(5);
    expect(tx.state).toBe('proceeding');
    const before = p.net.packets('REGISTER').length;
    p.clock.advance(T2 - 11);
    // Timer E was set at T1 before the provisional: one more send at T1, then every T2.
    const at1 = p.net.packets('REGISTER').length;
    p.clock.advance(T2);
    expect(p.net.packets('REGISTER').length).toBe(at1 + 1);
    expect(at1).toBeGreaterThanOrEqual(before);
    // Every provisional in Proceeding goes to the user (§17.1.2.2), B resends its 100 on each retransmission.
    expect(rec.statuses.every((st) => st === 100)).toBe(true);
  });

  it('a final moves to Completed; retransmitted finals are absorbed; Timer K (T4) ends it', () => {
    const p = pair();
    p.bUser.answer = () => 200;
    const { tx, rec, req } = send(p, 'OPTIONS');
    p.clock.advance(10);
    expect(tx.state).toBe('completed');
    // Make B resend its 200 by retransmitting the request by hand.
    p.aT.send(req.toBytes(), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(2);
    expect(rec.statuses).toEqual([200]);
    p.clock.advance(T4);
    expect(tx.state).toBe('terminated');
  });

  it('Timer K is zero on a reliable transport', () => {
    const p = pair({ reliable: true });
    p.bUser.answer = () => 200;
    const { tx } = send(p, 'OPTIONS');
    p.clock.advance(3);
    expect(tx.state).toBe('terminated');
  });
});
