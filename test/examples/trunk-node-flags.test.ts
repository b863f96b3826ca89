import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TRUNK_NODE_FLAGS } from '../../examples/trunk-server/node-flags.js';

// The trunk's V8 flags (issue #16: the young generation's growth was most of the RSS a flood or a
// burst of call set-ups left behind) live in one list; `npm start` must pass the same ones.
describe('the trunk runs with its V8 flags', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };

  it('npm start passes every flag of TRUNK_NODE_FLAGS to node (tsx forwards them)', () => {
    const start = pkg.scripts.start!.split(' ');
    expect(TRUNK_NODE_FLAGS.length).toBeGreaterThan(0);
    for (const f of TRUNK_NODE_FLAGS) expect(start, f).toContain(f);
    expect(start.indexOf(TRUNK_NODE_FLAGS[0]!)).toBeLessThan(start.indexOf('examples/trunk-server/main.ts'));
  });

  it('with them, a burst of short-lived allocations leaves the young generation within the cap', () => {
    // Survivors of a few hundred thousand objects at a time: what grows V8's semi-spaces to their
    // 16 MiB default under load. new_space's size is its two semi-spaces.
    const program = `const v8 = require('v8'); let keep = [];
      for (let i = 0; i < 3e6; i++) { keep.push({ a: i, b: 'x' + i }); if (keep.length > 2e5) keep = []; }
      process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));`;
    const newSpace = (flags: readonly string[]): number => Number(execFileSync(process.execPath, [...flags, '-e', program]).toString());
    const cap = Number(/--max-semi-space-size=(\d+)/.exec(TRUNK_NODE_FLAGS.join(' '))![1]) * 1024 * 1024;
    expect(newSpace(TRUNK_NODE_FLAGS)).toBeLessThanOrEqual(2 * cap);
    expect(newSpace([])).toBeGreaterThan(2 * cap);
  });
});
