/**
 * A tiny benchmark harness: each case runs in alternating rounds (so drift on a
 * shared machine hits every case alike) and reports the median rate.
 */
export interface BenchCase {
  name: string;
  /** One operation; `i` lets a case rotate through a corpus. Returns something to keep it alive. */
  run(i: number): unknown;
  /** Operations one call of `run` performs (default 1). */
  opsPerRun?: number;
}

let sink: unknown;

function timeRound(c: BenchCase, ms: number): number {
  const end = performance.now() + ms;
  let n = 0;
  let t0 = performance.now();
  const start = t0;
  while (t0 < end) {
    for (let k = 0; k < 256; k++) sink = c.run(n++);
    t0 = performance.now();
  }
  return (n * (c.opsPerRun ?? 1)) / ((t0 - start) / 1000);
}

export function measure(cases: BenchCase[], opts: { rounds?: number; roundMs?: number } = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, s] of measureRounds(cases, opts)) out.set(name, median(s));
  return out;
}

/** Every round's rate per case, in round order: round r of every case ran back to back. */
export function measureRounds(cases: BenchCase[], opts: { rounds?: number; roundMs?: number } = {}): Map<string, number[]> {
  const rounds = opts.rounds ?? 5;
  const roundMs = opts.roundMs ?? 300;
  for (const c of cases) timeRound(c, 100); // warm-up / JIT
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) for (const c of cases) samples.get(c.name)!.push(timeRound(c, roundMs));
  if (sink === Symbol.for('never')) console.log(sink);
  return samples;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Median of the per-round ratios a[r] / b[r]. Rounds of two cases run next to each
 * other, so a ratio taken within a round cancels most of the drift of a shared machine
 * that a ratio of two medians keeps.
 */
export function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, r) => x / b[r]!));
}

export function fmtRate(r: number): string {
  if (r >= 1e6) return (r / 1e6).toFixed(2) + ' M/s';
  if (r >= 1e3) return (r / 1e3).toFixed(1) + ' k/s';
  return r.toFixed(0) + ' /s';
}

export function table(title: string, rows: Array<[string, number, string]>): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  return [`\n## ${title}`, ...rows.map(([n, r, note]) => `  ${n.padEnd(w)}  ${fmtRate(r).padStart(11)}  ${note}`)].join('\n');
}

/** Rate of an async operation run back to back `n` times (median of `rounds`). */
export async function measureAsync(run: (i: number) => Promise<unknown>, n: number, rounds = 3): Promise<number> {
  const rates: number[] = [];
  let i = 0;
  for (let k = 0; k < Math.min(n, 200); k++) await run(i++); // warm-up
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let k = 0; k < n; k++) await run(i++);
    rates.push(n / ((performance.now() - t0) / 1000));
  }
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}
