import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { scriptedCalls } from './scripted-calls.js';

/**
 * JS heap allocated per bridged call (issue #16), in process: a B2bua on the in-memory
 * TestNetwork with scripted peers that keep nothing (bench/scripted-calls.ts, as bench/memory.ts), each call
 * INVITE → 200 → ACK → BYE → 200 on both legs. V8's sampling heap profiler counts every
 * allocation, including objects a minor or major GC has since collected, so the figure is
 * what the call makes the GC work through, not what it keeps. The peers' own parsing and
 * building (with the same dist's parser) is included: it is the same work for every dist.
 *
 *   node --import tsx bench/alloc.ts [N] [dist …]
 *
 * Each dist is measured in a child process of its own, one after the other in the same run,
 * so a change is read against a baseline of the same run (e.g. /work/base-main/dist dist).
 * Allocation bytes do not move with machine load, only with sampling (interval 256 bytes).
 */

interface Site {
  name: string;
  bytes: number;
}
interface Figures {
  dist: string;
  calls: number;
  bytesPerCall: number;
  sites: Site[];
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

async function measure(dist: string, n: number): Promise<Figures> {
  const { b2bua, counts, settle, placeCalls, hangUp } = await scriptedCalls(dist);

  // Calls in batches of 100: set up, answered, hung up, then the transactions' wait timers run out.
  async function calls(count: number, tag: string): Promise<void> {
    for (let b = 0; b < count; b += 100) {
      await placeCalls(Math.min(100, count - b), tag, b);
      await settle(100, 10);
      await hangUp();
      await settle(100, 10);
    }
    await settle(64 * 500 + 2000, 500);
  }

  await calls(500, 'warm');
  counts.byeOk = 0;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await calls(n, 'm');
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
  session.disconnect();
  if (counts.byeOk !== n || b2bua.stats.bridges !== 0) throw new Error(`only ${counts.byeOk} of ${n} calls ended (${b2bua.stats.bridges} bridges up)`);

  const bySite = new Map<string, number>();
  let total = 0;
  const label = (f: ProfileNode['callFrame']) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules|bench)\//, '$1/')}:${f.lineNumber + 1}`;
  // A builtin (splice, push, …) is charged to it and its caller: 'splice ← insertLine …'.
  const walk = (node: ProfileNode, parent?: ProfileNode) => {
    if (node.selfSize > 0) {
      const f = node.callFrame;
      const name = f.url === '' && parent !== undefined ? `${f.functionName} ← ${label(parent.callFrame)}` : label(f);
      bySite.set(name, (bySite.get(name) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, node);
  };
  walk(profile.head);
  const sites = [...bySite].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { dist, calls: n, bytesPerCall: total / n, sites: sites.slice(0, 25) };
}

const args = process.argv.slice(2);
const n = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 2000;
if (process.env.SIPKIT_ALLOC_CHILD) {
  const f = await measure(args[0]!, n);
  process.stdout.write(JSON.stringify(f) + '\n');
} else {
  const dists = args.length > 0 ? args : ['dist'];
  const kb = (b: number) => (b / 1024).toFixed(1);
  const results: Figures[] = [];
  for (const d of dists) {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, String(n), d], {
      env: { ...process.env, SIPKIT_ALLOC_CHILD: '1' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) {
      console.log(`${d}: failed\n${r.stderr}`);
      continue;
    }
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures);
  }
  for (const f of results) {
    console.log(`\n## ${f.dist}: ${kb(f.bytesPerCall)} KB allocated per call (${f.calls} calls; top sites, KB per call)`);
    for (const s of f.sites.slice(0, 20)) console.log(`  ${kb(s.bytes / f.calls).padStart(7)}  ${((s.bytes / f.calls / f.bytesPerCall) * 100).toFixed(1).padStart(5)}%  ${s.name}`);
  }
  if (results.length > 1) {
    console.log('\ncalls: ' + n);
    for (const f of results) console.log(`  ${f.dist.padEnd(40)} ${kb(f.bytesPerCall).padStart(8)} KB/call  (${((f.bytesPerCall / results[0]!.bytesPerCall) * 100).toFixed(1)}% of the first)`);
  }
}
