/**
 * npm run bench:instructions — the parser benchmark's work counted in machine
 * instructions (valgrind's callgrind) instead of seconds. A count does not move with
 * what else a shared machine is doing, so a change worth 3 % shows as 3 %, where the
 * timed benchmark on a noisy 2-core VM drifts by 10–30 % between runs.
 *
 * Each case runs twice (N1 and N2 messages); the difference divided by N2 − N1 is the
 * steady-state cost per message, with start-up and JIT warm-up cancelled out. V8 runs
 * with --predictable (single-threaded, no time-driven heuristics): the same code then
 * counts the same to within a few instructions; with --single-threaded alone counts
 * varied by ~5 %, as GC fell differently into the measured window.
 * Needs valgrind (Debian package `valgrind`); not part of `npm test`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CORPUS } from './parser.js';

const run = promisify(execFile);
const N1 = Number(process.env.BENCH_N1 ?? 5000);
const N2 = Number(process.env.BENCH_N2 ?? 20000);
const driver = new URL('./instructions-driver.mjs', import.meta.url).pathname;
const corpusFile = join(mkdtempSync(join(tmpdir(), 'sipkit-instr-')), 'corpus.json');
writeFileSync(corpusFile, JSON.stringify(CORPUS.map((b) => b.toString('base64'))));

async function instructions(which: string, iters: number): Promise<number> {
  const { stderr } = await run(
    'valgrind',
    ['--tool=callgrind', '--smc-check=all-non-file', '--callgrind-out-file=/dev/null', process.execPath, '--predictable', driver, which, String(iters), corpusFile],
    { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 },
  );
  const m = /Collected : (\d+)/.exec(stderr);
  if (!m) throw new Error(`no callgrind total for ${which}:\n${stderr.slice(-2000)}`);
  return Number(m[1]);
}

async function perMessage(which: string): Promise<number> {
  const [a, b] = [await instructions(which, N1), await instructions(which, N2)];
  return (b - a) / (N2 - N1);
}

// sipkit-parse (parseMessage alone, no typed view read) shows how the work splits.
const CASES = ['floor', 'sipkit-parse', 'sipkit-read', 'sipkit-read-serialize', 'sip-read', 'sip-read-serialize'];
// Two at a time: counts do not depend on load, and this machine has two cores.
const results = new Map<string, number>();
for (let k = 0; k < CASES.length; k += 2) {
  const batch = CASES.slice(k, k + 2);
  const counts = await Promise.all(batch.map(perMessage));
  batch.forEach((c, j) => results.set(c, counts[j]!));
}
const get = (c: string) => results.get(c)!;
console.log(`\n## parser, machine instructions per message (callgrind; mixed corpus of ${CORPUS.length}; N=${N1}→${N2})`);
for (const c of CASES) {
  if (c === 'sipkit-parse') {
    console.log(`  ${c.padEnd(24)} ${Math.round(get(c)).toString().padStart(8)}  parseMessage alone: ${((get(c) / get('sipkit-read')) * 100).toFixed(0)}% of sipkit-read`);
    continue;
  }
  const base = c.includes('serialize') ? get('sip-read-serialize') : get('sip-read');
  console.log(`  ${c.padEnd(24)} ${Math.round(get(c)).toString().padStart(8)}  ${(base / get(c)).toFixed(2)}x fewer than sip (same work), ${((get('floor') / get(c)) * 100).toFixed(0)}% of floor`);
}
console.log(
  `  => parse-and-access: sip needs ${(get('sip-read') / get('sipkit-read')).toFixed(2)}x sipkit's instructions; with serialization ${(get('sip-read-serialize') / get('sipkit-read-serialize')).toFixed(2)}x (target >= 5x)`,
);
