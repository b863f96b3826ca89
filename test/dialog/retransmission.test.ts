import { describe, expect, it } from 'vitest';
import { createRequest, createResponse } from '../../src/parser/index.js';
import { DEFAULT_TIMERS, type ServerTransaction } from '../../src/transaction/index.js';
import { FakeClock } from '../../src/transport/index.js';
import { Retransmitter } from '../../src/dialog/retransmitter.js';
import { BOB, drive, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

const { T1, T2 } = DEFAULT_TIMERS;

/** A Retransmitter on a fake clock with a transaction that records when it was asked to send. */
function retransmitting(kind: 'final' | 'provisional') {
  const clock = new FakeClock(0);
  const sentAt: number[] = [];
  const tx = { respond: () => sentAt.push(clock.now()) } as unknown as ServerTransaction;
  const invite = createRequest({ method: 'INVITE', uri: BOB, from: '<sip:a@10.0.0.1>;tag=1', to: `<${BOB}>`, callId: 'c1' });
  let gaveUpAt: number | undefined;
  const r = new Retransmitter(clock, DEFAULT_TIMERS, tx, createResponse(invite, kind === 'final' ? 200 : 183), kind, {
    retransmissionGaveUp: () => (gaveUpAt = clock.now()),
  });
  return { clock, sentAt, r, gaveUp: () => gaveUpAt };
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

describe('Retransmitter (one per call, on the injected clock)', () => {
  it('a 2xx: T1 doubling capped at T2, given up at 64·T1 (RFC 3261 §13.3.1.4)', () => {
    const t = retransmitting('final');
    t.r.start();
    t.clock.runAll();
    expect(gaps(t.sentAt).slice(0, 5)).toEqual([T1, 2 * T1, 4 * T1, T2, T2]);
    expect(Math.max(...gaps(t.sentAt))).toBe(T2);
    expect(t.gaveUp()).toBe(64 * T1);
    expect(t.sentAt.at(-1)).toBeLessThan(64 * T1);
    expect(t.clock.pending).toBe(0);
  });

  it('a reliable 1xx: T1 doubling without a cap, given up at 64·T1 (RFC 3262 §3)', () => {
    const t = retransmitting('provisional');
    t.r.start();
    t.clock.runAll();
    expect(t.sentAt).toEqual([0, T1, 3 * T1, 7 * T1, 15 * T1, 31 * T1, 63 * T1]);
    expect(t.gaveUp()).toBe(64 * T1);
  });

  it('stop() ends it: nothing more is sent, and it never gives up', () => {
    const t = retransmitting('final');
    t.r.start();
    t.clock.advance(T1 + 1);
    t.r.stop();
    t.clock.runAll();
    expect(t.sentAt).toEqual([0, T1]);
    expect(t.gaveUp()).toBeUndefined();
    expect(t.r.active).toBe(false);
  });
});

/** Whether a promise has settled, looked at without awaiting it. */
function watch<T>(promise: Promise<T>) {
  const w = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  promise.then(
    (v) => Object.assign(w, { settled: true, value: v }),
    (e: unknown) => Object.assign(w, { settled: true, error: e }),
  );
  return w;
}

async function turns(p: { clock: FakeClock }, n = 20, stepMs = 10): Promise<void> {
  for (let i = 0; i < n; i++) {
    p.clock.advance(stepMs);
    await new Promise((r) => setImmediate(r));
  }
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe('reliable provisionals are sent one at a time (RFC 3262 §3)', () => {
  it('a second reliable provisional waits for the PRACK of the first; an unreliable one waits behind it', async () => {
    const p = uaPair();
    let prackGetsThrough = false;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('PRACK') && !prackGetsThrough ? 'drop' : undefined);
    const seen: string[] = [];
    const call = p.alice.invite(BOB, { body: SDP_A, on: { provisional: (r) => seen.push(`${r.status} ${r.get('rseq') ?? '-'}`) } });
    settle(p);
    const inc = p.incoming[0]!;
    // What a B2BUA relaying its B leg does: 180 and 183 back to back.
    const ringing = inc.provisional(180, { reliable: true })!;
    const progress = inc.provisional(183, { body: SDP_B, reliable: true })!;
    inc.provisional(182);
    expect(progress.rseq).toBe(ringing.rseq + 1);
    p.clock.advance(T1 + 10);
    // The 180 is retransmitted (its PRACK is lost); the 183 and the 182 have not left.
    expect(p.net.packets('SIP/2.0 180')).toHaveLength(2);
    expect(p.net.packets('SIP/2.0 183')).toHaveLength(0);
    expect(p.net.packets('SIP/2.0 182')).toHaveLength(0);
    prackGetsThrough = true;
    await drive(p, Promise.all([ringing.acked, progress.acked]));
    expect(seen).toEqual([`180 ${ringing.rseq}`, `183 ${progress.rseq}`, '182 -']);
    const rsq = p.net.packets('SIP/2.0 183').map((x) => text(x.bytes));
    expect(rsq[0]).toContain(`RSeq: ${progress.rseq}`);
    await drive(p, inc.answer({ body: SDP_B }));
    settle(p);
    expect(call.state).toBe('answered');
    expect(inc.state).toBe('answered');
  });
});

describe('promises settle when what they wait for can no longer come', () => {
  it('answer() settles, without answering, when the call ends while it waits for a PRACK; acked rejects', async () => {
    const p = uaPair();
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('PRACK') ? 'drop' : undefined);
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    const rel = inc.provisional(183, { body: SDP_B, reliable: true })!;
    const acked = watch(rel.acked);
    const answering = watch(inc.answer({ body: SDP_B }));
    settle(p);
    call.cancel();
    await turns(p);
    expect(inc.state).toBe('ended');
    expect(answering.settled).toBe(true);
    expect(answering.error).toBeUndefined();
    expect(p.net.packets('SIP/2.0 200').filter((x) => text(x.bytes).includes('CSeq: 1 INVITE'))).toHaveLength(0);
    expect(acked.error).toMatchObject({ code: 'NO_DIALOG' });
  });

  it('in-dialog requests pending when the transaction layer closes reject with CLOSED', async () => {
    const p = uaPair({ bob: { onInvite: (c) => void c.answer({ body: SDP_B }) } });
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    expect(call.state).toBe('answered');
    // Bob never hears these: they stay pending until the layer goes.
    p.net.filter = (pkt) => (/^(INFO|INVITE|UPDATE) /.test(pkt.firstLine) ? 'drop' : undefined);
    const info = watch(call.request('INFO'));
    const update = watch(call.update({ body: SDP_A }));
    const reinvite = watch(call.reinvite({ body: SDP_A }));
    settle(p);
    await p.alice.layer.close();
    await turns(p, 3);
    for (const w of [info, update, reinvite]) {
      expect(w.settled).toBe(true);
      expect(w.error).toMatchObject({ code: 'CLOSED' });
    }
  });

  it('a request outside a dialog pending when the user agent closes rejects with CLOSED', async () => {
    const p = uaPair();
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('OPTIONS') ? 'drop' : undefined);
    const options = watch(p.alice.request('OPTIONS', BOB));
    settle(p);
    await drive(p, p.alice.close());
    await turns(p, 3);
    expect(options.settled).toBe(true);
    expect(options.error).toMatchObject({ code: 'CLOSED' });
  });
});

describe('a 2xx to a re-INVITE whose ACK was lost', () => {
  it('is ACKed again while the re-INVITE transaction is in Accepted, so the callee keeps the call', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    settle(p);
    expect(inc.state).toBe('answered');
    let dropped = 0;
    // The first ACK of the re-INVITE (CSeq above the INVITE's 1) is lost.
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('ACK') && !text(pkt.bytes).includes('CSeq: 1 ACK') && dropped++ === 0 ? 'drop' : undefined);
    const acks: number[] = [];
    inc.on('ack', (a) => acks.push(a.cseq.seq));
    const res = await drive(p, call.reinvite({ body: SDP_A }));
    expect(res.status).toBe(200);
    p.clock.advance(64 * T1 + 1000);
    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(acks).toEqual([res.cseq.seq]);
    expect(inc.state).toBe('answered');
    expect(call.state).toBe('answered');
    expect(p.net.packets('BYE')).toHaveLength(0);
  });
});
