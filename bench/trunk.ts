/**
 * npm run bench:trunk — the trunk server under SIPp load, against a floor measured in
 * the same run: a bare Node UDP relay that only forwards packets between the two SIPp
 * sides. When Kamailio is installed (Debian `kamailio`), the issue's reference is measured
 * in the same run too: a stateful Kamailio proxy with MD5 proxy-auth in front of the same
 * destination, driven by the same SIPp scenario. Every loop is bounded in rate, count and
 * time; everything runs on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const SIPP = join(ROOT, 'test', 'sipp');
const RATES = (process.env.BENCH_RATES ?? '100,200,400,700,850,1000,1200,1400,1700,2000,2500,3000,4000,5000,6000,8000').split(',').map(Number);
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 5);
const HELD_CALLS = Number(process.env.BENCH_HELD_CALLS ?? 5000);
const tmp = mkdtempSync(join(tmpdir(), 'bench-trunk-'));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out = (out + d).slice(-4000)));
    p.stderr.on('data', (d: Buffer) => (out = (out + d).slice(-4000)));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** Last line of a SIPp statistics CSV, as a record. */
function sippStats(file: string): Record<string, string> {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const head = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  return Object.fromEntries(head.map((h, i) => [h, last[i] ?? '']));
}

interface Step {
  rate: number;
  ok: number;
  failed: number;
  retrans: number;
}

/** One rate step: the caller places rate×seconds calls at `rate`/s; the step passes when none fails. */
async function step(target: string, uacPort: number, scenario: string, rate: number, auth: boolean): Promise<Step> {
  const calls = rate * STEP_SECONDS;
  const stf = join(tmp, `uac-${scenario}-${rate}.csv`);
  const args = [
    target, '-sf', join(SIPP, scenario), '-i', '127.0.0.1', '-p', String(uacPort),
    '-s', '15551234567', '-key', 'trunk_domain', 'demo.trunk.sipkit.test', '-key', 'caller_rtp_port', '16000',
    '-r', String(rate), '-m', String(calls), '-l', String(rate * 10), '-d', '0',
    '-timeout', `${STEP_SECONDS + 40}s`, '-trace_stat', '-stf', stf, '-fd', '1',
  ];
  if (auth) args.push('-au', '1000', '-ap', 'sipkit-demo', '-auth_uri', '15551234567@demo.trunk.sipkit.test');
  await run('sipp', args, (STEP_SECONDS + 60) * 1000);
  const s = sippStats(stf);
  return { rate, ok: Number(s['SuccessfulCall(C)'] ?? 0), failed: Number(s['FailedCall(C)'] ?? 0) + (calls - Number(s['TotalCallCreated'] ?? calls)), retrans: Number(s['Retransmissions(C)'] ?? 0) };
}

async function ramp(name: string, target: string, scenario: string, auth: boolean): Promise<{ best: number; steps: Step[] }> {
  const steps: Step[] = [];
  let best = 0;
  for (const rate of RATES) {
    const uacPort = await freePort();
    const s = await step(target, uacPort, scenario, rate, auth);
    steps.push(s);
    console.log(`  ${name.padEnd(8)} ${String(rate).padStart(5)} calls/s for ${STEP_SECONDS}s: ok=${s.ok} failed=${s.failed} retransmissions=${s.retrans}`);
    if (s.failed > 0 || s.ok < rate * STEP_SECONDS) break;
    best = rate;
  }
  return { best, steps };
}

function startUas(port: number): ChildProcess {
  return spawn('sipp', ['-sf', join(SIPP, 'uas-bench.xml'), '-i', '127.0.0.1', '-p', String(port), '-timeout', '900s'], { cwd: tmp, stdio: 'ignore' });
}

