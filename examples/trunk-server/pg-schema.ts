import pg, { type ClientBase } from 'pg';

/**
 * The trunk's tables in PostgreSQL, as numbered migrations: each runs once, in order, in its
 * own transaction, and `schema_version` says which have. Times are epoch milliseconds
 * (bigint) from the instances' clocks, so a test can drive them with an injected clock.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: calls, CDRs, instance heartbeats, failed authentications per source.
  `
  CREATE TABLE calls (
    id               text PRIMARY KEY,
    instance_id      text NOT NULL,
    status           text NOT NULL,
    source           text NOT NULL,
    destination      text NOT NULL,
    trunk_domain     text,
    extension        text,
    auth_method      text,
    created_ms       bigint NOT NULL,
    ringing_ms       bigint,
    progressing_ms   bigint,
    answered_ms      bigint,
    hangup_ms        bigint,
    hangup_by        text,
    hangup_code      integer,
    hangup_reason    text,
    q850_cause       integer,
    relayed_bye      text,
    relayed_bye_status integer,
    a_leg_call_id    text NOT NULL,
    b_leg_call_id    text,
    b_leg_target     text,
    charge_amount    numeric,
    charge_currency  text,
    charge_billed_seconds integer,
    charge_rate_prefix text,
    updated_ms       bigint NOT NULL
  );
  -- GET /v1.0/calls: newest first, optionally by status and trunk domain.
  CREATE INDEX calls_by_time ON calls (created_ms DESC, id DESC);
  CREATE INDEX calls_by_status ON calls (status, created_ms DESC, id DESC);
  CREATE INDEX calls_by_domain ON calls (trunk_domain, created_ms DESC, id DESC);
  -- Finding the calls of a lost instance that were still up.
  CREATE INDEX calls_up_by_instance ON calls (instance_id) WHERE status NOT IN ('hangup', 'lost');

  -- One row per ended call (the CDR line as JSON): what billing reads, never updated.
  CREATE TABLE cdrs (
    id          text PRIMARY KEY,
    instance_id text NOT NULL,
    ended_ms    bigint NOT NULL,
    cdr         jsonb NOT NULL
  );
  CREATE INDEX cdrs_by_time ON cdrs (ended_ms);

  CREATE TABLE instances (
    id            text PRIMARY KEY,
    started_ms    bigint NOT NULL,
    heartbeat_ms  bigint NOT NULL,
    -- Set on a clean stop: its calls ended then, none is left to be lost.
    stopped_ms    bigint
  );

  -- Failed authentications per (source, realm+username) per fixed window, summed over instances.
  CREATE TABLE auth_failures (
    source           text NOT NULL,
    user_key         text NOT NULL,
    window_ms        bigint NOT NULL,
    failures         integer NOT NULL,
    blocked_until_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (source, user_key, window_ms)
  );
  CREATE INDEX auth_failures_blocked ON auth_failures (blocked_until_ms);
  CREATE INDEX auth_failures_by_window ON auth_failures (window_ms);
  `,
  // 2: retention (records.retainDays). The pruning job deletes ended calls oldest first, in
  // small batches: it finds them by hangup time through this index, never by a scan of the table.
  // Partial, so the calls still up (never pruned) are not in it. cdrs_by_time serves the CDRs.
  // A plain CREATE INDEX (a migration runs in a transaction, CONCURRENTLY cannot): on a large
  // existing table the other instances' flushes wait for the build (their queues are bounded).
  `
  CREATE INDEX calls_ended_by_hangup ON calls (hangup_ms) WHERE status IN ('hangup', 'lost');
  `,
  // 3: the typed cause of the last target's failure (call-view.ts target_error). Nullable, no
  // default: adding it rewrites nothing.
  `
  ALTER TABLE calls ADD COLUMN target_error text;
  `,
];

/** Any fixed 64-bit number: the advisory lock every instance's migration takes, so only one migrates at a time. */
const MIGRATION_LOCK = 0x5_1b_c1_7a_18;

/**
 * Bring the schema up to date (at start). Under a session advisory lock: N instances starting
 * at once queue on it, the first migrates, the others then find nothing left to do.
 * Returns the schema version reached.
 */
export async function migrate(client: ClientBase, migrations: readonly string[] = MIGRATIONS): Promise<number> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, applied_ms bigint NOT NULL)');
    const row = (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version')).rows[0];
    let version = row?.v ?? 0;
    if (version > migrations.length) throw new Error(`the database's schema (version ${version}) is newer than this trunk's (${migrations.length}): upgrade the trunk`);
    for (; version < migrations.length; version++) {
      await client.query('BEGIN');
      try {
        await client.query(migrations[version]!);
        await client.query('INSERT INTO schema_version (version, applied_ms) VALUES ($1, $2)', [version + 1, Date.now()]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    }
    return version;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}

/** Connect to `url`, bring the schema up to date, disconnect (for a launcher, before it starts the instances). */
export async function migrateDatabase(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await migrate(client);
  } finally {
    await client.end();
  }
}
