import { describe, expect, it } from 'vitest';
import { parseMessage, SipError, type SipMessage } from '../../src/parser/index.js';
import { FakeClock, TestNetwork, type Packet } from '../../src/transport/index.js';
import { UserAgent, type HangupCause, type IncomingCall, type OfferAnswer, type SessionRefresh, type SessionTimerOptions, type UserAgentOptions } from '../../src/dialog/index.js';
import { BOB, SDP_A, SDP_B } from '../support/ua-harness.js';

// RFC 4028 on two user agents over the in-memory network, all on a FakeClock.

interface Pair {
  clock: FakeClock;
  net: TestNetwork;
  alice: UserAgent;
  bob: UserAgent;
  incoming: IncomingCall[];
}

function pair(alice: SessionTimerOptions | undefined, bob: SessionTimerOptions | undefined, bobOptions: Partial<UserAgentOptions> = {}): Pair {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: 3 });
  const incoming: IncomingCall[] = [];
  const a = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock, contactUser: 'alice', sessionTimer: alice });
  const b = new UserAgent({ transports: [net.transport('10.0.0.2', 5060)], clock, contactUser: 'bob', sessionTimer: bob, onInvite: (c) => incoming.push(c), ...bobOptions });
  return { clock, net, alice: a, bob: b, incoming };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

/** Advance virtual time in small steps, letting promise continuations run (bounded by `ms`). */
async function run(p: Pair, ms: number, step = 50): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    p.clock.advance(Math.min(step, ms - t));
    await flush();
  }
}

function parsed(pk: Packet): SipMessage {
  return parseMessage(pk.bytes);
}

function sent(p: Pair, start: string, from?: string): SipMessage[] {
  return p.net
    .packets(start)
    .filter((pk) => from === undefined || pk.from.address === from)
    .map(parsed);
}

/** Place and answer a call; resolves once the ACK has arrived. */
async function answered(p: Pair, invite: Parameters<UserAgent['invite']>[1] = {}) {
  const events: { alice: SessionRefresh[]; bob: SessionRefresh[]; aliceEnded: HangupCause[]; bobEnded: HangupCause[] } = { alice: [], bob: [], aliceEnded: [], bobEnded: [] };
  const call = p.alice.invite(BOB, { body: SDP_A, ...invite, on: { refreshed: (r) => events.alice.push(r), ended: (c) => events.aliceEnded.push(c), ...invite.on } });
  await run(p, 100);
  const inc = p.incoming[0]!;
  inc.on('refreshed', (r) => events.bob.push(r));
  inc.on('ended', (c) => events.bobEnded.push(c));
  await inc.answer({ body: SDP_B });
  await run(p, 100);
  expect(call.state).toBe('answered');
  return { call, inc, events };
}

