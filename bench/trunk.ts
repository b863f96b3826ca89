/**
 * npm run bench:trunk — the trunk against Kamailio (the issue's reference) and a floor (a bare
 * UDP relay), all measured in the same run, each in its own process(es), on 127.0.0.1/127.0.0.2:
 *
 * 1. Ramp. The same SIPp scenario (uac answering a 407 with MD5 digest → target → uas answering
 *    at once, 1 s hold, BYE) through the same call-rate steps. Steps of all three targets are
 *    interleaved, rate by rate, in an order that rotates with the step, so the drift of a shared
 *    machine falls on all of them alike. A step holds when every call offered (rate × seconds)
 *    succeeds, none fails, and the rate achieved is ≥ 95 % of the step's rate, where the rate
 *    achieved is calls / (SIPp's run time − hold): a target that falls behind finishes its calls
 *    later than the caller placed them, and its rate is what it actually carried. A target's ramp
 *    stops at its first step that does not hold; its sustained rate is the last step that held.
 *    Around every step the target's CPU time is read (user + system, /proc/<pid>/stat; Kamailio:
 *    its main process and every worker) and printed as ms per completed call, every target side by
 *    side in the summary: at a fixed rate a far steadier figure than the sustained rate, which one
 *    late call on a shared machine decides. BENCH_RAMP_STOP=0 runs every step for every target,
 *    so a rate list such as 400,600,400,600 gives repeated CPU figures even past a failed step.
 * 2. Memory per held call: on a fresh target and destination, BENCH_HELD_CALLS calls placed at
 *    300/s and held; memory read 3 s after the destination's ACK count shows the last of them
 *    (SIPp counts once a second: 3–4 s after), so their INVITE transactions are still in RFC 6026
 *    Accepted (64·T1). (memory then − memory before) / calls.
 * 3. Memory per ended call: fresh again, BENCH_ENDED_CALLS calls at 300/s, 1 s hold, all hung up;
 *    memory read as soon as the caller has finished, within 64·T1 of the first hang-up, so no
 *    Timer J/L/M of theirs has fired yet: what ended calls leave behind until their timers do.
 * 4. Unauthenticated flood: 20 000 INVITEs without credentials from 200 UDP ports on 127.0.0.2 at
 *    3 000/s, never ACKed; every response counted until 34 s after the last INVITE (Timer H is
 *    64·T1 = 32 s), memory sampled throughout; meanwhile a legitimate SIPp caller from 127.0.0.1
 *    places authenticated calls, whose outcome is reported.
 * 5. Loss: 30 calls with SIPp's -lost 15 (drops that share of what it sends and receives) on both
 *    the caller and the destination; the destination runs uas-bench-lossy.xml, which behaves as a
 *    UAS must under loss (absorbs a retransmitted BYE, lets a BYE overtake a lost ACK), so what
 *    fails is the target's doing, not the test destination's.
 *
 * Memory: the trunk is one Node process, read as its RSS. Kamailio is a main process and its
 * forked children sharing one pool: read as the sum of their PSS, which counts each shared page
 * once (proc-mem.ts); the bytes in use in its shared pool (kamcmd core.shmmem) are printed too.
 * Before each memory reading "before", 100 warm-up calls run and 2 s pass, on both targets alike.
 *
 * Environment: BENCH_RATES (calls/s steps, comma-separated), BENCH_STEP_SECONDS (5), BENCH_HOLD_MS
 * (1000), BENCH_HELD_CALLS (3000), BENCH_ENDED_CALLS (3000), BENCH_FLOOD_INVITES (20000),
 * BENCH_FLOOD_RATE (3000), BENCH_LOSS_CALLS (30), BENCH_KAMAILIO_CHILDREN (4),
 * BENCH_KAMAILIO_SPLIT=0 (one Kamailio socket: shows the 180/200 reordering), BENCH_RAMP_TARGETS
 * (floor,kamailio,trunk), BENCH_RAMP_WARMUP_CALLS (1000, at 200/s, every target at once, before the ramp), BENCH_RAMP_STOP=0 (no target leaves the ramp), and =0 to skip a
 * part: BENCH_RAMP, BENCH_MEMORY, BENCH_FLOOD, BENCH_LOSS.
 */
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flood, type FloodResult } from './flood.js';
import { DOMAIN, runCaller, sleep, startDestination, waitFor, type CallerResult, type Destination } from './sipp.js';
import { KAMAILIO_CHILDREN, kamailioModules, startKamailio, startRelay, startTrunk, type Target } from './targets.js';

