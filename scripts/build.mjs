#!/usr/bin/env node
// Builds dist/ (tsup: ESM + CJS + .d.ts) only when its inputs changed, and never leaves dist/
// missing or half-written under a process that is using it:
//  - a content hash of the inputs is stamped into dist/; an unchanged checkout builds nothing;
//  - the build goes to a fresh sibling directory that replaces dist/ by rename when complete;
//  - a lock directory serializes concurrent builds (two `npm start` at once build once).
//
//   node scripts/build.mjs            build if dist/ is missing or stale (prestart, prepack)
//   node scripts/build.mjs --force    build even if dist/ is up to date (npm run build)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Paths (relative to the package root) whose content determines dist/. */
export const BUILD_INPUTS = ['src', 'tsup.config.ts', 'tsconfig.json', 'package.json', 'package-lock.json', 'scripts/build.mjs'];
export const STAMP = '.build-stamp';
const LOCK = '.build-lock';
const LOCK_WAIT_MS = 10 * 60_000;

/** sha256 over the inputs' relative paths and contents, in a stable order. */
export function inputsHash(root) {
  const files = [];
  for (const input of BUILD_INPUTS) {
    const abs = path.join(root, input);
    if (!fs.existsSync(abs)) continue;
    if (fs.statSync(abs).isDirectory()) {
      for (const rel of fs.readdirSync(abs, { recursive: true })) {
        const file = path.join(input, String(rel));
        if (fs.statSync(path.join(root, file)).isFile()) files.push(file);
      }
    } else files.push(input);
  }
  files.sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(file.split(path.sep).join('/') + '\0');
    hash.update(fs.readFileSync(path.join(root, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function isUpToDate(root, hash) {
  try {
    return fs.readFileSync(path.join(root, 'dist', STAMP), 'utf8').trim() === hash;
  } catch {
    return false;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Take the build lock, waiting for another builder; a lock whose owner died is taken over. */
async function lock(root) {
  const dir = path.join(root, LOCK);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
      return () => fs.rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
    } catch {
      // the owner is between mkdir and writing its pid, or just released the lock
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`build: ${dir} held by pid ${owner} for too long; remove it if no build runs`);
    await sleep(100);
  }
}

/** The real build: tsup into `outDir` (tsup.config.ts has every option). */
export function tsupBuild(root, outDir) {
  const tsup = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'tsup.cmd' : 'tsup');
  const r = spawnSync(tsup, ['--silent', '--out-dir', outDir], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`build: tsup failed (${r.error?.message ?? `exit ${r.status}`})`);
}

/**
 * Make `root`/dist current. Returns 'fresh' when it already was (nothing touched) or 'built'.
 * `build(root, outDir)` is injectable for tests.
 */
export async function ensureBuild({ root, force = false, build = tsupBuild } = {}) {
  const hash = inputsHash(root);
  if (!force && isUpToDate(root, hash)) return 'fresh';
  const release = await lock(root);
  try {
    // Another process may have built while this one waited for the lock.
    if (!force && isUpToDate(root, inputsHash(root))) return 'fresh';
    const tmp = path.join(root, `dist.tmp-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    try {
      await build(root, tmp);
      fs.writeFileSync(path.join(tmp, STAMP), hash + '\n');
      const dist = path.join(root, 'dist');
      const old = path.join(root, `dist.old-${process.pid}`);
      // Two renames: a process that already loaded dist/ keeps its modules; one that starts
      // loading now sees the old or the new build complete (or, for the instant between the
      // renames, none), never a half-written one as tsup's `clean` in place would leave.
      if (fs.existsSync(dist)) fs.renameSync(dist, old);
      fs.renameSync(tmp, dist);
      fs.rmSync(old, { recursive: true, force: true });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return 'built';
  } finally {
    release();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const force = process.argv.includes('--force');
  ensureBuild({ root, force }).then(
    (result) => {
      if (result === 'built' && !process.argv.includes('--quiet')) console.error('sipkit: built dist/');
    },
    (err) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