describe('session timers (RFC 4028)', () => {
  it('§7.1/§9: the INVITE asks with Supported: timer, Session-Expires and Min-SE; the 2xx names interval and refresher with Require: timer', async () => {
    const p = pair({ seconds: 1200, minSeconds: 120 }, { seconds: 1800 });
    const { call, inc } = await answered(p);
    const invite = sent(p, 'INVITE')[0]!;
    expect(invite.getAll('supported')).toContain('timer');
    expect(invite.get('session-expires')).toBe('1200');
    expect(invite.get('min-se')).toBe('120');
    const ok = sent(p, 'SIP/2.0 200', '10.0.0.2')[0]!;
    // The UAS may only lower the interval (§9): 1200 stands; the UAC supports timers, so it refreshes by default.
    expect(ok.get('session-expires')).toBe('1200;refresher=uac');
    expect(ok.getAll('require')).toContain('timer');
    expect(call.sessionInterval).toEqual({ seconds: 1200, refresher: 'local' });
    expect(inc.sessionInterval).toEqual({ seconds: 1200, refresher: 'remote' });
  });

  it('the refresher sends an UPDATE at half the interval (the peer allows UPDATE); the call outlives many intervals', async () => {
    const p = pair({ seconds: 90 }, {});
    const { call, inc, events } = await answered(p);
    await run(p, 44_000, 500);
    expect(sent(p, 'UPDATE')).toHaveLength(0);
    await run(p, 2000, 100);
    const updates = sent(p, 'UPDATE');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.get('session-expires')).toBe('90;refresher=uac');
    expect(updates[0]!.bodyLength).toBe(0);
    await run(p, 10 * 45_000, 1000);
    expect(sent(p, 'UPDATE').length).toBeGreaterThanOrEqual(10);
    expect(call.state).toBe('answered');
    expect(inc.state).toBe('answered');
    expect(sent(p, 'BYE')).toHaveLength(0);
    expect(events.alice[0]).toEqual({ seconds: 90, refresher: 'local', method: 'UPDATE', direction: 'sent' });
    expect(events.bob[0]).toEqual({ seconds: 90, refresher: 'remote', method: 'UPDATE', direction: 'received' });
    // Ending the call stops its timers.
    const bye = call.hangup();
    await run(p, 40_000, 1000);
    await bye;
    expect(p.alice.stats).toMatchObject({ calls: 0, timers: 0 });
    expect(p.bob.stats).toMatchObject({ calls: 0, timers: 0 });
  });

  it('method INVITE: the refresh is a re-INVITE with the same SDP, answered without the onUpdate policy (a pure refresh)', async () => {
    const seen: string[] = [];
    const p = pair({ seconds: 90, method: 'INVITE' }, {}, {
      incomingCallHandlers: {
        onUpdate: (req): OfferAnswer => {
          seen.push(req.method);
          return { status: 500 };
        },
      },
    });
    const { call } = await answered(p);
    await run(p, 46_000, 500);
    const reinvites = sent(p, 'INVITE').slice(1);
    expect(reinvites).toHaveLength(1);
    expect(Buffer.from(reinvites[0]!.body).toString()).toBe(SDP_A);
    expect(reinvites[0]!.get('session-expires')).toBe('90;refresher=uac');
    expect(seen).toEqual([]);
    expect(sent(p, 'ACK').length).toBe(2);
    await run(p, 200_000, 1000);
    expect(call.state).toBe('answered');
  });

  it('§10: no refresh arrives — the other side BYEs at the interval minus min(32 s, a third) with Reason Q.850 102', async () => {
    const p = pair({ seconds: 90 }, {});
    const { call, events } = await answered(p);
    // The refresher's UPDATEs never reach Bob.
    p.net.filter = (pk) => (pk.firstLine.startsWith('UPDATE') ? 'drop' : undefined);
    await run(p, 59_800, 200);
    expect(sent(p, 'BYE')).toHaveLength(0);
    await run(p, 400, 50);
    const byes = sent(p, 'BYE', '10.0.0.2');
    expect(byes).toHaveLength(1);
    expect(byes[0]!.get('reason')).toBe('Q.850;cause=102;text="Session timer expired"');
    expect(events.bobEnded[0]).toMatchObject({ by: 'system', method: 'BYE', reason: { protocol: 'Q.850', cause: 102 } });
    expect(events.aliceEnded[0]).toMatchObject({ by: 'remote', method: 'BYE', reason: { cause: 102 } });
    expect(call.state).toBe('ended');
  });

  it('§10: with 1800 s the BYE comes 32 s before expiry', async () => {
    const p = pair({ seconds: 1800 }, {});
    await answered(p);
    // Alice vanishes: her refresh (and the BYE after it timed out) never reach Bob.
    p.net.filter = (pk) => (pk.from.address === '10.0.0.1' ? 'drop' : undefined);
    await run(p, 1767_500, 5000);
    expect(new Set(sent(p, 'UPDATE').map((m) => m.cseq.seq)).size).toBe(1);
    expect(sent(p, 'BYE', '10.0.0.2')).toHaveLength(0);
    await run(p, 1000, 100);
    expect(sent(p, 'BYE', '10.0.0.2').length).toBeGreaterThanOrEqual(1);
  });

  it('§10: a refresh that times out (408) ends the call with a BYE from the refresher', async () => {
    const p = pair({ seconds: 1800 }, {});
    const { events } = await answered(p);
    // Bob vanishes: nothing it sends arrives (it would BYE at 1768 s; the refresher learns at 900 s + 32 s).
    p.net.filter = (pk) => (pk.from.address === '10.0.0.2' ? 'drop' : undefined);
    await run(p, 900_000 + 33_000, 1000);
    const byes = sent(p, 'BYE', '10.0.0.1');
    // One BYE (retransmitted: Bob hears nothing and answers nothing).
    expect(new Set(byes.map((b) => b.cseq.seq)).size).toBe(1);
    expect(byes[0]!.get('reason')).toBe('Q.850;cause=102;text="Session refresh failed (408)"');
    expect(events.aliceEnded[0]).toMatchObject({ by: 'system', method: 'BYE', reason: { cause: 102 } });
  });

  it('§10: a refresh answered 481 ends the call with a BYE (Reason Q.850 41)', async () => {
    // Bob does no timers (the caller refreshes, §7.2) and answers the UPDATE 481.
    const p = pair({ seconds: 90 }, undefined, { incomingCallHandlers: { onUpdate: () => ({ status: 481 }) } });
    const { events } = await answered(p);
    await run(p, 46_000, 500);
    expect(sent(p, 'BYE', '10.0.0.1')[0]!.get('reason')).toBe('Q.850;cause=41;text="Session refresh failed (481)"');
    expect(events.aliceEnded[0]).toMatchObject({ by: 'system', method: 'BYE' });
  });

  it('§14.1: a refresh answered 491 is tried again after a back-off, and the call stays up', async () => {
    let n = 0;
    const p = pair({ seconds: 90 }, undefined, { incomingCallHandlers: { onUpdate: () => ({ status: n++ === 0 ? 491 : 200 }) } });
    const { call, events } = await answered(p);
    await run(p, 46_000, 500);
    // Bob's 2xx had no Allow: re-INVITEs, which retry after a 491 with the §14.1 back-off (2.1–4 s for the Call-ID owner).
    expect(sent(p, 'INVITE')).toHaveLength(2);
    await run(p, 5000, 100);
    expect(sent(p, 'INVITE')).toHaveLength(3);
    expect(events.alice).toHaveLength(1);
    await run(p, 100_000, 1000);
    expect(call.state).toBe('answered');
  });

  it('§7.2: a UAS without timers answers no Session-Expires — the UAC refreshes with its own interval (re-INVITE: no Allow)', async () => {
    const p = pair({ seconds: 120 }, undefined);
    const { call } = await answered(p);
    const ok = sent(p, 'SIP/2.0 200', '10.0.0.2')[0]!;
    expect(ok.has('session-expires')).toBe(false);
    expect(ok.has('allow')).toBe(false);
    expect(call.sessionInterval).toEqual({ seconds: 120, refresher: 'local' });
    await run(p, 59_000, 500);
    expect(sent(p, 'INVITE')).toHaveLength(1);
    await run(p, 2000, 100);
    expect(sent(p, 'UPDATE')).toHaveLength(0);
    expect(sent(p, 'INVITE')[1]!.get('session-expires')).toBe('120;refresher=uac');
  });

  it('§9: a UAC without timers — the UAS refreshes (refresher=uas, no Require: timer)', async () => {
    const p = pair(undefined, { seconds: 90 });
    const { call, inc } = await answered(p);
    const invite = sent(p, 'INVITE')[0]!;
    expect(invite.has('session-expires')).toBe(false);
    expect(invite.getAll('supported')).not.toContain('timer');
    const ok = sent(p, 'SIP/2.0 200', '10.0.0.2')[0]!;
    expect(ok.get('session-expires')).toBe('90;refresher=uas');
    expect(ok.getAll('require')).not.toContain('timer');
    expect(call.sessionInterval).toBeUndefined();
    expect(inc.sessionInterval).toEqual({ seconds: 90, refresher: 'local' });
    await run(p, 46_000, 500);
    const update = sent(p, 'UPDATE', '10.0.0.2');
    expect(update).toHaveLength(1);
    expect(update[0]!.get('session-expires')).toBe('90;refresher=uac');
  });

  it("refresher election: the request's refresher parameter stands; else the UAS's preference", async () => {
    const asked = pair({ seconds: 90, refresher: 'remote' }, { refresher: 'remote' });
    await answered(asked);
    expect(sent(asked, 'INVITE')[0]!.get('session-expires')).toBe('90;refresher=uas');
    expect(sent(asked, 'SIP/2.0 200', '10.0.0.2')[0]!.get('session-expires')).toBe('90;refresher=uas');

    const chosen = pair({ seconds: 90 }, { refresher: 'local' });
    const { inc } = await answered(chosen);
    expect(sent(chosen, 'SIP/2.0 200', '10.0.0.2')[0]!.get('session-expires')).toBe('90;refresher=uas');
    expect(inc.sessionInterval?.refresher).toBe('local');
    await run(chosen, 46_000, 500);
    expect(sent(chosen, 'UPDATE', '10.0.0.2')).toHaveLength(1);
  });

  it('§9: the UAS lowers an interval to its own but never below the request Min-SE, and never raises it', async () => {
    const lower = pair({ seconds: 3600 }, { seconds: 1800 });
    await answered(lower);
    expect(sent(lower, 'SIP/2.0 200', '10.0.0.2')[0]!.get('session-expires')).toBe('1800;refresher=uac');

    const floor = pair({ seconds: 1800, minSeconds: 1200 }, { seconds: 600 });
    await answered(floor);
    expect(sent(floor, 'SIP/2.0 200', '10.0.0.2')[0]!.get('session-expires')).toBe('1200;refresher=uac');

    const noRaise = pair({ seconds: 300 }, { seconds: 1800 });
    await answered(noRaise);
    expect(sent(noRaise, 'SIP/2.0 200', '10.0.0.2')[0]!.get('session-expires')).toBe('300;refresher=uac');
  });

  it('§7.3/§9: an interval below the UAS Min-SE gets 422 with Min-SE; the UAC retries with it, new CSeq, same Call-ID and From tag', async () => {
    const p = pair({ seconds: 120 }, { seconds: 1800, minSeconds: 600 });
    const { call } = await answered(p);
    const [first, retry] = sent(p, 'INVITE');
    const tooSmall = sent(p, 'SIP/2.0 422')[0]!;
    expect(tooSmall.get('min-se')).toBe('600');
    expect(p.incoming).toHaveLength(1);
    expect(retry!.get('session-expires')).toBe('600');
    expect(retry!.get('min-se')).toBe('600');
    expect(retry!.cseq.seq).toBe(first!.cseq.seq + 1);
    expect(retry!.callId).toBe(first!.callId);
    expect(retry!.from.tag).toBe(first!.from.tag);
    expect(retry!.topVia!.branch).not.toBe(first!.topVia!.branch);
    expect(call.sessionInterval?.seconds).toBe(600);
  });

  it('§9: a refresh asking less than our Min-SE is refused with 422 in the dialog; a malformed Session-Expires gets 400', async () => {
    const p = pair({ seconds: 600 }, { seconds: 600, minSeconds: 300 });
    const { call } = await answered(p);
    const pending = call.update({ headers: [['Supported', 'timer'], ['Session-Expires', '120;refresher=uac']] });
    await run(p, 200);
    const small = await pending;
    expect(small.status).toBe(422);
    expect(small.get('min-se')).toBe('300');
    const bad = p.alice.invite(BOB, { body: SDP_A, sessionTimer: false, headers: [['Session-Expires', 'soon']] });
    const failures: number[] = [];
    bad.on('failure', (r) => failures.push(r.status));
    await run(p, 200);
    expect(failures).toEqual([400]);
    expect(p.incoming).toHaveLength(1);
  });

  it('a refresh from the peer restarts the interval: the non-refresher does not BYE while refreshes arrive', async () => {
    const p = pair({ seconds: 90 }, { seconds: 90 });
    const { inc, events } = await answered(p);
    await run(p, 300_000, 1000);
    expect(inc.state).toBe('answered');
    expect(events.bob.length).toBeGreaterThanOrEqual(6);
    expect(sent(p, 'BYE')).toHaveLength(0);
  });

  it('off: no timer headers, no session interval, no per-call timers', async () => {
    const off = pair(undefined, undefined);
    const { call, inc } = await answered(off);
    expect(sent(off, 'INVITE')[0]!.has('session-expires')).toBe(false);
    expect(sent(off, 'SIP/2.0 200', '10.0.0.2')[0]!.has('session-expires')).toBe(false);
    expect(call.sessionInterval).toBeUndefined();
    expect(inc.sessionInterval).toBeUndefined();
    await run(off, 40_000, 1000);
    // The answered call holds no timer of its own once the transactions are gone.
    expect(off.alice.stats.timers).toBe(0);
    expect(off.bob.stats.timers).toBe(0);
    expect(off.clock.pending).toBe(0);
  });

  it('options are checked: Min-SE below 90 s only with allowShortIntervals; seconds not below minSeconds', () => {
    const clock = new FakeClock();
    const net = new TestNetwork({ clock });
    let port = 5060;
    const make = (o: SessionTimerOptions) => () => new UserAgent({ transports: [net.transport('10.0.0.9', port++)], clock, sessionTimer: o });
    expect(make({ minSeconds: 30 })).toThrow(SipError);
    expect(make({ minSeconds: 30 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(make({ seconds: 100, minSeconds: 200 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(make({ seconds: 1.5 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(make({ refresher: 'me' as never })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(make({ seconds: 6, minSeconds: 4, allowShortIntervals: true })).not.toThrow();
  });
});