const num = (name: string, dflt: number): number => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};
const on = (name: string): boolean => process.env[name] !== '0';

const RATES = (process.env.BENCH_RATES ?? '200,400,600,800,1000,1200,1500,1800,2200,2600,3000').split(',').map(Number);
const RAMP_TARGETS = (process.env.BENCH_RAMP_TARGETS ?? 'floor,kamailio,trunk').split(',');
const STEP_SECONDS = num('BENCH_STEP_SECONDS', 5);
const HOLD_MS = num('BENCH_HOLD_MS', 1000);
const HELD_CALLS = num('BENCH_HELD_CALLS', 3000);
const ENDED_CALLS = num('BENCH_ENDED_CALLS', 3000);
const MEMORY_RATE = 300;
const WARMUP_CALLS = 100;
const FLOOD_INVITES = num('BENCH_FLOOD_INVITES', 20_000);
const FLOOD_RATE = num('BENCH_FLOOD_RATE', 3000);
const FLOOD_SOCKETS = 200;
const FLOOD_LISTEN_MS = 34_000;
const LEGIT_RATE = 50;
const LOSS_CALLS = num('BENCH_LOSS_CALLS', 30);
const LOSS_PERCENT = 15;
/** Between two steps: the destination and the target catch their breath (the ramp's own calls are all over). */
const STEP_PAUSE_MS = 1500;
/** RFC 3261 64·T1 with the trunk's T1 of 500 ms. */
const SIXTY_FOUR_T1 = 32;

if (RATES.some((r) => !Number.isInteger(r) || r <= 0)) throw new Error('BENCH_RATES must be positive integers');
const tmp = mkdtempSync(join(tmpdir(), 'bench-trunk-'));
const mpath = kamailioModules();

type Kind = 'trunk' | 'kamailio' | 'baseline';
const kinds: Kind[] = mpath ? ['trunk', 'kamailio'] : ['trunk'];
// BENCH_BASELINE_ROOT: another checkout's trunk, measured in the memory part too, beside the trunk.
const memoryKinds: Kind[] = process.env.BENCH_BASELINE_ROOT ? [...kinds, 'baseline'] : kinds;
const start = (kind: Kind, dir: string, destinationPort: number): Promise<Target> =>
  kind === 'trunk'
    ? startTrunk(dir, destinationPort)
    : kind === 'baseline'
      ? startTrunk(dir, destinationPort, process.env.BENCH_BASELINE_ROOT!, 'baseline')
      : startKamailio(dir, destinationPort, mpath!);

// ---------------------------------------------------------------------------------------------
// 1. Ramp

interface Step extends CallerResult {
  target: string;
  rate: number;
  achieved: number;
  holds: boolean;
  /** The target's CPU (user + system, /proc/<pid>/stat) from the step's start to its caller's end, ms per call completed. */
  cpuMsPerCall: number;
  /** Of which in system (kernel) mode: sockets, mostly. */
  sysMsPerCall: number;
  /** A Node target's event loop (main thread) alone, ms per call: what bounds its rate; undefined for others. */
  loopMsPerCall: number | undefined;
}

const pad = (v: unknown, n: number): string => String(v).padStart(n);
const stepHeader = `  ${'target'.padEnd(8)} ${pad('rate/s', 6)} ${pad('offered', 7)} ${pad('ok', 6)} ${pad('failed', 6)} ${pad('unexp', 5)} ${pad('retrans', 7)} ${pad('run s', 6)} ${pad('achieved/s', 10)}  ${'verdict'.padEnd(7)} ${pad('CPU ms/call', 11)} ${pad('of it sys', 9)} ${pad('event loop', 10)}`;
const stepRow = (s: Step): string =>
  `  ${s.target.padEnd(8)} ${pad(s.rate, 6)} ${pad(s.offered, 7)} ${pad(s.ok, 6)} ${pad(s.failed, 6)} ${pad(s.unexpected, 5)} ${pad(s.retransmissions, 7)} ${pad(s.elapsed.toFixed(2), 6)} ${pad(s.achieved.toFixed(0), 10)}  ${(s.holds ? 'holds' : 'FAILS').padEnd(7)} ${pad(s.cpuMsPerCall.toFixed(3), 11)} ${pad(s.sysMsPerCall.toFixed(3), 9)} ${pad(s.loopMsPerCall === undefined ? '' : s.loopMsPerCall.toFixed(3), 10)}`;

