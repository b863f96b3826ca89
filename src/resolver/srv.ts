import type { SrvRecord } from './types.js';

/**
 * RFC 2782 "Usage rules": SRV records in the order to try them. Lowest priority first;
 * within one priority, a weighted random draw without replacement — zero-weight records
 * go first in the running sums, so they are picked only when the draw is 0 (a small
 * chance while others remain, certainty once only they remain). `random` returns [0, 1).
 * Records whose target is "." (the service is decidedly not offered) are left out.
 */
export function orderSrv(records: readonly SrvRecord[], random: () => number): SrvRecord[] {
  const usable = records.filter((r) => r.name !== '' && r.name !== '.');
  usable.sort((x, y) => x.priority - y.priority);
  const out: SrvRecord[] = [];
  for (let start = 0; start < usable.length; ) {
    let end = start + 1;
    while (end < usable.length && usable[end]!.priority === usable[start]!.priority) end++;
    const group = usable.slice(start, end);
    // Stable: zero weights first, the rest in the order DNS gave them.
    group.sort((x, y) => (x.weight === 0 ? 0 : 1) - (y.weight === 0 ? 0 : 1));
    while (group.length > 0) {
      let sum = 0;
      for (const r of group) sum += r.weight;
      // A uniform integer in [0, sum] (RFC 2782: "between 0 and the sum computed (inclusive)").
      const pick = Math.min(sum, Math.floor(random() * (sum + 1)));
      let running = 0;
      let i = 0;
      for (; i < group.length - 1; i++) {
        running += group[i]!.weight;
        if (running >= pick) break;
      }
      out.push(group[i]!);
      group.splice(i, 1);
    }
    start = end;
  }
  return out;
}
