import { describe, expect, it } from 'vitest';
import { createResponse, SipError } from '../../src/parser/index.js';
import {
  TransactionLayer,
  type InviteServerTransaction,
  type ServerTransaction,
  type Transaction,
  type TransactionTransition,
} from '../../src/transaction/index.js';
import { WaitQueue, WaitQueues, type Waiter } from '../../src/transaction/wait-queue.js';
import { FakeClock, type Transport } from '../../src/transport/index.js';
import { pair, send, T1 } from '../support/tx-harness.js';

// Issue #16: a transaction in a pure wait state (Timers D, I, J, K, L, M) holds no clock timer of
// its own. Each (event, duration) is a FIFO in the layer under one clock timer, which must still
// fire every waiter at exactly its due ms, and must not fire one that left its wait early.

const T4 = 5000;
const FROM = { address: '10.0.0.1', port: 5060 };

/** A transport that keeps nothing: what the layer sends goes nowhere, nothing is delivered by timers. */
function sink(reliable = false): Transport {
  return {
    protocol: reliable ? 'tcp' : 'udp',
    reliable,
    local: { address: '10.0.0.2', port: 5060 },
    setReceiver() {},
    send: () => Promise.resolve(),
    close: () => Promise.resolve(),
  } as unknown as Transport;
}

/** A layer on a sink transport that answers every request with `status`, with every step traced. */
function answering(status: number, reliable = false) {
  const clock = new FakeClock(1_000_000);
  const transport = sink(reliable);
  const steps: TransactionTransition[] = [];
  const servers: ServerTransaction[] = [];
  const layer = new TransactionLayer({
    transports: [transport],
    clock,
    tryingAfterMs: -1,
    onTransition: (t) => steps.push(t),
    user: {
      onRequest: (req, tx) => {
        servers.push(tx);
        tx.respond(createResponse(req, status));
      },
    },
  });
  const receive = (method: 'INVITE' | 'BYE', i: number) =>
    layer.receive(
      Buffer.from(
        `${method} sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/${reliable ? 'TCP' : 'UDP'} 10.0.0.1:5060;branch=z9hG4bK-wq-${method}-${i}\r\nFrom: <sip:a@10.0.0.1>;tag=a${i}\r\n` +
          `To: <sip:b@10.0.0.2>\r\nCall-ID: wq-${i}\r\nCSeq: 1 ${method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`,
      ),
      FROM,
      transport,
    );
  const fired = (event: string) => steps.filter((s) => s.event === event && !s.ignored).map((s) => s.transaction);
  return { clock, layer, steps, servers, receive, fired };
}

