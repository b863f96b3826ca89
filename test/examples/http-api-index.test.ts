import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { Emitter } from '../../src/util/events.js';
import { CallIndex, CursorError, SeqList, type CallFilter } from '../../examples/trunk-server/call-index.js';
import { viewOf } from '../../examples/trunk-server/call-view.js';
import { createHttpApi } from '../../examples/trunk-server/http-api.js';
import { placeCall, run, trunk } from '../support/b2bua-harness.js';

// viewOf, counted (and otherwise itself).
vi.mock('../../examples/trunk-server/call-view.js', async (real) => {
  const m = await real<typeof import('../../examples/trunk-server/call-view.js')>();
  return { ...m, viewOf: vi.fn(m.viewOf) };
});

type State = CallRecord['state'];

function record(i: number, state: State, domain: string | undefined): CallRecord {
  return {
    id: `call-${i}`,
    state,
    from: '<sip:1000@x>',
    to: `sip:${i}@${domain ?? 'none'}`,
    identity: '1000',
    source: { address: '127.0.0.1', port: 5060, transport: 'udp' },
    aLeg: { callId: `a-${i}` },
    bLeg: { callId: `b-${i}`, target: 'sip:gw', attempts: 1 },
    timestamps: { created: 1_700_000_000_000 + i },
    hangup: undefined,
    tags: domain === undefined ? {} : { domain },
  };
}

/**
 * A stand-in for the B2BUA's record store and events, keeping its contract: records newest
 * last; a new record is stored, the ended ones beyond `keep` are dropped in the order they
 * ended (calls still up are kept and hold nothing back), then `call`.
 */
class FakeB2bua extends Emitter<{ call(r: CallRecord): void; update(r: CallRecord): void; end(r: CallRecord): void }> {
  readonly records = new Map<string, CallRecord>();
  readonly endedOrder = new Set<string>();
  listCalls = 0;
  constructor(readonly keep = Infinity) {
    super();
  }
  get(id: string) {
    return this.records.get(id);
  }
  list() {
    this.listCalls++;
    return [...this.records.values()];
  }
  add(r: CallRecord) {
    this.records.set(r.id, r);
    if (r.state === 'hangup') this.endedOrder.add(r.id);
    for (const id of this.endedOrder) {
      if (this.records.size <= this.keep) break;
      this.endedOrder.delete(id);
      this.records.delete(id);
    }
    this.emit('call', r);
  }
  set(r: CallRecord, state: State) {
    r.state = state;
    this.emit('update', r);
    if (state === 'hangup') {
      if (this.records.get(r.id) === r) this.endedOrder.add(r.id);
      this.emit('end', r);
    }
  }
  /** An update without a state change (a record's tags changed). */
  touch(r: CallRecord) {
    this.emit('update', r);
  }
}

/** What the old API did: every stored record, newest first, filtered. */
function reference(b: FakeB2bua, f: CallFilter): string[] {
  return [...b.records.values()]
    .reverse()
    .filter((r) => (!f.status || r.state === f.status) && (!f.domain || r.tags.domain === f.domain))
    .map((r) => r.id);
}

function pageAll(index: CallIndex, f: CallFilter, size: number): string[] {
  const ids: string[] = [];
  let token: string | undefined;
  for (let n = 0; n < 10_000; n++) {
    const p = index.page(f, size, token);
    ids.push(...p.records.map((r) => r.id));
    if (p.next === null) return ids;
    token = p.next;
  }
  throw new Error('paging did not end');
}