/** The floor: a relay that forwards datagrams between caller and destination and does nothing else. */
async function startRelay(uasPort: number): Promise<{ port: number; close(): void }> {
  const s = createSocket('udp4');
  let caller: { address: string; port: number } | undefined;
  s.on('message', (msg, r) => {
    if (r.port === uasPort) {
      if (caller) s.send(msg, caller.port, caller.address);
    } else {
      caller = { address: r.address, port: r.port };
      s.send(msg, uasPort, '127.0.0.1');
    }
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return { port: s.address().port, close: () => s.close() };
}

/**
 * The reference the trunk's target was set against: Kamailio 5.6 as a stateful (tm) proxy
 * that challenges every INVITE with 407 and an MD5 digest (auth module, plain password),
 * then relays to the destination; in-dialog requests are relayed by tm too. One SIP worker
 * process, like the trunk's one thread: with several, a 180 and the 200 after it are relayed
 * by different processes and can arrive swapped, which SIPp's scenario counts as a failed call.
 */
async function startKamailio(port: number, uasPort: number): Promise<ChildProcess | undefined> {
  if (spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status !== 0) return undefined;
  const mpath = ['/usr/lib/x86_64-linux-gnu/kamailio/modules/', '/usr/lib/kamailio/modules/'].find((d) => {
    try {
      return readFileSync(join(d, 'tm.so')).length > 0;
    } catch {
      return false;
    }
  });
  if (mpath === undefined) return undefined;
  const cfg = join(tmp, 'kamailio.cfg');
  writeFileSync(
    cfg,
    `#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:${port}
auto_aliases=no
mpath="${mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "auth.so"
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    # the ACK of the 407 ends here; everything else in the dialog is relayed statefully
    if (is_method("ACK") && !t_check_trans() && $rd == "demo.trunk.sipkit.test") exit;
    t_relay();
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (is_method("INVITE")) {
    if (!pv_proxy_authenticate("$td", "sipkit-demo", "0")) { proxy_challenge("$td", "0"); exit; }
    consume_credentials();
  }
  $du = "sip:127.0.0.1:${uasPort}";
  t_relay();
}
`,
  );
  const p = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-m', '256', '-M', '8', '-P', join(tmp, 'kamailio.pid'), '-Y', tmp], { cwd: tmp, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 2000));
  return p.exitCode === null ? p : undefined;
}

/** The trunk as `npm start` runs it: the example on top of the compiled library (dist). */
function startTrunkProcess(cfgFile: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'examples/trunk-server/main.ts'), '--config', cfgFile], {
    cwd: ROOT,
    stdio: 'ignore',
    env: { ...process.env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.run.json') },
  });
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  console.log(`sipkit trunk benchmark — SIPp ${RATES.join('/')} calls/s steps of ${STEP_SECONDS}s, ${HELD_CALLS} held calls; node ${process.version}`);
  const uasPort = await freePort();
  const trunkPort = await freePort();
  const config = {
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: trunkPort }] },
    http: { host: '127.0.0.1', port: 0, token: 'bench' },
    auth: { secret: 'bench-secret-0123456789abcdef0123', algorithms: ['MD5'] },
    domains: { 'demo.trunk.sipkit.test': { extensions: { '1000': { password: 'sipkit-demo' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${uasPort}`] }] } },
    cdr: { path: null },
    log: { level: 'warn' },
    limits: { maxCalls: 100_000, maxCallsPerSource: 100_000 },
  };
  const cfgFile = join(tmp, 'trunk.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const uas = startUas(uasPort);

  // Floor first: a bare relay in its own Node process would be fairer still, but it does so little
  // that sharing this process costs it nothing measurable.
  const relay = await startRelay(uasPort);
  console.log('\n## floor: bare Node UDP relay (forwards packets, no SIP)');
  const floor = await ramp('relay', `127.0.0.1:${relay.port}`, 'uac-plain.xml', false);
  relay.close();

  const kamailioPort = await freePort();
  const kamailio = await startKamailio(kamailioPort, uasPort);
  let reference: { best: number; steps: Step[] } | undefined;
  if (kamailio) {
    console.log('\n## reference: Kamailio stateful proxy, MD5 proxy-auth (407), same SIPp scenario');
    reference = await ramp('kamailio', `127.0.0.1:${kamailioPort}`, 'uac-answered.xml', true);
    await new Promise((r) => {
      kamailio.once('exit', r);
      kamailio.kill('SIGTERM');
    });
  } else {
    console.log('\n## reference: Kamailio not installed (apt-get install kamailio): skipped');
  }

  const trunk = startTrunkProcess(cfgFile);
  await new Promise((r) => setTimeout(r, 3000));
  console.log('\n## trunk: 407 digest (MD5) + B2BUA + answer + BYE, one Node thread');
  const t = await ramp('trunk', `127.0.0.1:${trunkPort}`, 'uac-answered.xml', true);

  // The fresh trunk below binds the same port: wait until this one has let go of it.
  await new Promise((r) => {
    trunk.once('exit', r);
    trunk.kill('SIGTERM');
  });

  // Memory per held call, on a fresh trunk with a fresh destination (the ramps' last step left
  // the first one with a backlog that slows every set-up): HELD_CALLS calls up at once (each
  // holds 120 s). RSS is read once every transaction of the set-up is over (Timers L/M:
  // 64·T1 = 32 s), so what is measured is what a call costs while it lasts, not its set-up.
  uas.kill('SIGKILL');
  const memUasPort = await freePort();
  const memUas = startUas(memUasPort);
  const memCfgFile = join(tmp, 'trunk-memory.json');
  writeFileSync(memCfgFile, JSON.stringify({ ...config, domains: { 'demo.trunk.sipkit.test': { ...config.domains['demo.trunk.sipkit.test'], routes: [{ prefix: '', targets: [`sip:127.0.0.1:${memUasPort}`] }] } } }));
  const fresh = startTrunkProcess(memCfgFile);
  await new Promise((r) => setTimeout(r, 3000));
  const idle = rssKb(fresh.pid!);
  const holdPort = await freePort();
  const held = spawn('sipp', [
    `127.0.0.1:${trunkPort}`, '-sf', join(SIPP, 'uac-answered.xml'), '-i', '127.0.0.1', '-p', String(holdPort),
    '-s', '15551234567', '-key', 'trunk_domain', 'demo.trunk.sipkit.test', '-key', 'caller_rtp_port', '16000',
    '-au', '1000', '-ap', 'sipkit-demo', '-auth_uri', '15551234567@demo.trunk.sipkit.test',
    '-r', '200', '-m', String(HELD_CALLS), '-l', String(HELD_CALLS), '-d', '120000', '-timeout', '180s',
  ], { cwd: tmp, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, Math.ceil(HELD_CALLS / 200) * 1000 + 40_000));
  const busy = rssKb(fresh.pid!);
  held.kill('SIGKILL');
  fresh.kill('SIGTERM');
  memUas.kill('SIGKILL');

  console.log('\n## results');
  console.log(`  floor (bare relay):      ${floor.best} calls/s sustained with no failed call`);
  if (reference) console.log(`  Kamailio (reference):    ${reference.best} calls/s sustained with no failed call (${floor.best ? ((reference.best / floor.best) * 100).toFixed(0) : '?'}% of the floor)`);
  console.log(`  trunk:                   ${t.best} calls/s sustained with no failed call (${floor.best ? ((t.best / floor.best) * 100).toFixed(0) : '?'}% of the floor${reference?.best ? `, ${((t.best / reference.best) * 100).toFixed(0)}% of Kamailio` : ''}; target ≥ 2000)`);
  const last = t.steps.find((s) => s.rate === t.best);
  console.log(`  retransmissions at that rate: ${last?.retrans ?? 'n/a'}`);
  console.log(`  memory: ${idle} kB idle → ${busy} kB with ${HELD_CALLS} calls held: ${(((busy - idle) * 1024) / HELD_CALLS / 1024).toFixed(1)} KB per held call (target < 20 KB)`);
}

await main();