describe('wait timers share one clock timer per wait (issue #16)', () => {
  it('1 000 INVITE server transactions in Accepted hold one clock timer between them, each still counted by timerCount', () => {
    const s = answering(200);
    for (let i = 0; i < 1000; i++) {
      s.receive('INVITE', i);
      s.clock.advance(3);
    }
    expect(s.servers.every((t) => t.state === 'accepted')).toBe(true);
    // One Timer L for the queue (before: one per transaction).
    expect(s.clock.pending).toBe(1);
    expect(s.servers[0]!.timerCount).toBe(1);
    expect(s.layer.stats).toMatchObject({ transactions: 1000, timers: 1000 });
    s.clock.advance(64 * T1);
    expect(s.layer.stats).toMatchObject({ transactions: 0, timers: 0 });
    expect(s.clock.pending).toBe(0);
  });

  it('Timer L fires for each transaction at exactly its own due ms, in the order they came, whatever the spacing', () => {
    const s = answering(200);
    const gaps = [0, 0, 1, 7, 0, 250, 1, 31_999, 2, 0];
    const entered: number[] = [];
    gaps.forEach((gap, i) => {
      s.clock.advance(gap);
      s.receive('INVITE', i);
      entered.push(s.clock.now());
    });
    // Step 1 ms at a time: every expiry is seen at its ms, none a ms early or late.
    while (s.clock.pending > 0) s.clock.advance(1);
    const at = new Map<Transaction, number>();
    for (const step of s.steps) if (step.event === 'timer_L') at.set(step.transaction, step.at);
    expect(s.servers.map((tx) => at.get(tx))).toEqual(entered.map((t) => t + 64 * T1));
    expect(s.clock.pending).toBe(0);
  });

  it('Timer J (non-INVITE server, Completed) fires at exactly 64·T1 over UDP and at once over a connection', () => {
    for (const reliable of [false, true]) {
      const s = answering(200, reliable);
      s.receive('BYE', 1);
      s.clock.advance(5);
      s.receive('BYE', 2);
      const [a, b] = s.servers;
      const wait = reliable ? 0 : 64 * T1;
      expect(a!.state).toBe(reliable ? 'terminated' : 'completed');
      if (reliable) continue; // a 0 ms wait ran within advance(5)
      s.clock.advance(wait - 5 - 1);
      expect([a!.state, b!.state]).toEqual(['completed', 'completed']);
      s.clock.advance(1);
      expect([a!.state, b!.state]).toEqual(['terminated', 'completed']);
      s.clock.advance(4);
      expect(b!.state).toBe('completed');
      s.clock.advance(1);
      expect(b!.state).toBe('terminated');
      expect(s.clock.pending).toBe(0);
    }
  });

  it('Timers D, I, J, K, L and M each fire at exactly their duration after their state was entered (UDP)', () => {
    const waits: Record<string, Record<string, string>> = {
      'invite-client': { completed: 'timer_D', accepted: 'timer_M' },
      'invite-server': { confirmed: 'timer_I', accepted: 'timer_L' },
      'non-invite-client': { completed: 'timer_K' },
      'non-invite-server': { completed: 'timer_J' },
    };
    const entered = new Map<Transaction, { event: string; at: number }>();
    const waited = new Map<string, number[]>();
    const watch = (t: TransactionTransition) => {
      const event = waits[t.transaction.kind]![t.to];
      if (event !== undefined && t.from !== t.to) entered.set(t.transaction, { event, at: t.at });
      const e = entered.get(t.transaction);
      if (e !== undefined && t.event === e.event && !t.ignored) waited.set(e.event, [...(waited.get(e.event) ?? []), t.at - e.at]);
    };
    const p = pair({ layer: { onTransition: watch } });
    const statuses = [486, 200, 200, 200];
    p.bUser.answer = () => statuses.shift();
    // INVITE 486 (client D, server I), BYE 200 (K, J), INVITE 200 (M, L), one more BYE 3 ms later.
    send(p, 'INVITE');
    p.clock.advance(1);
    send(p, 'BYE');
    p.clock.advance(1);
    send(p, 'INVITE');
    p.clock.advance(3);
    send(p, 'BYE');
    expect(p.clock.pending).toBeGreaterThan(0);
    p.clock.advance(64 * T1 + 40_000);
    expect(Object.fromEntries([...waited].sort())).toEqual({
      timer_D: [32_000],
      timer_I: [T4],
      timer_J: [64 * T1, 64 * T1],
      timer_K: [T4, T4],
      timer_L: [64 * T1],
      timer_M: [64 * T1],
    });
    expect(p.a.stats.transactions + p.b.stats.transactions).toBe(0);
    expect(p.clock.pending).toBe(0);
  });

  it('over a connection, Timers D, I, J and K are 0: each waiting transaction ends in the same ms, with no clock timer left', () => {
    const p = pair({ reliable: true });
    const statuses = [486, 200];
    p.bUser.answer = () => statuses.shift();
    const { tx: invite } = send(p, 'INVITE');
    const { tx: bye } = send(p, 'BYE');
    p.clock.advance(50);
    expect([invite.state, bye.state]).toEqual(['terminated', 'terminated']);
    expect(p.bUser.requests.map((r) => r.tx.state)).toEqual(['terminated', 'terminated']);
    expect(p.clock.pending).toBe(0);
  });
});