/** Every target through the same steps, interleaved rate by rate; each stops at its first step that does not hold. */
async function ramp(targets: Target[]): Promise<Step[]> {
  const steps: Step[] = [];
  const live = [...targets];
  // Warm-up, not counted: the first step would otherwise carry JIT compilation (and Kamailio's first touch of its pools).
  const warm = num('BENCH_RAMP_WARMUP_CALLS', 1000);
  await Promise.all(targets.map((t) => runCaller(join(tmp, 'ramp', `${t.name}-warmup`), { target: t.address, scenario: t.scenario, auth: t.auth, rate: 200, calls: warm, holdMs: 0, timeoutSeconds: warm / 200 + 30 })));
  await sleep(STEP_PAUSE_MS);
  console.log(stepHeader);
  for (const [i, rate] of RATES.entries()) {
    if (live.length === 0) break;
    const order = live.map((_, k) => live[(k + i) % live.length]!);
    for (const t of order) {
      const cpuBefore = t.cpuTimes();
      const loopBefore = t.mainThreadCpuTimes?.();
      const r = await runCaller(join(tmp, 'ramp', `${t.name}-${rate}`), {
        target: t.address,
        scenario: t.scenario,
        auth: t.auth,
        rate,
        calls: rate * STEP_SECONDS,
        holdMs: HOLD_MS,
        timeoutSeconds: STEP_SECONDS + HOLD_MS / 1000 + 40,
      });
      const cpuAfter = t.cpuTimes();
      const loopAfter = t.mainThreadCpuTimes?.();
      const loopMsPerCall = loopBefore && loopAfter ? ((loopAfter.user + loopAfter.sys - loopBefore.user - loopBefore.sys) * 1000) / Math.max(r.ok, 1) : undefined;
      const sysMsPerCall = ((cpuAfter.sys - cpuBefore.sys) * 1000) / Math.max(r.ok, 1);
      const cpuMsPerCall = ((cpuAfter.user - cpuBefore.user) * 1000) / Math.max(r.ok, 1) + sysMsPerCall;
      const achieved = r.ok / Math.max(r.elapsed - HOLD_MS / 1000, 1e-3);
      const s: Step = { ...r, target: t.name, rate, achieved, holds: r.failed === 0 && achieved >= 0.95 * rate, cpuMsPerCall, sysMsPerCall, loopMsPerCall };
      steps.push(s);
      console.log(stepRow(s));
      if (!s.holds && on('BENCH_RAMP_STOP')) live.splice(live.indexOf(t), 1);
      await sleep(STEP_PAUSE_MS);
    }
  }
  return steps;
}

/**
 * CPU ms per completed call of every target side by side, one row per step (a rate listed twice in
 * BENCH_RATES is two rows). At a fixed rate this is far steadier than the sustained rate on a
 * shared machine: it does not hinge on one late call. A step that failed is marked "!".
 */
