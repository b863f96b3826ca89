import { describe, expect, it } from 'vitest';
import { pair, send, T1 } from '../support/tx-harness.js';

const SEEDS = Array.from({ length: 40 }, (_, i) => 1000 + i);

describe('transactions over a lossy network (fixed seeds)', () => {
  it('with 30% loss both ways, non-INVITE transactions complete', () => {
    let completed = 0;
    let total = 0;
    for (const seed of SEEDS) {
      const p = pair({ seed, conditions: { loss: 0.3, delayMs: [1, 40] } });
      p.bUser.answer = () => 200;
      const runs = Array.from({ length: 5 }, () => send(p, 'OPTIONS'));
      p.clock.advance(64 * T1 + 10_000);
      for (const { tx, rec } of runs) {
        total++;
        expect(tx.state).toBe('terminated');
        // Exactly one final reaches the user: the real one, or a 408 if every try was lost.
        expect(rec.finals).toHaveLength(1);
        if (rec.finals[0]!.status === 200) completed++;
      }
      // A retransmitted request never creates a second transaction at the server.
      expect(p.bUser.requests).toHaveLength(5);
      expect(p.a.stats).toMatchObject({ transactions: 0, timers: 0 });
      expect(p.b.stats).toMatchObject({ transactions: 0, timers: 0 });
    }
    // 11 tries of a 49%-likely round trip: all but a rare unlucky one complete.
    expect(completed / total).toBeGreaterThanOrEqual(0.99);
  });

  it('with 30% loss both ways, INVITE transactions with a non-2xx final complete and are ACKed', () => {
    let completed = 0;
    let total = 0;
    for (const seed of SEEDS) {
      const p = pair({ seed, conditions: { loss: 0.3, delayMs: [1, 40] } });
      p.bUser.answer = () => 486;
      const runs = Array.from({ length: 5 }, () => send(p, 'INVITE'));
      p.clock.advance(64 * T1 + 40_000);
      for (const { rec } of runs) {
        total++;
        expect(rec.finals).toHaveLength(1);
        if (rec.finals[0]!.status === 486) completed++;
      }
      expect(p.bUser.requests).toHaveLength(5);
      for (const { tx } of p.bUser.requests) {
        // The server either saw an ACK (Confirmed) or gave up with Timer H; either way it is gone.
        expect(tx.state).toBe('terminated');
      }
      expect(p.a.stats).toMatchObject({ transactions: 0, timers: 0 });
      expect(p.b.stats).toMatchObject({ transactions: 0, timers: 0 });
    }
    expect(completed / total).toBeGreaterThanOrEqual(0.97);
  });

  it('duplicated and reordered packets change nothing', () => {
    for (const seed of SEEDS) {
      const p = pair({ seed, conditions: { duplicate: 0.5, delayMs: [1, 200] } });
      p.bUser.answer = (req) => (req.method === 'INVITE' ? 486 : 200);
      const runs = [send(p, 'OPTIONS'), send(p, 'INVITE'), send(p, 'REGISTER'), send(p, 'INVITE')];
      p.clock.advance(64 * T1 + 40_000);
      expect(p.bUser.requests).toHaveLength(4);
      expect(runs.map((r) => r.rec.statuses.filter((s) => s >= 200))).toEqual([[200], [486], [200], [486]]);
      expect(p.a.stats.transactions + p.b.stats.transactions).toBe(0);
    }
  });
});

describe('no leaks', () => {
  it('after 10 000 transactions complete, zero transactions and zero timers remain', () => {
    const p = pair();
    p.bUser.answer = (req) => (req.method === 'INVITE' ? 404 : 200);
    const recs = [];
    for (let i = 0; i < 10_000; i++) {
      recs.push(send(p, i % 2 ? 'INVITE' : 'OPTIONS').rec);
      if (i % 500 === 499) p.clock.advance(20);
    }
    p.clock.advance(40_000);
    expect(recs.every((r) => r.finals.length === 1)).toBe(true);
    expect(p.a.stats).toMatchObject({ transactions: 0, timers: 0 });
    expect(p.b.stats).toMatchObject({ transactions: 0, timers: 0 });
    expect(p.clock.pending).toBe(0);
  });
});
