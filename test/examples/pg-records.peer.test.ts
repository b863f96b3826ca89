import { EventEmitter } from 'node:events';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CallRecord } from '../../src/b2bua/index.js';
import { viewOf } from '../../examples/trunk-server/call-view.js';
import { CHARGE_TAGS } from '../../examples/trunk-server/charges.js';
import { LOST_CAUSE, LOST_REASON, openPgRecords, PRUNE_LOCK, type PgRecords, type PgRecordsOptions } from '../../examples/trunk-server/pg-records.js';
import { migrate, migrateDatabase, MIGRATIONS } from '../../examples/trunk-server/pg-schema.js';
import { requirePostgres, startPostgres, type LocalPostgres } from '../support/postgres.js';

// The PostgreSQL store of the trunk's call records (issue #18), against a real PostgreSQL
// started for this file, driven by a fake B2BUA's events and an injected clock.

const has = requirePostgres('the PostgreSQL call records');

/** A fake B2BUA: records by id, and the call/update/end events the store follows. */
class FakeB2bua extends EventEmitter {
  readonly records = new Map<string, CallRecord>();
  get(id: string) {
    return this.records.get(id);
  }
  call(r: CallRecord) {
    this.records.set(r.id, r);
    this.emit('call', r);
  }
  update(r: CallRecord) {
    this.emit('update', r);
  }
  end(r: CallRecord) {
    this.emit('end', r);
  }
}

let seq = 0;
function record(i: number, domain = 'acme.trunk.test'): CallRecord {
  return {
    id: `call-${i}-${++seq}`,
    state: 'dialing',
    from: '<sip:1000@x>',
    to: `sip:+49301${i}@${domain}`,
    identity: '1000',
    source: { address: '127.0.0.1', port: 5060 + i, transport: 'udp' },
    aLeg: { callId: `a-${i}-${seq}` },
    bLeg: { callId: undefined, target: undefined, attempts: 0 },
    timestamps: { created: 1_700_000_000_000 + i * 1000 },
    hangup: undefined,
    tags: { domain, auth: 'digest' },
  };
}

/** Ring, answer and hang up (callee), charged, as the B2BUA's events would. */
function lifecycle(b: FakeB2bua, r: CallRecord, end = true): void {
  b.call(r);
  r.state = 'ringing';
  r.timestamps.ringing = r.timestamps.created + 100;
  r.bLeg = { callId: `b-${r.id}`, target: 'sip:gw.test', attempts: 1 };
  b.update(r);
  r.state = 'answered';
  r.timestamps.answered = r.timestamps.created + 500;
  b.update(r);
  if (!end) return;
  r.state = 'hangup';
  r.timestamps.hangup = r.timestamps.created + 60_500;
  r.hangup = { by: 'callee', status: undefined, phrase: undefined, q850: 16, relayedBye: { to: 'caller', outcome: 'answered', status: 200 } };
  Object.assign(r.tags, { [CHARGE_TAGS.amount]: '0.010000', [CHARGE_TAGS.currency]: 'EUR', [CHARGE_TAGS.billedSeconds]: '60', [CHARGE_TAGS.ratePrefix]: '49' });
  b.end(r);
}

let db: LocalPostgres;
let admin: pg.Client;
beforeAll(async () => {
  if (!has) return;
  db = await startPostgres();
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
}, 60_000);
afterAll(async () => {
  await admin?.end();
  await db?.stop();
});

const open: PgRecords[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
});

