import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { drive } from '../support/ua-harness.js';
import { placeCall, run, SDP_DEST, trunk, type Trunk } from '../support/b2bua-harness.js';

/** Every record the B2BUA announced, and the order of its events per record. */
function watch(t: Trunk) {
  const log: string[] = [];
  t.b2bua.on('call', (r) => log.push('call ' + r.id));
  t.b2bua.on('end', (r) => log.push('end ' + r.id));
  return log;
}

async function failureOf(t: Trunk, options: Parameters<typeof placeCall>[1] = {}) {
  const got: number[] = [];
  placeCall(t, { ...options, on: { failure: (r) => got.push(r.status) } });
  await run(t);
  return got;
}

function only(t: Trunk): CallRecord {
  expect(t.ended).toHaveLength(1);
  expect(t.b2bua.list()).toEqual([t.ended[0]]);
  return t.ended[0]!;
}

describe('every authenticated call gets a record and an end event', () => {
  it('route finds nothing → 404, a record with its status, `call` then `end`', async () => {
    const t = trunk({ b2bua: { route: () => [] } });
    const log = watch(t);
    expect(await failureOf(t)).toEqual([404]);
    const r = only(t);
    expect(r).toMatchObject({ state: 'hangup', identity: '1000', hangup: { by: 'system', status: 404, phrase: 'Not Found', q850: 1 } });
    // Timestamps come from the injected clock (the harness's FakeClock starts at 1 000 000).
    expect(r.timestamps.created).toBeGreaterThanOrEqual(1_000_000);
    expect(r.timestamps.hangup).toBeLessThanOrEqual(t.clock.now());
    expect(log).toEqual(['call ' + r.id, 'end ' + r.id]);
    expect(t.b2bua.stats.bridges).toBe(0);
  });

  it('route refuses ({ reject }) → that status and phrase, recorded', async () => {
    const t = trunk({ b2bua: { route: () => ({ reject: 403, phrase: 'Destination Barred' }) } });
    expect(await failureOf(t)).toEqual([403]);
    expect(only(t).hangup).toMatchObject({ by: 'system', status: 403, phrase: 'Destination Barred', q850: 21 });
  });

  it('route refuses with a status that cannot be sent → 500 and an error event, recorded', async () => {
    const t = trunk({ b2bua: { route: () => ({ reject: 200 }) } });
    const errors: unknown[] = [];
    t.b2bua.on('error', (e, rec) => errors.push([(e as { code?: string }).code, rec?.id]));
    expect(await failureOf(t)).toEqual([500]);
    const r = only(t);
    expect(r.hangup).toMatchObject({ by: 'system', status: 500 });
    expect(errors).toEqual([['BAD_STATUS', r.id]]);
  });

  it('a throwing route hook → 500, the error event carries the record', async () => {
    const t = trunk({
      b2bua: {
        route: () => {
          throw new Error('database down');
        },
      },
    });
    const errors: Array<CallRecord | undefined> = [];
    t.b2bua.on('error', (_e, rec) => errors.push(rec));
    expect(await failureOf(t)).toEqual([500]);
    const r = only(t);
    expect(r.hangup).toMatchObject({ by: 'system', status: 500, q850: 41 });
    expect(errors).toEqual([r]);
  });

  it('a rejecting media hook → 500 recorded as 500 (not 503)', async () => {
    const t = trunk({ b2bua: { media: { onOffer: () => Promise.reject(new Error('anchor unavailable')) } } });
    t.b2bua.on('error', () => undefined);
    expect(await failureOf(t)).toEqual([500]);
    expect(only(t).hangup).toMatchObject({ by: 'system', status: 500, q850: 41 });
  });

  it('maxCalls reached → 503 + Retry-After, recorded with Q.850 42', async () => {
    const t = trunk({ b2bua: { maxCalls: 1 } });
    placeCall(t);
    await run(t);
    expect(await failureOf(t)).toEqual([503]);
    expect(t.ended).toHaveLength(1);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 503, q850: 42 });
    expect(t.b2bua.list()).toHaveLength(2);
    expect(t.b2bua.activeCalls).toBe(1);
  });

  it('maxCallsPerSource reached → 503, recorded', async () => {
    const t = trunk({ b2bua: { maxCallsPerSource: 1 } });
    placeCall(t);
    await run(t);
    expect(await failureOf(t)).toEqual([503]);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 503, q850: 42 });
    // The refused call gave its slot back: the source still holds exactly one call.
    void t.atDest[0]!.reject(486);
    await run(t);
    await failureOf(t);
    expect(t.atDest).toHaveLength(2);
  });

  it('sourceOf: maxCallsPerSource counts the address it names, which the record keeps; its slot is given back at the end', async () => {
    // Two calls from the same packet source, told apart by the hook (as a trunk behind a front proxy does by Via).
    const callers = [{ address: '192.0.2.1', port: 5070 }, { address: '192.0.2.2', port: 5071 }, { address: '192.0.2.1', port: 5072 }, { address: '192.0.2.1', port: 5073 }];
    const t = trunk({ b2bua: { maxCallsPerSource: 1, sourceOf: () => callers.shift()! } });
    placeCall(t);
    await run(t);
    placeCall(t);
    await run(t);
    expect(t.atDest).toHaveLength(2);
    expect(t.b2bua.list().map((r) => r.source)).toEqual([
      { address: '192.0.2.1', port: 5070, transport: expect.any(String) },
      { address: '192.0.2.2', port: 5071, transport: expect.any(String) },
    ]);
    // 192.0.2.1 again: over its limit.
    expect(await failureOf(t)).toEqual([503]);
    // Its first call ends: the slot counted under 192.0.2.1 is free again.
    void t.atDest[0]!.reject(486);
    await run(t);
    await failureOf(t);
    expect(t.atDest).toHaveLength(3);
  });

  it('the caller cancelling while the route hook runs ends the record (by caller, 487)', async () => {
    let release!: (v: Array<{ uri: string }>) => void;
    const t = trunk({ b2bua: { route: () => new Promise((r) => (release = r)) } });
    const call = placeCall(t);
    await run(t);
    expect(t.b2bua.list()).toHaveLength(1);
    call.cancel();
    await run(t);
    release([{ uri: 'sip:+15551234567@10.0.0.2:5060' }]);
    await run(t);
    expect(only(t).hangup).toMatchObject({ by: 'caller', status: 487 });
    expect(t.atDest).toHaveLength(0);
  });
});

