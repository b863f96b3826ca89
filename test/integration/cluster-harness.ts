/**
 * The cluster peer tests' pieces: a cluster (examples/cluster) of Kamailio's dispatcher in front
 * of trunk instances, a SIPp destination, SIPp callers through the front, and what the front and
 * each instance say about themselves.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCaller, startDestination, type CallerResult, type Destination } from '../../bench/sipp.js';
import { kamailioModules, startCluster, validateClusterConfig, type Cluster, type RunningInstance } from '../../examples/cluster/cluster.js';
import { freePort } from '../support/sipp.js';
import { parsePrometheus } from '../support/prometheus.js';

export const hasKamailio = kamailioModules() !== undefined;
export const hasSipp = spawnSync('sipp', ['-v']).status !== null;
export const hasPeers = hasKamailio && hasSipp;
if (!hasPeers) {
  const missing = [!hasKamailio && 'kamailio (with its dispatcher module)', !hasSipp && 'sipp (sip-tester)'].filter(Boolean).join(' and ');
  if (process.env.CI) throw new Error(`cluster peer tests: ${missing} not installed: .ci/run installs them`);
  console.warn(`SKIPPED cluster peer tests: ${missing} not installed (apt-get install kamailio sip-tester)`);
}

export const DOMAIN = 'demo.trunk.sipkit.test';
export const NUMBER = '15551234567';
export const TOKEN = 'cluster-test-token';
/** The front probes every second: an instance that drains or dies is out within ~2 s (probe + its timeout). */
export const PING_SECONDS = 1;

export interface TestCluster {
  cluster: Cluster;
  destination: Destination;
  dir: string;
  stop(): Promise<void>;
}

export async function startTestCluster(options: { postgres?: 'local'; drainSeconds?: number; lostAfterSeconds?: number; pingIntervalSeconds?: number } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-test-'));
  const destination = await startDestination(join(dir, 'uas'), { timeoutSeconds: 300 });
  const config = validateClusterConfig({
    front: { host: '127.0.0.1', port: await freePort(), children: 2, pingIntervalSeconds: options.pingIntervalSeconds ?? PING_SECONDS, inviteTimeoutMs: 1000, pingTimeoutMs: 1000, requestTimeoutMs: 4000 },
    instances: { count: 2, host: '127.0.0.1', sipPort: 0, httpPort: 0 },
    trunk: {
      http: { host: '127.0.0.1', port: 0, token: TOKEN },
      // SIPp 3.6.1 answers MD5 only.
      auth: { algorithms: ['MD5'] },
      domains: { [DOMAIN]: { extensions: { '1000': { password: 'sipkit-demo' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${destination.port}`] }] } },
      log: { level: 'info' },
      shutdown: { mode: 'drain', drainSeconds: options.drainSeconds ?? 30 },
      ...(options.lostAfterSeconds ? { records: { lostAfterSeconds: options.lostAfterSeconds } } : {}),
    },
    ...(options.postgres ? { postgres: options.postgres } : {}),
    workDir: join(dir, 'cluster'),
  });
  let cluster: Cluster;
  try {
    cluster = await startCluster(config, { stopTimeoutMs: 20_000 });
  } catch (err) {
    destination.process.kill('SIGKILL');
    throw err;
  }
  return {
    cluster,
    destination,
    dir,
    async stop() {
      await cluster.stop();
      destination.process.kill('SIGKILL');
    },
  };
}

/** SIPp callers through the front, `calls` at `rate`/s, each held `holdMs`; the stale-tolerant, Route-following scenario. */
export function callThrough(t: TestCluster, name: string, o: { calls: number; rate: number; holdMs: number }): Promise<CallerResult> {
  return runCaller(join(t.dir, name), {
    target: t.cluster.front.address,
    scenario: 'uac-cluster.xml',
    auth: true,
    rate: o.rate,
    calls: o.calls,
    holdMs: o.holdMs,
    timeoutSeconds: Math.ceil(o.calls / o.rate + o.holdMs / 1000) + 30,
  });
}

/** A metric of one instance, summed over its labels (0 when the instance does not answer). */
export async function metric(instance: RunningInstance, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${instance.http}/metrics`, { headers: { authorization: `Bearer ${instance.token}` }, signal: AbortSignal.timeout(3000) });
  const { samples } = parsePrometheus(await res.text());
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

export const started = (x: RunningInstance): Promise<number> => metric(x, 'sipkit_trunk_calls_started_total');

/** The front's view of each instance: dispatcher flags by SIP address (AP: up and probed, IP: down and probed). */
export function frontStates(t: TestCluster): Record<string, string> {
  const r = spawnSync('kamcmd', ['-s', `unix:${t.cluster.front.ctl}`, 'dispatcher.list'], { encoding: 'utf8', timeout: 5000 });
  const out: Record<string, string> = {};
  let uri: string | undefined;
  for (const line of (r.stdout ?? '').split('\n')) {
    const u = /URI:\s*sip:(\S+)/.exec(line);
    if (u) uri = u[1];
    const f = /FLAGS:\s*(\S+)/.exec(line);
    if (f && uri) out[uri] = f[1]!;
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every 100 ms, at most `timeoutMs`; whether it came true. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}
