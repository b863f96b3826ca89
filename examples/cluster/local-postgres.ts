/**
 * A throwaway PostgreSQL for `npm run cluster` when the cluster config says `"postgres": "local"`:
 * initdb in a temporary directory, started with pg_ctl on a free port of 127.0.0.1, stopped and
 * removed with the cluster. Debian's server programs live in /usr/lib/postgresql/<version>/bin
 * (not on PATH); PostgreSQL refuses to run as root, so as root they run as the `postgres` user.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const POSTGRES_MISSING = 'PostgreSQL is not installed: apt-get install postgresql (Debian), or give the cluster config a postgres.url';

export interface LocalPostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres, trust authentication on loopback. */
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

/** Newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl; undefined when none. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const asRoot = (): boolean => userInfo().uid === 0;

/** Run one of PostgreSQL's programs, as `postgres` when we are root. */
function pg(bin: string, program: string, args: string[], timeoutMs: number): Promise<unknown> {
  const [cmd, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
  return run(cmd, argv, { timeout: timeoutMs });
}

export async function startLocalPostgres(): Promise<LocalPostgres> {
  const bin = postgresBin();
  if (!bin) throw new Error(POSTGRES_MISSING);
  const dataDir = mkdtempSync(join(tmpdir(), 'sipkit-cluster-pg-'));
  if (asRoot()) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dataDir, uid, gid);
  }
  const port = await freeTcpPort();
  try {
    await pg(bin, 'initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], 60_000);
    // Throwaway data: no fsync. The unix socket goes into the data directory (not /run/postgresql).
    const options = `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    await pg(bin, 'pg_ctl', ['-D', dataDir, '-o', options, '-l', join(dataDir, 'server.log'), '-w', '-t', '30', 'start'], 40_000);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`local PostgreSQL did not start: ${(err as Error).message}`);
  }
  let stopped: Promise<void> | undefined;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () =>
      (stopped ??= pg(bin, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '20', 'stop'], 30_000)
        .catch(() => undefined)
        .then(() => rmSync(dataDir, { recursive: true, force: true }))),
  };
}
