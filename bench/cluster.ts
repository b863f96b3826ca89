/**
 * npm run bench:cluster — does scaling out pay? Three targets ramped in one run, with the same
 * SIPp scenario (uac answering a 407 with MD5 digest → target → uas answering at once, hold, BYE)
 * and the same destination:
 *
 *   a. trunk    one trunk process alone (as bench:trunk runs it);
 *   b. cluster  Kamailio's dispatcher front + N trunk instances (examples/cluster), with the call
 *               records in a local PostgreSQL when the trunk has the `records` key and PostgreSQL
 *               is installed (BENCH_CLUSTER_POSTGRES=0: without);
 *   c. kamailio Kamailio alone as the stateful auth proxy (bench/targets.ts), the reference.
 *
 * Steps of the three are interleaved rate by rate, in an order that rotates with the step, so the
 * drift of a shared machine falls on all of them alike. A step holds when every call offered
 * succeeds and the rate achieved (calls / (SIPp's run time − hold)) is ≥ 95 % of the step's rate
 * (bench/trunk.ts explains why); a target's ramp stops at its first step that does not hold.
 *
 * CPU: utime + stime from /proc/<pid>/stat of every process of each part (the trunk; the front's
 * Kamailio processes, each instance, PostgreSQL's server and backends; Kamailio's processes), read
 * before and after each step: CPU seconds per call = the difference / the calls that succeeded.
 *
 * SIPp's own CPU (the caller of the step, reaped by this process: its cutime + cstime; and the
 * destination, shared by all targets) is read the same way and shown apart ("sipp"): on a machine
 * with few cores it is what is left for the target that sets the ceiling.
 *
 * Environment: BENCH_RATES (calls/s steps), BENCH_STEP_SECONDS (5), BENCH_HOLD_MS (1000),
 * BENCH_CLUSTER_INSTANCES (default: the number of cores), BENCH_KAMAILIO_CHILDREN (4, for the front
 * and for Kamailio alone), BENCH_CLUSTER_POSTGRES (=0: no database), BENCH_TARGETS (trunk,cluster,kamailio),
 * BENCH_CLUSTER_BASELINE_FRONT (a front config template, e.g. an older kamailio-front.cfg: a fourth
 * target "before", the same cluster with that front, ramped in the same run).
 */
import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, trunkHasClusterKeys, validateClusterConfig, type Cluster } from '../examples/cluster/cluster.js';
import { findPostgresBin as postgresBin } from '../examples/trunk-server/pg-local.js';
import { cpuSeconds, processTree } from './proc-mem.js';
import { DOMAIN, PASSWORD, USER, freePort, runCaller, sleep, startDestination, type CallerResult } from './sipp.js';
import { KAMAILIO_CHILDREN, kamailioModules, startKamailio, startTrunk, type Target } from './targets.js';

const num = (name: string, dflt: number): number => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};
const RATES = (process.env.BENCH_RATES ?? '100,200,300,400,500,600,700,800,1000,1200,1400,1700,2000').split(',').map(Number);
const STEP_SECONDS = num('BENCH_STEP_SECONDS', 5);
const HOLD_MS = num('BENCH_HOLD_MS', 1000);
const INSTANCES = num('BENCH_CLUSTER_INSTANCES', availableParallelism());
const BASELINE_FRONT = process.env.BENCH_CLUSTER_BASELINE_FRONT;
const TARGETS = (process.env.BENCH_TARGETS ?? 'trunk,cluster,kamailio').split(',').concat(BASELINE_FRONT ? ['before'] : []);
const NAMES = ['trunk', 'cluster', 'before', 'kamailio'].filter((n) => TARGETS.includes(n));
const STEP_PAUSE_MS = 1500;
if (RATES.some((r) => !Number.isInteger(r) || r <= 0)) throw new Error('BENCH_RATES must be positive integers');

const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

/** CPU seconds of this process's children that have ended and been waited for (SIPp callers), fields 16 and 17 of stat(5). */
function reapedChildrenSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / TICK;
}