describe('a waiter that leaves its wait early', () => {
  it('is not fired later, and the queue keeps no reference to it once its slot is passed', () => {
    const s = answering(200);
    s.receive('INVITE', 1);
    s.clock.advance(100);
    s.receive('INVITE', 2);
    const [first, second] = s.servers as InviteServerTransaction[];
    first!.abort();
    expect(first!.terminated).toBe(true);
    expect(first!.timerCount).toBe(0);
    const queue = (s.layer as unknown as { waits: WaitQueues }).waits;
    expect(queue.size).toBe(1);
    // The second still waits under the one clock timer; the first's slot fires nothing.
    expect(s.clock.pending).toBe(1);
    s.clock.advance(64 * T1 - 100);
    expect(s.fired('timer_L')).toEqual([]);
    const slots = () => (queue as unknown as { queues: Array<{ waiters: unknown[] }> }).queues.flatMap((q) => q.waiters);
    expect(slots()).not.toContain(first);
    expect(slots()).toContain(second);
    s.clock.advance(100);
    expect(s.fired('timer_L')).toEqual([second]);
    expect(slots().filter((w) => w !== undefined)).toEqual([]);
    expect(s.clock.pending).toBe(0);
  });

  it('the last waiter of a queue leaving early takes the clock timer with it at once', () => {
    const s = answering(200);
    s.receive('INVITE', 1);
    s.receive('BYE', 2);
    expect(s.clock.pending).toBe(2); // Timer L's queue, Timer J's queue
    s.servers[0]!.abort();
    expect(s.clock.pending).toBe(1);
    s.servers[1]!.abort();
    expect(s.clock.pending).toBe(0);
    s.clock.advance(64 * T1);
    expect(s.fired('timer_L')).toEqual([]);
    expect(s.fired('timer_J')).toEqual([]);
  });

  it('layer.close() leaves no clock timer pending, however many transactions waited', async () => {
    const s = answering(200);
    for (let i = 0; i < 50; i++) {
      s.receive('INVITE', i);
      s.receive('BYE', i);
      s.clock.advance(7);
    }
    expect(s.clock.pending).toBe(2);
    await s.layer.close();
    expect(s.clock.pending).toBe(0);
    expect(s.layer.stats).toMatchObject({ transactions: 0, timers: 0 });
    s.clock.advance(64 * T1);
    expect(s.fired('timer_L')).toEqual([]);
  });
});

