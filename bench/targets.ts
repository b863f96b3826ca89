/**
 * What bench:trunk measures, each started as its own process(es) on 127.0.0.1 in front of a
 * destination: the trunk (the example server on the compiled library), Kamailio (a stateful
 * proxy with MD5 proxy-auth, several workers) and the floor (a bare UDP relay).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { TRUNK_NODE_FLAGS } from '../examples/trunk-server/node-flags.js';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuTimes, cpuTreeTimes, mainThreadCpuTimes, pssTreeKb, rssKb } from './proc-mem.js';
import { DOMAIN, PASSWORD, ROOT, SOCKET_BUFFER, USER, freePort, run, stopProcess, udpBound, waitFor } from './sipp.js';

export interface Target {
  name: string;
  /** "127.0.0.1:port", where callers send. */
  address: string;
  /** SIPp scenario the caller runs against it. */
  scenario: string;
  /** Whether the caller must answer a 407. */
  auth: boolean;
  /** The target's memory, kB: RSS for one process, the sum of PSS for a process tree (proc-mem.ts). */
  memoryKb(): number;
  /** CPU seconds the target's process(es) have used so far, user and system: /proc/<pid>/stat (proc-mem.ts). */
  cpuTimes(): { user: number; sys: number };
  /** A Node target: its event loop's CPU seconds alone (the rest is its worker threads: the UDP send thread). */
  mainThreadCpuTimes?(): { user: number; sys: number };
  /** Kamailio only: bytes in use in its shared-memory pool (kamcmd core.shmmem), for reference. */
  sharedUsedBytes?(): Promise<number | undefined>;
  stop(): Promise<void>;
}

function logFile(dir: string, name: string): number {
  mkdirSync(dir, { recursive: true });
  return openSync(join(dir, name), 'a');
}

