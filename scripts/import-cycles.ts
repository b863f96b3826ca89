// Import cycles in src/: a depth-first search over every relative import and re-export
// (`import … from './x.js'`, `import type …`, `export … from`, `import('./x.js')`), type-only
// ones included — a cycle of types is still two modules that cannot be understood apart.
//
//   tsx scripts/import-cycles.ts     print each cycle found; exit 1 if there is one
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm;

/** Every .ts file under `dir`, recursively (declaration files left out). */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The file a relative specifier names: `./x.js` → x.ts, `./dir` → dir/index.ts. */
function resolve(from: string, spec: string, exists: (p: string) => boolean): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), base + '.ts', path.join(base, 'index.ts')];
  return candidates.find(exists);
}

/** The relative imports of a module's text. */
export function relativeImports(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** Module → the modules it imports (relative imports only). */
export type ImportGraph = Map<string, string[]>;

export function importGraph(dir: string): ImportGraph {
  const files = sources(dir);
  const known = new Set(files);
  const graph: ImportGraph = new Map();
  for (const f of files) {
    const deps = relativeImports(fs.readFileSync(f, 'utf8'))
      .map((s) => resolve(f, s, (p) => known.has(p)))
      .filter((p): p is string => p !== undefined);
    graph.set(f, [...new Set(deps)]);
  }
  return graph;
}

/** Each cycle once, as the path of modules that closes it (first module repeated at the end). */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      const s = state.get(d);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (s === undefined) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = fileURLToPath(new URL('../', import.meta.url));
  const graph = importGraph(path.join(root, 'src'));
  const cycles = findCycles(graph);
  const edges = [...graph.values()].reduce((n, d) => n + d.length, 0);
  for (const c of cycles) console.log('cycle: ' + c.map((f) => path.relative(root, f)).join(' → '));
  console.log(`import-cycles: ${graph.size} modules, ${edges} imports, ${cycles.length} cycle(s)`);
  process.exitCode = cycles.length > 0 ? 1 : 0;
}