describe('WaitQueue', () => {
  class Probe implements Waiter {
    firedAt: number | undefined;
    queue: WaitQueue | undefined;
    constructor(private readonly clock: FakeClock, private readonly then?: () => void) {}
    waitsOn(q: WaitQueue): boolean {
      return this.queue === q;
    }
    expireWait(): void {
      this.queue = undefined;
      this.firedAt = this.clock.now();
      this.then?.();
    }
    leave(): void {
      this.queue?.cancel();
      this.queue = undefined;
    }
  }

  it('one queue per (event, duration): the same event at another duration waits apart', () => {
    const clock = new FakeClock();
    const qs = new WaitQueues(clock);
    const a = new Probe(clock);
    const b = new Probe(clock);
    const c = new Probe(clock);
    a.queue = qs.enter(a, 'timer_J', 32_000);
    b.queue = qs.enter(b, 'timer_J', 0);
    c.queue = qs.enter(c, 'timer_J', 32_000);
    expect(a.queue).toBe(c.queue);
    expect(a.queue).not.toBe(b.queue);
    expect([qs.size, qs.armed, clock.pending]).toEqual([3, 2, 2]);
    clock.advance(0);
    expect([a.firedAt, b.firedAt, c.firedAt]).toEqual([undefined, 0, undefined]);
    clock.advance(32_000);
    expect([a.firedAt, c.firedAt]).toEqual([32_000, 32_000]);
    expect([qs.size, qs.armed, clock.pending]).toEqual([0, 0, 0]);
  });

  it('a wait of no duration (NaN, negative) is due at once and does not hold up the 0 ms queue', () => {
    const clock = new FakeClock();
    const qs = new WaitQueues(clock);
    const a = new Probe(clock);
    const b = new Probe(clock);
    const c = new Probe(clock);
    a.queue = qs.enter(a, 'timer_K', Number.NaN);
    b.queue = qs.enter(b, 'timer_K', -5);
    c.queue = qs.enter(c, 'timer_K', 0);
    expect(a.queue).toBe(c.queue);
    clock.advance(0);
    expect([a.firedAt, b.firedAt, c.firedAt]).toEqual([0, 0, 0]);
    expect(clock.pending).toBe(0);
  });

  it('a waiter added by a callback of the same 0 ms queue waits for the next turn (same ms), under one clock timer', () => {
    const clock = new FakeClock();
    const qs = new WaitQueues(clock);
    const later = new Probe(clock);
    const first = new Probe(clock, () => {
      later.queue = qs.enter(later, 'timer_K', 0);
      expect(clock.pending).toBe(0);
    });
    first.queue = qs.enter(first, 'timer_K', 0);
    clock.advance(0);
    expect([first.firedAt, later.firedAt]).toEqual([0, 0]);
    expect(clock.pending).toBe(0);
  });

  it('on a coarse clock (RealClock: a wheel ticking every tickMs) a long wait re-arms at most once a tick, each waiter at most a tick late, never early', () => {
    // A FakeClock that says what RealClock says of itself: timers of 5 s or more may fire up to
    // 500 ms late. A waiter a ms for 2 s against a 32 s wait: without batching the queue would
    // arm a clock timer per waiter (one ends every ms on a busy trunk); with it, one per tick.
    const fake = new FakeClock();
    const arms: number[] = [];
    const clock = Object.assign(Object.create(fake) as FakeClock, {
      coarseTimers: { fromMs: 5000, tickMs: 500 },
      setTimerWith<A>(ms: number, fn: (arg: A) => void, arg: A) {
        arms.push(ms);
        return fake.setTimerWith(ms, fn, arg);
      },
    });
    const q = new WaitQueue(clock, 'timer_L', 32_000);
    const probes: Probe[] = [];
    for (let i = 0; i < 2000; i++) {
      const w = new Probe(fake);
      w.queue = q.add(w);
      probes.push(w);
      fake.advance(1);
    }
    while (fake.pending > 0) fake.advance(1);
    probes.forEach((w, i) => {
      const late = w.firedAt! - (i + 32_000);
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThanOrEqual(500);
    });
    // The first arm for the whole wait, then one a tick across the 2 s the waiters came over.
    expect(arms.length).toBeLessThanOrEqual(1 + 2000 / 500 + 1);
    expect(arms.slice(1).every((ms) => ms >= 500)).toBe(true);
    // A short wait (under fromMs) on the same clock stays exact.
    const k = new WaitQueue(clock, 'timer_K', 4000);
    const a = new Probe(fake);
    const b = new Probe(fake);
    a.queue = k.add(a);
    fake.advance(3);
    b.queue = k.add(b);
    fake.advance(4000);
    expect([a.firedAt! - b.firedAt!]).toEqual([-3]);
  });

  it('due times come from the clock\'s monotonic time: a wall clock stepped back an hour (or forward) neither holds up nor hastens a wait', () => {
    const fake = new FakeClock(1_000_000);
    let step = 0;
    const clock = Object.assign(Object.create(fake) as FakeClock, {
      now: () => fake.now() + step,
      monotonicNow: () => fake.now(),
    });
    const q = new WaitQueue(clock, 'timer_L', 32_000);
    const a = new Probe(fake);
    const b = new Probe(fake);
    a.queue = q.add(a);
    step = -3_600_000;
    fake.advance(1000);
    b.queue = q.add(b);
    step = +3_600_000;
    fake.advance(30_999);
    expect([a.firedAt, b.firedAt]).toEqual([undefined, undefined]);
    fake.advance(1);
    expect(a.firedAt).toBe(1_032_000);
    step = -7_200_000;
    fake.advance(1000);
    expect(b.firedAt).toBe(1_033_000);
    expect(q.size).toBe(0);
  });

  it('a waiter is counted out before its event runs: a callback that throws, or closes the queue and adds another, leaves the count true', () => {
    const clock = new FakeClock();
    const q = new WaitQueue(clock, 'timer_K', 10);
    const thrower = new Probe(clock, () => {
      throw new Error('TU failed');
    });
    thrower.queue = q.add(thrower);
    expect(() => clock.advance(10)).toThrow('TU failed');
    expect([q.size, q.armed, clock.pending]).toEqual([0, false, 0]);
    // A callback that closes the queue (the layer closing) and then adds a waiter: that one waits.
    const late = new Probe(clock);
    const closer = new Probe(clock, () => {
      q.close();
      late.queue = q.add(late);
    });
    const skipped = new Probe(clock);
    closer.queue = q.add(closer);
    skipped.queue = q.add(skipped);
    clock.advance(10);
    expect(q.size).toBe(1);
    expect(skipped.firedAt).toBeUndefined();
    clock.advance(10);
    expect(late.firedAt).toBe(30);
    expect([q.size, clock.pending]).toEqual([0, 0]);
  });

  it('10 000 waiters, some leaving early: every one left fires at its due ms, the slots are compacted, nothing is kept after', () => {
    const clock = new FakeClock();
    const q = new WaitQueue(clock, 'timer_M', 1000);
    const probes: Probe[] = [];
    const due: number[] = [];
    let longest = 0;
    // 3 a ms for 3 334 ms against a 1 000 ms wait: ~3 000 wait at any time, 10 000 pass through.
    for (let i = 0; i < 10_000; i++) {
      const w = new Probe(clock);
      w.queue = q.add(w);
      probes.push(w);
      due.push(clock.now() + 1000);
      // Every tenth leaves 30 arrivals (~10 ms) after it came.
      if (i >= 30 && (i - 30) % 10 === 0) probes[i - 30]!.leave();
      if (i % 3 === 0) clock.advance(1);
      longest = Math.max(longest, (q as unknown as { waiters: unknown[] }).waiters.length);
      expect(clock.pending).toBe(1);
    }
    while (clock.pending > 0) clock.advance(1);
    probes.forEach((w, i) => expect(w.firedAt).toBe(i % 10 === 0 && i < 10_000 - 30 ? undefined : due[i]));
    expect(q.size).toBe(0);
    expect((q as unknown as { waiters: unknown[] }).waiters).toEqual([]);
    // Passed slots are dropped now and then: far fewer than the 10 000 that came.
    expect(longest).toBeLessThan(6000);
  });
});