/** The trunk as `npm start` runs it: the example on top of the compiled library (dist), alone in its process. */
export async function startTrunk(dir: string, destinationPort: number, root = process.env.BENCH_TRUNK_ROOT ?? ROOT, name = 'trunk'): Promise<Target> {
  const port = await freePort();
  const config = {
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port }] },
    http: { host: '127.0.0.1', port: 0, token: 'bench' },
    auth: { secret: 'bench-secret-0123456789abcdef0123', algorithms: ['MD5'] },
    domains: { [DOMAIN]: { extensions: { [USER]: { password: PASSWORD } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${destinationPort}`] }] } },
    cdr: { path: null },
    log: { level: 'warn' },
    limits: { maxCalls: 100_000, maxCallsPerSource: 100_000 },
  };
  mkdirSync(dir, { recursive: true });
  const cfgFile = join(dir, 'trunk.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const log = logFile(dir, 'trunk.log');
  // root: another checkout's trunk (BENCH_TRUNK_ROOT, or BENCH_BASELINE_ROOT as a ramp target of its own) under the same harness.
  // The trunk's V8 flags as npm start sets them (BENCH_TRUNK_NODE_FLAGS / BENCH_BASELINE_NODE_FLAGS: others, '' for none).
  const flagsVar = name === 'baseline' ? process.env.BENCH_BASELINE_NODE_FLAGS : process.env.BENCH_TRUNK_NODE_FLAGS;
  const flags = flagsVar === undefined ? [...TRUNK_NODE_FLAGS] : flagsVar.split(' ').filter(Boolean);
  const p = spawn(process.execPath, [...flags, '--import', 'tsx', join(root, 'examples/trunk-server/main.ts'), '--config', cfgFile], {
    cwd: root,
    stdio: ['ignore', log, log],
    env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.run.json') },
  });
  if (!(await waitFor(() => udpBound(port) || p.exitCode !== null, 30_000)) || p.exitCode !== null) throw new Error(`trunk did not start (see ${dir}/trunk.log)`);
  await waitFor(() => false, 500); // the HTTP API binds after SIP
  return {
    name,
    address: `127.0.0.1:${port}`,
    scenario: 'uac-answered.xml',
    auth: true,
    memoryKb: () => rssKb(p.pid!),
    cpuTimes: () => cpuTimes(p.pid!),
    mainThreadCpuTimes: () => mainThreadCpuTimes(p.pid!),
    stop: () => stopProcess(p),
  };
}

/** The floor: bench/udp-relay.ts in its own Node process. */
export async function startRelay(dir: string, destinationPort: number): Promise<Target> {
  const port = await freePort();
  const log = logFile(dir, 'relay.log');
  const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/udp-relay.ts'), String(port), String(destinationPort), String(SOCKET_BUFFER)], { cwd: ROOT, stdio: ['ignore', log, log] });
  if (!(await waitFor(() => udpBound(port) || p.exitCode !== null, 30_000)) || p.exitCode !== null) throw new Error('relay did not start');
  return { name: 'floor', address: `127.0.0.1:${port}`, scenario: 'uac-plain.xml', auth: false, memoryKb: () => rssKb(p.pid!), cpuTimes: () => cpuTimes(p.pid!), stop: () => stopProcess(p) };
}

export function kamailioModules(): string | undefined {
  if (spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status !== 0) return undefined;
  return ['/usr/lib/x86_64-linux-gnu/kamailio/modules', '/usr/lib/kamailio/modules', '/usr/local/lib64/kamailio/modules'].find((d) => existsSync(join(d, 'tm.so')));
}

export const KAMAILIO_CHILDREN = Number(process.env.BENCH_KAMAILIO_CHILDREN ?? 4);
/** BENCH_KAMAILIO_SPLIT=0: one socket for both sides, to see the reordering the split avoids. */
const KAMAILIO_SPLIT = process.env.BENCH_KAMAILIO_SPLIT !== '0';

/**
 * Kamailio 5.x as a stateful (tm) proxy that challenges every INVITE with a 407 (auth module,
 * MD5, qop=auth, plain password) and relays to the destination, in-dialog requests included,
 * with `children=4` UDP workers — as its users run it.
 *
 * Why two sockets. With several workers reading one UDP socket, the destination's 180 and its
 * 200 a few microseconds later are read by two workers; tm takes the transaction's reply lock to
 * decide what to relay but sends after releasing it (t_reply.c, relay_reply: UNLOCK_REPLIES before
 * SEND_PR_BUFFER — the same race is OpenSIPS issue #4262), so the 200 can leave first and the 180
 * after it, which a UAC such as SIPp counts as a failed call. No tm parameter orders replies. So
 * the proxy talks to the destination from a second socket served by one worker
 * (`socket_workers=1` before its `listen`, and `force_send_socket` on every relay): the Via it
 * puts in each request it sends there makes every reply come back to that one worker, which
 * relays them in the order they arrived, while the caller-facing socket keeps its 4 workers for
 * the requests (INVITE with 407/auth, ACK, BYE) — the expensive part. Timers run in Kamailio's own
 * timer processes either way. Measured: with one socket, 1–6 calls per step from 500 calls/s on
 * fail with "received 180 while pausing"; with the split, none did. Everything else is default
 * (tm timers, 256 MiB shared memory) but -b, the socket-buffer ceiling, set like everyone's (sipp.ts).
 */
export async function startKamailio(dir: string, destinationPort: number, mpath: string): Promise<Target> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const towardDestination = KAMAILIO_SPLIT ? await freePort() : port;
  const ctl = join(dir, 'kamailio.ctl');
  const cfg = join(dir, 'kamailio.cfg');
  const sockets = KAMAILIO_SPLIT
    ? `socket_workers=1
listen=udp:127.0.0.1:${towardDestination}
listen=udp:127.0.0.1:${port}`
    : `listen=udp:127.0.0.1:${port}`;
  writeFileSync(
    cfg,
    `#!KAMAILIO
debug=1
log_stderror=yes
disable_tcp=yes
auto_aliases=no
children=${KAMAILIO_CHILDREN}
${sockets}
mpath="${mpath}/"
loadmodule "ctl.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "auth.so"
modparam("ctl", "binrpc", "unix:${ctl}")
modparam("auth", "qop", "auth")
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    # the ACK of the 407 ends here; everything else in the dialog is relayed statefully
    if (is_method("ACK") && !t_check_trans() && $rd == "${DOMAIN}") exit;
    route(TO_DESTINATION);
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (is_method("INVITE")) {
    if (!pv_proxy_authenticate("$td", "${PASSWORD}", "0")) { proxy_challenge("$td", "0"); exit; }
    consume_credentials();
  }
  $du = "sip:127.0.0.1:${destinationPort}";
  route(TO_DESTINATION);
}
route[TO_DESTINATION] {
  ${KAMAILIO_SPLIT ? `force_send_socket(udp:127.0.0.1:${towardDestination});` : ''}
  t_relay();
  exit;
}
`,
  );
  const log = logFile(dir, 'kamailio.log');
  const p: ChildProcess = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-m', '256', '-M', '8', '-b', String(SOCKET_BUFFER), '-P', join(dir, 'kamailio.pid'), '-Y', dir], { cwd: dir, stdio: ['ignore', log, log] });
  const up = await waitFor(() => (udpBound(port) && udpBound(towardDestination) && existsSync(ctl)) || p.exitCode !== null, 20_000);
  if (!up || p.exitCode !== null) throw new Error(`kamailio did not start (see ${dir}/kamailio.log)`);
  await waitFor(() => false, 500); // its workers finish their child init
  return {
    name: 'kamailio',
    address: `127.0.0.1:${port}`,
    scenario: 'uac-answered.xml',
    auth: true,
    memoryKb: () => pssTreeKb(p.pid!),
    cpuTimes: () => cpuTreeTimes(p.pid!),
    async sharedUsedBytes() {
      const r = await run('kamcmd', ['-s', `unix:${ctl}`, 'core.shmmem'], dir, 5000);
      const m = /\bused:\s*(\d+)/.exec(r.out);
      return m ? Number(m[1]) : undefined;
    },
    stop: () => stopProcess(p),
  };
}
