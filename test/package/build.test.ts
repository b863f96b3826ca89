import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureBuild, STAMP } from '../../scripts/build.mjs';

// scripts/build.mjs runs before every `npm start` (prestart) and `npm pack` (prepack).
// These drive it on a scratch package with a stand-in build, so what it does to dist/ is visible.

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) fs.rmSync(root, { recursive: true, force: true });
});

function scratchPackage(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sipkit-build-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'src', 'parser'), { recursive: true });
  fs.writeFileSync(path.join(root, 'src', 'index.ts'), 'export * from "./parser/index.js";\n');
  fs.writeFileSync(path.join(root, 'src', 'parser', 'index.ts'), 'export const a = 1;\n');
  fs.writeFileSync(path.join(root, 'package.json'), '{"name":"scratch"}\n');
  return root;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A stand-in for tsup: writes index.js naming its build number, after `delay` ms. */
function fakeBuild(delay = 0) {
  const calls: string[] = [];
  const build = async (_root: string, outDir: string) => {
    calls.push(outDir);
    fs.mkdirSync(outDir, { recursive: true });
    await sleep(delay);
    fs.writeFileSync(path.join(outDir, 'index.js'), `// build ${calls.length}\n`);
    fs.writeFileSync(path.join(outDir, 'index.d.ts'), `// build ${calls.length}\n`);
  };
  return { build, calls };
}

describe('scripts/build.mjs (prestart, prepack)', () => {
  it('builds a missing dist/ and leaves an up-to-date one untouched', async () => {
    const root = scratchPackage();
    const { build, calls } = fakeBuild();
    expect(await ensureBuild({ root, build })).toBe('built');
    const dist = path.join(root, 'dist');
    const before = fs.statSync(dist).ino;
    expect(fs.readFileSync(path.join(dist, 'index.js'), 'utf8')).toBe('// build 1\n');
    expect(fs.existsSync(path.join(dist, STAMP))).toBe(true);

    expect(await ensureBuild({ root, build })).toBe('fresh');
    expect(await ensureBuild({ root, build })).toBe('fresh');
    expect(calls).toHaveLength(1);
    expect(fs.statSync(dist).ino).toBe(before);
    expect(fs.readdirSync(root).sort()).toEqual(['dist', 'package.json', 'src']);
  });

  it('rebuilds when a source, the config or the build itself changes, and when forced', async () => {
    const root = scratchPackage();
    const { build, calls } = fakeBuild();
    await ensureBuild({ root, build });
    fs.appendFileSync(path.join(root, 'src', 'parser', 'index.ts'), 'export const b = 2;\n');
    expect(await ensureBuild({ root, build })).toBe('built');
    fs.writeFileSync(path.join(root, 'src', 'parser', 'new.ts'), 'export {};\n');
    expect(await ensureBuild({ root, build })).toBe('built');
    fs.writeFileSync(path.join(root, 'tsup.config.ts'), 'export default {};\n');
    expect(await ensureBuild({ root, build })).toBe('built');
    expect(await ensureBuild({ root, build })).toBe('fresh');
    expect(await ensureBuild({ root, build, force: true })).toBe('built');
    expect(calls).toHaveLength(5);
    expect(fs.readFileSync(path.join(root, 'dist', 'index.js'), 'utf8')).toBe('// build 5\n');
  });

  it('keeps the old dist/ complete while it rebuilds, and two concurrent starts build once', async () => {
    const root = scratchPackage();
    const { build, calls } = fakeBuild(300);
    await ensureBuild({ root, build });
    fs.appendFileSync(path.join(root, 'src', 'index.ts'), '// changed\n');

    const first = ensureBuild({ root, build });
    const second = ensureBuild({ root, build });
    // During the 300 ms build, a process starting now still finds the previous build, whole.
    const seen: string[] = [];
    for (let i = 0; i < 15; i++) {
      seen.push(fs.readFileSync(path.join(root, 'dist', 'index.js'), 'utf8'));
      await sleep(10);
    }
    expect(new Set(seen)).toEqual(new Set(['// build 1\n']));
    expect((await Promise.all([first, second])).sort()).toEqual(['built', 'fresh']);
    expect(calls).toHaveLength(2);
    expect(fs.readFileSync(path.join(root, 'dist', 'index.js'), 'utf8')).toBe('// build 2\n');
    expect(fs.readdirSync(root).sort()).toEqual(['dist', 'package.json', 'src']);
  });

  it('a failed build leaves the previous dist/ in place', async () => {
    const root = scratchPackage();
    await ensureBuild({ root, build: fakeBuild().build });
    fs.appendFileSync(path.join(root, 'src', 'index.ts'), '// changed\n');
    const failing = () => {
      throw new Error('tsup failed');
    };
    await expect(ensureBuild({ root, build: failing })).rejects.toThrow('tsup failed');
    expect(fs.readFileSync(path.join(root, 'dist', 'index.js'), 'utf8')).toBe('// build 1\n');
    expect(fs.readdirSync(root).sort()).toEqual(['dist', 'package.json', 'src']);
  });

  it('npm start and npm pack go through it; only npm run build forces a rebuild', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prestart).toBe('node scripts/build.mjs');
    expect(pkg.scripts.prepack).toBe('node scripts/build.mjs');
    expect(pkg.scripts.build).toBe('node scripts/build.mjs --force');
  });
});
