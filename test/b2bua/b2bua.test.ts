import { describe, expect, it } from 'vitest';
import { createResponse, type Reason } from '../../src/parser/index.js';
import { DEST2, placeCall, run, SDP_DEST, trunk } from '../support/b2bua-harness.js';

const T1 = 500;

describe('hangup-cause relay', () => {
  const table: Array<[number, string | undefined, number]> = [
    [404, undefined, 1],
    [486, undefined, 17],
    [480, undefined, 18],
    [403, undefined, 21],
    [603, undefined, 21],
    [486, 'Q.850;cause=17;text="User busy"', 17],
    [404, 'Q.850;cause=3', 3],
    [484, undefined, 28],
    [600, undefined, 17],
  ];
  for (const [status, reason, q850] of table) {
    it(`${status}${reason ? ' with ' + reason : ''} → ${status} to the caller, Q.850 ${q850}`, async () => {
      const t = trunk();
      const got: Array<{ status: number; phrase: string; reason: Reason | undefined; raw: string | undefined }> = [];
      placeCall(t, { on: { failure: (r, c) => got.push({ status: r.status, phrase: r.reason, reason: c.reason, raw: r.get('reason') }) } });
      await run(t);
      const b = t.atDest[0]!;
      b.rejectWith(
        (() => {
          const r = createResponse(b.invite, status, { toTag: b.localTag, reason: 'Custom Phrase ' + status });
          if (reason) r.append('Reason', reason);
          return r;
        })(),
      );
      await run(t);
      expect(got).toHaveLength(1);
      expect(got[0]!.status).toBe(status);
      expect(got[0]!.phrase).toBe('Custom Phrase ' + status);
      expect(got[0]!.reason).toMatchObject({ protocol: 'Q.850', cause: q850 });
      if (reason) expect(got[0]!.raw).toBe(reason);
      expect(t.ended[0]!.hangup).toMatchObject({ by: 'callee', status, q850 });
      // The callee said why: no target error of the trunk's own.
      expect(t.ended[0]!.hangup!.targetError).toBeUndefined();
    });
  }

  it('BYE from the destination reaches the caller with its Reason', async () => {
    const t = trunk();
    const causes: unknown[] = [];
    const call = placeCall(t, { on: { hangup: (c) => causes.push(c) } });
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    void t.atDest[0]!.hangup({ reason: { protocol: 'Q.850', cause: 16, text: 'Normal call clearing' } });
    await run(t);
    expect(causes).toEqual([expect.objectContaining({ by: 'remote', method: 'BYE', reason: expect.objectContaining({ protocol: 'Q.850', cause: 16, text: 'Normal call clearing' }) })]);
    expect(call.state).toBe('ended');
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'callee', q850: 16 });
    // The destination's BYE is answered at once (§15.1.2); the relayed BYE goes to the caller.
    expect(t.seen('B').slice(-2)).toEqual(['-> BYE', '<- 200 OK']);
  });

  it('BYE from the caller reaches the destination with the caller\'s Reason', async () => {
    const t = trunk();
    const call = placeCall(t);
    await run(t);
    const b = t.atDest[0]!;
    await b.answer({ body: SDP_DEST });
    await run(t);
    const causes: unknown[] = [];
    b.on('hangup', (c) => causes.push(c));
    void call.hangup({ reason: { protocol: 'SIP', cause: 200, text: 'Done' } });
    await run(t);
    expect(causes).toEqual([expect.objectContaining({ by: 'remote', reason: expect.objectContaining({ protocol: 'SIP', cause: 200 }) })]);
  });

  it('no answer from any target → 408 (configurable 480), and the B leg is cancelled', async () => {
    for (const status of [408, 480] as const) {
      const t = trunk({ b2bua: { noAnswerTimeoutMs: 3000, noAnswerStatus: status } });
      const failures: number[] = [];
      placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
      await run(t);
      t.atDest[0]!.provisional(180);
      await run(t, 3500);
      expect(failures).toEqual([status]);
      expect(t.seen('B')).toContain('<- CANCEL');
      expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status });
    }
  });

  it('a UDP destination that never answers → 408 (Timer B)', async () => {
    const t = trunk({ b2bua: { route: () => [{ uri: 'sip:x@10.9.9.9:5060' }] } });
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t, 64 * T1 + 1000);
    expect(failures).toEqual([408]);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 408, q850: 102 });
  });

  it('a transport failure toward the destination → 503, the record saying which (targetError CONNECT_FAILED)', async () => {
    const t = trunk({ tcp: true, b2bua: { route: () => [{ uri: 'sip:x@10.9.9.9:5060;transport=tcp' }] } });
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([503]);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 503, targetError: 'CONNECT_FAILED' });
  });
});