describe('timer invariants', () => {
  it('a live timer the tables do not know, or a wait armed over a live timer, is a TIMER_INVARIANT SipError', () => {
    const p = pair();
    const { tx } = send(p, 'INVITE');
    const internals = tx as unknown as { startTimer(e: string, ms: number): void; startWait(e: string, ms: number): void };
    expect(() => internals.startTimer('timer_X', 10)).toThrow(SipError);
    expect(() => internals.startTimer('timer_X', 10)).toThrow(expect.objectContaining({ code: 'TIMER_INVARIANT' }));
    // Calling: Timers A and B are armed, so no wait may start.
    expect(() => internals.startWait('timer_M', 10)).toThrow(expect.objectContaining({ code: 'TIMER_INVARIANT' }));
    expect(tx.timerCount).toBe(2);
  });
});

describe('what a waiting transaction is made of', () => {
  it('each kind in its wait state has these fields and no others: two timer fields (no event names), no per-transaction fallback hook', () => {
    // A field is 8 bytes on every transaction an ended call leaves waiting (issue #16): one added
    // here should be one that pays. The TCP size fallback (retryOver) is kept aside, as rare.
    const p = pair();
    p.bUser.answer = () => 200;
    const { tx: invite } = send(p, 'INVITE');
    const { tx: bye } = send(p, 'BYE');
    p.clock.advance(50);
    const [inviteServer, byeServer] = p.bUser.requests.map((r) => r.tx);
    const base = ['key', 'req', 'dest', 'host', 't0', 't1', 'onTerminated', 'st'];
    const client = [...base, 'user', 'bytes', 'interval', 'last'];
    const server = [...base, 'provisional', 'lastBytes', 'lastStatus', 'onTransportError', 'retryElsewhere'];
    const fields = (tx: object) => Object.keys(tx).sort();
    expect([invite.state, bye.state, inviteServer!.state, byeServer!.state]).toEqual(['accepted', 'completed', 'accepted', 'completed']);
    expect(fields(invite)).toEqual([...client, 'ack', 'cancelState', 'sendCancel'].sort());
    expect(fields(bye)).toEqual([...client].sort());
    expect(fields(inviteServer!)).toEqual([...server, 'interval', 'onConfirmed'].sort());
    expect(fields(byeServer!)).toEqual([...server].sort());
  });
});