function cpuTable(steps: Step[]): void {
  const names = [...new Set(steps.map((s) => s.target))];
  console.log(`\n  CPU ms per call (user + system over the step / calls completed; ! = step failed):`);
  console.log(`    ${pad('rate/s', 6)} ${names.map((n) => pad(n, 10)).join(' ')}${names.includes('trunk') ? names.filter((n) => n !== 'trunk').map((n) => pad(`trunk/${n}`, 16)).join(' ') : ''}`);
  const byTarget = new Map(names.map((n) => [n, steps.filter((s) => s.target === n)]));
  const rows = Math.max(...[...byTarget.values()].map((l) => l.length));
  for (let i = 0; i < rows; i++) {
    const at = names.map((n) => byTarget.get(n)![i]);
    const rate = at.find(Boolean)!.rate;
    const cell = (s: Step | undefined): string => (s ? `${s.cpuMsPerCall.toFixed(3)}${s.holds ? ' ' : '!'}` : 'n/a');
    const trunk = byTarget.get('trunk')?.[i];
    const ratio = (s: Step | undefined): string => (trunk && s ? (trunk.cpuMsPerCall / s.cpuMsPerCall).toFixed(2) : 'n/a');
    const ratios = names.includes('trunk') ? names.filter((n) => n !== 'trunk').map((n) => pad(ratio(byTarget.get(n)![i]), 16)).join(' ') : '';
    console.log(`    ${pad(rate, 6)} ${at.map((s) => pad(cell(s), 10)).join(' ')}${ratios}`);
  }
  // A rate run more than once: the median of its steps that held, per target (a failed step's retransmissions inflate it).
  const rates = [...new Set(steps.map((s) => s.rate))].filter((r) => steps.filter((s) => s.rate === r && s.target === names[0]).length > 1);
  const held = (n: string, rate: number): Step[] => steps.filter((s) => s.target === n && s.rate === rate && s.holds);
  for (const rate of rates) {
    const med = (n: string): number | undefined => median(held(n, rate).map((s) => s.cpuMsPerCall));
    const m = new Map(names.map((n) => [n, med(n)]));
    const t = m.get('trunk');
    const ratios = t !== undefined ? names.filter((n) => n !== 'trunk').map((n) => pad(m.get(n) ? (t / m.get(n)!).toFixed(2) : 'n/a', 16)).join(' ') : '';
    console.log(`    ${pad(`median ${rate}`, 6)} ${names.map((n) => pad(m.get(n)?.toFixed(3) ?? 'n/a', 10)).join(' ')}${ratios}`);
    const sys = (n: string): string => median(held(n, rate).map((s) => s.sysMsPerCall))?.toFixed(3) ?? 'n/a';
    console.log(`    ${pad(`  of it sys`, 6)} ${names.map((n) => pad(sys(n), 10)).join(' ')}`);
    console.log(`    ${pad(`  steps held`, 6)} ${names.map((n) => pad(held(n, rate).length, 10)).join(' ')}`);
  }
}

function median(v: number[]): number | undefined {
  if (v.length === 0) return undefined;
  const s = [...v].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1]! + s[h]!) / 2;
}

const sustained = (steps: Step[], target: string): number => {
  let best = 0;
  for (const s of steps.filter((x) => x.target === target)) {
    if (!s.holds) break;
    best = s.rate;
  }
  return best;
};

// ---------------------------------------------------------------------------------------------
// 2–5. Memory, flood, loss: each on a fresh target in front of a fresh destination

interface Fresh {
  target: Target;
  destination: Destination;
  dir: string;
  close(): Promise<void>;
}

async function fresh(kind: Kind, part: string, destinationOpts: { scenario?: string; lostPercent?: number } = {}): Promise<Fresh> {
  const dir = join(tmp, part, kind);
  const destination = await startDestination(join(dir, 'uas'), { ...destinationOpts, timeoutSeconds: 600 });
  const target = await start(kind, dir, destination.port);
  return {
    target,
    destination,
    dir,
    async close() {
      await target.stop();
      destination.process.kill('SIGKILL');
    },
  };
}

/** 100 calls, then 2 s: code paths compiled, pools touched, on both targets alike. */
async function warmUp(f: Fresh): Promise<void> {
  await runCaller(join(f.dir, 'warmup'), { target: f.target.address, scenario: f.target.scenario, auth: f.target.auth, rate: 100, calls: WARMUP_CALLS, holdMs: 0, timeoutSeconds: 30 });
  await sleep(2000);
}

interface Memory {
  beforeKb: number;
  afterKb: number;
  calls: number;
  /** Calls that were up (held) or completed (ended) when memory was read. */
  counted: number;
  perCallKb: number;
  sharedPerCallBytes?: number;
  note: string;
}