describe('SeqList', () => {
  it('keeps any mix of inserts and deletes in order, across chunk splits', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 3_000 })), { minLength: 1, maxLength: 2_500 }), fc.integer({ min: 0, max: 3_100 }), (ops, bound) => {
        const l = new SeqList();
        const model = new Set<number>();
        for (const [ins, v] of ops) {
          if (ins) {
            l.insert(v);
            model.add(v);
          } else expect(l.delete(v)).toBe(model.delete(v));
        }
        const sorted = [...model].sort((a, b) => a - b);
        expect(l.size).toBe(model.size);
        expect(l.first()).toBe(sorted[0]);
        expect([...l.below(Number.MAX_SAFE_INTEGER)]).toEqual([...sorted].reverse());
        expect([...l.below(bound)]).toEqual(sorted.filter((v) => v < bound).reverse());
      }),
      { numRuns: 60, seed: 15 },
    );
  });
});

describe('CallIndex', () => {
  it('pages per status, per domain and per both, newest first, as the full scan did; follows state changes', () => {
    const b = new FakeB2bua();
    const recs = Array.from({ length: 9 }, (_, i) => record(i, 'dialing', i % 3 === 0 ? undefined : i % 3 === 1 ? 'a.x' : 'b.x'));
    recs.slice(0, 4).forEach((r) => b.add(r));
    const index = new CallIndex(b);
    recs.slice(4).forEach((r) => b.add(r));
    // An old call ends after a newer one: it is listed where it was created, not at the top.
    b.set(recs[5]!, 'answered');
    b.set(recs[5]!, 'hangup');
    b.set(recs[1]!, 'hangup');
    b.set(recs[7]!, 'ringing');
    for (const f of [{}, { status: 'hangup' }, { status: 'dialing' }, { domain: 'a.x' }, { status: 'hangup', domain: 'a.x' }, { status: 'ringing', domain: 'b.x' }, { status: 'none' }]) {
      for (const size of [1, 2, 50]) expect(pageAll(index, f, size), JSON.stringify([f, size])).toEqual(reference(b, f));
    }
    expect(pageAll(index, { status: 'hangup' }, 1)).toEqual(['call-5', 'call-1']);
  });

  it('a cursor stays correct when calls are added, dropped or change state between pages', () => {
    const b = new FakeB2bua(8);
    const recs = Array.from({ length: 20 }, (_, i) => record(i, 'hangup', 'a.x'));
    recs.slice(0, 6).forEach((r) => b.add(r));
    const index = new CallIndex(b);
    const p1 = index.page({}, 2);
    expect(p1.records.map((r) => r.id)).toEqual(['call-5', 'call-4']);
    // Two newer calls: an offset (2) would now show call-5 and call-4 again.
    b.add(recs[6]!);
    b.add(recs[7]!);
    const p2 = index.page({}, 2, p1.next!);
    expect(p2.records.map((r) => r.id)).toEqual(['call-3', 'call-2']);
    // One more call drops the oldest (keep = 8): an offset (4) would show call-4 and call-3 again.
    b.add(recs[8]!);
    expect(b.get('call-0')).toBeUndefined();
    expect(index.page({}, 2, p2.next!)).toEqual({ records: [recs[1]], next: null });
    // The cursor's own call dropped: the next page still starts right after where it was.
    const p3 = index.page({}, 1, p1.next!);
    expect(p3.records.map((r) => r.id)).toEqual(['call-3']);
    b.add(recs[9]!);
    b.add(recs[10]!);
    b.add(recs[11]!);
    expect(b.get('call-3')).toBeUndefined();
    expect(index.page({}, 2, p3.next!)).toEqual({ records: [], next: null });
    expect(index.page({}, 50).records.map((r) => r.id)).toEqual(['call-11', 'call-10', 'call-9', 'call-8', 'call-7', 'call-6', 'call-5', 'call-4']);
    // Status changes between pages: a call leaving the filtered list is not shown, none twice.
    const live = recs.slice(12, 17).map((r) => ((r.state = 'answered'), r));
    live.forEach((r) => b.add(r));
    const q1 = index.page({ status: 'answered' }, 2);
    expect(q1.records.map((r) => r.id)).toEqual(['call-16', 'call-15']);
    b.set(live[2]!, 'hangup'); // call-14
    b.set(live[4]!, 'hangup'); // call-16, already shown
    const q2 = index.page({ status: 'answered' }, 2, q1.next!);
    expect(q2.records.map((r) => r.id)).toEqual(['call-13', 'call-12']);
    expect(q2.next).toBeNull();
  });

  it('holds exactly what the B2BUA holds under any mix of calls, changes and drops (bounded memory)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), domain: fc.constantFrom(undefined, 'a.x', 'b.x') }),
      fc.record({ kind: fc.constant('set' as const), pick: fc.nat(), state: fc.constantFrom<State>('ringing', 'progressing', 'answered', 'hangup', 'hangup') }),
      // A call's domain tag can come after its creation (and with a state change or without one).
      fc.record({ kind: fc.constant('retag' as const), pick: fc.nat(), domain: fc.constantFrom(undefined, 'a.x', 'b.x'), state: fc.constantFrom<State | undefined>(undefined, 'answered') }),
      fc.record({ kind: fc.constant('page' as const), status: fc.constantFrom(undefined, 'hangup', 'answered', 'dialing'), domain: fc.constantFrom(undefined, 'a.x', 'b.x'), size: fc.integer({ min: 1, max: 7 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 150 }), (keep, ops) => {
        const b = new FakeB2bua(keep);
        const index = new CallIndex(b);
        let n = 0;
        for (const o of ops) {
          if (o.kind === 'add') b.add(record(n++, 'dialing', o.domain));
          else if (o.kind === 'set') {
            const live = [...b.records.values()].filter((r) => r.state !== 'hangup');
            if (live.length) b.set(live[o.pick % live.length]!, o.state);
          } else if (o.kind === 'retag') {
            const live = [...b.records.values()].filter((r) => r.state !== 'hangup');
            const r = live[o.pick % Math.max(live.length, 1)];
            if (r) {
              (r.tags as Record<string, string | undefined>).domain = o.domain;
              if (o.state) b.set(r, o.state);
              else b.touch(r);
            }
          } else {
            const f = { status: o.status, domain: o.domain };
            expect(pageAll(index, f, o.size)).toEqual(reference(b, f));
          }
          expect(index.size).toBe(b.records.size);
        }
      }),
      { numRuns: 150, seed: 16 },
    );
  });

  it('drops what a real B2BUA drops beyond keepRecords', async () => {
    const t = trunk({ b2bua: { keepRecords: 3 } });
    const index = new CallIndex(t.b2bua);
    for (let i = 0; i < 6; i++) {
      placeCall(t);
      await run(t, 100);
      const inbound = t.atDest.shift()!;
      void inbound.reject(486);
      await run(t, 200);
    }
    expect(t.ended).toHaveLength(6);
    const stored = t.b2bua.list().map((r) => r.id).reverse();
    expect(stored.length).toBeLessThanOrEqual(4);
    expect(index.size).toBe(stored.length);
    expect(index.page({}, 50).records.map((r) => r.id)).toEqual(stored);
    expect(index.page({ status: 'hangup' }, 50).records.map((r) => r.id)).toEqual(stored);
    index.close();
    await t.b2bua.close();
  });

  it('a call up for long never holds back the dropping of the calls after it: B2BUA and index stay within keepRecords', async () => {
    const t = trunk({ b2bua: { keepRecords: 3 } });
    const index = new CallIndex(t.b2bua);
    const long = placeCall(t);
    await run(t, 100);
    void t.atDest.shift()!.answer({ body: 'v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n' });
    await run(t, 200);
    for (let i = 0; i < 12; i++) {
      placeCall(t);
      await run(t, 100);
      void t.atDest.shift()!.reject(486);
      await run(t, 200);
    }
    const stored = t.b2bua.list();
    // The answered call (first, still up) and at most keepRecords ended ones, plus the newest stored.
    expect(stored.length).toBeLessThanOrEqual(4);
    expect(stored[0]!.state).toBe('answered');
    expect(stored.slice(1).every((r) => r.state === 'hangup')).toBe(true);
    expect(index.size).toBe(stored.length);
    expect(index.page({}, 50).records.map((r) => r.id)).toEqual(stored.map((r) => r.id).reverse());
    void long.hangup();
    await run(t, 200);
    index.close();
    await t.b2bua.close();
  });

  it('refuses a page_token it did not make', () => {
    const b = new FakeB2bua();
    b.add(record(1, 'dialing', 'a.x'));
    const index = new CallIndex(b);
    expect(index.page({}, 5, 'YzEuMQ')).toEqual({ records: [], next: null }); // c1.1: before the first call
    for (const bad of ['3', 'abc', 'YzEuMQ==', ' YzEuMQ', 'YzEuMQ!', Buffer.from('c1.zzzzzzzzzzzz').toString('base64url'), Buffer.from('c1.-1').toString('base64url')]) {
      expect(() => index.page({}, 5, bad), bad).toThrow(CursorError);
    }
  });
});

