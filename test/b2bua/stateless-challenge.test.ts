import { describe, expect, it } from 'vitest';
import { parseMessage, type SipResponse } from '../../src/parser/index.js';
import { placeCall, run, SDP_DEST, TRUNK, trunk } from '../support/b2bua-harness.js';

const T1 = 500;

// Issue #16 target 2: an INVITE without credentials is challenged statelessly (B2buaOptions.challenge):
// no server transaction, no call, no Timer G retransmission of the 407; its ACK is absorbed.

const is407 = (line: string) => line.startsWith('<- 407');

describe('stateless challenge (B2buaOptions.challenge)', () => {
  it('an INVITE without credentials gets one 407 and leaves nothing behind; its ACK is absorbed', async () => {
    const t = trunk({ statelessChallenge: true });
    const outcome: number[] = [];
    placeCall(t, { auth: undefined, on: { ended: (c) => outcome.push(c.status ?? 0) } });
    await run(t, 50);
    expect(outcome).toEqual([407]);
    // Nothing was created for it: no transaction (so no Timer G, no Timer H), no call, no record.
    expect(t.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, calls: 0, bridges: 0, statelessAcksAbsorbed: 1 });
    expect(t.b2bua.list()).toHaveLength(0);
    await run(t, 64 * T1 + 5000, 100);
    // One INVITE, one 407, its ACK: the 407 was never sent again.
    expect(t.seen('A')).toEqual(['-> INVITE', '<- 407 Proxy Authentication Required', '-> ACK']);
    expect(t.b2bua.stats.statelessResponses).toBe(1);
  });

  it('a retransmitted INVITE gets the same 407 again, with the same To tag', async () => {
    const t = trunk({ statelessChallenge: true });
    // Lose the first 407: the caller's Timer A retransmits the INVITE.
    let dropped = 0;
    t.net.filter = (p) => (p.from.address === TRUNK && p.firstLine.startsWith('SIP/2.0 407') && dropped++ === 0 ? 'drop' : undefined);
    placeCall(t, { auth: undefined });
    await run(t, 64 * T1 + 5000, 50);
    expect(t.seen('A')).toEqual(['-> INVITE', '<- 407 Proxy Authentication Required', '-> INVITE', '<- 407 Proxy Authentication Required', '-> ACK']);
    const tags = t.net.log
      .filter((p) => p.from.address === TRUNK && p.firstLine.startsWith('SIP/2.0 407'))
      .map((p) => (parseMessage(p.bytes) as SipResponse).to.tag);
    expect(tags).toHaveLength(2);
    expect(tags[1]).toBe(tags[0]);
    expect(t.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, statelessAcksAbsorbed: 1 });
  });

  it('a call with credentials goes through as before (407 stateless, then the stateful path)', async () => {
    const t = trunk({ statelessChallenge: true, onDestInvite: (c) => void c.answer({ body: SDP_DEST }) });
    const call = placeCall(t);
    await run(t, 500);
    expect(call.state).toBe('answered');
    expect(t.b2bua.stats.statelessAcksAbsorbed).toBe(1);
    void call.hangup();
    await run(t, 500);
    expect(await call.byeResponse).toMatchObject({ status: 200 });
    await run(t, 64 * T1 + 5000, 100);
    expect(t.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, calls: 0, dialogs: 0, bridges: 0 });
    expect(t.ended).toHaveLength(1);
  });

  it('30 calls with auth at 15% loss on both legs all complete, and each 407 answers one INVITE', async () => {
    const t = trunk({ seed: 16, statelessChallenge: true, conditions: { loss: 0.15, delayMs: [1, 30] }, onDestInvite: (c) => void c.answer({ body: SDP_DEST }) });
    const calls = Array.from({ length: 30 }, (_, i) => placeCall(t, { callId: `lossy-${i}` }));
    await run(t, 40_000, 20);
    expect(calls.map((c) => c.state)).toEqual(calls.map(() => 'answered'));
    await run(t, 5000, 20);
    for (const c of calls) void c.hangup();
    await run(t, 40_000, 20);
    // Every BYE is answered 200 by the trunk: the caller's dialog is the trunk's (no To tag taken from a stray 407).
    const byes = await Promise.all(calls.map((c) => c.byeResponse));
    expect(byes.map((r) => r?.status)).toEqual(calls.map(() => 200));
    // Stateless: the trunk sent a 407 only in answer to an INVITE without credentials that reached it
    // (a stateful one resent it on Timer G whenever its ACK was lost, and after the call was up).
    const sent407 = t.net.log.filter((p) => p.from.address === TRUNK && p.firstLine.startsWith('SIP/2.0 407')).length;
    const unsignedInvites = t.net.log.filter(
      (p) => p.to.address === TRUNK && p.firstLine.startsWith('INVITE') && !/\r\nProxy-Authorization:/i.test(Buffer.from(p.bytes).toString('latin1')),
    ).length;
    expect(sent407).toBeGreaterThanOrEqual(30);
    expect(sent407).toBeLessThanOrEqual(unsignedInvites);
    expect(t.seen('A').filter(is407).length).toBe(sent407);
    await run(t, 64 * T1 + 5000, 200);
    expect(t.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, calls: 0, dialogs: 0, bridges: 0 });
    expect(t.ended).toHaveLength(30);
  }, 60_000);
});
