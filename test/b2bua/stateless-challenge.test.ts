import { describe, expect, it } from 'vitest';
import { createRequest, parseMessage, type SipResponse } from '../../src/parser/index.js';
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

  it('2 000 INVITEs without credentials from 200 ports keep nothing: no transaction, no timer, no call, no throttle entry — each gets one 407', async () => {
    const t = trunk({ statelessChallenge: true, onDestInvite: (c) => void c.answer({ body: SDP_DEST }) });
    await run(t, 10);
    const timersBefore = t.clock.pending;
    const FLOOD = '10.0.0.9';
    const ports = Array.from({ length: 200 }, (_, i) => t.net.transport(FLOOD, 20_000 + i));
    const answers = new Map<string, number>();
    for (const p of ports) {
      p.setReceiver({
        onMessage: (bytes) => {
          const m = parseMessage(bytes) as SipResponse;
          answers.set(`${m.status} ${m.callId}`, (answers.get(`${m.status} ${m.callId}`) ?? 0) + 1);
        },
        onError: () => undefined,
      });
    }
    let most = 0;
    let legit: ReturnType<typeof placeCall> | undefined;
    for (let i = 0; i < 2000; i++) {
      const port = ports[i % ports.length]!;
      const inv = createRequest({
        method: 'INVITE',
        uri: 'sip:+15551234567@demo.trunk.sipkit.test',
        via: `SIP/2.0/UDP ${FLOOD}:${port.local.port};branch=z9hG4bK-flood-${i};rport`,
        from: `<sip:1000@demo.trunk.sipkit.test>;tag=flood${i}`,
        to: '<sip:+15551234567@demo.trunk.sipkit.test>',
        callId: `flood-${i}`,
        contact: `<sip:1000@${FLOOD}:${port.local.port}>`,
      });
      void port.send(inv.toBytes(), { address: TRUNK, port: 5060 });
      if (i === 1000) legit = placeCall(t);
      if (i % 100 === 99) {
        await run(t, 5, 1);
        // Nothing armed for a flood INVITE: only the legitimate call's timers (and the network's deliveries) exist.
        if (legit === undefined) expect(t.clock.pending).toBe(timersBefore);
        most = Math.max(most, t.b2bua.stats.transactions);
      }
    }
    await run(t, 500);
    expect(legit!.state).toBe('answered');
    // Every flood INVITE got exactly one answer, a 407; none was sent again (no Timer G: never ACKed).
    await run(t, 64 * T1 + 5000, 100);
    expect(answers.size).toBe(2000);
    expect([...answers].every(([k, n]) => k.startsWith('407 ') && n === 1)).toBe(true);
    expect(t.b2bua.stats.statelessByStatus[407]).toBe(2001); // the flood's and the legitimate caller's first INVITE
    // Only the legitimate call ever held transactions (INVITE and ACK-less 2xx path: one per leg, a BYE later at most).
    expect(most).toBeLessThanOrEqual(2);
    expect(t.auth.throttledSources()).toBe(0);
    void legit!.hangup();
    await run(t, 64 * T1 + 5000, 100);
    expect(t.b2bua.stats).toMatchObject({ transactions: 0, timers: 0, calls: 0, dialogs: 0, bridges: 0 });
    expect(t.clock.pending).toBe(timersBefore);
  }, 60_000);
});
