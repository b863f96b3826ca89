import pg from 'pg';
import type { CallRecord } from 'sipkit/b2bua';
import type { SharedThrottle } from './auth.js';
import { CursorError, type CallFilter } from './call-index.js';
import { viewOf, type CallView } from './call-view.js';
import { ApiError, type CallLookup } from './http-api.js';
import type { Logger } from './log.js';
import { migrate } from './pg-schema.js';

/** The B2BUA the records follow: its events, and its records (a call asked for here is answered from memory first). */
export interface RecordSource {
  get(id: string): CallRecord | undefined;
  on(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
  off(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
}

/** Cluster-wide throttling of failed authentications: DigestServer's defaults, summed over every instance. */
export interface SharedThrottleOptions {
  /** Failures of one username from one source within a window that block that pair (default 10). */
  maxFailures?: number;
  /** The fixed window failures are counted in (default 60 s). */
  windowMs?: number;
  /** How long a blocked pair or source stays blocked (default 300 s). */
  blockMs?: number;
  /** A source failing on more distinct usernames within a window is blocked as a whole (default 16). */
  maxUsersPerSource?: number;
  /** How often each instance reads the blocks from the database (default 1 s). */
  pollMs?: number;
}

export interface PgRecordsOptions {
  /** postgres://user@host:port/db */
  url: string;
  /** This instance's name: its calls' `instance`, its heartbeat row. Two live instances must not share one. */
  instanceId: string;
  /** Call events are written at most this long after they happen, in one statement per flush (default 50 ms). */
  batchMs?: number;
  /** An instance whose heartbeat is older than this is gone: its calls still up are marked `lost` (default 60 s). */
  lostAfterSeconds?: number;
  /** How often the heartbeat is written and lost instances looked for (default a quarter of lostAfterSeconds, 0.2 s to 15 s). */
  heartbeatMs?: number;
  /** Calls waiting to be written at most; beyond (the database is down or slow), events are dropped and counted (default 10 000). */
  maxQueue?: number;
  throttle?: SharedThrottleOptions;
  /** The clock (epoch ms) of heartbeats, windows and hangup times (default Date.now). */
  now?: () => number;
  log?: Logger;
  /** Connections in the pool (default 4: a flush, a poll, and API reads). */
  poolSize?: number;
  /**
   * Ended calls and CDRs older than this many days (by hangup time) are deleted by the pruning
   * job; 0 keeps them forever (default 90). Calls still up are never pruned.
   */
  retainDays?: number;
  /** How often the pruning job runs (default 15 min). One instance of a cluster prunes at a time. */
  pruneEveryMs?: number;
  /** Rows deleted per statement (each its own short transaction; default 1000). */
  pruneBatch?: number;
}

/** What one run of the pruning job did. */
export interface PruneResult {
  /** false: another instance held the pruning lock (it prunes; this one did nothing), or retention is off. */
  ran: boolean;
  calls: number;
  cdrs: number;
  /** DELETE statements sent (each at most `pruneBatch` rows). */
  batches: number;
}

export interface PgRecordsStats {
  /** Statements sent (flushes, heartbeats, polls, reads). */
  statements: number;
  /** Flushes done, and the calls/CDRs/failure counts they wrote. */
  flushes: number;
  callRows: number;
  cdrRows: number;
  failureRows: number;
  /** Wall time spent waiting on flush statements (ms, summed). */
  flushMs: number;
  /** Events dropped because the queue was full. */
  dropped: number;
  /** Flushes that failed (their rows are tried again while the queue has room). */
  failedFlushes: number;
  /** Calls waiting to be written now. */
  queued: number;
  /** Calls this instance marked lost (its own left over from an earlier run, or another's). */
  markedLost: number;
  /** Ended calls and CDRs this instance deleted past `retainDays`. */
  prunedCalls: number;
  prunedCdrs: number;
}

/** What a trunk gets from its PostgreSQL store: follow a B2BUA, answer the API, share throttling. */
export interface PgRecords {
  readonly instanceId: string;
  /** Write the B2BUA's call events from now on; the API's lookups answer its calls from memory first. */
  follow(b2bua: RecordSource): void;
  /** GET /v1.0/calls and /v1.0/calls/{id} for the HTTP API (http-api.ts `calls`): every instance's calls. */
  readonly lookup: CallLookup;
  /** For auth.ts (`sharedThrottle`): failures are counted in the database, blocks read back from it. */
  readonly throttle: SharedThrottle;
  /** Write what is queued now (resolves when written or failed). */
  flush(): Promise<void>;
  /** Write the heartbeat and mark the calls of instances gone silent as lost, now. */
  heartbeat(): Promise<void>;
  /** Read the cluster's throttling blocks now. */
  pollThrottle(): Promise<void>;
  /** Run the pruning job now (what its timer does): delete ended calls and CDRs past `retainDays`. */
  prune(): Promise<PruneResult>;
  stats(): PgRecordsStats;
  /** Flush, record a clean stop (nothing of ours is lost), close the connections. */
  close(): Promise<void>;
  /** Stop at once, writing nothing more: what a killed process leaves behind (for tests). */
  abandon(): Promise<void>;
}

/** Why a lost call ended: Q.850 41, temporary failure (its instance is gone; so is its media). */
export const LOST_CAUSE = 41;
export const LOST_REASON = 'instance lost';
/** An instance's row is dropped once it has been silent this long with no call up. */
const FORGET_INSTANCE_MS = 86_400_000;
/** Any fixed 64-bit number (not the migrations'): held by the one instance pruning, for the whole run. */
export const PRUNE_LOCK = 0x5_1b_c1_7a_19;
export const DEFAULT_RETAIN_DAYS = 90;

/**
 * One batch of the pruning job: at most $2 rows, each batch its own statement (autocommit), so
 * row locks are held for one batch only and the flushes of every instance go on in between.
 * By primary key, not ctid: a row updated meanwhile keeps its id. Only ended calls (the partial
 * index calls_ended_by_hangup holds exactly those): a call still up is never deleted.
 */
const PRUNE_CALLS = `DELETE FROM calls WHERE id IN (
  SELECT id FROM calls WHERE status IN ('hangup', 'lost') AND hangup_ms < $1 ORDER BY hangup_ms LIMIT $2)`;
const PRUNE_CDRS = `DELETE FROM cdrs WHERE id IN (SELECT id FROM cdrs WHERE ended_ms < $1 ORDER BY ended_ms LIMIT $2)`;

/** The columns of `calls` a flush writes, in the order of the unnest arrays. */
const CALL_COLUMNS: ReadonlyArray<[string, string]> = [
  ['id', 'text'],
  ['instance_id', 'text'],
  ['status', 'text'],
  ['source', 'text'],
  ['destination', 'text'],
  ['trunk_domain', 'text'],
  ['extension', 'text'],
  ['auth_method', 'text'],
  ['created_ms', 'bigint'],
  ['ringing_ms', 'bigint'],
  ['progressing_ms', 'bigint'],
  ['answered_ms', 'bigint'],
  ['hangup_ms', 'bigint'],
  ['hangup_by', 'text'],
  ['hangup_code', 'integer'],
  ['hangup_reason', 'text'],
  ['q850_cause', 'integer'],
  ['relayed_bye', 'text'],
  ['relayed_bye_status', 'integer'],
  ['a_leg_call_id', 'text'],
  ['b_leg_call_id', 'text'],
  ['b_leg_target', 'text'],
  ['charge_amount', 'numeric'],
  ['charge_currency', 'text'],
  ['charge_billed_seconds', 'integer'],
  ['charge_rate_prefix', 'text'],
  ['target_error', 'text'],
  ['updated_ms', 'bigint'],
];

type Cell = string | number | null;

/** A call's row (CALL_COLUMNS order), from the same view the API and CDR lines show. */
function rowOf(r: CallRecord, instanceId: string, now: number): Cell[] {
  const v = viewOf(r);
  return [
    v.id,
    instanceId,
    v.status,
    v.source,
    v.destination,
    v.trunk_domain,
    v.extension,
    v.auth_method,
    r.timestamps.created,
    r.timestamps.ringing ?? null,
    r.timestamps.progressing ?? null,
    r.timestamps.answered ?? null,
    r.timestamps.hangup ?? null,
    v.hangup_by,
    v.hangup_code,
    v.hangup_reason,
    v.q850_cause,
    v.relayed_bye,
    v.relayed_bye_status,
    v.a_leg_call_id,
    v.b_leg_call_id,
    v.b_leg_target,
    v.charge?.amount ?? null,
    v.charge?.currency ?? null,
    v.charge?.billed_seconds ?? null,
    v.charge?.rate_prefix ?? null,
    v.target_error,
    now,
  ];
}

/** The API's view of a call, with the instance that holds (or held) it. */
export type ClusterCallView = CallView & { instance: string };

type Row = Record<string, string | number | null>;

const iso = (ms: string | number | null): string | null => (ms === null ? null : new Date(Number(ms)).toISOString());
const num = (v: string | number | null): number | null => (v === null ? null : Number(v));
const text = (v: string | number | null): string | null => (v === null ? null : String(v));

/** A `calls` row as the API shows it: the same fields, in the same order, as viewOf() (plus `instance`). */
export function viewOfRow(row: Row): ClusterCallView {
  return {
    id: String(row.id),
    status: String(row.status),
    source: String(row.source),
    destination: String(row.destination),
    trunk_domain: text(row.trunk_domain),
    extension: text(row.extension),
    auth_method: text(row.auth_method),
    tm_create: iso(row.created_ms)!,
    tm_ringing: iso(row.ringing_ms),
    tm_progressing: iso(row.progressing_ms),
    tm_answer: iso(row.answered_ms),
    tm_hangup: iso(row.hangup_ms),
    hangup_by: text(row.hangup_by),
    hangup_code: num(row.hangup_code),
    hangup_reason: text(row.hangup_reason),
    q850_cause: num(row.q850_cause),
    relayed_bye: text(row.relayed_bye),
    relayed_bye_status: num(row.relayed_bye_status),
    a_leg_call_id: String(row.a_leg_call_id),
    b_leg_call_id: text(row.b_leg_call_id),
    b_leg_target: text(row.b_leg_target),
    charge:
      row.charge_amount === null
        ? null
        : { amount: String(row.charge_amount), currency: String(row.charge_currency ?? ''), billed_seconds: Number(row.charge_billed_seconds ?? 0), rate_prefix: String(row.charge_rate_prefix ?? '') },
    target_error: text(row.target_error ?? null),
    instance: String(row.instance_id),
  };
}

const unnestArgs = (from: number, types: readonly string[]) => types.map((t, i) => `$${from + i}::${t}[]`).join(', ');

/**
 * One statement per flush: the calls that changed (an upsert of their current state, however
 * many events each had), the CDRs of those that ended, and the failed authentications counted
 * since the last flush — each as arrays unnested server-side, so the statement text never
 * changes (prepared once per connection) whatever the batch size.
 */
function flushStatement(): string {
  const n = CALL_COLUMNS.length;
  const cols = CALL_COLUMNS.map(([c]) => c).join(', ');
  const updates = CALL_COLUMNS.filter(([c]) => c !== 'id').map(([c]) => `${c} = excluded.${c}`).join(', ');
  const cdr = n + 1;
  const fail = cdr + 4;
  const p = fail + 4; // $p: now, $p+1: maxFailures, $p+2: blockMs
  return `WITH c AS (
  INSERT INTO calls (${cols}) SELECT * FROM unnest(${unnestArgs(1, CALL_COLUMNS.map(([, t]) => t))})
  ON CONFLICT (id) DO UPDATE SET ${updates}
  RETURNING 1
), d AS (
  INSERT INTO cdrs (id, instance_id, ended_ms, cdr) SELECT i, inst, e, j::jsonb FROM unnest(${unnestArgs(cdr, ['text', 'text', 'bigint', 'text'])}) AS t(i, inst, e, j)
  ON CONFLICT (id) DO NOTHING
  RETURNING 1
), f AS (
  INSERT INTO auth_failures (source, user_key, window_ms, failures, blocked_until_ms)
  SELECT s, u, w, n, CASE WHEN n >= $${p + 1} THEN $${p}::bigint + $${p + 2} ELSE 0 END FROM unnest(${unnestArgs(fail, ['text', 'text', 'bigint', 'integer'])}) AS t(s, u, w, n)
  ON CONFLICT (source, user_key, window_ms) DO UPDATE SET
    failures = auth_failures.failures + excluded.failures,
    blocked_until_ms = CASE WHEN auth_failures.failures + excluded.failures >= $${p + 1} THEN greatest(auth_failures.blocked_until_ms, $${p}::bigint + $${p + 2}) ELSE auth_failures.blocked_until_ms END
  RETURNING 1
)
SELECT (SELECT count(*) FROM c)::int AS calls, (SELECT count(*) FROM d)::int AS cdrs, (SELECT count(*) FROM f)::int AS failures`;
}

/** Mark calls still up as lost; their rows come back for the CDRs. $1 now, $2 reason, $3 cause; the WHERE picks whose. */
const MARK_LOST = (where: string) => `UPDATE calls SET status = 'lost', hangup_ms = $1, hangup_by = 'system', hangup_reason = $2, q850_cause = $3, updated_ms = $1
  WHERE status NOT IN ('hangup', 'lost') AND ${where} RETURNING *`;

const CURSOR_PREFIX = 'p1.';

function encodeCursor(createdMs: string | number, id: string): string {
  return Buffer.from(`${CURSOR_PREFIX}${createdMs}.${id}`).toString('base64url');
}

function decodeCursor(token: string): [number, string] {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const m = /^p1\.(\d{1,16})\.(.+)$/s.exec(text);
  if (!m || encodeCursor(m[1]!, m[2]!) !== token) throw new CursorError('page_token is not one this server gave out');
  return [Number(m[1]), m[2]!];
}

/**
 * Call records, CDRs, instance heartbeats and failed authentications in PostgreSQL, shared by
 * every instance of a cluster (issue #18). Opening connects, migrates the schema (pg-schema.ts),
 * marks the calls this instance id left up in an earlier run as lost, and starts the heartbeat.
 *
 * Writes never wait on SIP: call events only mark the call dirty (a Map entry), and a flush
 * every `batchMs` writes the current state of every dirty call in one statement. While the
 * database is down the queue holds up to `maxQueue` calls; events beyond are dropped and counted.
 */
export async function openPgRecords(options: PgRecordsOptions): Promise<PgRecords> {
  const { instanceId, log } = options;
  const now = options.now ?? Date.now;
  const batchMs = options.batchMs ?? 50;
  const lostAfterMs = (options.lostAfterSeconds ?? 60) * 1000;
  const heartbeatMs = options.heartbeatMs ?? Math.min(15_000, Math.max(200, lostAfterMs / 4));
  const maxQueue = options.maxQueue ?? 10_000;
  const t = options.throttle ?? {};
  const maxFailures = t.maxFailures ?? 10;
  const windowMs = t.windowMs ?? 60_000;
  const blockMs = t.blockMs ?? 300_000;
  const maxUsersPerSource = t.maxUsersPerSource ?? 16;
  const pollMs = t.pollMs ?? 1000;
  const retainMs = (options.retainDays ?? DEFAULT_RETAIN_DAYS) * 86_400_000;
  const pruneEveryMs = options.pruneEveryMs ?? 900_000;
  const pruneBatch = options.pruneBatch ?? 1000;

  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 4 });
  // An idle connection's error (the server restarted) must not crash the trunk: the pool replaces it.
  pool.on('error', (err) => log?.('warn', 'records.db_error', { error: err.message }));
  const stats: PgRecordsStats = { statements: 0, flushes: 0, callRows: 0, cdrRows: 0, failureRows: 0, flushMs: 0, dropped: 0, failedFlushes: 0, queued: 0, markedLost: 0, prunedCalls: 0, prunedCdrs: 0 };
  const query = <R extends pg.QueryResultRow = Row>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> => {
    stats.statements++;
    return pool.query<R>(config);
  };

