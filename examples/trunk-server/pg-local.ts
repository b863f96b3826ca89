import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** A throwaway PostgreSQL server: its connection URL, and `stop()` that ends it and removes its files. */
export interface LocalPostgres {
  url: string;
  /** Where its unix socket is (also its data directory). */
  dir: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The directory of PostgreSQL's server programs (initdb, postgres): on PATH, or Debian's
 * /usr/lib/postgresql/<version>/bin (newest first); undefined when PostgreSQL is not installed.
 */
export function findPostgresBin(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
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

/** PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user (spawned as it, so signals reach the server itself). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) };
}

export interface LocalPostgresOptions {
  /** Load pg_stat_statements (to measure what each statement costs the server). Default true. */
  statements?: boolean;
  /** How long to wait for it to accept connections (default 30 s). */
  startTimeoutMs?: number;
}

/**
 * Start a PostgreSQL of its own in a temporary directory: initdb, trust authentication, a unix
 * socket in that directory and TCP on 127.0.0.1 on a free port, fsync off (throwaway data).
 * For tests and for `npm run cluster` when the config asks for a local database and names none.
 * @throws when PostgreSQL is not installed (see findPostgresBin) or does not start.
 */
export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('PostgreSQL is not installed (no initdb): apt-get install postgresql');
  const dir = mkdtempSync(join(tmpdir(), 'sipkit-pg-'));
  const user = serverUser();
  if (user) chownSync(dir, user.uid, user.gid);
  // As the server user, HOME and the working directory must be readable by it.
  const run = { ...(user ?? {}), cwd: dir, env: { ...process.env, HOME: dir } };
  execFileSync(join(bin, 'initdb'), ['-D', dir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...run, stdio: 'pipe' });
  const port = await freeTcpPort();
  const settings = ['-D', dir, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];
  if (options.statements !== false) settings.push('-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all');
  const server: ChildProcess = spawn(join(bin, 'postgres'), settings, { ...run, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  const stop = async () => {
    // SIGINT: PostgreSQL's fast shutdown (open sessions are ended, no wait for clients).
    if (running) server.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (running) server.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready once the server says so (it logs this after recovery, when connections are taken).
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  while (!/ready to accept connections/.test(log)) {
    if (!running) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PostgreSQL did not start:\n${log}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`PostgreSQL did not accept connections within the timeout:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, dir, port, stop };
}
