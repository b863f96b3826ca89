/**
 * The trunk as a cluster: Kamailio's dispatcher in front (kamailio-front.cfg), N trunk processes
 * behind it on their own ports sharing one configuration and nonce secret, and optionally a local
 * PostgreSQL for the call records. main.ts is the command; the peer tests and bench/cluster.ts
 * start clusters through `startCluster` too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, validateConfig } from '../trunk-server/config.js';
import { startLocalPostgres, type LocalPostgres } from '../trunk-server/pg-local.js';
import { TRUNK_NODE_FLAGS } from '../trunk-server/node-flags.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '..', '..');
export const FRONT_TEMPLATE = join(HERE, 'kamailio-front.cfg');
export const KAMAILIO_MISSING = 'Kamailio is not installed: apt-get install kamailio (Debian; the front needs its dispatcher, tm, rr, sl modules)';

export class ClusterConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`cluster config: ${field}: ${message}`);
    this.name = 'ClusterConfigError';
  }
}

export interface FrontConfig {
  /** Where callers send (UDP). */
  host: string;
  port: number;
  /** The front's own socket toward the instances (0: a free one). */
  instanceSidePort: number;
  /** Kamailio UDP workers on the caller-facing socket. */
  children: number;
  /** OPTIONS probe of every instance, every this many seconds (dispatcher ds_ping_interval). */
  pingIntervalSeconds: number;
  /** Failed probes in a row that take an instance down; good ones that bring it back. */
  probingThreshold: number;
  inactiveThreshold: number;
  /** An instance silent this long after a new INVITE is taken as gone: the INVITE goes to the next one. */
  inviteTimeoutMs: number;
  /** A probe unanswered this long has failed. */
  pingTimeoutMs: number;
  /** How long any other request (BYE, in-dialog) relayed waits for its final answer (RFC 3261 Timer F: 32 s). */
  requestTimeoutMs: number;
  /** Kamailio's log level (debug=): 1 errors and warnings, 2 notices, 3 info. */
  debug: number;
}

export interface InstancesConfig {
  count: number;
  host: string;
  /** Instance i (from 0) listens for SIP on sipPort + i and serves HTTP on httpPort + i; 0: free ports. */
  sipPort: number;
  httpPort: number;
}

export interface ClusterConfig {
  front: FrontConfig;
  instances: InstancesConfig;
  /** The trunk configuration every instance shares (examples/trunk-server/config.ts), as JSON. */
  trunk: Record<string, unknown>;
  /** Call records in PostgreSQL: a URL, or "local" for a throwaway server started with the cluster; null: each instance keeps its own. */
  postgres: null | 'local' | { url: string };
  /** Generated configs, logs, CDRs and journals go here. */
  workDir: string;
}

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ClusterConfigError(field, 'must be an object');
  return v as Json;
}
function int(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ClusterConfigError(field, `must be an integer from ${min} to ${max}`);
  return v;
}
function str(v: unknown, field: string, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v === '') throw new ClusterConfigError(field, 'must be a non-empty string');
  return v;
}
function only(o: Json, field: string, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ClusterConfigError(field ? `${field}.${k}` : k, 'unknown key');
}

/**
 * Validate a cluster config (parsed JSON). `trunk` is the shared trunk config: an object, or a
 * path (relative to `baseDir`) to its JSON file. Every error names its field.
 */