async function heldMemory(kind: Kind): Promise<Memory> {
  const f = await fresh(kind, 'held');
  try {
    await warmUp(f);
    const ackedBefore = f.destination.acked().count;
    const beforeKb = f.target.memoryKb();
    const shmBefore = await f.target.sharedUsedBytes?.();
    const abort = new AbortController();
    const placing = Math.ceil(HELD_CALLS / MEMORY_RATE);
    const caller = runCaller(join(f.dir, 'held'), {
      target: f.target.address, scenario: f.target.scenario, auth: f.target.auth,
      rate: MEMORY_RATE, calls: HELD_CALLS, holdMs: (placing + 60) * 1000, timeoutSeconds: placing + 90, signal: abort.signal,
    });
    const allUp = await waitFor(() => f.destination.acked().count - ackedBefore >= HELD_CALLS, (placing + 45) * 1000, 200);
    await sleep(3000);
    const afterKb = f.target.memoryKb();
    const shmAfter = await f.target.sharedUsedBytes?.();
    const counted = f.destination.acked().count - ackedBefore;
    abort.abort();
    await caller;
    return {
      beforeKb, afterKb, calls: HELD_CALLS, counted,
      perCallKb: (afterKb - beforeKb) / HELD_CALLS,
      sharedPerCallBytes: shmBefore !== undefined && shmAfter !== undefined ? (shmAfter - shmBefore) / HELD_CALLS : undefined,
      note: allUp ? '' : `only ${counted} ACKed in time`,
    };
  } finally {
    await f.close();
  }
}

async function endedMemory(kind: Kind): Promise<Memory> {
  const f = await fresh(kind, 'ended');
  try {
    await warmUp(f);
    const beforeKb = f.target.memoryKb();
    const shmBefore = await f.target.sharedUsedBytes?.();
    const t0 = Date.now();
    const r = await runCaller(join(f.dir, 'ended'), {
      target: f.target.address, scenario: f.target.scenario, auth: f.target.auth,
      rate: MEMORY_RATE, calls: ENDED_CALLS, holdMs: HOLD_MS, timeoutSeconds: Math.ceil(ENDED_CALLS / MEMORY_RATE) + 40,
    });
    const afterKb = f.target.memoryKb();
    const shmAfter = await f.target.sharedUsedBytes?.();
    // The first call hung up HOLD_MS after it was placed, at t0 (give or take SIPp's start-up).
    const sinceFirstHangup = (Date.now() - t0 - HOLD_MS) / 1000;
    return {
      beforeKb, afterKb, calls: ENDED_CALLS, counted: r.ok,
      perCallKb: (afterKb - beforeKb) / ENDED_CALLS,
      sharedPerCallBytes: shmBefore !== undefined && shmAfter !== undefined ? (shmAfter - shmBefore) / ENDED_CALLS : undefined,
      note: `read ${sinceFirstHangup.toFixed(1)} s after the first hang-up${sinceFirstHangup >= SIXTY_FOUR_T1 ? ' (LATE: past 64·T1)' : ' (< 64·T1)'}`,
    };
  } finally {
    await f.close();
  }
}

interface Flood extends FloodResult {
  beforeKb: number;
  peakKb: number;
  endKb: number;
  legit: CallerResult;
}