describe('routing and fail-over', () => {
  it('fails over to the second target on 503, never on 4xx', async () => {
    const t = trunk({ b2bua: { route: () => [{ uri: 'sip:a@10.0.0.2:5060' }, { uri: `sip:b@${DEST2}:5060` }] } });
    const call = placeCall(t);
    await run(t);
    void t.atDest[0]!.reject(503);
    await run(t);
    expect(t.atDest2).toHaveLength(1);
    await t.atDest2[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(call.state).toBe('answered');
    expect(t.b2bua.list()[0]!.bLeg.attempts).toBe(2);

    const t2 = trunk({ b2bua: { route: () => [{ uri: 'sip:a@10.0.0.2:5060' }, { uri: `sip:b@${DEST2}:5060` }] } });
    const failures: number[] = [];
    placeCall(t2, { on: { failure: (r) => failures.push(r.status) } });
    await run(t2);
    void t2.atDest[0]!.reject(486);
    await run(t2);
    expect(t2.atDest2).toHaveLength(0);
    expect(failures).toEqual([486]);
  });

  it('fails over on a timeout of the first target', async () => {
    const t = trunk({ b2bua: { route: () => [{ uri: 'sip:a@10.0.0.99:5060' }, { uri: `sip:b@${DEST2}:5060` }] } });
    const call = placeCall(t);
    await run(t, 64 * T1 + 500);
    expect(t.atDest2).toHaveLength(1);
    await t.atDest2[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(call.state).toBe('answered');
  });

  it('an empty route is 404; a route may refuse with its own status', async () => {
    for (const [route, status] of [[() => [], 404], [() => ({ reject: 403, phrase: 'Not Allowed' }), 403]] as const) {
      const t = trunk({ b2bua: { route } });
      const failures: number[] = [];
      placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
      await run(t);
      expect(failures).toEqual([status]);
      expect(t.atDest).toHaveLength(0);
    }
  });
});

describe('authentication and limits', () => {
  it('a wrong password gets 407 again and is never forwarded (no open relay)', async () => {
    const t = trunk();
    const failures: number[] = [];
    placeCall(t, { auth: { username: '1000', password: 'wrong' }, on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([407]);
    expect(t.atDest).toHaveLength(0);
    expect(t.seen('B')).toEqual([]);
  });

  it('a caller without credentials is never forwarded', async () => {
    const t = trunk();
    placeCall(t, { auth: undefined });
    await run(t);
    expect(t.seen('B')).toEqual([]);
  });

  it('Max-Forwards 0 → 483', async () => {
    const t = trunk();
    const failures: number[] = [];
    placeCall(t, { maxForwards: 0, on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([483]);
  });

  it('caps calls per source address with 503', async () => {
    const t = trunk({ b2bua: { maxCallsPerSource: 1 } });
    placeCall(t);
    await run(t);
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([503]);
    expect(t.atDest).toHaveLength(1);
  });

  it('caps concurrent calls with 503 + Retry-After', async () => {
    const t = trunk({ b2bua: { maxCalls: 1 } });
    placeCall(t);
    await run(t);
    const failures: Array<[number, string | undefined]> = [];
    placeCall(t, { on: { failure: (r) => failures.push([r.status, r.get('retry-after')]) } });
    await run(t);
    expect(failures).toEqual([[503, '5']]);
  });
});

describe('CANCEL', () => {
  it('CANCEL after a provisional: 200 to the CANCEL, CANCEL to B, 487 to A', async () => {
    const t = trunk();
    const failures: number[] = [];
    const call = placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    t.atDest[0]!.provisional(180);
    await run(t);
    call.cancel();
    await run(t);
    expect(failures).toEqual([487]);
    expect(t.seen('A')).toEqual(expect.arrayContaining(['-> CANCEL', '<- 200 OK', '<- 487 Request Terminated']));
    expect(t.seen('B')).toEqual(expect.arrayContaining(['<- CANCEL', '-> 200 OK', '-> 487 Request Terminated', '<- ACK']));
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'caller', status: 487 });
  });

  it('CANCEL before any provisional from B (A has its 100): B is cancelled once it rings', async () => {
    const t = trunk({ destTrying: false });
    const call = placeCall(t);
    await run(t);
    call.cancel();
    await run(t);
    expect(t.seen('B')).not.toContain('<- CANCEL');
    t.atDest[0]!.provisional(180);
    await run(t);
    expect(t.seen('B')).toContain('<- CANCEL');
    expect(t.atDest[0]!.cause).toMatchObject({ method: 'CANCEL' });
  });

  it('CANCEL crossing B\'s 200: B is ACKed and BYEd, A gets 487', async () => {
    const t = trunk();
    const failures: number[] = [];
    const call = placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    const b = t.atDest[0]!;
    b.provisional(180);
    await run(t);
    call.cancel();
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(failures).toEqual([487]);
    expect(t.seen('B')).toEqual(expect.arrayContaining(['-> 200 OK', '<- ACK', '<- BYE']));
    expect(b.cause).toMatchObject({ by: 'remote', method: 'BYE' });
  });
});

describe('hooks that fail', () => {
  it('a throwing route hook gives the caller 500 and an error event, not a crash', async () => {
    const t = trunk({
      b2bua: {
        route: () => {
          throw new Error('database down');
        },
      },
    });
    const errors: unknown[] = [];
    t.b2bua.on('error', (e) => errors.push(e));
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([500]);
    expect(errors).toEqual([expect.objectContaining({ message: 'database down' })]);
  });

  it('a media hook that rejects ends the call cleanly on both legs', async () => {
    const t = trunk({ b2bua: { media: { onOffer: () => Promise.reject(new Error('anchor unavailable')) } } });
    const errors: unknown[] = [];
    t.b2bua.on('error', (e) => errors.push(e));
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([500]);
    expect(t.atDest).toHaveLength(0);
    expect(errors).toHaveLength(1);
    expect(t.b2bua.stats.bridges).toBe(0);
  });
});
