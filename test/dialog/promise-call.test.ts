import { describe, expect, it, vi } from 'vitest';
import { DigestServer } from '../../src/digest/index.js';
import { Call, CallFailedError, type HangupCause, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import { parseMessage, SipError, type SipRequest } from '../../src/parser/index.js';
import { BOB, drive, SDP_A, SDP_B, settle, uaPair, type UaPair } from '../support/ua-harness.js';

const T1 = 500;

/** The rejection of `promise` (the test fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<CallFailedError> {
  try {
    await promise;
  } catch (err) {
    return err as CallFailedError;
  }
  throw new Error('expected the call to be rejected');
}

/** Whether `promise` has settled, after letting pending callbacks run. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setImmediate(r));
  return settled;
}

function sent(p: UaPair, method: string): SipRequest[] {
  return p.net.packets(method + ' ').map((pkt) => parseMessage(pkt.bytes) as SipRequest);
}

describe('ua.call(): a promise of the answered call', () => {
  it('resolves with the call on 200, and the listeners given in `on` still fire', async () => {
    const p = uaPair();
    const events: string[] = [];
    const pending = p.alice.call(BOB, { body: SDP_A, on: { provisional: (r) => events.push('prov ' + r.status), answer: (r) => events.push('answer ' + r.status) } });
    settle(p);
    p.incoming[0]!.provisional(180);
    settle(p);
    expect(await isSettled(pending)).toBe(false);
    await p.incoming[0]!.answer({ body: SDP_B });
    settle(p);
    const call = await pending;
    expect(call.state).toBe('answered');
    expect(call.direction).toBe('outgoing');
    expect(call.remoteSdp && Buffer.from(call.remoteSdp).toString()).toBe(SDP_B);
    expect(events).toEqual(['prov 180', 'answer 200']);
    expect(p.net.packets('ACK')).toHaveLength(1);
  });

  it("settles even when the application's own answer listener throws (the emitter reports that error)", async () => {
    const reported = vi.spyOn(Call.prototype, 'onListenerError').mockImplementation(() => undefined);
    try {
      const p = uaPair();
      const pending = p.alice.call(BOB, {
        on: {
          answer: () => {
            throw new Error('listener bug');
          },
        },
      });
      settle(p);
      await p.incoming[0]!.answer();
      settle(p);
      expect(await isSettled(pending)).toBe(true);
      expect((await pending).state).toBe('answered');
      expect(reported).toHaveBeenCalledWith(expect.objectContaining({ message: 'listener bug' }), 'answer');
    } finally {
      reported.mockRestore();
    }
  });

  it('rejects on 486 with a CallFailedError: CALL_REJECTED, status, phrase, Reason, by remote, the response', async () => {
    const p = uaPair();
    const failures: HangupCause[] = [];
    const pending = p.alice.call(BOB, { on: { failure: (_r, c) => failures.push(c) } });
    settle(p);
    void p.incoming[0]!.reject(486, { reason: { protocol: 'Q.850', cause: 17, text: 'User busy' } });
    settle(p);
    const err = await rejection(pending);
    expect(err).toBeInstanceOf(CallFailedError);
    expect(err).toBeInstanceOf(SipError);
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 486, phrase: 'Busy Here', by: 'remote', reason: { protocol: 'Q.850', cause: 17, text: 'User busy' } });
    expect(err.response?.status).toBe(486);
    // The event API is untouched.
    expect(failures).toEqual([expect.objectContaining({ by: 'remote', status: 486 })]);
    // Plain data for logs: the response stays out of JSON.
    const json = JSON.parse(JSON.stringify(err));
    expect(Object.keys(json).sort()).toEqual(['by', 'code', 'message', 'name', 'phrase', 'reason', 'status']);
    expect(json).toMatchObject({ name: 'CallFailedError', code: 'CALL_REJECTED', status: 486, phrase: 'Busy Here', by: 'remote', reason: { protocol: 'Q.850', cause: 17 } });
  });

  it('a callee that never answers: Timer B, TIMEOUT by system with the synthesized 408', async () => {
    const p = uaPair();
    const pending = p.alice.call('sip:nobody@10.0.0.99');
    p.clock.advance(64 * T1 + 1);
    expect(await rejection(pending)).toMatchObject({ code: 'TIMEOUT', status: 408, by: 'system' });
  });

  it('nothing listens (connection refused on a reliable transport): TRANSPORT_FAILED by system with the synthesized 503', async () => {
    const p = uaPair({ reliable: true });
    const err = await rejection(drive(p, p.alice.call('sip:nobody@10.0.0.99:5060;transport=tcp'), 1000));
    expect(err).toMatchObject({ code: 'TRANSPORT_FAILED', status: 503, by: 'system' });
    expect(err.response?.status).toBe(503);
  });

  it('throws what invite() throws as a rejection (NO_DESTINATION), sending nothing', async () => {
    const p = uaPair();
    expect(await rejection(p.alice.call('tel:+15551234567'))).toMatchObject({ code: 'NO_DESTINATION' });
    expect(p.net.packets('INVITE')).toHaveLength(0);
  });

  it('close() before the answer: CLOSED, with the CANCEL it sent', async () => {
    const p = uaPair();
    const pending = p.alice.call(BOB);
    settle(p);
    p.incoming[0]!.provisional(180);
    settle(p);
    const closed = p.alice.close();
    const err = await rejection(pending);
    expect(err).toMatchObject({ code: 'CLOSED', by: 'local', reason: { protocol: 'Q.850', cause: 16 } });
    await drive(p, closed);
    expect(p.net.packets('CANCEL')).toHaveLength(1);
  });

  it('answers a 407 with the credentials in its options (async onInvite doing digest auth)', async () => {
    const auth = new DigestServer({ secret: 'a-test-secret-of-sufficient-size', realm: 'demo', lookup: (u) => (u === '1000' ? { password: 'pw' } : undefined) });
    const p = uaPair({
      bob: {
        onInvite: async (c: IncomingCall) => {
          const r = await auth.verify(c.invite);
          if (r.kind !== 'ok') return c.rejectWith(r.response);
          await c.answer({ body: SDP_B });
        },
      },
    });
    const call = await drive(p, p.alice.call(BOB, { body: SDP_A, auth: { username: '1000', password: 'pw' } }), 2000);
    expect(call.state).toBe('answered');
    expect(p.net.packets('SIP/2.0 407')).toHaveLength(1);
    expect(p.net.packets('INVITE')).toHaveLength(2);
    expect(call.invite.has('proxy-authorization')).toBe(true);
    // Without credentials the 407 is the answer.
    const err = await rejection(drive(p, p.alice.call(BOB, { body: SDP_A }), 2000));
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 407, by: 'remote' });
  });
});

describe('ua.call(): ring timeout', () => {
  it('no final in time: CANCEL with Reason Q.850 19 after a 180, RING_TIMEOUT at once; the 487 ends the call', async () => {
    const p = uaPair();
    const ended: HangupCause[] = [];
    const pending = p.alice.call(BOB, { ringTimeoutMs: 5000, on: { ended: (c) => ended.push(c) } });
    settle(p);
    const inc = p.incoming[0]!;
    inc.provisional(180);
    p.clock.advance(4800);
    expect(await isSettled(pending)).toBe(false);
    expect(p.net.packets('CANCEL')).toHaveLength(0);
    p.clock.advance(200);
    const err = await rejection(pending);
    expect(err).toMatchObject({ code: 'RING_TIMEOUT', by: 'local', status: undefined, reason: { protocol: 'Q.850', cause: 19 } });
    const [cancel] = sent(p, 'CANCEL');
    expect(cancel!.get('reason')).toBe('Q.850;cause=19;text="No answer from user"');
    settle(p);
    expect(inc.cause).toMatchObject({ by: 'remote', method: 'CANCEL', reason: { protocol: 'Q.850', cause: 19 } });
    expect(ended).toEqual([expect.objectContaining({ by: 'local', method: 'CANCEL', status: 487 })]);
    expect(p.alice.stats.calls).toBe(0);
  });

  it('nothing but 100 Trying: the CANCEL says Q.850 18 (no user responding)', async () => {
    const p = uaPair();
    const pending = p.alice.call(BOB, { ringTimeoutMs: 1000 });
    p.clock.advance(1000);
    expect(await rejection(pending)).toMatchObject({ code: 'RING_TIMEOUT', reason: { protocol: 'Q.850', cause: 18 } });
    settle(p);
    expect(sent(p, 'CANCEL').map((c) => c.get('reason'))).toEqual(['Q.850;cause=18;text="No user responding"']);
    expect(p.incoming[0]!.cause).toMatchObject({ by: 'remote', method: 'CANCEL' });
  });

  it('a 200 that crosses the CANCEL is ACKed and BYEd (§9.1); the promise still rejects with RING_TIMEOUT', async () => {
    const p = uaPair();
    // The callee's 200s are lost until the CANCEL has left: its next retransmission crosses the CANCEL.
    let cancelled = false;
    p.net.filter = (pkt) => {
      if (pkt.firstLine.startsWith('CANCEL')) cancelled = true;
      return !cancelled && pkt.firstLine.startsWith('SIP/2.0 200') && /CSeq: *1 INVITE/i.test(pkt.bytes.toString()) ? 'drop' : undefined;
    };
    const pending = p.alice.call(BOB, { body: SDP_A, ringTimeoutMs: 3000 });
    settle(p);
    const inc = p.incoming[0]!;
    inc.provisional(180);
    p.clock.advance(2000);
    await inc.answer({ body: SDP_B });
    p.clock.advance(1000);
    const err = await rejection(pending);
    expect(err.code).toBe('RING_TIMEOUT');
    expect(p.net.packets('CANCEL')).toHaveLength(1);
    expect(p.net.packets('ACK')).toHaveLength(0);
    p.clock.advance(4 * T1);
    expect(p.net.packets('ACK').length).toBeGreaterThanOrEqual(1);
    const [bye] = sent(p, 'BYE');
    expect(bye!.get('reason')).toBe('Q.850;cause=19;text="No answer from user"');
    settle(p);
    expect(inc.cause).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 19 } });
    expect(p.alice.stats.calls).toBe(0);
  });

  it('answered in time: the timer is cancelled and the call lives on', async () => {
    const p = uaPair();
    const pending = p.alice.call(BOB, { ringTimeoutMs: 1000 });
    settle(p);
    await p.incoming[0]!.answer();
    settle(p);
    const call = await pending;
    p.clock.advance(5000);
    expect(call.state).toBe('answered');
    expect(p.net.packets('CANCEL')).toHaveLength(0);
    expect(p.net.packets('BYE')).toHaveLength(0);
  });
});

describe('ua.call(): AbortSignal', () => {
  it('abort while ringing: CANCEL (with a ReasonInit given as the abort reason), CALL_CANCELLED', async () => {
    const p = uaPair();
    const ac = new AbortController();
    const pending = p.alice.call(BOB, { signal: ac.signal });
    settle(p);
    p.incoming[0]!.provisional(180);
    settle(p);
    ac.abort({ protocol: 'Q.850', cause: 16, text: 'Normal call clearing' });
    const err = await rejection(pending);
    expect(err).toBeInstanceOf(CallFailedError);
    expect(err).toMatchObject({ code: 'CALL_CANCELLED', by: 'local', reason: { protocol: 'Q.850', cause: 16 } });
    settle(p);
    expect(sent(p, 'CANCEL').map((c) => c.get('reason'))).toEqual(['Q.850;cause=16;text="Normal call clearing"']);
    expect(p.incoming[0]!.cause).toMatchObject({ by: 'remote', method: 'CANCEL' });
  });

  it('a plain abort() sends a CANCEL without Reason', async () => {
    const p = uaPair();
    const ac = new AbortController();
    const pending = p.alice.call(BOB, { signal: ac.signal });
    settle(p);
    p.incoming[0]!.provisional(180);
    settle(p);
    ac.abort();
    expect(await rejection(pending)).toMatchObject({ code: 'CALL_CANCELLED', reason: undefined });
    settle(p);
    expect(sent(p, 'CANCEL').map((c) => c.has('reason'))).toEqual([false]);
  });

  it('already aborted: no INVITE leaves', async () => {
    const p = uaPair();
    const pending = p.alice.call(BOB, { signal: AbortSignal.abort() });
    expect(await rejection(pending)).toMatchObject({ code: 'CALL_CANCELLED' });
    settle(p);
    expect(p.net.packets('INVITE')).toHaveLength(0);
  });

  it('abort after the answer does nothing to the call', async () => {
    const p = uaPair();
    const ac = new AbortController();
    const pending = p.alice.call(BOB, { signal: ac.signal });
    settle(p);
    await p.incoming[0]!.answer();
    settle(p);
    const call = await pending;
    ac.abort();
    settle(p);
    expect(call.state).toBe('answered');
    expect(p.net.packets('CANCEL')).toHaveLength(0);
    expect(p.net.packets('BYE')).toHaveLength(0);
  });
});

describe('call.whenEnded', () => {
  async function answered(p: UaPair): Promise<{ call: OutgoingCall; inc: IncomingCall }> {
    const pending = p.alice.call(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    settle(p);
    return { call: await pending, inc };
  }

  it("resolves on both sides with the BYE's Reason, and with the same cause as the ended event", async () => {
    const p = uaPair();
    const { call, inc } = await answered(p);
    const events: HangupCause[] = [];
    call.on('ended', (c) => events.push(c));
    const mine = call.whenEnded;
    const theirs = inc.whenEnded;
    expect(call.whenEnded).toBe(mine);
    expect(await isSettled(mine)).toBe(false);
    void inc.hangup({ reason: { protocol: 'Q.850', cause: 16, text: 'Normal call clearing' } });
    settle(p);
    expect(await isSettled(mine)).toBe(true);
    expect(await isSettled(theirs)).toBe(true);
    expect(await mine).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
    expect(await mine).toBe(events[0]);
    expect(await theirs).toMatchObject({ by: 'local', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
  });

  it('read after the end: already resolved with the cause', async () => {
    const p = uaPair();
    const pending = p.alice.call(BOB);
    settle(p);
    void p.incoming[0]!.reject(603);
    settle(p);
    await rejection(pending);
    const inc = p.incoming[0]!;
    expect(await inc.whenEnded).toMatchObject({ by: 'local', status: 603 });
  });

  it('costs nothing until read: no promise is made for a call nobody awaits', async () => {
    const p = uaPair();
    const { call, inc } = await answered(p);
    const latch = (c: object) => (c as { endedLatch?: unknown }).endedLatch;
    void call.hangup();
    settle(p);
    expect(latch(call)).toBeUndefined();
    expect(latch(inc)).toBeUndefined();
    expect(await inc.whenEnded).toMatchObject({ by: 'remote', method: 'BYE' });
  });
});