describe('trunk HTTP API over the index', () => {
  const servers: Array<{ close(): void }> = [];
  afterEach(() => servers.splice(0).forEach((s) => s.close()));

  it('answers list requests from the index, never a scan of every record; a bad page_token is a JSON 400', async () => {
    const b = new FakeB2bua(100);
    for (let i = 0; i < 30; i++) b.add(record(i, i % 2 ? 'hangup' : 'answered', 'a.x'));
    const server = createHttpApi(b, 'tok');
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const api = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/v1.0/calls${q}`, { headers: { authorization: 'Bearer tok' } });
      return { status: res.status, body: (await res.json()) as any };
    };
    const scansAtStart = b.listCalls;
    const seen: string[] = [];
    let token = '';
    for (let n = 0; n < 20; n++) {
      const { body } = await api(`?status=hangup&page_size=4${token ? `&page_token=${token}` : ''}`);
      seen.push(...body.result.map((c: { id: string }) => c.id));
      b.add(record(100 + n, 'hangup', 'a.x'));
      if (!body.next_page_token) break;
      token = body.next_page_token;
    }
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => `call-${29 - 2 * i}`));
    expect(b.listCalls).toBe(scansAtStart);
    expect(await api('?page_token=6')).toMatchObject({ status: 400, body: { error: { code: 'invalid_page_token' } } });
    // page_size is a whole number from 1 to 500: 2.5 is 2 (a page that is never full would list everything).
    const frac = await api('?page_size=2.5');
    expect(frac.body.result).toHaveLength(2);
    expect(frac.body.next_page_token).toEqual(expect.any(String));
    expect((await api('?page_size=0.5')).body.result).toHaveLength(1);
    expect((await api('?page_size=-3')).body.result).toHaveLength(1);
    expect((await api('?page_size=1e9')).body.result).toHaveLength(b.records.size); // capped at 500
  });

  it("makes each call's JSON once per change, and a change shows at once", async () => {
    const b = new FakeB2bua(100);
    const recs = Array.from({ length: 30 }, (_, i) => record(i, 'answered', 'a.x'));
    recs.forEach((r) => b.add(r));
    const server = createHttpApi(b, 'tok');
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const api = async (path: string) => (await (await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: 'Bearer tok' } })).json()) as any;
    vi.mocked(viewOf).mockClear();
    for (let n = 0; n < 10; n++) expect((await api('/v1.0/calls')).result).toHaveLength(30);
    expect(await api('/v1.0/calls/call-7')).toMatchObject({ id: 'call-7', status: 'answered' });
    expect(viewOf).toHaveBeenCalledTimes(30);
    b.set(recs[7]!, 'hangup');
    expect(await api('/v1.0/calls/call-7')).toMatchObject({ id: 'call-7', status: 'hangup' });
    expect((await api('/v1.0/calls?status=hangup')).result).toEqual([expect.objectContaining({ id: 'call-7', status: 'hangup' })]);
    expect(viewOf).toHaveBeenCalledTimes(31);
  });
});
