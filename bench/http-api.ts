/**
 * npm run bench:http — the trunk's HTTP API under a burst of list requests, on the event loop
 * it shares with SIP (issue #14, item 15). The HTTP API as it was before the call index (taken
 * from git) and as it is now are measured in the same run, each in its own child process with
 * the same 10 000 stored calls, the same live call traffic and the same client:
 *
 *  - 1 000 parallel `GET /v1.0/calls?…` (four filter mixes, first pages of 50), at most
 *    BENCH_HTTP_SOCKETS (200) connections at once — under the new server's cap of 256;
 *  - meanwhile a UDP echo in the server process stands for SIP: a datagram every 5 ms, its
 *    round trip timed (from a worker thread); the server process's `monitorEventLoopDelay`; and
 *    the CPU the server process used for the burst (contention on a shared machine does not inflate it);
 *  - a floor in the same run: a bare Node HTTP server answering every request with one fixed
 *    page of the same size (what HTTP itself costs on this machine).
 *
 * Everything on 127.0.0.1, bounded in count and time. BENCH_HTTP_BASE names the git revision
 * of the old http-api.ts (default: the parent of the commit that added call-index.ts).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CallRecord } from '../src/b2bua/index.js';
import { Emitter } from '../src/util/events.js';
import { viewOf } from '../examples/trunk-server/call-view.js';

const ROOT = new URL('..', import.meta.url).pathname;
const STORED = 10_000;
const REQUESTS = Number(process.env.BENCH_HTTP_REQUESTS ?? 1_000);
const SOCKETS = Number(process.env.BENCH_HTTP_SOCKETS ?? 200);
const PROBE_EVERY_MS = 5;
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const LIVE_CALLS_PER_S = 200;
const DEADLINE_MS = 120_000;
const FLOOR = 'floor';
const QUERIES = ['', '?status=hangup', '?trunk_domain=b.trunk.example', '?status=answered&trunk_domain=a.trunk.example'];

// ---- the server side (a child process per variant) -----------------------------------------

type State = CallRecord['state'];
const DOMAINS = ['a.trunk.example', 'b.trunk.example', 'c.trunk.example'];

/** The B2BUA's record store and events, with its `keepRecords` contract (oldest ended dropped first). */
class RecordStore extends Emitter<{ call(r: CallRecord): void; update(r: CallRecord): void; end(r: CallRecord): void }> {
  private readonly records = new Map<string, CallRecord>();
  private n = 0;
  get(id: string) {
    return this.records.get(id);
  }
  list() {
    return [...this.records.values()];
  }
  /** A new call, as the B2BUA stores and announces it. */
  call(): CallRecord {
    const i = this.n++;
    const r: CallRecord = {
      id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      state: 'dialing',
      from: `"Ext ${1000 + (i % 50)}" <sip:${1000 + (i % 50)}@${DOMAINS[i % 3]}>`,
      to: `sip:+4930${(1_000_000 + i).toString()}@${DOMAINS[i % 3]}`,
      identity: String(1000 + (i % 50)),
      source: { address: `127.0.0.${1 + (i % 20)}`, port: 5060, transport: i % 4 ? 'udp' : 'tcp' },
      aLeg: { callId: `a-${i}@127.0.0.1` },
      bLeg: { callId: `b-${i}@127.0.0.1`, target: `sip:+4930${1_000_000 + i}@10.0.0.2`, attempts: 1 },
      timestamps: { created: 1_700_000_000_000 + i * 1000 },
      hangup: undefined,
      tags: { domain: DOMAINS[i % 3]! },
    };
    this.records.set(r.id, r);
    while (this.records.size > STORED) {
      const oldest = this.records.values().next().value!;
      if (oldest.state !== 'hangup') break;
      this.records.delete(oldest.id);
    }
    this.emit('call', r);
    return r;
  }
  set(r: CallRecord, state: State): void {
    r.state = state;
    const t = r.timestamps.created + 2000;
    if (state === 'ringing') r.timestamps.ringing = t;
    if (state === 'answered') r.timestamps.answered = t + 3000;
    if (state === 'hangup') {
      r.timestamps.hangup = t + 60_000;
      r.hangup = { by: 'caller', status: r.timestamps.answered ? undefined : 486, phrase: r.timestamps.answered ? undefined : 'Busy Here', q850: r.timestamps.answered ? 16 : 17 };
    }
    this.emit('update', r);
    if (state === 'hangup') this.emit('end', r);
  }
}

