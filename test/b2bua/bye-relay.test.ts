import { describe, expect, it } from 'vitest';
import type { SipResponse } from '../../src/parser/index.js';
import { CALLER, DEST, placeCall, run, SDP_DEST, trunk } from '../support/b2bua-harness.js';

const T1 = 500;

/** A call up through the trunk, then one side's address goes silent (everything sent to it is lost). */
async function answeredThenSilent(silent: string) {
  const t = trunk();
  const a = placeCall(t);
  await run(t);
  await t.atDest[0]!.answer({ body: SDP_DEST });
  await run(t);
  expect(a.state).toBe('answered');
  t.net.filter = (p) => (p.to.address === silent ? 'drop' : undefined);
  return { t, a, b: t.atDest[0]! };
}

function settled(p: Promise<SipResponse> | undefined): { res: SipResponse | undefined } {
  const box: { res: SipResponse | undefined } = { res: undefined };
  void p?.then((r) => (box.res = r));
  return box;
}

describe('a BYE is answered at once and relayed (RFC 3261 §15.1.2)', () => {
  it('the caller\'s BYE gets its 200 at once while the dead callee\'s BYE times out after 64·T1; the record says so', async () => {
    const { t, a } = await answeredThenSilent(DEST);
    void a.hangup({ reason: { protocol: 'Q.850', cause: 16 } });
    const callerBye = settled(a.byeResponse);
    // A few ms of network, far below T1: the 200 does not wait for the other leg.
    await run(t, 20);
    expect(callerBye.res?.status).toBe(200);
    const rec = t.ended[0]!;
    expect(rec.hangup).toMatchObject({ by: 'caller', q850: 16, relayedBye: { to: 'callee', outcome: 'pending' } });
    // The relayed BYE carries the caller's Reason.
    const relayed = t.net.packets('BYE').filter((p) => p.to.address === DEST);
    expect(relayed.length).toBeGreaterThan(0);
    expect(Buffer.from(relayed[0]!.bytes).toString()).toMatch(/\r\nReason: Q\.850;cause=16\r\n/i);
    await run(t, 64 * T1 + 100, 50);
    expect(rec.hangup!.relayedBye).toEqual({ to: 'callee', outcome: 'timeout', status: 408 });
  });

  it('the callee\'s BYE gets its 200 at once while the dead caller\'s BYE times out', async () => {
    const { t, b } = await answeredThenSilent(CALLER);
    void b.hangup({ reason: { protocol: 'Q.850', cause: 31 } });
    const calleeBye = settled(b.byeResponse);
    await run(t, 20);
    expect(calleeBye.res?.status).toBe(200);
    const rec = t.ended[0]!;
    expect(rec.hangup).toMatchObject({ by: 'callee', q850: 31, relayedBye: { to: 'caller', outcome: 'pending' } });
    await run(t, 64 * T1 + 100, 50);
    expect(rec.hangup!.relayedBye).toEqual({ to: 'caller', outcome: 'timeout', status: 408 });
  });

  it('a live other leg: the relayed BYE is recorded as answered with its status, and an update event says so', async () => {
    const t = trunk();
    const a = placeCall(t);
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    const updates: string[] = [];
    t.b2bua.on('update', (r) => updates.push(r.hangup?.relayedBye?.outcome ?? '-'));
    void a.hangup();
    await run(t);
    expect(t.ended[0]!.hangup!.relayedBye).toEqual({ to: 'callee', outcome: 'answered', status: 200 });
    expect(updates.at(-1)).toBe('answered');
  });
});