export function validateClusterConfig(input: unknown, baseDir = process.cwd()): ClusterConfig {
  const j = obj(input, '(root)');
  only(j, '', ['front', 'instances', 'trunk', 'postgres', 'workDir']);
  const f = obj(j.front ?? {}, 'front');
  only(f, 'front', ['host', 'port', 'instanceSidePort', 'children', 'pingIntervalSeconds', 'probingThreshold', 'inactiveThreshold', 'inviteTimeoutMs', 'pingTimeoutMs', 'requestTimeoutMs', 'debug']);
  const front: FrontConfig = {
    host: str(f.host, 'front.host', '127.0.0.1'),
    port: int(f.port, 'front.port', 0, 65535, 5060),
    instanceSidePort: int(f.instanceSidePort, 'front.instanceSidePort', 0, 65535, 0),
    children: int(f.children, 'front.children', 1, 256, 4),
    pingIntervalSeconds: int(f.pingIntervalSeconds, 'front.pingIntervalSeconds', 1, 3600, 2),
    // Two missed probes, not one: a busy instance that answers one probe late is not taken out.
    probingThreshold: int(f.probingThreshold, 'front.probingThreshold', 1, 100, 2),
    inactiveThreshold: int(f.inactiveThreshold, 'front.inactiveThreshold', 1, 100, 1),
    inviteTimeoutMs: int(f.inviteTimeoutMs, 'front.inviteTimeoutMs', 100, 60_000, 2000),
    pingTimeoutMs: int(f.pingTimeoutMs, 'front.pingTimeoutMs', 100, 60_000, 1000),
    requestTimeoutMs: int(f.requestTimeoutMs, 'front.requestTimeoutMs', 100, 120_000, 32_000),
    debug: int(f.debug, 'front.debug', -5, 5, 1),
  };
  const i = obj(j.instances ?? {}, 'instances');
  only(i, 'instances', ['count', 'host', 'sipPort', 'httpPort']);
  const instances: InstancesConfig = {
    count: int(i.count, 'instances.count', 1, 256, availableParallelism()),
    host: str(i.host, 'instances.host', '127.0.0.1'),
    sipPort: int(i.sipPort, 'instances.sipPort', 0, 65535, 5071),
    httpPort: int(i.httpPort, 'instances.httpPort', 0, 65535, 8081),
  };
  for (const [k, base] of [['sipPort', instances.sipPort], ['httpPort', instances.httpPort]] as const) {
    if (base !== 0 && base + instances.count - 1 > 65535) throw new ClusterConfigError(`instances.${k}`, `${instances.count} instances from ${base} go past port 65535`);
  }
  let trunk: Json;
  if (typeof j.trunk === 'string') {
    const path = resolve(baseDir, j.trunk);
    try {
      trunk = obj(JSON.parse(readFileSync(path, 'utf8')), 'trunk');
    } catch (err) {
      if (err instanceof ClusterConfigError) throw err;
      throw new ClusterConfigError('trunk', `cannot read ${path}: ${(err as Error).message}`);
    }
  } else trunk = j.trunk === undefined ? {} : obj(j.trunk, 'trunk');
  let postgres: ClusterConfig['postgres'] = null;
  if (j.postgres === 'local') postgres = 'local';
  else if (j.postgres !== undefined && j.postgres !== null) {
    const p = obj(j.postgres, 'postgres');
    only(p, 'postgres', ['url']);
    const url = str(p.url, 'postgres.url', '');
    if (!/^postgres(ql)?:\/\//.test(url)) throw new ClusterConfigError('postgres.url', 'must be a postgres:// URL');
    postgres = { url };
  }
  // Default: a fresh temporary directory (generated configs and logs are not the repository's).
  const workDir = j.workDir === undefined ? mkdtempSync(join(tmpdir(), 'sipkit-cluster-')) : resolve(baseDir, str(j.workDir, 'workDir', ''));
  return { front, instances, trunk, postgres, workDir };
}

export function loadClusterConfig(path: string): ClusterConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ClusterConfigError('(file)', `cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  return validateClusterConfig(json, dirname(resolve(path)));
}

/** Whether this trunk build knows the cluster keys (`instance`, `records`): shared records need them. */
export function trunkHasClusterKeys(): boolean {
  try {
    validateConfig({ instance: { id: 'probe' } });
    return true;
  } catch (err) {
    if (err instanceof ConfigError && err.field === 'instance') return false;
    return true; // it knows the key and wants more in it: present
  }
}

/** Kamailio's module directory (Debian's, or a build's), undefined when Kamailio is not installed. */
export function kamailioModules(): string | undefined {
  if (spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status !== 0) return undefined;
  return ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/aarch64-linux-gnu/kamailio/modules', '/usr/lib/kamailio/modules', '/usr/local/lib64/kamailio/modules', '/usr/local/lib/kamailio/modules'].find((d) =>
    existsSync(join(d, 'dispatcher.so')),
  );
}

export interface InstancePlan {
  id: string;
  sipPort: number;
  httpPort: number;
  configFile: string;
  config: Json;
}

/**
 * One instance's trunk config: the shared one with its own listener, HTTP port, files and
 * `instance.id`, the cluster's secret, and every call arriving from the one front address in mind.
 */
export function instanceConfig(cluster: ClusterConfig, index: number, ports: { sip: number; http: number }, secret: string, records: { url: string } | null, clusterKeys: boolean): Json {
  const t = structuredClone(cluster.trunk);
  const id = `trunk-${index + 1}`;
  const http = obj(t.http ?? {}, 'trunk.http');
  const auth = obj(t.auth ?? {}, 'trunk.auth');
  const c: Json = {
    ...t,
    // UDP only: the front relays over UDP.
    sip: { listen: [{ transport: 'udp', host: cluster.instances.host, port: ports.sip }], trustedProxies: [cluster.front.host] },
    http: { host: cluster.instances.host, token: http.token ?? 'cluster-token', ...http, port: ports.http },
    auth: { ...auth, secret },
  };
  const file = (name: string, key: string): void => {
    const cur = t[key] as Json | undefined;
    if (cur && cur.path === null) return;
    c[key] = { ...(cur ?? {}), path: join(cluster.workDir, `${name}-${id}.jsonl`) };
  };
  file('cdr', 'cdr');
  file('journal', 'journal');
  // A rolling restart drains: SIGTERM lets the calls up finish while the front sends new ones elsewhere.
  const shutdown = (t.shutdown ?? {}) as Json;
  c.shutdown = { mode: 'drain', ...shutdown };
  // Every call comes from the front's address: a per-source limit below the total would cap the cluster.
  const limits = (t.limits ?? {}) as Json;
  if (limits.maxCallsPerSource === undefined) c.limits = { ...limits, maxCallsPerSource: limits.maxCalls ?? 10_000 };
  const provisioning = (t.provisioning ?? {}) as Json;
  if (provisioning.storePath === undefined) c.provisioning = { ...provisioning, storePath: join(cluster.workDir, 'trunks.json') };
  splitMediaPorts(c, index, cluster.instances.count);
  if (clusterKeys) {
    c.instance = { ...((t.instance ?? {}) as Json), id };
    const r = (t.records ?? {}) as Json;
    c.records = records ? { ...r, store: 'postgres', url: records.url } : { store: 'memory', ...r };
  }
  return c;
}

/** Relay mode: each instance gets its own slice of the RTP port range (whole even/odd pairs). */
function splitMediaPorts(c: Json, index: number, count: number): void {
  const media = c.media;
  const relay = media === 'relay' || (typeof media === 'object' && media !== null && (media as Json).mode === 'relay');
  if (!relay) return;
  const m: Json = typeof media === 'object' && media !== null ? { ...(media as Json) } : { mode: 'relay' };
  if (typeof media === 'string' && c.mediaAddress !== undefined) {
    m.address = c.mediaAddress;
    delete c.mediaAddress;
  }
  const ports = (m.ports ?? { min: 20_000, max: 39_998 }) as { min: number; max: number };
  const pairs = Math.floor((ports.max - ports.min) / 2 / count);
  if (pairs < 2) throw new ClusterConfigError('trunk.media.ports', `too few RTP ports for ${count} instances`);
  const min = ports.min + index * pairs * 2;
  m.ports = { min, max: min + (pairs - 1) * 2 };
  c.media = m;
}

/** Fill the front's template: every @NAME@ must be known. */
export function renderFront(template: string, values: Record<string, string | number>): string {
  return template.replace(/@([A-Z_]+)@/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`kamailio-front.cfg: no value for @${name}@`);
    return String(values[name]);
  });
}

export function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolvePort(port));
    });
  });
}

export function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

/** Whether some process has a UDP socket on `port` (any address), from /proc/net/udp{,6}. */
export function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) if (line.trim().split(/\s+/)[1]?.endsWith(hex.trim())) return true;
    } catch {
      // no IPv6
    }
  }
  return false;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

export interface RunningInstance {
  id: string;
  sip: string;
  http: string;
  token: string;
  process: ChildProcess;
  configFile: string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<string>;
}

export interface Cluster {
  config: ClusterConfig;
  front: { address: string; instanceSide: string; process: ChildProcess; configFile: string; ctl: string; exited: Promise<string> };
  instances: RunningInstance[];
  postgres: { url: string; local: boolean } | null;
  /** Whether the instances were given `instance.id` and `records` (a trunk that knows them). */
  sharedRecords: boolean;
  /**
   * Stop everything: the instances first (SIGTERM: each drains per its shutdown config, its
   * in-dialog requests still passing the front), then the front, then a local PostgreSQL.
   */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Where the children's output goes: 'files' (workDir/<name>.log, the default) or 'prefixed' (this process's stdout, each line tagged). */
  output?: 'files' | 'prefixed';
  /** Bound on how long an instance may take to drain and exit on stop (default: its drainSeconds + 15 s). */
  stopTimeoutMs?: number;
  log?: (line: string) => void;
  /** The front's Kamailio config template (default: kamailio-front.cfg beside this file); bench:cluster runs an older one beside it. */
  frontTemplate?: string;
}

function exitedOf(p: ChildProcess): Promise<string> {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) r(p.signalCode ?? String(p.exitCode));
    else p.once('exit', (code, signal) => r(signal ?? String(code)));
  });
}

function attachOutput(p: ChildProcess, name: string, workDir: string, mode: 'files' | 'prefixed'): void {
  if (mode === 'files') {
    const out = createWriteStream(join(workDir, `${name}.log`), { flags: 'a' });
    // One file for both streams, kept open until the process is gone (Kamailio closes its stdout
    // early: a plain pipe() would end the file with it and lose every later line of stderr).
    p.stdout?.pipe(out, { end: false });
    p.stderr?.pipe(out, { end: false });
    p.once('close', () => out.end());
    return;
  }
  for (const s of [p.stdout, p.stderr]) {
    let rest = '';
    s?.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const l of lines) process.stdout.write(`[${name}] ${l}\n`);
    });
  }
}

async function stopChild(p: ChildProcess, exited: Promise<string>, timeoutMs: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

/** Start PostgreSQL (when asked), the instances, then the front; on any failure what started is stopped. */
export async function startCluster(config: ClusterConfig, options: StartOptions = {}): Promise<Cluster> {
  const log = options.log ?? (() => {});
  const output = options.output ?? 'files';
  const mpath = kamailioModules();
  if (!mpath) throw new Error(KAMAILIO_MISSING);
  mkdirSync(config.workDir, { recursive: true });
  const clusterKeys = trunkHasClusterKeys();
  if (config.postgres && !clusterKeys) {
    log('postgres  NOT used: this trunk build has no `instance`/`records` config keys, so each instance keeps its own records');
    config = { ...config, postgres: null };
  }

  const started: Array<{ p: ChildProcess; exited: Promise<string> }> = [];
  let pg: LocalPostgres | undefined;
  const abort = async (): Promise<void> => {
    for (const s of started.reverse()) await stopChild(s.p, s.exited, 5000);
    await pg?.stop();
  };

  try {
    let records: { url: string } | null = null;
    if (config.postgres === 'local') {
      pg = await startLocalPostgres();
      records = { url: pg.url };
      log(`postgres  ${pg.url} (local, data in ${pg.dir}, removed on stop)`);
    } else if (config.postgres) records = config.postgres;
    if (records) {
      // The schema once, before N instances start (each would otherwise migrate at start, serialized
      // by the database's lock). `pg` is loaded only for a cluster that has a database.
      const { migrateDatabase } = await import('../trunk-server/pg-schema.js');
      const version = await migrateDatabase(records.url).catch((err: Error) => {
        throw new Error(`PostgreSQL at ${records!.url.replace(/:[^:@/]*@/, ':***@')}: ${err.message}`);
      });
      log(`postgres  schema version ${version}`);
    }

    const secret = (config.trunk.auth as Json | undefined)?.secret;
    const sharedSecret = typeof secret === 'string' && secret !== '' ? secret : randomBytes(32).toString('hex');
    const { host } = config.instances;
    const instances: RunningInstance[] = [];
    for (let i = 0; i < config.instances.count; i++) {
      const sip = config.instances.sipPort ? config.instances.sipPort + i : await freeUdpPort(host);
      const http = config.instances.httpPort ? config.instances.httpPort + i : await freeTcpPort(host);
      const cfg = instanceConfig(config, i, { sip, http }, sharedSecret, records, clusterKeys);
      // Refuse a bad shared config here, once, naming the field, instead of N crashed children.
      try {
        validateConfig(cfg, { baseDir: config.workDir });
      } catch (err) {
        if (err instanceof ConfigError) throw new ClusterConfigError(`trunk.${err.field}`, err.message.replace(/^config: [^:]+: /, ''));
        throw err;
      }
      const id = (cfg.instance as Json | undefined)?.id ?? `trunk-${i + 1}`;
      const configFile = join(config.workDir, `${id}.json`);
      writeFileSync(configFile, JSON.stringify(cfg, null, 2));
      const p = spawn(process.execPath, [...TRUNK_NODE_FLAGS, '--import', 'tsx', join(REPO_ROOT, 'examples/trunk-server/main.ts'), '--config', configFile], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TSX_TSCONFIG_PATH: join(REPO_ROOT, 'tsconfig.run.json') },
      });
      const exited = exitedOf(p);
      started.push({ p, exited });
      attachOutput(p, String(id), config.workDir, output);
      const token = String((cfg.http as Json).token);
      instances.push({ id: String(id), sip: `${host}:${sip}`, http: `http://${host.includes(':') ? `[${host}]` : host}:${http}`, token, process: p, configFile, exited });
    }
    for (const inst of instances) {
      await until(
        async () => {
          if (inst.process.exitCode !== null) throw new Error(`${inst.id} exited at start (${inst.process.exitCode}): see ${join(config.workDir, `${inst.id}.log`)}`);
          try {
            return (await fetch(`${inst.http}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200;
          } catch {
            return false;
          }
        },
        60_000,
        inst.id,
      );
    }

    const instanceSidePort = config.front.instanceSidePort || (await freeUdpPort(config.front.host));
    const dispatcherList = join(config.workDir, 'dispatcher.list');
    writeFileSync(
      dispatcherList,
      `# setid destination flags priority attributes — written by examples/cluster (one line per trunk instance)\n${instances.map((x) => `1 sip:${x.sip} 0 0 duid=${x.id}`).join('\n')}\n`,
    );
    const ctl = join(config.workDir, 'kamailio.ctl');
    const frontCfg = join(config.workDir, 'kamailio-front.cfg');
    writeFileSync(
      frontCfg,
      renderFront(readFileSync(options.frontTemplate ?? FRONT_TEMPLATE, 'utf8'), {
        DEBUG: config.front.debug,
        CHILDREN: config.front.children,
        LISTEN: `${config.front.host}:${config.front.port}`,
        INSTANCE_SIDE: `${config.front.host}:${instanceSidePort}`,
        MPATH: mpath,
        CTL: ctl,
        INVITE_TIMEOUT_MS: config.front.inviteTimeoutMs,
        PING_TIMEOUT_MS: config.front.pingTimeoutMs,
        REQUEST_TIMEOUT_MS: config.front.requestTimeoutMs,
        DISPATCHER_LIST: dispatcherList,
        PING_INTERVAL: config.front.pingIntervalSeconds,
        PROBING_THRESHOLD: config.front.probingThreshold,
        INACTIVE_THRESHOLD: config.front.inactiveThreshold,
      }),
    );
    const front = spawn('kamailio', ['-f', frontCfg, '-DD', '-E', '-m', '256', '-M', '8', '-b', String(4 * 1024 * 1024), '-P', join(config.workDir, 'kamailio.pid'), '-Y', config.workDir], {
      cwd: config.workDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C in the terminal reaches the launcher and the instances
      // (which drain), not the front, which must relay the calls' BYEs until the instances are done.
      detached: true,
    });
    // ...but it never outlives the launcher.
    const killFront = (): void => void front.kill('SIGKILL');
    process.once('exit', killFront);
    const frontExited = exitedOf(front).finally(() => process.off('exit', killFront));
    started.push({ p: front, exited: frontExited });
    attachOutput(front, 'front', config.workDir, output);
    await until(
      () => {
        if (front.exitCode !== null) throw new Error(`kamailio exited at start (${front.exitCode}): see ${join(config.workDir, 'front.log')}`);
        return udpBound(config.front.port) && udpBound(instanceSidePort) && existsSync(ctl);
      },
      20_000,
      'the front (kamailio)',
    );
    await sleep(300); // its workers finish their child init

    let stopping: Promise<void> | undefined;
    const drainMs = (x: RunningInstance): number => {
      const s = (JSON.parse(readFileSync(x.configFile, 'utf8')) as Json).shutdown as Json | undefined;
      return ((s?.drainSeconds as number | undefined) ?? 30) * 1000;
    };
    return {
      config,
      front: { address: `${config.front.host}:${config.front.port}`, instanceSide: `${config.front.host}:${instanceSidePort}`, process: front, configFile: frontCfg, ctl, exited: frontExited },
      instances,
      postgres: records ? { url: records.url, local: pg !== undefined } : null,
      sharedRecords: clusterKeys,
      stop: () =>
        (stopping ??= (async () => {
          await Promise.all(instances.map((x) => stopChild(x.process, x.exited, options.stopTimeoutMs ?? drainMs(x) + 15_000)));
          await stopChild(front, frontExited, 10_000);
          await pg?.stop();
        })()),
    };
  } catch (err) {
    await abort();
    throw err;
  }
}

/** Where each part listens, for people. */
export function describeCluster(c: Cluster): string[] {
  const lines = [`front     sip:${c.front.address} (udp; callers send here)   toward instances from ${c.front.instanceSide}   kamcmd -s unix:${c.front.ctl} dispatcher.list`];
  for (const x of c.instances) lines.push(`${x.id.padEnd(9)} sip:${x.sip} (udp)   ${x.http}/v1.0/calls (Bearer ${x.token})   pid ${x.process.pid}`);
  if (c.postgres) lines.push(`records   PostgreSQL ${c.postgres.url.replace(/:[^:@/]*@/, ':***@')}${c.postgres.local ? ' (local, throwaway)' : ''}`);
  else lines.push(c.sharedRecords ? 'records   in each instance (no postgres in the cluster config): GET /v1.0/calls answers for that instance only' : 'records   in each instance (this trunk build has no shared records)');
  return lines;
}