/** The floor: a bare Node HTTP server answering every request with one fixed page of the same size. */
function floorApi(store: RecordStore): Server {
  const body = JSON.stringify({ result: store.list().slice(-50).reverse().map(viewOf), next_page_token: null });
  return createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

async function serve(modulePath: string): Promise<void> {
  const { createHttpApi } = modulePath === FLOOR ? { createHttpApi: undefined } : ((await import(pathToFileURL(modulePath).href)) as typeof import('../examples/trunk-server/http-api.js'));
  const store = new RecordStore();
  const live: CallRecord[] = [];
  /** One call's life: most are answered; all but the last few hundred have ended. */
  const lifecycle = (r: CallRecord, end: boolean) => {
    store.set(r, 'ringing');
    if (Number(r.aLeg.callId.slice(2).split('@')[0]) % 5 !== 0) store.set(r, 'answered');
    if (end) store.set(r, 'hangup');
    else live.push(r);
  };
  for (let i = 0; i < STORED + 2_000; i++) lifecycle(store.call(), i < STORED + 1_700);
  const server = createHttpApi ? createHttpApi(store as never, 'tok') : floorApi(store);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  // Stands for the SIP transport: every datagram answered at once, from the loop the API runs on.
  const sip = createSocket('udp4');
  sip.on('message', (m, rinfo) => sip.send(m, rinfo.port, rinfo.address));
  await new Promise<void>((r) => sip.bind(0, '127.0.0.1', () => r()));
  // Live call traffic while the API is busy: new calls, and old ones hanging up.
  let traffic: NodeJS.Timeout | undefined;
  const lag = monitorEventLoopDelay({ resolution: 1 });
  let cpuAtStart = process.cpuUsage();
  process.on('message', (m: string) => {
    if (m === 'start') {
      traffic = setInterval(() => {
        for (let k = 0; k < LIVE_CALLS_PER_S / 50; k++) {
          lifecycle(store.call(), false);
          const done = live.shift();
          if (done) store.set(done, 'hangup');
        }
      }, 20);
      lag.reset();
      lag.enable();
      cpuAtStart = process.cpuUsage();
    } else if (m === 'stop') {
      lag.disable();
      clearInterval(traffic);
      const cpu = process.cpuUsage(cpuAtStart);
      const ms = (ns: number) => ns / 1e6;
      process.send!({ lag: { p50: ms(lag.percentile(50)), p99: ms(lag.percentile(99)), max: ms(lag.max) }, cpuMs: (cpu.user + cpu.system) / 1000 }, () => process.exit(0));
    }
  });
  process.send!({ http: (server.address() as { port: number }).port, udp: sip.address().port });
}

// ---- the client side ----------------------------------------------------------------------

/** The UDP prober (plain JS, run in a worker): sends, times, and on 'stop' posts the sorted round trips. */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createSocket } = require('node:dgram');
const { performance } = require('node:perf_hooks');
const sock = createSocket('udp4');
const sentAt = new Map();
const rtts = [];
sock.on('message', (m) => {
  const seq = m.readUInt32BE(0);
  const t = sentAt.get(seq);
  if (t !== undefined) rtts.push(performance.now() - t);
  sentAt.delete(seq);
});
const datagram = Buffer.alloc(400, 'x'); // about an OPTIONS request
let seq = 0;
sock.bind(0, '127.0.0.1', () => {
  const timer = setInterval(() => {
    datagram.writeUInt32BE(seq);
    sentAt.set(seq++, performance.now());
    sock.send(datagram, workerData.port, '127.0.0.1');
  }, workerData.every);
  parentPort.on('message', () => {
    clearInterval(timer);
    setTimeout(() => {
      sock.close();
      parentPort.postMessage({ rtts: rtts.sort((a, b) => a - b), lost: sentAt.size });
    }, 300);
  });
});
`;

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}

function get(agent: Agent, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { authorization: 'Bearer tok' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(DEADLINE_MS, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

interface Result {
  name: string;
  totalMs: number;
  ok: number;
  failed: number;
  lag: { p50: number; p99: number; max: number };
  /** CPU the server process used from the start of the burst to its end (what contention does not inflate). */
  cpuMs: number;
  rtt: { p50: number; p99: number; max: number; lost: number };
  firstPages: string[];
}

async function measure(name: string, modulePath: string): Promise<Result> {
  const child: ChildProcess = fork(join(ROOT, 'bench', 'http-api.ts'), ['serve', modulePath], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const kill = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
  const ready = await new Promise<{ http: number; udp: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { http: number; udp: number }));
    child.once('exit', (code) => reject(new Error(`${name}: server exited (${code})`)));
  });
  const agent = new Agent({ keepAlive: true, maxSockets: SOCKETS });
  // The same first pages from both servers, before the load (and its live traffic) starts.
  const firstPages = await Promise.all(QUERIES.map(async (q) => JSON.stringify(JSON.parse((await get(agent, ready.http, `/v1.0/calls${q}`)).body).result)));

  // SIP stand-in: a datagram every PROBE_EVERY_MS, each round trip timed — from a worker thread,
  // so the client's own HTTP work does not delay the clock that times it.
  const prober = new Worker(PROBER, { eval: true, workerData: { port: ready.udp, every: PROBE_EVERY_MS } });
  const probed = new Promise<{ rtts: number[]; lost: number }>((resolve) => prober.once('message', resolve));
  await new Promise((r) => prober.once('online', r));
  child.send('start');
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  const answers = await Promise.allSettled(Array.from({ length: REQUESTS }, (_, i) => get(agent, ready.http, `/v1.0/calls${QUERIES[i % QUERIES.length]}`)));
  const totalMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 100));
  prober.postMessage('stop');
  const { rtts, lost } = await probed;
  await prober.terminate();
  agent.destroy();
  const stats = await new Promise<{ lag: Result['lag']; cpuMs: number }>((resolve) => {
    child.once('message', (m) => resolve(m as { lag: Result['lag']; cpuMs: number }));
    child.send('stop');
  });
  clearTimeout(kill);
  const ok = answers.filter((a) => a.status === 'fulfilled' && a.value.status === 200).length;
  return {
    name,
    totalMs,
    ok,
    failed: REQUESTS - ok,
    lag: stats.lag,
    cpuMs: stats.cpuMs,
    rtt: { p50: percentile(rtts, 50), p99: percentile(rtts, 99), max: rtts[rtts.length - 1] ?? NaN, lost },
    firstPages,
  };
}

function oldHttpApi(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  const base =
    process.env.BENCH_HTTP_BASE ??
    `${git('log', '--diff-filter=A', '--format=%H', '--', 'examples/trunk-server/call-index.ts').split('\n').pop()}^`;
  const source = git('show', `${base}:examples/trunk-server/http-api.ts`).replace(
    /from '\.\/([\w-]+)\.js'/g,
    (_, m: string) => `from '${pathToFileURL(join(ROOT, 'examples', 'trunk-server', `${m}.ts`)).href}'`,
  );
  const file = join(mkdtempSync(join(tmpdir(), 'bench-http-')), 'http-api-old.ts');
  writeFileSync(file, source);
  console.log(`old http-api.ts: git ${base} (${git('rev-parse', '--short', base)}); BENCH_HTTP_BASE picks another`);
  return file;
}

/** The median round of each figure. */
function median(rs: Result[]): Result {
  const m = (f: (r: Result) => number) => rs.map(f).sort((a, b) => a - b)[rs.length >> 1]!;
  return {
    name: rs[0]!.name,
    totalMs: m((r) => r.totalMs),
    ok: m((r) => r.ok),
    failed: m((r) => r.failed),
    lag: { p50: m((r) => r.lag.p50), p99: m((r) => r.lag.p99), max: m((r) => r.lag.max) },
    cpuMs: m((r) => r.cpuMs),
    rtt: { p50: m((r) => r.rtt.p50), p99: m((r) => r.rtt.p99), max: m((r) => r.rtt.max), lost: m((r) => r.rtt.lost) },
    firstPages: rs[0]!.firstPages,
  };
}

async function main(): Promise<void> {
  console.log(
    `${STORED} stored calls, ${LIVE_CALLS_PER_S} new calls/s during the burst; ${REQUESTS} parallel list requests over at most ${SOCKETS} connections; ` +
      `a UDP echo every ${PROBE_EVERY_MS} ms; ${ROUNDS} rounds, old and new alternating`,
  );
  const oldFile = oldHttpApi();
  const newFile = join(ROOT, 'examples', 'trunk-server', 'http-api.ts');
  const rounds: Result[][] = [[], [], []];
  for (let i = 0; i < ROUNDS; i++) {
    rounds[0]!.push(await measure('before (full scan)', oldFile));
    rounds[1]!.push(await measure('after (call index)', newFile));
    rounds[2]!.push(await measure('floor (fixed page)', FLOOR));
  }
  const f = (n: number) => n.toFixed(1).padStart(8);
  const head = '                      total ms   ok failed server CPU ms | loop lag ms  p50      p99      max | UDP echo RTT ms  p50      p99      max  lost';
  const line = (r: Result) =>
    `${r.name.padEnd(20)} ${f(r.totalMs)} ${String(r.ok).padStart(4)} ${String(r.failed).padStart(6)} ${f(r.cpuMs)}      |        ${f(r.lag.p50)} ${f(r.lag.p99)} ${f(r.lag.max)} |            ${f(r.rtt.p50)} ${f(r.rtt.p99)} ${f(r.rtt.max)} ${String(r.rtt.lost).padStart(5)}`;
  console.log('\nevery round:\n' + head);
  for (let i = 0; i < ROUNDS; i++) for (const v of rounds) console.log(line(v[i]!));
  console.log('\nmedian of the rounds:\n' + head);
  for (const v of rounds) console.log(line(median(v)));
  // The floor serves one fixed page: only old and new are compared.
  const same = rounds[0]!.every((o, i) => o.firstPages.every((p, k) => p === rounds[1]![i]!.firstPages[k]));
  console.log(`\nfirst pages of the four queries identical before and after: ${same ? 'yes' : 'NO'}`);
  if (!same) process.exitCode = 1;
}

if (process.argv[2] === 'serve') void serve(process.argv[3]!);
else await main();
