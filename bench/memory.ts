import { spawnSync } from 'node:child_process';
import { scriptedCalls } from './scripted-calls.js';

/**
 * Memory a B2BUA keeps per held bridged call and per ended call (issue #16 target 3), in
 * process: a B2bua on the in-memory TestNetwork, with a caller and a destination that are
 * scripted peers keeping nothing (they answer from each message alone), so the heap measured
 * is the B2BUA's (what the caller keeps to hang up later is copied out of the 200s: a slice would
 * keep each whole 200 and be counted as the B2BUA's). After `global.gc()`:
 *   - held:  (heap with N calls up − heap before) / N, measured 3 s after the last ACK, while
 *            the INVITE transactions are still in RFC 6026 Accepted (64·T1 = 32 s);
 *   - ended: (heap after N BYEs − heap before) / N, measured 1 s after the BYEs, while the BYE
 *            and INVITE transactions still wait (Timer J, Timer L);
 *   - ended without records: the same once the B2bua's call records (kept for lookups up to
 *            `keepRecords`, not by any timer) are dropped: the residue the wait timers hold.
 *
 *   node --expose-gc --import tsx bench/memory.ts [N] [dist …]
 *
 * With several dist directories (e.g. /work/wt-base/dist dist) each is measured in a child
 * process of its own, one after the other in the same run.
 */

interface Figures {
  dist: string;
  calls: number;
  heldBytesPerCall: number;
  endedBytesPerCall: number;
  /** Ended, once the B2bua's call records are dropped: the residue its wait timers hold. */
  endedWithoutRecordsBytesPerCall: number;
  rssHeldBytesPerCall: number;
}

async function measure(dist: string, n: number): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const { b2bua, answered, settle, placeCalls, hangUp } = await scriptedCalls(dist, {
    // FakeClock lets go of a cancelled timer's callback at once, as clearTimeout does (and, from
    // issue #16's ended-call work, of its entry too, as RealClock's wheel does): what a timer costs
    // here is its entry while it is pending.
    noAnswerTimeoutMs: 3_600_000,
  });
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage();
  };

  // Warm up (JIT, pools, lazily built tables) with calls that end, then start from quiet: with
  // too few, code V8 optimizes during the measured calls (~0.6 KB a call at 3000) counts as theirs.
  await placeCalls(300, 'warm');
  await settle(200, 10);
  await hangUp();
  await settle(200, 10);
  await settle(64 * 500 + 5000, 100);

  const snapshot = process.env.SIPKIT_MEMORY_SNAPSHOT; // a path prefix: where to write heap snapshots (before, held, ended, residue)
  const v8 = snapshot ? await import('node:v8') : undefined;
  const before = heap();
  v8?.writeHeapSnapshot(`${snapshot}-before.heapsnapshot`);
  await placeCalls(n, 'held');
  await settle(200, 10);
  await settle(3000, 50);
  const held = heap();
  v8?.writeHeapSnapshot(`${snapshot}-held.heapsnapshot`);
  if (answered.length !== n || b2bua.stats.bridges !== n) throw new Error(`only ${answered.length} of ${n} calls up (${b2bua.stats.bridges} bridges)`);
  // The caller's own notes (what it needed to hang up, dropped by hangUp) are not the B2BUA's.
  await hangUp();
  await settle(200, 10);
  await settle(1000, 50);
  const ended = heap();
  v8?.writeHeapSnapshot(`${snapshot}-ended.heapsnapshot`);
  if (b2bua.stats.bridges !== 0) throw new Error(`${b2bua.stats.bridges} calls still up after BYE`);
  // The call records (what `keepRecords` keeps for lookups: the HTTP API's calls, not a timer's
  // residue) let go of: what is left is what waits for the transactions' timers.
  const store = b2bua as unknown as { records: Map<string, unknown> };
  if (!(store.records instanceof Map)) throw new Error('the B2bua keeps its records elsewhere: update bench/memory.ts');
  store.records.clear();
  const endedWithoutRecords = heap();
  v8?.writeHeapSnapshot(`${snapshot}-residue.heapsnapshot`);
  return {
    dist,
    calls: n,
    heldBytesPerCall: (held.heapUsed + held.external - before.heapUsed - before.external) / n,
    endedBytesPerCall: (ended.heapUsed + ended.external - before.heapUsed - before.external) / n,
    endedWithoutRecordsBytesPerCall: (endedWithoutRecords.heapUsed + endedWithoutRecords.external - before.heapUsed - before.external) / n,
    rssHeldBytesPerCall: (held.rss - before.rss) / n,
  };

}

const args = process.argv.slice(2);
const n = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 3000;
if (process.env.SIPKIT_MEMORY_CHILD) {
  const f = await measure(args[0]!, n);
  process.stdout.write(JSON.stringify(f) + '\n');
} else {
  const dists = args.length > 0 ? args : ['dist'];
  const kb = (b: number) => (b / 1024).toFixed(1).padStart(8);
  console.log(`calls: ${n}\n${'dist'.padEnd(40)}  held KB/call  ended KB/call  ended without records  (RSS held KB/call)`);
  for (const d of dists) {
    const r = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', process.argv[1]!, String(n), d], { env: { ...process.env, SIPKIT_MEMORY_CHILD: '1' }, encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`${d}: failed\n${r.stderr}`);
      continue;
    }
    const f = JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
    console.log(`${d.padEnd(40)}  ${kb(f.heldBytesPerCall)}      ${kb(f.endedBytesPerCall)}       ${kb(f.endedWithoutRecordsBytesPerCall)}               (${kb(f.rssHeldBytesPerCall).trim()})`);
  }
}
