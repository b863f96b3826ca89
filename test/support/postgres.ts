import { findPostgresBin, startLocalPostgres, type LocalPostgres } from '../../examples/trunk-server/pg-local.js';

/** PostgreSQL's server programs are installed (initdb); peer tests needing a database skip without them. */
export const HAS_POSTGRES = findPostgresBin() !== undefined;

/**
 * Call at the top of a `*.peer.test.ts` needing PostgreSQL: with env CI set, a missing
 * PostgreSQL fails the run (`.ci/run` installs it); without, the test is skipped and says why.
 */
export function requirePostgres(what: string): boolean {
  if (HAS_POSTGRES) return true;
  if (process.env.CI) throw new Error('PostgreSQL is not installed (no initdb): .ci/run installs postgresql');
  console.warn(`skipped: ${what} needs PostgreSQL (apt-get install postgresql)`);
  return false;
}

/** A throwaway PostgreSQL (initdb in a temp dir, trust auth, unix socket + 127.0.0.1 on a free port): `url`, `stop()`. */
export function startPostgres(): Promise<LocalPostgres> {
  return startLocalPostgres();
}

export type { LocalPostgres };