/** A clock the test moves. */
function clock(start = 1_800_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function store(instanceId: string, options: Partial<PgRecordsOptions> = {}): Promise<PgRecords> {
  // Long batch and heartbeat periods: the test flushes and beats when it wants to.
  const s = await openPgRecords({ url: db.url, instanceId, batchMs: 60_000, heartbeatMs: 3_600_000, ...options });
  open.push(s);
  return s;
}

describe.skipIf(!has)('PostgreSQL call records (pg-records.ts)', () => {
  it('N instances migrating at once: one migrates under the advisory lock, all end at the same version', async () => {
    const other = `mig_${Date.now()}`;
    await admin.query(`CREATE DATABASE ${other}`);
    const url = db.url.replace(/\/postgres$/, `/${other}`);
    const clients = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        return c;
      }),
    );
    try {
      const versions = await Promise.all(clients.map((c) => migrate(c)));
      expect(versions).toEqual([MIGRATIONS.length, MIGRATIONS.length, MIGRATIONS.length, MIGRATIONS.length]);
      const rows = (await clients[0]!.query('SELECT version FROM schema_version ORDER BY version')).rows;
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      // Again, from a launcher: nothing left to do.
      expect(await migrateDatabase(url)).toBe(MIGRATIONS.length);
      expect((await clients[0]!.query('SELECT count(*)::int AS n FROM schema_version')).rows[0].n).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('a call reads back from the database exactly as the API shows it from memory, plus its instance; ended calls get a CDR', async () => {
    const a = await store('inst-a');
    const b = await store('inst-b');
    const fake = new FakeB2bua();
    a.follow(fake);
    const r = record(1);
    lifecycle(fake, r);
    await a.flush();
    const fromB = JSON.parse((await b.lookup.get(r.id))!);
    expect(fromB).toEqual({ ...viewOf(r), instance: 'inst-a' });
    expect(Object.keys(fromB)).toEqual([...Object.keys(viewOf(r)), 'instance']);
    const cdr = (await admin.query('SELECT instance_id, ended_ms, cdr FROM cdrs WHERE id = $1', [r.id])).rows[0];
    expect(cdr).toEqual({ instance_id: 'inst-a', ended_ms: String(r.timestamps.hangup), cdr: { ...viewOf(r), instance: 'inst-a' } });
    expect(await b.lookup.get('no-such-call')).toBeUndefined();
  });

  it('a call that failed at its last target keeps the typed cause (target_error) through the database', async () => {
    const a = await store('inst-target-error');
    const b = await store('inst-target-error-b');
    const fake = new FakeB2bua();
    a.follow(fake);
    const r = record(9);
    fake.call(r);
    r.state = 'hangup';
    r.timestamps.hangup = r.timestamps.created + 80;
    r.hangup = { by: 'system', status: 503, phrase: 'Service Unavailable', q850: 34, targetError: 'TLS_IDENTITY' };
    fake.end(r);
    await a.flush();
    const fromB = JSON.parse((await b.lookup.get(r.id))!);
    expect(fromB).toEqual({ ...viewOf(r), instance: 'inst-target-error' });
    expect(fromB.target_error).toBe('TLS_IDENTITY');
    const cdr = (await admin.query('SELECT cdr FROM cdrs WHERE id = $1', [r.id])).rows[0].cdr;
    expect(cdr.target_error).toBe('TLS_IDENTITY');
  });

  it('events are batched: one statement per flush, however many calls and events it carries', async () => {
    const a = await store('inst-batch');
    const fake = new FakeB2bua();
    a.follow(fake);
    const before = a.stats();
    const calls = Array.from({ length: 200 }, (_, i) => record(i));
    for (const r of calls) lifecycle(fake, r); // 4 events each
    await a.flush();
    const after = a.stats();
    expect(after.statements - before.statements).toBe(1);
    expect(after.callRows - before.callRows).toBe(200);
    expect(after.cdrRows - before.cdrRows).toBe(200);
    const n = (await admin.query("SELECT count(*)::int AS n FROM calls WHERE instance_id = 'inst-batch' AND status = 'hangup'")).rows[0].n;
    expect(n).toBe(200);
  });

  it('the queue is bounded: events beyond maxQueue calls are dropped and counted, never blocking', async () => {
    const a = await store('inst-bound', { maxQueue: 3 });
    const fake = new FakeB2bua();
    a.follow(fake);
    for (let i = 0; i < 5; i++) fake.call(record(i));
    expect(a.stats()).toMatchObject({ queued: 3, dropped: 2 });
    await a.flush();
    expect(a.stats()).toMatchObject({ queued: 0, callRows: 3 });
  });

  it('while the database is down, flushes fail without throwing, the calls wait (bounded), and are written once it is back', async () => {
    const name = `outage_${Date.now()}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const logged: string[] = [];
    const a = await store('inst-outage', { url: db.url.replace(/\/postgres$/, `/${name}`), log: (_l, event) => logged.push(event) });
    const fake = new FakeB2bua();
    a.follow(fake);
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    const r = record(7);
    lifecycle(fake, r);
    await a.flush();
    expect(a.stats()).toMatchObject({ failedFlushes: 1, queued: 1, dropped: 0 });
    expect(logged).toContain('records.flush_failed');
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await a.flush();
    expect(a.stats()).toMatchObject({ queued: 0, callRows: 1, cdrRows: 1 });
    expect(logged).toContain('records.db_back');
    expect(JSON.parse((await a.lookup.get(r.id))!).status).toBe('hangup');
  });

  it('lists every instance\'s calls newest first, by status and domain, with a cursor across pages', async () => {
    const a = await store('inst-list-a');
    const b = await store('inst-list-b');
    const fa = new FakeB2bua();
    const fb = new FakeB2bua();
    a.follow(fa);
    b.follow(fb);
    const domain = `list-${Date.now()}.trunk.test`;
    const ra = [record(101, domain), record(103, domain), record(105, domain)];
    const rb = [record(102, domain), record(104, domain)];
    ra.forEach((r) => lifecycle(fa, r, r !== ra[2]));
    rb.forEach((r) => lifecycle(fb, r));
    await Promise.all([a.flush(), b.flush()]);
    const p1 = await a.lookup.page({ domain }, 2, undefined);
    const ids = (p: { items: string[] }) => p.items.map((j) => JSON.parse(j).id as string);
    expect(ids(p1)).toEqual([ra[2]!.id, rb[1]!.id]);
    const p2 = await a.lookup.page({ domain }, 2, p1.next!);
    expect(ids(p2)).toEqual([ra[1]!.id, rb[0]!.id]);
    const p3 = await a.lookup.page({ domain }, 2, p2.next!);
    expect(ids(p3)).toEqual([ra[0]!.id]);
    expect(p3.next).toBeNull();
    expect(ids(await b.lookup.page({ domain, status: 'answered' }, 10, undefined))).toEqual([ra[2]!.id]);
    expect(p2.items.map((j) => JSON.parse(j).instance)).toEqual(['inst-list-a', 'inst-list-b']);
    await expect(a.lookup.page({}, 2, 'bm90LW91cnM')).rejects.toMatchObject({ code: 'invalid_page_token' });
  });

  it('an instance silent for lostAfterSeconds: a live one marks its calls still up as lost (with a CDR), not its ended ones', async () => {
    const c = clock();
    const dead = await store('inst-dead', { now: c.now, lostAfterSeconds: 5 });
    const live = await store('inst-live', { now: c.now, lostAfterSeconds: 5 });
    const fake = new FakeB2bua();
    dead.follow(fake);
    const up = record(1);
    const done = record(2);
    lifecycle(fake, up, false);
    lifecycle(fake, done, true);
    await dead.flush();
    await dead.abandon(); // SIGKILL: no more heartbeats, nothing ended
    open.splice(open.indexOf(dead), 1);

    c.advance(4_000);
    await live.heartbeat();
    expect(JSON.parse((await live.lookup.get(up.id))!).status).toBe('answered'); // not yet: 4 s < 5 s

    c.advance(2_000);
    await live.heartbeat();
    const lost = JSON.parse((await live.lookup.get(up.id))!);
    expect(lost).toMatchObject({ status: 'lost', hangup_by: 'system', hangup_reason: LOST_REASON, q850_cause: LOST_CAUSE, instance: 'inst-dead', tm_hangup: new Date(c.now()).toISOString() });
    expect(JSON.parse((await live.lookup.get(done.id))!).status).toBe('hangup');
    const cdr = (await admin.query('SELECT cdr FROM cdrs WHERE id = $1', [up.id])).rows[0].cdr;
    expect(cdr).toMatchObject({ status: 'lost', q850_cause: LOST_CAUSE });
    expect(live.stats().markedLost).toBe(1);

    // A day later the dead instance's row is gone (all its calls ended or lost); the live one's stays.
    c.advance(86_400_000 + 1);
    await live.heartbeat();
    const ids = (await admin.query("SELECT id FROM instances WHERE id IN ('inst-dead', 'inst-live')")).rows.map((r) => r.id);
    expect(ids).toEqual(['inst-live']);
  });

  it('an instance that stopped cleanly is not lost; one restarted under the same id marks its earlier run\'s calls lost', async () => {
    const c = clock();
    const first = await store('inst-restart', { now: c.now, lostAfterSeconds: 5 });
    const fake = new FakeB2bua();
    first.follow(fake);
    const up = record(1);
    lifecycle(fake, up, false);
    await first.flush();
    await first.abandon();
    open.splice(open.indexOf(first), 1);
    const again = await store('inst-restart', { now: c.now, lostAfterSeconds: 5 });
    expect(JSON.parse((await again.lookup.get(up.id))!).status).toBe('lost');

    // Stopped cleanly (its row says so): whatever it wrote is its last word, not a crash's leftovers.
    const clean = await store('inst-clean', { now: c.now, lostAfterSeconds: 5 });
    const cleanFake = new FakeB2bua();
    clean.follow(cleanFake);
    const kept = record(3);
    lifecycle(cleanFake, kept, false);
    await clean.close();
    open.splice(open.indexOf(clean), 1);
    const watcher = await store('inst-watch', { now: c.now, lostAfterSeconds: 5 });
    c.advance(60_000);
    await watcher.heartbeat();
    expect(JSON.parse((await watcher.lookup.get(kept.id))!).status).toBe('answered');
  });

  it('failed authentications add up over instances: spread over A and B they reach the threshold, and both block the pair', async () => {
    const c = clock();
    const throttle = { maxFailures: 10, windowMs: 60_000, blockMs: 300_000 };
    const a = await store('inst-thr-a', { now: c.now, throttle });
    const b = await store('inst-thr-b', { now: c.now, throttle });
    const user = 'acme.trunk.test 2000';
    for (let i = 0; i < 5; i++) a.throttle.noteFailure('192.0.2.7', user);
    for (let i = 0; i < 4; i++) b.throttle.noteFailure('192.0.2.7', user);
    await Promise.all([a.flush(), b.flush()]);
    await Promise.all([a.pollThrottle(), b.pollThrottle()]);
    expect(a.throttle.blocked('192.0.2.7')).toBeUndefined(); // 9 < 10
    b.throttle.noteFailure('192.0.2.7', user);
    await b.flush();
    await Promise.all([a.pollThrottle(), b.pollThrottle()]);
    for (const s of [a, b]) {
      const blocked = s.throttle.blocked('192.0.2.7');
      expect(blocked !== undefined && blocked !== 'all' && blocked.has(user)).toBe(true);
      expect(s.throttle.blocked('192.0.2.8')).toBeUndefined();
    }
    // The block ends after blockMs.
    c.advance(300_001);
    await a.pollThrottle();
    expect(a.throttle.blocked('192.0.2.7')).toBeUndefined();
  });

  it('a source failing on more usernames than maxUsersPerSource, over both instances, is blocked as a whole', async () => {
    const c = clock(1_900_000_000_000);
    const throttle = { maxFailures: 10, maxUsersPerSource: 4 };
    const a = await store('inst-scan-a', { now: c.now, throttle });
    const b = await store('inst-scan-b', { now: c.now, throttle });
    for (let i = 0; i < 5; i++) (i % 2 ? a : b).throttle.noteFailure('198.51.100.9', `acme.trunk.test ${3000 + i}`);
    await Promise.all([a.flush(), b.flush()]);
    await Promise.all([a.pollThrottle(), b.pollThrottle()]);
    expect(a.throttle.blocked('198.51.100.9')).toBe('all');
    expect(b.throttle.blocked('198.51.100.9')).toBe('all');
  });
});

describe.skipIf(!has)('PostgreSQL call records: retention (records.retainDays)', () => {
  const DAY = 86_400_000;
  /** A database of its own: pruning by an injected clock must not reach the other tests' rows. */
  async function freshDatabase(): Promise<string> {
    const name = `retain_${Date.now()}_${++seq}`;
    await admin.query(`CREATE DATABASE ${name}`);
    return db.url.replace(/\/postgres$/, `/${name}`);
  }
  /** Calls at `at` (epoch ms): `ended` ring, answer and hang up; the rest stay answered (still up). */
  function calls(b: FakeB2bua, at: number, ended: number, up = 0): CallRecord[] {
    const out: CallRecord[] = [];
    for (let i = 0; i < ended + up; i++) {
      const r = record(i);
      r.timestamps.created = at + i;
      lifecycle(b, r, i < ended);
      out.push(r);
    }
    return out;
  }
  const ids = async (url: string, table: 'calls' | 'cdrs') => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return new Set((await c.query(`SELECT id FROM ${table}`)).rows.map((r) => r.id as string));
    } finally {
      await c.end();
    }
  };

  it('deletes ended calls and CDRs older than retainDays, in batches of pruneBatch; calls still up and newer ones stay', async () => {
    const url = await freshDatabase();
    const c = clock(1_800_000_000_000);
    const s = await store('inst-retain', { url, now: c.now, retainDays: 30, pruneBatch: 2 });
    const fake = new FakeB2bua();
    s.follow(fake);
    const old = calls(fake, c.now() - 40 * DAY, 5, 2); // 5 ended 40 days ago, 2 up since then
    const recent = calls(fake, c.now() - 10 * DAY, 3);
    await s.flush();
    expect((await ids(url, 'calls')).size).toBe(10);
    expect((await ids(url, 'cdrs')).size).toBe(8);

    const result = await s.prune();
    // 5 calls in batches of 2: 2, 2, 1; then 5 CDRs: 2, 2, 1.
    expect(result).toEqual({ ran: true, calls: 5, cdrs: 5, batches: 6 });
    expect(s.stats()).toMatchObject({ prunedCalls: 5, prunedCdrs: 5 });
    const left = await ids(url, 'calls');
    expect(left).toEqual(new Set([...old.slice(5), ...recent].map((r) => r.id)));
    expect(await ids(url, 'cdrs')).toEqual(new Set(recent.map((r) => r.id)));
    // The calls still up are never pruned, however old.
    expect(JSON.parse((await s.lookup.get(old[5]!.id))!).status).toBe('answered');

    // Nothing more to do: one empty batch per table.
    expect(await s.prune()).toEqual({ ran: true, calls: 0, cdrs: 0, batches: 2 });
    c.advance(21 * DAY); // the recent calls are now 31 days old
    expect(await s.prune()).toMatchObject({ calls: 3, cdrs: 3 });
    expect(await ids(url, 'cdrs')).toEqual(new Set());
  });

  it('one instance prunes at a time: while another holds the pruning lock, prune() does nothing', async () => {
    const url = await freshDatabase();
    const c = clock(1_800_000_000_000);
    const s = await store('inst-retain-lock', { url, now: c.now, retainDays: 1 });
    const fake = new FakeB2bua();
    s.follow(fake);
    calls(fake, c.now() - 2 * DAY, 3);
    await s.flush();
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // What another instance's pruning run holds for its whole run.
      await other.query('SELECT pg_advisory_lock($1)', [PRUNE_LOCK]);
      expect(await s.prune()).toEqual({ ran: false, calls: 0, cdrs: 0, batches: 0 });
      expect((await ids(url, 'calls')).size).toBe(3);
      await other.query('SELECT pg_advisory_unlock($1)', [PRUNE_LOCK]);
      expect(await s.prune()).toMatchObject({ ran: true, calls: 3, cdrs: 3 });
    } finally {
      await other.end();
    }
  });

  it('retainDays 0 keeps everything', async () => {
    const url = await freshDatabase();
    const c = clock(1_800_000_000_000);
    const s = await store('inst-retain-0', { url, now: c.now, retainDays: 0 });
    const fake = new FakeB2bua();
    s.follow(fake);
    calls(fake, c.now() - 3650 * DAY, 2);
    await s.flush();
    expect(await s.prune()).toEqual({ ran: false, calls: 0, cdrs: 0, batches: 0 });
    expect((await ids(url, 'calls')).size).toBe(2);
  });

  it('the job runs on its own, every pruneEveryMs', async () => {
    const url = await freshDatabase();
    const c = clock(1_800_000_000_000);
    const s = await store('inst-retain-timer', { url, now: c.now, retainDays: 7, pruneEveryMs: 10 });
    const fake = new FakeB2bua();
    s.follow(fake);
    calls(fake, c.now() - 8 * DAY, 2);
    await s.flush();
    await vi.waitFor(() => expect(s.stats().prunedCalls).toBe(2), { timeout: 10_000, interval: 20 });
    expect((await ids(url, 'calls')).size).toBe(0);
  });

  it('an existing database (schema version 1, with calls) migrates forward: the retention index and target_error are added, the rows kept', async () => {
    const url = await freshDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect(await migrate(c, MIGRATIONS.slice(0, 1))).toBe(1);
      await c.query(`INSERT INTO calls (id, instance_id, status, source, destination, created_ms, hangup_ms, a_leg_call_id, updated_ms)
        VALUES ('old-1', 'i', 'hangup', 'udp:127.0.0.1:5060', 'sip:1@x', 1, 2, 'a', 2)`);
      expect(await migrate(c)).toBe(MIGRATIONS.length);
      const index = (await c.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'calls_ended_by_hangup'")).rows[0]?.indexdef as string;
      expect(index).toMatch(/\(hangup_ms\) WHERE \(status = ANY/);
      expect((await c.query('SELECT id, target_error FROM calls')).rows).toEqual([{ id: 'old-1', target_error: null }]);
      // The pruning statement finds its rows through that index (not a scan of calls).
      await c.query('SET enable_seqscan = off');
      const plan = (await c.query("EXPLAIN SELECT id FROM calls WHERE status IN ('hangup', 'lost') AND hangup_ms < 10 ORDER BY hangup_ms LIMIT 5")).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toContain('calls_ended_by_hangup');
    } finally {
      await c.end();
    }
  });
});
