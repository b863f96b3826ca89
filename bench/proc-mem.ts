/**
 * Memory of a process, or of a process and all its descendants, from /proc (Linux).
 *
 * The trunk is one process: its RSS is its memory. Kamailio is a main process and its forked
 * children sharing one shared-memory pool (-m): summing their RSS would count every shared page
 * once per process that touched it, so for a process tree the figure is the sum of PSS
 * (proportional set size: each shared page divided among the processes that map it), which adds
 * up to the physical memory the tree holds — the same quantity RSS is for a single process.
 */
import { readdirSync, readFileSync } from 'node:fs';

function field(file: string, name: string): number {
  try {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // the process has just exited
  }
}

export function rssKb(pid: number): number {
  return field(`/proc/${pid}/status`, 'VmRSS');
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // comm (field 2) may hold spaces and parentheses: the fields after the last ")" are fixed.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length && i < 1000; i++) for (const [p, pp] of parent) if (pp === tree[i]) tree.push(p);
  return tree;
}

/** Sum of PSS over `pid` and its descendants, kB. */
export function pssTreeKb(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + field(`/proc/${p}/smaps_rollup`, 'Pss'), 0);
}

/** Sum of RSS over `pid` and its descendants, kB (shared pages counted once per process: for reference only). */
export function rssTreeKb(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + rssKb(p), 0);
}

/** USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux. */
const TICK = 100;

/** CPU seconds `pid` has used so far in user and in system (kernel) mode, all its threads; zeros once it is gone. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / TICK, sys: Number(f[12]) / TICK }; // fields 14 and 15 of stat(5)
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** CPU seconds the main thread of `pid` (its thread `pid`) has used so far: a Node process's event loop, without its worker threads. */
export function mainThreadCpuTimes(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / TICK, sys: Number(f[12]) / TICK };
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** CPU seconds (user + system) `pid` has used so far. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

/** cpuTimes of `pid` and every process below it (Kamailio's workers), summed. */
export function cpuTreeTimes(pid: number): { user: number; sys: number } {
  return processTree(pid).reduce(
    (sum, p) => {
      const t = cpuTimes(p);
      return { user: sum.user + t.user, sys: sum.sys + t.sys };
    },
    { user: 0, sys: 0 },
  );
}
