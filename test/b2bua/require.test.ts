import { describe, expect, it } from 'vitest';
import type { SipResponse } from '../../src/parser/index.js';
import { placeCall, run, trunk } from '../support/b2bua-harness.js';

describe('the B2BUA is a UAS to the caller: Require it does not understand → 420 (RFC 3261 §8.2.2.3)', () => {
  it('Require: foo → 420 Bad Extension with Unsupported: foo; nothing goes to the B leg, no call record', async () => {
    const t = trunk();
    const failures: SipResponse[] = [];
    placeCall(t, { headers: { Require: 'foo' }, on: { failure: (r) => failures.push(r) } });
    await run(t);
    expect(failures.map((r) => r.status)).toEqual([420]);
    expect(failures[0]!.getAll('unsupported')).toEqual(['foo']);
    expect(t.seen('B')).toEqual([]);
    expect(t.b2bua.list()).toEqual([]);
    // Refused before authentication: no challenge went out, the 420 was the only answer.
    expect(t.seen('A')).toEqual(['-> INVITE', '<- 420 Bad Extension', '-> ACK']);
  });

  it('names only the unknown tags: Require: 100rel, foo, bar → Unsupported: foo, bar', async () => {
    const t = trunk();
    const failures: SipResponse[] = [];
    placeCall(t, { reliableProvisionals: 'required', headers: { Require: 'foo, bar' }, on: { failure: (r) => failures.push(r) } });
    await run(t);
    expect(failures.map((r) => r.status)).toEqual([420]);
    expect(failures[0]!.getAll('unsupported')).toEqual(['foo', 'bar']);
    expect(t.seen('B')).toEqual([]);
  });

  it('Require: 100rel is understood (reliable provisionals and PRACK): the call is bridged and answered', async () => {
    const t = trunk();
    const answered: number[] = [];
    placeCall(t, { reliableProvisionals: 'required', on: { answer: (r) => answered.push(r.status) } });
    await run(t);
    expect(t.atDest).toHaveLength(1);
    t.atDest[0]!.provisional(180);
    await run(t);
    // RFC 3262 §3: the caller required 100rel, so every non-100 provisional to it is reliable.
    const ringing = t.net.packets('SIP/2.0 180').filter((p) => p.to.address === '10.0.0.1');
    expect(ringing.length).toBeGreaterThan(0);
    expect(ringing[0]!.bytes.toString()).toMatch(/\r\nRSeq: *\d+/i);
    expect(t.seen('A')).toContain('-> PRACK');
    void t.atDest[0]!.answer();
    await run(t);
    expect(answered).toEqual([200]);
    expect(t.b2bua.list()).toHaveLength(1);
  });

  it('Proxy-Require is not for a B2BUA (§16.3 is a proxy\'s rule): Proxy-Require: foo is forwarded', async () => {
    const t = trunk();
    placeCall(t, { headers: { 'Proxy-Require': 'foo' } });
    await run(t);
    expect(t.atDest).toHaveLength(1);
  });

  it('Max-Forwards 0 is still 483: a B2BUA forwards (RFC 7332 §3)', async () => {
    const t = trunk();
    const failures: number[] = [];
    placeCall(t, { maxForwards: 0, on: { failure: (r) => failures.push(r.status) } });
    await run(t);
    expect(failures).toEqual([483]);
  });
});