  const client = await pool.connect();
  try {
    await migrate(client);
  } finally {
    client.release();
  }

  /** Lost calls' CDRs, written in one statement (rare: a lost instance or an earlier run). */
  const writeLostCdrs = async (rows: Row[]) => {
    if (rows.length === 0) return;
    stats.markedLost += rows.length;
    const views = rows.map(viewOfRow);
    await query({
      text: 'INSERT INTO cdrs (id, instance_id, ended_ms, cdr) SELECT i, inst, e, j::jsonb FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS t(i, inst, e, j) ON CONFLICT (id) DO NOTHING',
      values: [views.map((v) => v.id), views.map((v) => v.instance), rows.map((r) => Number(r.hangup_ms)), views.map((v) => JSON.stringify(v))],
    });
    for (const v of views) log?.('warn', 'call.lost', { id: v.id, instance: v.instance });
  };

  // This id's calls still up in the database are from an earlier run of it: nothing holds them now.
  const startedMs = now();
  const own = await query({ text: MARK_LOST('instance_id = $4'), values: [startedMs, LOST_REASON, LOST_CAUSE, instanceId] });
  await writeLostCdrs(own.rows);
  await query({
    text: 'INSERT INTO instances (id, started_ms, heartbeat_ms) VALUES ($1, $2, $2) ON CONFLICT (id) DO UPDATE SET started_ms = $2, heartbeat_ms = $2, stopped_ms = NULL',
    values: [instanceId, startedMs],
  });

