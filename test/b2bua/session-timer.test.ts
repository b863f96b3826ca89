import { describe, expect, it } from 'vitest';
import { parseMessage, type SipMessage } from '../../src/parser/index.js';
import type { HangupCause } from '../../src/dialog/index.js';
import type { Packet } from '../../src/transport/index.js';
import { CALLER, DEST, placeCall, run, SDP_DEST, TRUNK, trunk, type Trunk } from '../support/b2bua-harness.js';

// RFC 4028 through the B2BUA: each leg has its own session timer, and one leg's session
// ending (expiry, failed refresh) ends the other with the same Reason.

function msgs(t: Trunk, start: string, from: string, to: string): SipMessage[] {
  return t.net
    .packets(start)
    .filter((p: Packet) => p.from.address === from && p.to.address === to)
    .map((p) => parseMessage(p.bytes));
}

async function bridged(sessionTimer: { seconds?: number; minSeconds?: number } | undefined, callerAsks: { seconds: number } | false, headers: Array<[string, string]> = []) {
  const t = trunk({ b2bua: sessionTimer ? { sessionTimer } : {} });
  const callerEnded: HangupCause[] = [];
  const a = placeCall(t, { sessionTimer: callerAsks, headers, on: { ended: (c) => callerEnded.push(c) } });
  await run(t);
  const b = t.atDest[0]!;
  const destEnded: HangupCause[] = [];
  b.on('ended', (c) => destEnded.push(c));
  await b.answer({ body: SDP_DEST });
  await run(t);
  expect(a.state).toBe('answered');
  return { t, a, b, callerEnded, destEnded };
}

describe('B2BUA session timers (RFC 4028)', () => {
  it('each leg negotiates its own interval: the caller’s Session-Expires is not crossed', async () => {
    const { t, a, b } = await bridged({ seconds: 1800 }, { seconds: 90 });
    const okToCaller = msgs(t, 'SIP/2.0 200', TRUNK, CALLER).find((m) => m.cseq.method === 'INVITE')!;
    expect(okToCaller.get('session-expires')).toBe('90;refresher=uac');
    expect(okToCaller.getAll('require')).toContain('timer');
    const inviteToDest = msgs(t, 'INVITE', TRUNK, DEST)[0]!;
    expect(inviteToDest.get('session-expires')).toBe('1800');
    expect(inviteToDest.getAll('supported')).toContain('timer');
    expect(a.sessionInterval).toEqual({ seconds: 90, refresher: 'local' });
    // The destination does no timers: the trunk refreshes the B leg itself (§7.2).
    expect(b.sessionInterval).toBeUndefined();
    expect(t.b2bua.list()[0]!.state).toBe('answered');
  });

  it("the caller's refreshes are answered by the trunk, not carried to the destination", async () => {
    const { t, a } = await bridged({ seconds: 1800 }, { seconds: 90 });
    await run(t, 300_000, 500);
    expect(new Set(msgs(t, 'UPDATE', CALLER, TRUNK).map((m) => m.cseq.seq)).size).toBeGreaterThanOrEqual(6);
    expect(msgs(t, 'UPDATE', TRUNK, DEST)).toHaveLength(0);
    expect(msgs(t, 'INVITE', TRUNK, DEST)).toHaveLength(1);
    expect(a.state).toBe('answered');
    expect(t.ended).toHaveLength(0);
  });

  it('the caller stops refreshing: the trunk BYEs it at expiry and BYEs the destination with the same Reason', async () => {
    const { t, callerEnded, destEnded } = await bridged({ seconds: 1800 }, { seconds: 90 });
    t.net.filter = (p) => (p.firstLine.startsWith('UPDATE') && p.from.address === CALLER ? 'drop' : undefined);
    await run(t, 59_500, 500);
    expect(t.ended).toHaveLength(0);
    await run(t, 1000, 50);
    const toCaller = msgs(t, 'BYE', TRUNK, CALLER)[0]!;
    const toDest = msgs(t, 'BYE', TRUNK, DEST)[0]!;
    expect(toCaller.get('reason')).toBe('Q.850;cause=102;text="Session timer expired"');
    expect(toDest.get('reason')).toBe('Q.850;cause=102;text="Session timer expired"');
    expect(callerEnded[0]).toMatchObject({ by: 'remote', reason: { cause: 102 } });
    expect(destEnded[0]).toMatchObject({ by: 'remote', reason: { cause: 102 } });
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', q850: 102 });
  });

  it('a failed refresh on the destination leg (it vanished: 408) ends both legs with the relayed cause', async () => {
    const { t, a, callerEnded } = await bridged({ seconds: 90 }, { seconds: 1800 });
    // The caller asked 1800 and the trunk lowered it to its 90 (§9); the destination's leg is refreshed by the trunk.
    expect(a.sessionInterval).toEqual({ seconds: 90, refresher: 'local' });
    t.net.filter = (p) => (p.from.address === DEST ? 'drop' : undefined);
    await run(t, 45_000 + 33_000, 500);
    const toDest = msgs(t, 'BYE', TRUNK, DEST)[0]!;
    expect(toDest.get('reason')).toBe('Q.850;cause=102;text="Session refresh failed (408)"');
    const toCaller = msgs(t, 'BYE', TRUNK, CALLER)[0]!;
    expect(toCaller.get('reason')).toBe('Q.850;cause=102;text="Session refresh failed (408)"');
    expect(callerEnded[0]).toMatchObject({ by: 'remote', method: 'BYE', reason: { cause: 102 } });
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', q850: 102, status: undefined });
  });

  it('the destination leg is refreshed on its own while the caller refreshes the caller leg', async () => {
    const { t, a, b } = await bridged({ seconds: 90 }, { seconds: 90 });
    await run(t, 200_000, 500);
    // Re-INVITEs (the destination's 2xx had no Allow), none of them relayed to the caller.
    const toDest = msgs(t, 'INVITE', TRUNK, DEST).slice(1);
    expect(new Set(toDest.map((m) => m.cseq.seq)).size).toBeGreaterThanOrEqual(4);
    // The trunk's own refreshes (it is the B leg's UAC and refresher), not the caller's relayed.
    for (const m of toDest) expect(m.get('session-expires')).toBe('90;refresher=uac');
    expect(msgs(t, 'INVITE', TRUNK, CALLER)).toHaveLength(0);
    expect(a.state).toBe('answered');
    expect(b.state).toBe('answered');
  });

  it('Require: timer from the caller is refused with 420 when the trunk has no session timer, accepted when it has', async () => {
    const off = trunk();
    const failures: number[] = [];
    placeCall(off, { sessionTimer: { seconds: 90 }, headers: [['Require', 'timer']], on: { failure: (r) => failures.push(r.status) } });
    await run(off);
    expect(failures).toEqual([420]);
    const on = await bridged({ seconds: 1800 }, { seconds: 90 }, [['Require', 'timer']]);
    expect(on.a.state).toBe('answered');
  });

  it('off: no Session-Expires on either leg', async () => {
    const { t } = await bridged(undefined, false);
    expect(msgs(t, 'INVITE', TRUNK, DEST)[0]!.has('session-expires')).toBe(false);
    expect(msgs(t, 'SIP/2.0 200', TRUNK, CALLER)[0]!.has('session-expires')).toBe(false);
  });
});
