// Retention in the PostgreSQL call records (issue #18): `npx tsx bench/pg-prune.ts [oldRows] [pruneBatch]`.
//
// A throwaway PostgreSQL with `oldRows` ended calls and as many CDRs past retention, in a
// schema at version 1 (before the retention index). Measures, in one run:
//   1. migrating forward (the index build of migration 2, on that table);
//   2. the flushes of a live instance (20 ended calls per flush, back to back at 50 ms), their
//      wall time per flush, without pruning (before), while the pruning job deletes the backlog
//      in batches of `pruneBatch`, and without pruning again (after: the drift of the machine);
//   3. the pruning run: rows deleted, its wall time, rows per second.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { CallRecord } from 'sipkit/b2bua';
import { openPgRecords } from '../examples/trunk-server/pg-records.js';
import { startLocalPostgres } from '../examples/trunk-server/pg-local.js';
import { migrate, MIGRATIONS } from '../examples/trunk-server/pg-schema.js';

const oldRows = Number(process.argv[2] ?? 500_000);
const pruneBatch = Number(process.argv[3] ?? 1000);
const DAY = 86_400_000;
const NOW = Date.now();

class FakeB2bua extends EventEmitter {
  get(): undefined {
    return undefined;
  }
}

let seq = 0;
function ended(): CallRecord {
  const i = ++seq;
  return {
    id: `live-${i}`,
    state: 'hangup',
    from: '<sip:1000@acme.trunk.test>;tag=abc',
    to: `sip:+4930${String(i).padStart(8, '0')}@acme.trunk.test`,
    identity: '1000',
    source: { address: '127.0.0.1', port: 5060, transport: 'udp' },
    aLeg: { callId: `a-${i}@127.0.0.1` },
    bLeg: { callId: `b-${i}`, target: 'sip:gw.test', attempts: 1 },
    timestamps: { created: NOW - 60_000, ringing: NOW - 59_900, answered: NOW - 59_500, hangup: NOW },
    hangup: { by: 'callee', status: undefined, phrase: undefined, q850: 16 },
    tags: { domain: 'acme.trunk.test', auth: 'digest' },
  };
}

const pct = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const summary = (name: string, a: number[]) =>
  `${name.padEnd(14)} flushes ${String(a.length).padStart(4)}  p50 ${pct(a, 50).toFixed(2)} ms  p99 ${pct(a, 99).toFixed(2)} ms  max ${Math.max(...a).toFixed(2)} ms`;

const db = await startLocalPostgres({ statements: false });
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
try {
  await migrate(admin, MIGRATIONS.slice(0, 1));
  const old = NOW - 100 * DAY;
  await admin.query(
    `INSERT INTO calls (id, instance_id, status, source, destination, trunk_domain, extension, auth_method, created_ms, answered_ms, hangup_ms, hangup_by, q850_cause, a_leg_call_id, b_leg_call_id, b_leg_target, updated_ms)
     SELECT 'old-' || g, 'gone', 'hangup', 'udp:127.0.0.1:5060', 'sip:+4930' || g || '@acme.trunk.test', 'acme.trunk.test', '1000', 'digest', $1::bigint + g, $1::bigint + g + 500, $1::bigint + g + 60500, 'callee', 16, 'a-' || g, 'b-' || g, 'sip:gw.test', $1::bigint + g + 60500
     FROM generate_series(1, $2::int) g`,
    [old, oldRows],
  );
  await admin.query(
    `INSERT INTO cdrs (id, instance_id, ended_ms, cdr) SELECT 'old-' || g, 'gone', $1::bigint + g + 60500, jsonb_build_object('id', 'old-' || g, 'status', 'hangup', 'destination', 'sip:+4930' || g || '@acme.trunk.test') FROM generate_series(1, $2::int) g`,
    [old, oldRows],
  );
  await admin.query('VACUUM ANALYZE calls');
  await admin.query('VACUUM ANALYZE cdrs');
  let t = performance.now();
  await migrate(admin);
  console.log(`migrate 1 -> ${MIGRATIONS.length} on ${oldRows} calls: ${(performance.now() - t).toFixed(0)} ms`);

  // Timers far off: the bench runs the flushes and the pruning itself.
  const store = await openPgRecords({ url: db.url, instanceId: 'bench', batchMs: 3_600_000, heartbeatMs: 3_600_000, retainDays: 30, pruneEveryMs: 3_600_000, pruneBatch });
  const b2bua = new FakeB2bua();
  store.follow(b2bua);
  const flushes = async (until: () => boolean, min: number): Promise<number[]> => {
    const out: number[] = [];
    while (out.length < min || !until()) {
      for (let k = 0; k < 20; k++) b2bua.emit('end', ended());
      const s = performance.now();
      await store.flush();
      out.push(performance.now() - s);
      await new Promise((r) => setTimeout(r, 50));
    }
    return out;
  };
  const before = await flushes(() => true, 100);
  let done = false;
  t = performance.now();
  const run = store.prune().then((r) => {
    done = true;
    return r;
  });
  const during = await flushes(() => done, 20);
  const result = await run;
  const pruneMs = performance.now() - t;
  const after = await flushes(() => true, 100);
  console.log(summary('no pruning', before));
  console.log(summary('while pruning', during));
  console.log(summary('no pruning', after));
  const rows = result.calls + result.cdrs;
  console.log(`pruned ${result.calls} calls + ${result.cdrs} CDRs in ${result.batches} batches of ${pruneBatch}: ${(pruneMs / 1000).toFixed(1)} s, ${Math.round(rows / (pruneMs / 1000))} rows/s`);
  const left = (await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM calls WHERE id LIKE 'old-%'")).rows[0]!.n;
  console.log(`old calls left: ${left}; live calls written: ${(await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM calls WHERE id LIKE 'live-%'")).rows[0]!.n}`);
  await store.close();
} finally {
  await admin.end();
  await db.stop();
}
