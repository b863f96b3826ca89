import { describe, expect, it } from 'vitest';
import type { HangupCause } from '../../src/dialog/index.js';
import { BOB, drive, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

/** Events of a call in order, with the cause `ended` came with. */
function track(call: { on(e: string, fn: (...a: never[]) => void): unknown }) {
  const events: string[] = [];
  const ended: HangupCause[] = [];
  for (const e of ['answer', 'failure', 'hangup', 'cancel'] as const) call.on(e, () => events.push(e));
  call.on('ended', ((c: HangupCause) => {
    events.push('ended');
    ended.push(c);
  }) as never);
  return { events, ended };
}

describe('UserAgent.close() ends every call first', () => {
  it('a confirmed call gets a BYE with a Reason, `ended` is emitted, close waits for the 200', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    const mine = track(call);
    settle(p);
    const inc = p.incoming[0]!;
    const theirs = track(inc);
    await inc.answer({ body: SDP_B });
    settle(p);
    expect(call.state).toBe('answered');
    let closed = false;
    const closing = p.alice.close().then(() => (closed = true));
    // Ended at once, before any answer.
    expect(mine.events).toEqual(['answer', 'hangup', 'ended']);
    expect(mine.ended[0]).toMatchObject({ by: 'local', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
    await Promise.resolve();
    expect(closed).toBe(false);
    await drive(p, closing);
    const bye = p.net.packets('BYE')[0]!;
    expect(bye).toBeDefined();
    expect(Buffer.from(bye.bytes).toString()).toMatch(/\r\nReason: Q\.850;cause=16;text="Shutdown"\r\n/);
    // Bob answered the BYE before Alice closed her transport.
    expect(p.net.packets('SIP/2.0 200').some((x) => Buffer.from(x.bytes).toString().includes(' BYE\r\n'))).toBe(true);
    expect(theirs.events).toEqual(['hangup', 'ended']);
    expect(theirs.ended[0]).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
    expect(p.alice.stats.calls).toBe(0);
  });

  it('an outgoing early call is CANCELled with a Reason; the callee sees the cancel', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    const mine = track(call);
    settle(p);
    const inc = p.incoming[0]!;
    const theirs = track(inc);
    inc.provisional(180);
    settle(p);
    expect(call.state).toBe('early');
    const closing = p.alice.close({ reason: { protocol: 'SIP', cause: 503, text: 'Going away' } });
    expect(mine.events).toEqual(['ended']);
    expect(mine.ended[0]).toMatchObject({ by: 'local', method: 'CANCEL', reason: { protocol: 'SIP', cause: 503 } });
    await drive(p, closing);
    const cancel = p.net.packets('CANCEL')[0]!;
    expect(Buffer.from(cancel.bytes).toString()).toMatch(/\r\nReason: SIP;cause=503;text="Going away"\r\n/);
    expect(theirs.events).toEqual(['cancel', 'ended']);
    // close waited for the 487 (and ACKed it) before closing the transport.
    expect(p.net.packets('SIP/2.0 487')).toHaveLength(1);
    expect(p.net.packets('ACK')).toHaveLength(1);
  });

  it('an incoming call not yet answered gets 503 with a Reason; close waits for its ACK', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    const mine = track(call);
    settle(p);
    const inc = p.incoming[0]!;
    const theirs = track(inc);
    inc.provisional(180);
    settle(p);
    const closing = p.bob.close();
    expect(theirs.events).toEqual(['ended']);
    expect(theirs.ended[0]).toMatchObject({ by: 'local', status: 503, reason: { protocol: 'Q.850', cause: 16 } });
    await drive(p, closing);
    expect(mine.events).toEqual(['failure', 'ended']);
    expect(mine.ended[0]).toMatchObject({ by: 'remote', status: 503, reason: { protocol: 'Q.850', cause: 16 } });
    expect(p.net.packets('ACK')).toHaveLength(1);
  });

  it('waits a bounded time on the injected clock when the far end never answers, then closes anyway', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    const mine = track(call);
    settle(p);
    await p.incoming[0]!.answer({ body: SDP_B });
    settle(p);
    p.net.filter = (x) => (x.firstLine.startsWith('BYE') ? 'drop' : undefined);
    let closed = false;
    const start = p.clock.now();
    const closing = p.alice.close({ timeoutMs: 3000 }).then(() => (closed = true));
    expect(mine.events).toEqual(['answer', 'hangup', 'ended']);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    await drive(p, closing);
    expect(closed).toBe(true);
    // The BYE was retransmitted while we waited, and the wait ended on the clock, not on an answer.
    expect(p.net.packets('BYE').length).toBeGreaterThan(1);
    expect(p.clock.now() - start).toBeGreaterThanOrEqual(3000);
    expect(p.alice.stats.transactions).toBe(0);
  });

  it('a second close() is the same close; new calls are refused while closing', async () => {
    const p = uaPair();
    const a = p.alice.close();
    expect(p.alice.close()).toBe(a);
    expect(() => p.alice.invite(BOB)).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    await drive(p, a);
  });
});

describe('UserAgent.close() with nothing left to answer', () => {
  it('returns without waiting once rejected, cancelled and hung-up calls were all answered', async () => {
    const p = uaPair();
    const rejected = p.alice.invite(BOB, { body: SDP_A });
    const cancelled = p.alice.invite(BOB, { body: SDP_A });
    const hungUp = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    void p.incoming[0]!.reject(486);
    p.incoming[1]!.provisional(180);
    await p.incoming[2]!.answer({ body: SDP_B });
    settle(p);
    cancelled.cancel();
    const h = hungUp.hangup();
    settle(p);
    await h;
    expect([rejected.state, cancelled.state, hungUp.state]).toEqual(['ended', 'ended', 'ended']);
    let done = 0;
    const start = p.clock.now();
    void p.alice.close().then(() => done++);
    void p.bob.close().then(() => done++);
    for (let i = 0; i < 20 && done < 2; i++) await new Promise((r) => setImmediate(r));
    expect(done).toBe(2);
    expect(p.clock.now()).toBe(start);
  });
});
