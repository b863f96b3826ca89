import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { DigestServer } from '../../src/digest/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { UserAgent, type IncomingCall } from '../../src/dialog/index.js';
import { BOB, SDP_A, SDP_B, uaPair } from '../support/ua-harness.js';

const T1 = 500;

describe('user agent: authentication', () => {
  it('answers a 407 with the digest client and gets through', async () => {
    const clock = new FakeClock(1_000_000);
    const net = new TestNetwork({ clock });
    const auth = new DigestServer({ secret: 'a-test-secret-of-sufficient-size', realm: 'demo', lookup: (u) => (u === '1000' ? { password: 'pw' } : undefined) });
    const incoming: IncomingCall[] = [];
    new UserAgent({
      transports: [net.transport('10.0.0.2', 5060)],
      clock,
      onInvite: (c) => {
        void auth.verify(c.invite).then((r) => {
          if (r.kind === 'ok') {
            incoming.push(c);
            void c.answer({ body: SDP_B });
          } else c.tx.respond(r.response);
        });
      },
    });
    const alice = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock });
    const statuses: number[] = [];
    const call = alice.invite(BOB, { body: SDP_A, auth: { username: '1000', password: 'pw' }, on: { answer: (r) => statuses.push(r.status) } });
    for (let i = 0; i < 20; i++) {
      clock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    expect(net.packets('SIP/2.0 407')).toHaveLength(1);
    expect(net.packets('INVITE')).toHaveLength(2);
    expect(call.invite.has('proxy-authorization')).toBe(true);
    expect(call.invite.cseq.seq).toBe(2);
    expect(statuses).toEqual([200]);
    expect(incoming).toHaveLength(1);
  });

  it('a wrong password ends in a failure with the second 407', async () => {
    const clock = new FakeClock(1_000_000);
    const net = new TestNetwork({ clock });
    const auth = new DigestServer({ secret: 'a-test-secret-of-sufficient-size', realm: 'demo', lookup: () => ({ password: 'right' }) });
    new UserAgent({
      transports: [net.transport('10.0.0.2', 5060)],
      clock,
      onInvite: (c) =>
        void auth.verify(c.invite).then((r) => {
          if (r.kind === 'ok') void c.answer();
          else c.tx.respond(r.response);
        }),
    });
    const alice = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock });
    const failures: number[] = [];
    alice.invite(BOB, { auth: { username: '1000', password: 'wrong' }, on: { failure: (r) => failures.push(r.status) } });
    for (let i = 0; i < 20; i++) {
      clock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    expect(failures).toEqual([407]);
    expect(net.packets('INVITE')).toHaveLength(2);
  });
});

describe('no leaks', () => {
  it('an ended call lets go of its hooks and listeners while its transactions still wait (Timer M)', async () => {
    // A real collection, to prove nothing the application hung on the call stays reachable.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const p = uaPair({ bob: { onInvite: (c) => void c.answer({ body: SDP_B }) } });
    let appState: WeakRef<object> | undefined;
    let ended = false;
    (() => {
      // What a B2BUA hangs on a leg: its whole bridge, reachable from handlers and listeners.
      const bridge = { legs: new Array(1000).fill('x') };
      appState = new WeakRef(bridge);
      const call = p.alice.invite(BOB, {
        body: SDP_A,
        onBye: () => void bridge.legs.length,
        on: { ended: () => (ended = bridge.legs.length > 0) },
      });
      call.on('answer', () => void call.hangup());
    })();
    p.clock.advance(100);
    expect(ended).toBe(true);
    // The INVITE client transaction is still in Accepted (64·T1) and still reaches the call.
    expect(p.alice.stats.transactions).toBeGreaterThan(0);
    await new Promise((r) => setImmediate(r));
    gc();
    expect(appState!.deref()).toBeUndefined();
  });

  it('after 10 000 calls, zero calls, dialogs, transactions and timers remain', async () => {
    const p = uaPair({ bob: { onInvite: (c) => void c.answer({ body: SDP_B }) } });
    let ended = 0;
    for (let i = 0; i < 10_000; i++) {
      const call = p.alice.invite(BOB, { body: SDP_A, on: { ended: () => ended++ } });
      call.on('answer', () => void call.hangup());
      if (i % 250 === 249) p.clock.advance(20);
    }
    p.clock.advance(100);
    p.clock.advance(64 * T1 + 40_000);
    expect(ended).toBe(10_000);
    expect(p.alice.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    expect(p.bob.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    expect(p.clock.pending).toBe(0);
  });
});
