import { describe, expect, it } from 'vitest';
import { placeCall, run, SDP_DEST, trunk } from '../support/b2bua-harness.js';

const T1 = 500;

describe('B2BUA under loss', () => {
  it('with 20% loss on both legs (fixed seeds), every call ends in the same final state', async () => {
    for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) {
      const t = trunk({ seed, conditions: { loss: 0.2, delayMs: [1, 30] } });
      const outcomes: string[] = [];
      // One answered-then-hung-up call and one rejected call per seed.
      const c1 = placeCall(t, { on: { ended: (c) => outcomes.push(`c1 ${c.by} ${c.method ?? c.status}`) } });
      await run(t, 3000);
      if (t.atDest.length >= 1) await t.atDest[0]!.answer({ body: SDP_DEST });
      await run(t, 5000);
      expect(c1.state).toBe('answered');
      void c1.hangup();
      await run(t, 40_000);
      const c2 = placeCall(t, { callId: `second-${seed}`, on: { ended: (c) => outcomes.push(`c2 ${c.by} ${c.status}`) } });
      await run(t, 3000);
      void t.atDest[1]!.reject(486);
      await run(t, 64 * T1 + 40_000);
      expect(c2.state).toBe('ended');
      expect(outcomes).toEqual(['c1 local BYE', 'c2 remote 486']);
      expect(t.ended.map((r) => r.hangup!.by)).toEqual(['caller', 'callee']);
      for (const ua of [t.caller, t.dest, t.b2bua.ua]) expect(ua.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    }
  }, 60_000);
});

describe('no leaks', () => {
  it('after 10 000 bridged calls, no calls, dialogs, transactions or timers remain', async () => {
    const t = trunk({ b2bua: { authenticate: undefined }, onDestInvite: (c) => void c.answer({ body: SDP_DEST }) });
    let ended = 0;
    for (let i = 0; i < 10_000; i++) {
      const call = placeCall(t, { auth: undefined, on: { ended: () => ended++ } });
      call.on('answer', () => void call.hangup());
      if (i % 200 === 199) await run(t, 20);
    }
    await run(t, 200);
    await run(t, 64 * T1 + 40_000, 500);
    expect(ended).toBe(10_000);
    expect(t.b2bua.stats).toMatchObject({ bridges: 0, calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    for (const ua of [t.caller, t.dest]) expect(ua.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    expect(t.ended).toHaveLength(10_000);
    expect(t.clock.pending).toBe(0);
  }, 120_000);
});