describe('unauthenticated requests create nothing', () => {
  it('a challenge (407) and a wrong password leave no record, no event, no state', async () => {
    const t = trunk();
    const log = watch(t);
    expect(await failureOf(t, { auth: undefined })).toEqual([407]);
    expect(await failureOf(t, { auth: { username: '1000', password: 'wrong' } })).toEqual([407]);
    expect(t.b2bua.list()).toEqual([]);
    expect(t.ended).toEqual([]);
    expect(log).toEqual([]);
    expect(t.b2bua.stats.bridges).toBe(0);
  });

  it('an authenticated call is one record, however many challenge rounds it took', async () => {
    const t = trunk({ b2bua: { route: () => [] } });
    await failureOf(t);
    expect(t.b2bua.list()).toHaveLength(1);
  });

  it('a throwing authenticate hook → 500 and an error event, but no record', async () => {
    const t = trunk({
      b2bua: {
        authenticate: () => {
          throw new Error('auth backend down');
        },
      },
    });
    const errors: unknown[] = [];
    t.b2bua.on('error', (e, rec) => errors.push(rec));
    expect(await failureOf(t)).toEqual([500]);
    expect(errors).toEqual([undefined]);
    expect(t.b2bua.list()).toEqual([]);
  });
});

describe('hangupAll and close', () => {
  it('hangupAll: an answered call ends with no SIP status (by system, Q.850 16); a ringing one with 503', async () => {
    const t = trunk();
    placeCall(t);
    placeCall(t);
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    t.atDest[1]!.provisional(180);
    await run(t);
    const answered = t.b2bua.list().find((r) => r.state === 'answered')!;
    const ringing = t.b2bua.list().find((r) => r.state === 'ringing')!;
    t.b2bua.hangupAll();
    expect(answered.hangup).toEqual({ by: 'system', status: undefined, phrase: undefined, q850: 16 });
    expect(ringing.hangup).toMatchObject({ by: 'system', status: 503, q850: 16 });
    await run(t);
    expect(t.seen('A')).toEqual(expect.arrayContaining(['<- BYE', '<- 503 Service Unavailable']));
  });

  it('close() with calls up: BYE to both legs of an answered call, `end` for each, then the transports close', async () => {
    const t = trunk();
    const callerEnded: unknown[] = [];
    placeCall(t, { on: { ended: (c) => callerEnded.push(c) } });
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    const destEnded = new Promise((r) => t.atDest[0]!.on('ended', r));
    let closed = false;
    const closing = t.b2bua.close().then(() => (closed = true));
    expect(t.ended).toHaveLength(1);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: undefined, q850: 16 });
    await drive(t, closing);
    expect(closed).toBe(true);
    expect(callerEnded).toEqual([expect.objectContaining({ by: 'remote', method: 'BYE', reason: expect.objectContaining({ protocol: 'Q.850', cause: 16 }) })]);
    expect(await destEnded).toMatchObject({ by: 'remote', method: 'BYE' });
    // Both BYEs were answered before the trunk's transport closed.
    expect(t.seen('A')).toEqual(expect.arrayContaining(['<- BYE', '-> 200 OK']));
    expect(t.seen('B')).toEqual(expect.arrayContaining(['<- BYE', '-> 200 OK']));
  });

  it('close() while a call is being routed: the caller gets 503, the record ends', async () => {
    const t = trunk({ b2bua: { route: () => new Promise(() => undefined) } });
    const failures: number[] = [];
    placeCall(t, { on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    await drive(t, t.b2bua.close());
    expect(failures).toEqual([503]);
    expect(only(t).hangup).toMatchObject({ by: 'system', status: 503 });
  });
});