  // ---- call events → one statement per flush
  const dirty = new Map<string, CallRecord>();
  const ended = new Map<string, CallRecord>();
  /** Failures since the last flush, by source, user and window (keyed by all three). */
  let failures = new Map<string, { source: string; user: string; window: number; n: number }>();
  let flushTimer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let closed = false;
  let outage = false;
  const statement = flushStatement();

  const schedule = () => {
    if (flushTimer || closed) return;
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      void flush();
    }, batchMs);
    flushTimer.unref();
  };
  const queue = (map: Map<string, CallRecord>, r: CallRecord): boolean => {
    if (!map.has(r.id) && map.size >= maxQueue) {
      stats.dropped++;
      return false;
    }
    map.set(r.id, r);
    schedule();
    return true;
  };
  const onChange = (r: CallRecord) => void queue(dirty, r);
  const onEnd = (r: CallRecord) => {
    if (queue(dirty, r)) queue(ended, r);
  };

  const writeBatch = async (): Promise<void> => {
    if (dirty.size === 0 && ended.size === 0 && failures.size === 0) return;
    const calls = [...dirty.values()];
    const cdrs = [...ended.values()];
    const fails = failures;
    dirty.clear();
    ended.clear();
    failures = new Map();
    const at = now();
    const columns: Cell[][] = CALL_COLUMNS.map(() => []);
    for (const r of calls) rowOf(r, instanceId, at).forEach((v, i) => columns[i]!.push(v));
    const cdrViews = cdrs.map((r) => viewOf(r));
    const failList = [...fails.values()];
    const values = [
      ...columns,
      cdrViews.map((v) => v.id),
      cdrViews.map(() => instanceId),
      cdrs.map((r) => r.timestamps.hangup ?? at),
      cdrViews.map((v) => JSON.stringify({ ...v, instance: instanceId })),
      failList.map((f) => f.source),
      failList.map((f) => f.user),
      failList.map((f) => f.window),
      failList.map((f) => f.n),
      at,
      maxFailures,
      blockMs,
    ];
    const started = performance.now();
    try {
      const res = await query<{ calls: number; cdrs: number; failures: number }>({ name: 'sipkit_flush', text: statement, values });
      stats.flushes++;
      stats.callRows += res.rows[0]!.calls;
      stats.cdrRows += res.rows[0]!.cdrs;
      stats.failureRows += res.rows[0]!.failures;
      if (outage) log?.('info', 'records.db_back', { dropped: stats.dropped });
      outage = false;
    } catch (err) {
      stats.failedFlushes++;
      if (!outage) log?.('error', 'records.flush_failed', { error: (err as Error).message, calls: calls.length });
      outage = true;
      // Tried again with the next flush, newest state first, while there is room; the rest is dropped.
      for (const r of calls) if (!dirty.has(r.id) && !queue(dirty, r)) break;
      for (const r of cdrs) if (!ended.has(r.id) && !queue(ended, r)) break;
      for (const [k, f] of fails) {
        const had = failures.get(k);
        if (had) had.n += f.n;
        else failures.set(k, f);
      }
    } finally {
      stats.flushMs += performance.now() - started;
    }
  };
  /** Flushes run one at a time, in order: a call's later state is never overwritten by an earlier one. */
  const flush = (): Promise<void> => {
    const next = (flushing ?? Promise.resolve()).then(writeBatch);
    flushing = next;
    void next.finally(() => {
      if (flushing === next) flushing = undefined;
    });
    return next;
  };

  // ---- heartbeat and lost instances
  const heartbeat = async (): Promise<void> => {
    const at = now();
    try {
      await query({ text: 'UPDATE instances SET heartbeat_ms = $2, stopped_ms = NULL WHERE id = $1', values: [instanceId, at] });
      // Any live instance may do this; the status check makes it once per call.
      const lost = await query({
        text: MARK_LOST(`instance_id IN (SELECT id FROM instances WHERE heartbeat_ms < $1::bigint - $4 AND stopped_ms IS NULL AND id <> $5)`),
        values: [at, LOST_REASON, LOST_CAUSE, lostAfterMs, instanceId],
      });
      await writeLostCdrs(lost.rows);
      // Old failure windows go; so do instances silent for a day with no call up (ids like <host>-<pid> are new each start).
      await query({
        text: `WITH f AS (DELETE FROM auth_failures WHERE window_ms < $1::bigint - $2 AND blocked_until_ms < $1)
          DELETE FROM instances i WHERE i.heartbeat_ms < $1::bigint - $3 AND i.id <> $4
            AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.instance_id = i.id AND c.status NOT IN ('hangup', 'lost'))`,
        values: [at, windowMs + blockMs, FORGET_INSTANCE_MS, instanceId],
      });
    } catch (err) {
      log?.('warn', 'records.heartbeat_failed', { error: (err as Error).message });
    }
  };

  // ---- retention
  let pruning: Promise<PruneResult> | undefined;
  const pruneRun = async (): Promise<PruneResult> => {
    const result: PruneResult = { ran: false, calls: 0, cdrs: 0, batches: 0 };
    if (retainMs === 0) return result;
    // A session lock on a connection of its own, held for the run: the other instances' timers
    // find it taken and skip (a try, never a wait), so two never delete the same rows at once.
    const c = await pool.connect();
    let failed: Error | undefined;
    try {
      stats.statements++;
      const got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [PRUNE_LOCK])).rows[0]!.ok;
      if (!got) return result;
      result.ran = true;
      try {
        const cutoff = now() - retainMs;
        for (const [sql, key] of [[PRUNE_CALLS, 'calls'], [PRUNE_CDRS, 'cdrs']] as const) {
          for (;;) {
            if (closed) return result;
            stats.statements++;
            result.batches++;
            const n = (await c.query({ text: sql, values: [cutoff, pruneBatch] })).rowCount ?? 0;
            result[key] += n;
            if (n < pruneBatch) break;
          }
        }
        stats.prunedCalls += result.calls;
        stats.prunedCdrs += result.cdrs;
        if (result.calls + result.cdrs > 0) log?.('info', 'records.pruned', { calls: result.calls, cdrs: result.cdrs, before: new Date(cutoff).toISOString() });
        return result;
      } finally {
        stats.statements++;
        await c.query('SELECT pg_advisory_unlock($1)', [PRUNE_LOCK]);
      }
    } catch (err) {
      failed = err as Error;
      throw err;
    } finally {
      // After a failure the connection is closed, not reused: that also ends its session lock.
      c.release(failed);
    }
  };
  /** One run at a time in this process (a timer firing during a long run waits for it instead). */
  const prune = (): Promise<PruneResult> => {
    pruning ??= pruneRun()
      .catch((err: Error) => {
        log?.('warn', 'records.prune_failed', { error: err.message });
        return { ran: false, calls: 0, cdrs: 0, batches: 0 };
      })
      .finally(() => (pruning = undefined));
    return pruning;
  };

  // ---- shared throttling
  let blocks = new Map<string, 'all' | Set<string>>();
  const pollThrottle = async (): Promise<void> => {
    const at = now();
    try {
      const res = await query<{ source: string; user_key: string | null }>({
        name: 'sipkit_blocks',
        text: `SELECT source, user_key FROM auth_failures WHERE blocked_until_ms > $1
          UNION ALL
          SELECT source, NULL FROM auth_failures WHERE window_ms > $1::bigint - $2 - $3 GROUP BY source, window_ms HAVING count(*) > $4 AND max(window_ms) + $2 + $3 > $1`,
        values: [at, windowMs, blockMs, maxUsersPerSource],
      });
      const next = new Map<string, 'all' | Set<string>>();
      for (const { source, user_key } of res.rows) {
        const b = next.get(source);
        if (user_key === null) next.set(source, 'all');
        else if (b === undefined) next.set(source, new Set([user_key]));
        else if (b !== 'all') b.add(user_key);
      }
      blocks = next;
    } catch (err) {
      // Keep the last blocks read: an outage neither lifts nor adds any.
      log?.('warn', 'records.throttle_poll_failed', { error: (err as Error).message });
    }
  };
  const throttle: SharedThrottle = {
    blocked: (source) => blocks.get(source),
    noteFailure: (source, user) => {
      const window = Math.floor(now() / windowMs) * windowMs;
      const key = JSON.stringify([source, user, window]);
      const had = failures.get(key);
      if (had) had.n++;
      else if (failures.size >= maxQueue) stats.dropped++;
      else failures.set(key, { source, user, window, n: 1 });
      schedule();
    },
  };

  const heartbeatTimer = setInterval(() => void heartbeat(), heartbeatMs);
  heartbeatTimer.unref();
  const pollTimer = setInterval(() => void pollThrottle(), pollMs);
  pollTimer.unref();
  const pruneTimer = retainMs === 0 ? undefined : setInterval(() => void prune(), pruneEveryMs);
  pruneTimer?.unref();
  await pollThrottle();

  // ---- reads for the API
  /** A read the database could not answer: 503, so a client (or the front) tries again or elsewhere. */
  const read = <R extends pg.QueryResultRow = Row>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> =>
    query<R>(config).catch((err: Error) => {
      log?.('warn', 'records.read_failed', { error: err.message });
      throw new ApiError(503, 'store_unavailable', 'the call records store is not reachable', { 'retry-after': '1' });
    });
  let source: RecordSource | undefined;
  const localJson = (id: string): string | undefined => {
    const r = source?.get(id);
    return r ? JSON.stringify({ ...viewOf(r), instance: instanceId }) : undefined;
  };
  const lookup: CallLookup = {
    get: async (id) => {
      // Our own calls from memory: current to the event, where the database lags by a flush.
      const local = localJson(id);
      if (local !== undefined) return local;
      const res = await read({ name: 'sipkit_call', text: 'SELECT * FROM calls WHERE id = $1', values: [id] });
      return res.rows[0] ? JSON.stringify(viewOfRow(res.rows[0])) : undefined;
    },
    page: async (filter: CallFilter, size, after) => {
      const [beforeMs, beforeId] = after === undefined ? [null, null] : decodeCursor(after);
      const res = await read({
        name: 'sipkit_calls',
        text: `SELECT * FROM calls WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR trunk_domain = $2)
          AND ($3::bigint IS NULL OR created_ms < $3 OR (created_ms = $3 AND id < $4)) ORDER BY created_ms DESC, id DESC LIMIT $5`,
        values: [filter.status || null, filter.domain || null, beforeMs, beforeId, size + 1],
      });
      const rows = res.rows.slice(0, size);
      const last = rows[rows.length - 1];
      return {
        items: rows.map((r) => localJson(String(r.id)) ?? JSON.stringify(viewOfRow(r))),
        next: res.rows.length > size && last ? encodeCursor(last.created_ms!, String(last.id)) : null,
      };
    },
  };

  let following: RecordSource | undefined;
  const unfollow = () => {
    following?.off('call', onChange);
    following?.off('update', onChange);
    following?.off('end', onEnd);
    following = undefined;
  };
  const stopTimers = () => {
    closed = true;
    clearInterval(heartbeatTimer);
    clearInterval(pollTimer);
    clearInterval(pruneTimer);
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
  };

  return {
    instanceId,
    follow: (b2bua) => {
      unfollow();
      source = following = b2bua;
      b2bua.on('call', onChange);
      b2bua.on('update', onChange);
      b2bua.on('end', onEnd);
    },
    lookup,
    throttle,
    flush,
    heartbeat,
    pollThrottle,
    prune,
    stats: () => ({ ...stats, queued: dirty.size }),
    close: async () => {
      unfollow();
      stopTimers();
      await pruning;
      await flush();
      try {
        await query({ text: 'UPDATE instances SET heartbeat_ms = $2, stopped_ms = $2 WHERE id = $1', values: [instanceId, now()] });
      } catch (err) {
        log?.('warn', 'records.stop_failed', { error: (err as Error).message });
      }
      log?.('info', 'records.closed', { ...stats, queued: dirty.size });
      await pool.end();
    },
    abandon: async () => {
      unfollow();
      stopTimers();
      dirty.clear();
      ended.clear();
      await pruning;
      await pool.end();
    },
  };
}
