import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCycles, importGraph, relativeImports } from '../../scripts/import-cycles.js';

const src = fileURLToPath(new URL('../../src/', import.meta.url));

describe('import graph of src/', () => {
  it('has no import cycle (type-only imports count)', () => {
    const graph = importGraph(src);
    expect(graph.size).toBeGreaterThan(50);
    const cycles = findCycles(graph).map((c) => c.map((f) => path.relative(src, f)).join(' → '));
    expect(cycles).toEqual([]);
  });

  it('the dialog core imports no call module', () => {
    const deps = importGraph(src).get(path.join(src, 'dialog/core.ts'))!.map((f) => path.relative(src, f));
    expect(deps.filter((d) => /call/.test(d))).toEqual([]);
  });

  it('the search sees every import form, and finds a cycle (the check is real)', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "export * from './d.js';",
      "const e = await import('./e.js');",
      "import './f.js';",
      "import { g } from 'node:fs';",
    ].join('\n');
    expect(relativeImports(text)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js', './f.js']);
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
    ]);
    expect(findCycles(graph)).toEqual([['a', 'b', 'c', 'a']]);
    graph.set('c', ['d']);
    expect(findCycles(graph)).toEqual([]);
  });

  it('src/dialog keeps time only through the injected Clock (no Date.now, setTimeout, setInterval)', () => {
    const files = [...importGraph(src).keys()].filter((f) => f.startsWith(path.join(src, 'dialog') + path.sep));
    expect(files.length).toBeGreaterThan(5);
    const offenders = files.filter((f) => /\b(Date\.now|setTimeout|setInterval|setImmediate)\s*\(/.test(fs.readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
