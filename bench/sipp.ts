/**
 * SIPp as the benchmark's caller and destination: how it is started, and how its CSV
 * statistics are read. Every run is bounded in calls (-m) and in time (-timeout, then SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('..', import.meta.url).pathname;
export const SCENARIOS = join(ROOT, 'test', 'sipp');
export const DOMAIN = 'demo.trunk.sipkit.test';
export const USER = '1000';
export const PASSWORD = 'sipkit-demo';
/**
 * Socket buffers, bytes, for every SIPp and every target alike: the trunk's UDP transport asks
 * for 4 MiB, SIPp's default (-buff_size) is 64 KiB and Kamailio probes up to 256 KiB. On a shared
 * machine a process that is not scheduled for a few tens of milliseconds overflows a small
 * buffer; with one size for all, a drop is nobody's configuration.
 */
export const SOCKET_BUFFER = 4 * 1024 * 1024;

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every `everyMs` until it is true or `timeoutMs` has passed; returns whether it became true. */
export async function waitFor(check: () => boolean, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(everyMs);
  }
  return check();
}

/** Whether something on this machine has a UDP socket bound to 127.0.0.1:`port` (/proc/net/udp). */
export function udpBound(port: number): boolean {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8').includes(want);
}

/** Run a command to its end, or SIGKILL it at `timeoutMs`. */
export function run(cmd: string, args: string[], cwd: string, timeoutMs: number, signal?: AbortSignal): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    p.on('error', () => {}); // an abort: 'close' follows
    let out = '';
    const keep = (d: Buffer): void => void (out = (out + d.toString()).slice(-4000));
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

export function stopProcess(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill(signal);
  });
}

/** Rows of a SIPp CSV (-trace_stat or -trace_counts), each as a record keyed by the header. */
export function readCsv(file: string): Array<Record<string, string>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.trim().split('\n').filter((l) => l.includes(';'));
  if (lines.length < 2) return [];
  const head = lines[0]!.split(';');
  return lines.slice(1).map((l) => {
    const cells = l.split(';');
    return Object.fromEntries(head.map((h, i) => [h, cells[i] ?? '']));
  });
}

/** SIPp's time cells read "2026-12-01\t05:32:34.832818\t1796103154.832818": the last field is epoch seconds. */
export function epochSeconds(cell: string | undefined): number {
  const f = (cell ?? '').trim().split(/\s+/);
  return Number(f[f.length - 1]);
}

export interface CallerOptions {
  target: string;
  scenario: string;
  rate: number;
  calls: number;
  holdMs: number;
  /** Answer the 407 (SIPp -au/-ap). */
  auth: boolean;
  /** SIPp -lost: drop this percentage of the packets it receives. */
  lostPercent?: number;
  /** Whole-run bound (SIPp -timeout), seconds. */
  timeoutSeconds: number;
  /** Ends the run early (SIGKILL), e.g. once held calls have been measured. */
  signal?: AbortSignal;
}

export interface CallerResult {
  offered: number;
  created: number;
  ok: number;
  /** Calls that did not succeed: SIPp's failed calls plus any still unfinished when it stopped. */
  failed: number;
  /** Of those, aborted on a message the scenario did not expect (a 180 after the 200, say). */
  unexpected: number;
  retransmissions: number;
  /** From SIPp's start to its last call's end, seconds (SIPp's own µs time stamps). */
  elapsed: number;
}

/** One SIPp caller run from 127.0.0.1, to its end; `dir` is its own working directory (its CSV files go there). */
export async function runCaller(dir: string, o: CallerOptions): Promise<CallerResult> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const stf = join(dir, 'stat.csv');
  const args = [
    o.target, '-sf', join(SCENARIOS, o.scenario), '-i', '127.0.0.1', '-p', String(port),
    '-s', '15551234567', '-key', 'trunk_domain', DOMAIN, '-key', 'caller_rtp_port', '16000',
    '-r', String(o.rate), '-m', String(o.calls), '-l', String(o.calls), '-d', String(o.holdMs),
    '-timeout', `${o.timeoutSeconds}s`, '-trace_stat', '-stf', stf, '-fd', '1', '-trace_err', '-buff_size', String(SOCKET_BUFFER),
  ];
  if (o.auth) args.push('-au', USER, '-ap', PASSWORD, '-auth_uri', `15551234567@${DOMAIN}`);
  if (o.lostPercent) args.push('-lost', String(o.lostPercent));
  await run('sipp', args, dir, (o.timeoutSeconds + 15) * 1000, o.signal);
  const rows = readCsv(stf);
  const last = rows[rows.length - 1] ?? {};
  const n = (k: string): number => Number(last[k] ?? 0) || 0;
  const ok = n('SuccessfulCall(C)');
  return {
    offered: o.calls,
    created: n('TotalCallCreated'),
    ok,
    failed: o.calls - ok,
    unexpected: n('FailedUnexpectedMessage(C)'),
    retransmissions: n('Retransmissions(C)'),
    elapsed: rows.length ? epochSeconds(last['CurrentTime']) - epochSeconds(last['StartTime']) : NaN,
  };
}

export interface Destination {
  port: number;
  process: ChildProcess;
  /** Calls whose ACK the destination has received, and when SIPp last counted (epoch s); read from -trace_counts. */
  acked(): { count: number; at: number };
}

/** The destination: SIPp answering every INVITE at once (100, 180, 200) and waiting for the BYE (uas-bench.xml by default). */
export async function startDestination(dir: string, opts: { scenario?: string; lostPercent?: number; timeoutSeconds?: number } = {}): Promise<Destination> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = ['-sf', join(SCENARIOS, opts.scenario ?? 'uas-bench.xml'), '-i', '127.0.0.1', '-p', String(port), '-timeout', `${opts.timeoutSeconds ?? 1800}s`, '-trace_counts', '-fd', '1', '-buff_size', String(SOCKET_BUFFER)];
  if (opts.lostPercent) args.push('-lost', String(opts.lostPercent));
  const process = spawn('sipp', args, { cwd: dir, stdio: 'ignore' });
  await waitFor(() => udpBound(port) || process.exitCode !== null, 10_000);
  return {
    port,
    process,
    acked() {
      const file = readdirSync(dir).find((f) => f.endsWith('_counts.csv'));
      const rows = file ? readCsv(join(dir, file)) : [];
      const last = rows[rows.length - 1];
      if (!last) return { count: 0, at: 0 };
      const col = Object.keys(last).find((k) => /_ACK_Recv$/.test(k));
      return { count: col ? Number(last[col]) || 0 : 0, at: epochSeconds(last['CurrentTime']) };
    },
  };
}