/** Processes whose command line contains `marker` (Kamailio's workers all carry its -f file). */
function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface Part {
  name: string;
  /** The part's processes now (re-read at each sample: Kamailio and PostgreSQL fork). */
  pids(): number[];
}
const partCpu = (p: Part): number => p.pids().reduce((s, pid) => s + cpuSeconds(pid), 0);

interface DbCounters {
  transactions: number;
  inserted: number;
  updated: number;
}

interface BenchTarget extends Target {
  parts: Part[];
  /** The cluster's database: transactions and rows written so far (pg_stat_database). */
  db?(): Promise<DbCounters>;
}

async function trunkTarget(dir: string, destinationPort: number): Promise<BenchTarget> {
  const t = await startTrunk(dir, destinationPort);
  const marker = join(dir, 'trunk.json');
  return { ...t, parts: [{ name: 'trunk', pids: () => pidsWith(marker) }] };
}

async function kamailioTarget(dir: string, destinationPort: number, mpath: string): Promise<BenchTarget> {
  const t = await startKamailio(dir, destinationPort, mpath);
  const marker = join(dir, 'kamailio.cfg');
  return { ...t, parts: [{ name: 'kamailio', pids: () => pidsWith(marker) }] };
}

async function clusterTarget(dir: string, destinationPort: number, withPostgres: boolean, name = 'cluster', frontTemplate?: string): Promise<BenchTarget & { cluster: Cluster }> {
  const config = validateClusterConfig({
    front: { host: '127.0.0.1', port: await freePort(), children: KAMAILIO_CHILDREN, pingIntervalSeconds: 2 },
    instances: { count: INSTANCES, host: '127.0.0.1', sipPort: 0, httpPort: 0 },
    // The trunk's settings as bench/targets.ts gives the trunk alone.
    trunk: {
      http: { host: '127.0.0.1', port: 0, token: 'bench' },
      auth: { secret: 'bench-secret-0123456789abcdef0123', algorithms: ['MD5'] },
      domains: { [DOMAIN]: { extensions: { [USER]: { password: PASSWORD } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${destinationPort}`] }] } },
      cdr: { path: null },
      log: { level: 'warn' },
      limits: { maxCalls: 100_000, maxCallsPerSource: 100_000 },
      shutdown: { mode: 'hangup' },
    },
    ...(withPostgres ? { postgres: 'local' } : {}),
    workDir: join(dir, 'cluster'),
  });
  const cluster = await startCluster(config, { stopTimeoutMs: 10_000, frontTemplate });
  const frontMarker = cluster.front.configFile;
  const parts: Part[] = [
    { name: 'front', pids: () => pidsWith(frontMarker) },
    ...cluster.instances.map((x) => ({ name: x.id, pids: () => [x.process.pid!] })),
  ];
  let db: (() => Promise<DbCounters>) | undefined;
  let client: { query(q: string): Promise<{ rows: Array<Record<string, string>> }>; end(): Promise<void> } | undefined;
  if (cluster.postgres?.local) {
    const port = new URL(cluster.postgres.url).port;
    parts.push({ name: 'postgres', pids: () => postgresPids(port) });
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: cluster.postgres.url });
    await c.connect();
    client = c;
    db = async () => {
      // Pending statistics reach the shared view at most once a second (PostgreSQL 15): asked after the step's pause.
      const { rows } = await c.query(`SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = current_database()`);
      const r = rows[0]!;
      return { transactions: Number(r.xact_commit), inserted: Number(r.tup_inserted), updated: Number(r.tup_updated) };
    };
  }
  return {
    name,
    address: cluster.front.address,
    scenario: 'uac-answered.xml',
    auth: true,
    memoryKb: () => 0,
    cpuTimes: () => ({ user: parts.reduce((sum, p) => sum + partCpu(p), 0), sys: 0 }), // user + system as one: this bench splits by part
    stop: async () => {
      await client?.end();
      await cluster.stop();
    },
    parts,
    db,
    cluster,
  };
}

/**
 * The cluster's local PostgreSQL: its postmaster (pg-local.ts starts it with -D a sipkit-pg-
 * directory and -p its port: one per cluster when two run) and every backend below it.
 */
function postgresPids(port: string): number[] {
  const main = pidsWith(`\0-p\0${port}\0`).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
    } catch {
      return false;
    }
  });
  return [...new Set(main.flatMap((pid) => processTree(pid)))];
}

interface Step extends CallerResult {
  target: string;
  rate: number;
  achieved: number;
  holds: boolean;
  /** CPU seconds per part over the step. */
  cpu: Record<string, number>;
  /** SIPp's CPU seconds over the step: the caller and the destination. */
  sipp: number;
  /** The cluster's database over the step (and the pause after it): transactions, rows inserted, rows updated. */
  db?: DbCounters;
}

const pad = (v: unknown, n: number): string => String(v).padStart(n);
const header = `  ${'target'.padEnd(8)} ${pad('rate/s', 6)} ${pad('offered', 7)} ${pad('ok', 6)} ${pad('failed', 6)} ${pad('run s', 6)} ${pad('achieved/s', 10)}  ${'verdict'.padEnd(7)}  CPU ms per call by part`;
const row = (s: Step): string =>
  `  ${s.target.padEnd(8)} ${pad(s.rate, 6)} ${pad(s.offered, 7)} ${pad(s.ok, 6)} ${pad(s.failed, 6)} ${pad(s.elapsed.toFixed(2), 6)} ${pad(s.achieved.toFixed(0), 10)}  ${(s.holds ? 'holds' : 'FAILS').padEnd(7)}  ${Object.entries(s.cpu)
    .map(([k, v]) => `${k} ${s.ok ? ((v * 1000) / s.ok).toFixed(3) : 'n/a'}`)
    .join(', ')}, sipp ${s.ok ? ((s.sipp * 1000) / s.ok).toFixed(3) : 'n/a'}${s.db && s.ok ? `; DB per call: ${(s.db.transactions / s.ok).toFixed(3)} transactions, ${(s.db.inserted / s.ok).toFixed(2)} rows inserted, ${(s.db.updated / s.ok).toFixed(2)} updated` : ''}`;

async function ramp(targets: BenchTarget[], tmp: string, destinationPid: number): Promise<Step[]> {
  const steps: Step[] = [];
  const live = [...targets];
  console.log(header);
  for (const [i, rate] of RATES.entries()) {
    if (live.length === 0) break;
    const order = live.map((_, k) => live[(k + i) % live.length]!);
    for (const t of order) {
      const before = t.parts.map(partCpu);
      const sippBefore = reapedChildrenSeconds() + cpuSeconds(destinationPid);
      const dbBefore = await t.db?.();
      const r = await runCaller(join(tmp, 'ramp', `${t.name}-${rate}`), {
        target: t.address, scenario: t.scenario, auth: t.auth, rate, calls: rate * STEP_SECONDS, holdMs: HOLD_MS,
        timeoutSeconds: STEP_SECONDS + HOLD_MS / 1000 + 40,
      });
      const cpu = Object.fromEntries(t.parts.map((p, k) => [p.name, partCpu(p) - before[k]!]));
      const sipp = reapedChildrenSeconds() + cpuSeconds(destinationPid) - sippBefore;
      const achieved = r.ok / Math.max(r.elapsed - HOLD_MS / 1000, 1e-3);
      const s: Step = { ...r, target: t.name, rate, achieved, holds: r.failed === 0 && achieved >= 0.95 * rate, cpu, sipp };
      steps.push(s);
      await sleep(STEP_PAUSE_MS);
      const dbAfter = await t.db?.();
      if (dbBefore && dbAfter) s.db = { transactions: dbAfter.transactions - dbBefore.transactions, inserted: dbAfter.inserted - dbBefore.inserted, updated: dbAfter.updated - dbBefore.updated };
      console.log(row(s));
      if (!s.holds) live.splice(live.indexOf(t), 1);
    }
  }
  return steps;
}

const sustained = (steps: Step[], target: string): Step | undefined => {
  let best: Step | undefined;
  for (const s of steps.filter((x) => x.target === target)) {
    if (!s.holds) break;
    best = s;
  }
  return best;
};

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-cluster-'));
  const mpath = kamailioModules();
  if (!mpath) throw new Error('Kamailio is not installed (apt-get install kamailio): bench:cluster needs it for the front and the reference');
  const withPostgres = process.env.BENCH_CLUSTER_POSTGRES !== '0' && trunkHasClusterKeys() && postgresBin() !== undefined;
  console.log(`sipkit cluster benchmark — node ${process.version}, ${availableParallelism()} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, files in ${tmp}`);
  console.log(`ramp: ${RATES.join('/')} calls/s, ${STEP_SECONDS} s steps, ${HOLD_MS} ms hold; cluster: front (${KAMAILIO_CHILDREN} children) + ${INSTANCES} instances, records ${withPostgres ? 'in a local PostgreSQL' : 'in each instance (no PostgreSQL)'}; Kamailio alone: ${KAMAILIO_CHILDREN} children`);

  const destination = await startDestination(join(tmp, 'uas'));
  const targets: BenchTarget[] = [];
  let steps: Step[] = [];
  try {
    if (TARGETS.includes('trunk')) targets.push(await trunkTarget(join(tmp, 'trunk'), destination.port));
    if (TARGETS.includes('cluster')) targets.push(await clusterTarget(join(tmp, 'cluster'), destination.port, withPostgres));
    if (BASELINE_FRONT) targets.push(await clusterTarget(join(tmp, 'before'), destination.port, withPostgres, 'before', BASELINE_FRONT));
    if (TARGETS.includes('kamailio')) targets.push(await kamailioTarget(join(tmp, 'kamailio'), destination.port, mpath));
    // Warm-up: code compiled, pools touched, the cluster's probes settled; not measured.
    for (const t of targets) await runCaller(join(tmp, 'warmup', t.name), { target: t.address, scenario: t.scenario, auth: t.auth, rate: 100, calls: 200, holdMs: 0, timeoutSeconds: 30 });
    await sleep(2000);
    console.log('\n## ramp (every step of every target, in the order run)');
    steps = await ramp(targets, tmp, destination.process.pid!);
  } finally {
    for (const t of targets) await t.stop();
    destination.process.kill('SIGKILL');
  }

  console.log('\n## summary');
  const top = Object.fromEntries(NAMES.map((n) => [n, sustained(steps, n)]));
  const rate = (n: string): number => top[n]?.rate ?? 0;
  const last = RATES[RATES.length - 1];
  for (const n of NAMES) {
    const s = top[n];
    console.log(`  sustained ${n.padEnd(8)} ${s ? `${s.rate} calls/s${s.rate === last ? ' (the top step: at least)' : ''}` : 'none held'}`);
  }
  const ratio = (a: string, b: string): string => (rate(b) ? (rate(a) / rate(b)).toFixed(2) : 'n/a');
  console.log(`  ratios: cluster / trunk ${ratio('cluster', 'trunk')} (target ≥ 1.25)   kamailio / trunk ${ratio('kamailio', 'trunk')}   cluster / kamailio ${ratio('cluster', 'kamailio')}${BASELINE_FRONT ? `   before / trunk ${ratio('before', 'trunk')}` : ''}`);
  // Cost per call at the highest rate every target held (the same load for all), by part.
  const common = Math.min(...NAMES.map(rate));
  console.log(`\n  CPU per call at ${common} calls/s (the highest step all held), ms:`);
  for (const s of steps.filter((x) => x.rate === common)) {
    const total = Object.values(s.cpu).reduce((a, b) => a + b, 0);
    console.log(`    ${s.target.padEnd(8)} total ${((total * 1000) / s.ok).toFixed(3)}   ${Object.entries(s.cpu).map(([k, v]) => `${k} ${((v * 1000) / s.ok).toFixed(3)}`).join('   ')}   (sipp ${((s.sipp * 1000) / s.ok).toFixed(3)})`);
  }
  console.log(`\n  load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (a shared machine: only ratios within this run mean anything)`);
}

await main();
