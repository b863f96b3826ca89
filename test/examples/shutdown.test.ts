import { describe, expect, it } from 'vitest';
import type { HangupCause } from 'sipkit/dialog';
import { createShutdown, waitForCalls } from '../../examples/trunk-server/shutdown.js';
import { dial, GATEWAY, run, setup, type Setup } from './parts-harness.js';

// The shutdown part used alone on a plain B2bua; its drain deadline runs on the B2BUA's
// FakeClock, so these tests move time themselves and never wait for it.

const DRAIN_MS = 10_000;

/** A B2BUA with one answered call through it. */
async function oneCallUp() {
  const s = setup({ route: () => [{ uri: `sip:+1@${GATEWAY}:5060` }] });
  const d = dial(s, 'sip:+1@pbx.example.test');
  const ended: HangupCause[] = [];
  d.call.on('ended', (cause) => ended.push(cause));
  await run(s);
  expect(d.answered).toBe(true);
  expect(s.b2bua.activeCalls).toBe(1);
  return { s, d, ended };
}

function track(p: Promise<void>) {
  const state = { done: false };
  void p.then(() => (state.done = true));
  return state;
}

async function runFor(s: Setup, ms: number) {
  await run(s, ms, 50);
}

describe('createShutdown on a plain B2bua', () => {
  it('a drain ends when the last call ends, not at its deadline', async () => {
    const { s, d, ended } = await oneCallUp();
    const stopped = track(createShutdown({ b2bua: s.b2bua, mode: 'drain', drainMs: DRAIN_MS }).stop());
    await runFor(s, DRAIN_MS / 2);
    expect(stopped.done).toBe(false);
    // New calls are refused meanwhile.
    const late = dial(s, 'sip:+2@pbx.example.test');
    await runFor(s, 500);
    expect(late.failures).toEqual([503]);
    void d.call.hangup();
    // 2.5 s of virtual time at most: the 2 s the far ends get to answer the close, and some.
    await runFor(s, 2500);
    expect(stopped.done).toBe(true);
    expect(s.clock.now()).toBeLessThan(1_000_000 + DRAIN_MS);
    expect(ended).toMatchObject([{ by: 'local' }]);
    // The call ended by itself (the refused one left no record: it was refused before anything vouched for it).
    expect(s.ended.map((r) => r.hangup?.by)).toEqual(['caller']);
  });

  it('at the drain deadline, on the injected clock, the calls left are hung up with Reason: Q.850;cause=16', async () => {
    const { s, ended } = await oneCallUp();
    const stopped = track(createShutdown({ b2bua: s.b2bua, mode: 'drain', drainMs: DRAIN_MS }).stop());
    await runFor(s, DRAIN_MS - 500);
    expect(ended).toEqual([]);
    expect(stopped.done).toBe(false);
    await runFor(s, 3000);
    expect(ended).toMatchObject([{ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } }]);
    expect(stopped.done).toBe(true);
  });

  it("hangup mode does not wait; a 'hangup' during a drain ends the wait, and both calls share one promise", async () => {
    const { s, ended } = await oneCallUp();
    const shutdown = createShutdown({ b2bua: s.b2bua, mode: 'drain', drainMs: DRAIN_MS });
    const draining = shutdown.stop();
    const stopped = track(draining);
    await runFor(s, 500);
    expect(ended).toEqual([]);
    expect(shutdown.stop('hangup')).toBe(draining);
    await runFor(s, 2500);
    expect(stopped.done).toBe(true);
    expect(ended).toMatchObject([{ by: 'remote', reason: { cause: 16 } }]);
  });

  it('closes what is built around the B2BUA in order, after it, even when one step throws', async () => {
    const { s } = await oneCallUp();
    const steps: string[] = [];
    const logged: string[] = [];
    const shutdown = createShutdown({
      b2bua: s.b2bua,
      log: (_level, event) => logged.push(event),
      after: [
        () => steps.push(`http (calls up: ${s.b2bua.activeCalls})`),
        () => {
          throw new Error('media broke');
        },
        async () => steps.push('cdr'),
      ],
    });
    const stopped = track(shutdown.stop());
    await runFor(s, 2500);
    expect(stopped.done).toBe(true);
    expect(steps).toEqual(['http (calls up: 0)', 'cdr']);
    expect(logged).toEqual(['trunk.stopping', 'trunk.stop_step_failed', 'trunk.stopped']);
  });

  it('before-steps start at once, and are waited for (at most hangupTimeoutMs after the drain) before the B2BUA closes', async () => {
    const { s, d } = await oneCallUp();
    const order: string[] = [];
    let finishUnregister: () => void = () => undefined;
    const shutdown = createShutdown({
      b2bua: s.b2bua,
      mode: 'drain',
      drainMs: DRAIN_MS,
      before: [
        () => {
          order.push('unregister');
          return new Promise<void>((r) => (finishUnregister = () => (order.push('unregistered'), r())));
        },
        () => {
          throw new Error('boom');
        },
      ],
      after: [() => order.push('after')],
    });
    const transport = s.b2bua.ua.layer.transports[0]!;
    const close = transport.close.bind(transport);
    transport.close = () => (order.push('sockets closed'), close());
    const stopped = track(shutdown.stop());
    await runFor(s, 100);
    expect(order).toEqual(['unregister']);
    void d.call.hangup();
    await runFor(s, 500);
    // The drain is over, the unregistration not: the sockets stay open for it…
    expect(order).toEqual(['unregister']);
    finishUnregister();
    await runFor(s, 2500);
    expect(stopped.done).toBe(true);
    expect(order).toEqual(['unregister', 'unregistered', 'sockets closed', 'after']);

    // …but not for ever: a step that never ends holds the close for hangupTimeoutMs at most.
    const again = await oneCallUp();
    const stuck = track(createShutdown({ b2bua: again.s.b2bua, mode: 'hangup', hangupTimeoutMs: 1000, before: [() => new Promise(() => undefined)] }).stop());
    await runFor(again.s, 4000);
    expect(stuck.done).toBe(true);
  });

  it('waitForCalls: true at once with no calls; false when cancelled', async () => {
    const idle = setup({ route: () => [] });
    await expect(waitForCalls(idle.b2bua, DRAIN_MS, idle.clock).ended).resolves.toBe(true);
    const { s } = await oneCallUp();
    const wait = waitForCalls(s.b2bua, DRAIN_MS, s.clock);
    wait.cancel();
    await expect(wait.ended).resolves.toBe(false);
    // Nothing is left behind on the B2BUA or the clock once it is over: the deadline timer went with it.
    expect(s.clock.pending).toBe(waitingTimers(s));
  });
});

/** The clock's timers when no drain is waiting (the call's own SIP timers). */
function waitingTimers(s: Setup): number {
  const before = s.clock.pending;
  const probe = waitForCalls(s.b2bua, DRAIN_MS, s.clock);
  const during = s.clock.pending;
  probe.cancel();
  expect(during).toBe(before + 1);
  return before;
}