async function floodRun(kind: Kind): Promise<Flood> {
  const f = await fresh(kind, 'flood');
  try {
    await warmUp(f);
    const beforeKb = f.target.memoryKb();
    let peakKb = beforeKb;
    const sampler = setInterval(() => (peakKb = Math.max(peakKb, f.target.memoryKb())), 250);
    const floodSeconds = FLOOD_INVITES / FLOOD_RATE;
    try {
      const [fl, legit] = await Promise.all([
        flood({ host: '127.0.0.1', port: Number(f.target.address.split(':')[1]), from: '127.0.0.2', sockets: FLOOD_SOCKETS, invites: FLOOD_INVITES, rate: FLOOD_RATE, listenMs: FLOOD_LISTEN_MS, domain: DOMAIN }),
        runCaller(join(f.dir, 'legit'), {
          target: f.target.address, scenario: f.target.scenario, auth: f.target.auth,
          rate: LEGIT_RATE, calls: Math.ceil(LEGIT_RATE * floodSeconds), holdMs: HOLD_MS, timeoutSeconds: Math.ceil(floodSeconds) + 40,
        }),
      ]);
      const endKb = f.target.memoryKb();
      return { ...fl, beforeKb, peakKb: Math.max(peakKb, endKb), endKb, legit };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    await f.close();
  }
}

async function lossRun(kind: Kind): Promise<CallerResult> {
  const f = await fresh(kind, 'loss', { scenario: 'uas-bench-lossy.xml', lostPercent: LOSS_PERCENT });
  try {
    return await runCaller(join(f.dir, 'loss'), {
      target: f.target.address, scenario: f.target.scenario, auth: f.target.auth,
      rate: 5, calls: LOSS_CALLS, holdMs: HOLD_MS, lostPercent: LOSS_PERCENT, timeoutSeconds: 120,
    });
  } finally {
    await f.close();
  }
}

// ---------------------------------------------------------------------------------------------

const kb = (v: number): string => `${v.toFixed(2)} KiB`;
const side = (m: Partial<Record<Kind, string>>): string => kinds.map((k) => `${k} ${m[k] ?? 'n/a'}`).join('  |  ');

async function main(): Promise<void> {
  const t0 = Date.now();
  console.log(`sipkit trunk benchmark — node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, files in ${tmp}`);
  console.log(`ramp: ${RATES.join('/')} calls/s, ${STEP_SECONDS} s steps, ${HOLD_MS} ms hold; Kamailio: ${mpath ? `${KAMAILIO_CHILDREN} children` : 'not installed (apt-get install kamailio): trunk only'}`);

  let steps: Step[] = [];
  if (on('BENCH_RAMP')) {
    console.log('\n## ramp (every step of every target, in the order run)');
    const destination = await startDestination(join(tmp, 'ramp', 'uas'));
    const targets: Target[] = [];
    try {
      if (RAMP_TARGETS.includes('floor')) targets.push(await startRelay(join(tmp, 'ramp'), destination.port));
      if (mpath && RAMP_TARGETS.includes('kamailio')) targets.push(await startKamailio(join(tmp, 'ramp', 'kamailio'), destination.port, mpath));
      if (RAMP_TARGETS.includes('trunk')) targets.push(await startTrunk(join(tmp, 'ramp', 'trunk'), destination.port));
      // BENCH_BASELINE_ROOT: another checkout's trunk (an older commit) ramped in the same run, step for step.
      const baseline = process.env.BENCH_BASELINE_ROOT;
      if (baseline) targets.push(await startTrunk(join(tmp, 'ramp', 'baseline'), destination.port, baseline, 'baseline'));
      steps = await ramp(targets);
    } finally {
      for (const t of targets) await t.stop();
      destination.process.kill('SIGKILL');
    }
  }

  const held: Partial<Record<Kind, Memory>> = {};
  const ended: Partial<Record<Kind, Memory>> = {};
  if (on('BENCH_MEMORY')) {
    console.log(`\n## memory (${HELD_CALLS} held calls, then ${ENDED_CALLS} ended calls, at ${MEMORY_RATE}/s, each on a fresh target)`);
    for (const k of memoryKinds) {
      held[k] = await heldMemory(k);
      console.log(`  ${k.padEnd(8)} held:  ${JSON.stringify(held[k])}`);
      ended[k] = await endedMemory(k);
      console.log(`  ${k.padEnd(8)} ended: ${JSON.stringify(ended[k])}`);
    }
  }

  const floods: Partial<Record<Kind, Flood>> = {};
  if (on('BENCH_FLOOD')) {
    console.log(`\n## unauthenticated flood (${FLOOD_INVITES} INVITEs at ${FLOOD_RATE}/s from ${FLOOD_SOCKETS} ports on 127.0.0.2; legitimate caller ${LEGIT_RATE}/s from 127.0.0.1)`);
    for (const k of kinds) {
      floods[k] = await floodRun(k);
      const { legit, ...rest } = floods[k]!;
      console.log(`  ${k.padEnd(8)} ${JSON.stringify(rest)} legit=${JSON.stringify(legit)}`);
    }
  }

  const losses: Partial<Record<Kind, CallerResult>> = {};
  if (on('BENCH_LOSS')) {
    console.log(`\n## loss (${LOSS_CALLS} calls, SIPp -lost ${LOSS_PERCENT} on caller and destination)`);
    for (const k of kinds) {
      losses[k] = await lossRun(k);
      console.log(`  ${k.padEnd(8)} ${JSON.stringify(losses[k])}`);
    }
  }

  console.log('\n## summary');
  if (steps.length) {
    const floor = sustained(steps, 'floor');
    const rate: Partial<Record<Kind, number>> = Object.fromEntries(kinds.map((k) => [k, sustained(steps, k)]));
    const lastRate = RATES[RATES.length - 1];
    const fmt = (r: number | undefined): string => (r === undefined ? 'n/a' : `${r} calls/s${r === lastRate ? ' (the top step: at least)' : ''}`);
    console.log(`  sustained rate (every call ok, ≥ 95 % of the rate):  floor ${fmt(floor)}  |  ${side({ trunk: fmt(rate.trunk), kamailio: fmt(rate.kamailio) })}`);
    if (process.env.BENCH_BASELINE_ROOT) {
      const base = sustained(steps, 'baseline');
      console.log(`  baseline trunk (${process.env.BENCH_BASELINE_ROOT}): ${fmt(base)}; trunk / baseline ${base ? ((rate.trunk ?? 0) / base).toFixed(2) : 'n/a'}${rate.kamailio ? `, baseline / Kamailio ${(base / rate.kamailio).toFixed(2)}` : ''}`);
    }
    if (rate.kamailio) console.log(`  ratio trunk / Kamailio: ${((rate.trunk ?? 0) / rate.kamailio).toFixed(2)}   (trunk / floor ${floor ? ((rate.trunk ?? 0) / floor).toFixed(2) : 'n/a'}, Kamailio / floor ${floor ? (rate.kamailio / floor).toFixed(2) : 'n/a'})`);
    cpuTable(steps);
  }
  const mem = (m: Memory | undefined): string | undefined =>
    m && `${kb(m.perCallKb)} (${m.beforeKb}→${m.afterKb} kB, ${m.counted}/${m.calls}${m.sharedPerCallBytes !== undefined ? `; shm in use ${(m.sharedPerCallBytes / 1024).toFixed(2)} KiB/call` : ''}${m.note ? `; ${m.note}` : ''})`;
  if (Object.keys(held).length) {
    console.log(`  memory per held call:   ${side({ trunk: mem(held.trunk), kamailio: mem(held.kamailio) })}`);
    console.log(`  memory per ended call:  ${side({ trunk: mem(ended.trunk), kamailio: mem(ended.kamailio) })}`);
    if (held.baseline) console.log(`  baseline trunk (${process.env.BENCH_BASELINE_ROOT}): held ${mem(held.baseline)}  |  ended ${mem(ended.baseline)}`);
  }
  const fl = (f: Flood | undefined): string | undefined => {
    if (!f) return undefined;
    const codes = Object.entries(f.responses).map(([c, n]) => `${c}×${n}`).join(' ') || 'none';
    return `${((f.responses[407] ?? 0) / f.sent).toFixed(2)} 407s per INVITE (${f.sent} sent in ${f.sendSeconds.toFixed(1)} s; responses ${codes}), RSS +${f.peakKb - f.beforeKb} kB at peak, +${f.endKb - f.beforeKb} kB at the end; legitimate caller ${f.legit.ok}/${f.legit.offered} ok`;
  };
  if (Object.keys(floods).length) {
    console.log(`  unauthenticated flood:`);
    for (const k of kinds) console.log(`    ${k.padEnd(8)} ${fl(floods[k])}`);
  }
  if (Object.keys(losses).length) console.log(`  calls completed under ${LOSS_PERCENT} % loss on both legs: ${side({ trunk: losses.trunk && `${losses.trunk.ok}/${losses.trunk.offered}`, kamailio: losses.kamailio && `${losses.kamailio.ok}/${losses.kamailio.offered}` })}`);
  console.log(`\n  wall time ${((Date.now() - t0) / 1000).toFixed(0)} s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
}

await main();
