// What the PostgreSQL call records cost per call (issue #18): `npx tsx bench/pg-records.ts [calls/s] [seconds] [batchMs] [none]`.
//
// A throwaway PostgreSQL (with pg_stat_statements) and the trunk's store (pg-records.ts)
// following a fake B2BUA that plays each call's events as a real one emits them: created,
// ringing (+50 ms), answered (+100 ms), hangup after the hold time. Prints statements per call,
// the server's execution time per call (pg_stat_statements), the store's wall time waiting on
// flushes, and this process's CPU per call (event handling + building the batches).
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { CallRecord } from 'sipkit/b2bua';
import { openPgRecords } from '../examples/trunk-server/pg-records.js';
import { startLocalPostgres } from '../examples/trunk-server/pg-local.js';

const rate = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 10);
const batchMs = Number(process.argv[4] ?? 50);
const holdMs = 1000;
/** `none`: the same calls with the store not following them, for the driver's own CPU. */
const follow = process.argv[5] !== 'none';

class FakeB2bua extends EventEmitter {
  readonly records = new Map<string, CallRecord>();
  get(id: string) {
    return this.records.get(id);
  }
}

function record(i: number): CallRecord {
  return {
    id: `bench-${i}`,
    state: 'dialing',
    from: '<sip:1000@acme.trunk.test>;tag=abc',
    to: `sip:+4930${String(i).padStart(8, '0')}@acme.trunk.test`,
    identity: '1000',
    source: { address: '127.0.0.1', port: 5060, transport: 'udp' },
    aLeg: { callId: `a-${i}@127.0.0.1` },
    bLeg: { callId: undefined, target: undefined, attempts: 0 },
    timestamps: { created: Date.now() },
    hangup: undefined,
    tags: { domain: 'acme.trunk.test', auth: 'digest' },
  };
}

const db = await startLocalPostgres();
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
try {
  const store = await openPgRecords({ url: db.url, instanceId: 'bench', batchMs });
  const b2bua = new FakeB2bua();
  if (follow) store.follow(b2bua);
  await admin.query('SELECT pg_stat_statements_reset()');
  const before = store.stats();
  const cpu0 = process.cpuUsage();
  const total = rate * seconds;
  const timers: NodeJS.Timeout[] = [];
  const startedAt = Date.now();
  await new Promise<void>((resolve) => {
    let i = 0;
    let ended = 0;
    const tick = setInterval(() => {
      // Calls due by now (setInterval drifts; catch up in whole calls).
      const due = Math.min(total, Math.floor(((Date.now() - startedAt) / 1000) * rate));
      for (; i < due; i++) {
        const r = record(i);
        b2bua.records.set(r.id, r);
        b2bua.emit('call', r);
        timers.push(
          setTimeout(() => {
            r.state = 'ringing';
            r.timestamps.ringing = Date.now();
            r.bLeg = { callId: `b-${r.id}`, target: 'sip:+4930@192.0.2.10', attempts: 1 };
            b2bua.emit('update', r);
          }, 50),
          setTimeout(() => {
            r.state = 'answered';
            r.timestamps.answered = Date.now();
            b2bua.emit('update', r);
          }, 100),
          setTimeout(() => {
            r.state = 'hangup';
            r.timestamps.hangup = Date.now();
            r.hangup = { by: 'caller', status: undefined, phrase: undefined, q850: 16 };
            b2bua.emit('end', r);
            b2bua.records.delete(r.id);
            if (++ended === total) resolve();
          }, 100 + holdMs),
        );
      }
      if (i >= total) clearInterval(tick);
    }, 10);
  });
  await store.flush();
  const cpu = process.cpuUsage(cpu0);
  const after = store.stats();
  const rows = (
    await admin.query<{ query: string; calls: string; total_exec_time: number }>(
      "SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE query ILIKE '%INSERT INTO calls%' OR query ILIKE '%FROM auth_failures%' OR query ILIKE '%UPDATE instances%'",
    )
  ).rows;
  const execMs = rows.reduce((s, r) => s + r.total_exec_time, 0);
  const flushes = after.flushes - before.flushes;
  const statements = after.statements - before.statements;
  const fmt = (n: number, d = 3) => n.toFixed(d);
  console.log(`pg-records: ${total} calls at ${rate}/s, batchMs ${batchMs}, 4 events per call${follow ? '' : ' — store NOT following (baseline)'}`);
  console.log(`  statements            ${statements} (${flushes} flushes, the rest heartbeats and throttle polls) = ${fmt(statements / total)} per call`);
  console.log(`  call rows written     ${after.callRows - before.callRows} (${fmt((after.callRows - before.callRows) / total, 2)} per call: events coalesced per flush)`);
  console.log(`  server exec time      ${fmt(execMs, 1)} ms = ${fmt(execMs / total)} ms per call (pg_stat_statements)`);
  console.log(`  flush wait (wall)     ${fmt(after.flushMs - before.flushMs, 1)} ms = ${fmt((after.flushMs - before.flushMs) / total)} ms per call (off the SIP path)`);
  console.log(`  this process's CPU    ${fmt((cpu.user + cpu.system) / 1000, 1)} ms = ${fmt((cpu.user + cpu.system) / 1000 / total)} ms per call (driver + store)`);
  console.log(`  dropped ${after.dropped}, failed flushes ${after.failedFlushes}`);
  for (const r of rows) console.log(`    ${String(r.calls).padStart(6)} × ${fmt(r.total_exec_time / Number(r.calls))} ms  ${r.query.replace(/\s+/g, ' ').slice(0, 70)}`);
  await store.close();
} finally {
  await admin.end();
  await db.stop();
}
