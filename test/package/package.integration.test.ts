import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as users get it: `npm pack`, then the tarball installed (offline: sipkit has no
// dependencies) into scratch projects outside the repository. An ESM TypeScript project is
// type-checked under every moduleResolution with strict and skipLibCheck: false, and a CommonJS
// one requires every subpath; both run a call between two user agents over sipkit/testing.
// The compiler and @types/node are the repository's own (node_modules), nothing else is fetched.

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);
const typeRoots = path.join(root, 'node_modules', '@types');
const SUBPATHS = ['sipkit', 'sipkit/parser', 'sipkit/digest', 'sipkit/transport', 'sipkit/transaction', 'sipkit/dialog', 'sipkit/b2bua', 'sipkit/testing', 'sipkit/resolver'];
const INTERNAL_NAMES = ['attachWire', 'copyLinesInto', 'ackWait', 'handleInDialog', 'placeCall', 'respond2xx', 'relayBye', 'receiveAck'];

let work: string;
let tarball: string;
let packed: { filename: string; files: Array<{ path: string; size: number }>; unpackedSize: number };

async function sh(file: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd, timeout: 120_000, maxBuffer: 16 << 20, env: { ...process.env, npm_config_update_notifier: 'false' } });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${path.basename(file)} ${args.join(' ')} (in ${cwd}) failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}\n${e.message}`);
  }
}

function write(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

async function install(dir: string): Promise<void> {
  await sh('npm', ['install', '--no-audit', '--no-fund', '--offline', '--no-package-lock', tarball], dir);
}

// A call between two user agents on a TestNetwork in virtual time: sipkit/testing, /dialog,
// /transaction, /transport, /parser at work in the packaged build.
const CALL_SCRIPT = `
const clock = new FakeClock(1_000_000);
const net = new TestNetwork({ clock, seed: 7 });
const incoming = [];
const alice = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock });
const bob = new UserAgent({ transports: [net.transport('10.0.0.2', 5060)], clock, onInvite: (c) => incoming.push(c) });
const events = [];
const call = alice.invite('sip:bob@10.0.0.2:5060', { body: 'v=0\\r\\n', contentType: 'application/sdp', on: { answer: (r) => events.push('answer ' + r.status) } });
const settle = async () => { for (let i = 0; i < 20; i++) { clock.advance(10); await new Promise((r) => setImmediate(r)); } };
await settle();
await incoming[0].answer({ body: 'v=0\\r\\n' });
await settle();
const hangup = call.hangup();
await settle();
await hangup;
const parsed = parseMessage(net.packets('BYE')[0].bytes);
events.push(call.state, parsed.type === 'request' ? parsed.method : '', String(DEFAULT_TIMERS.T1), typeof B2bua, typeof DigestClient, typeof UdpTransport);
await alice.close();
await bob.close();
console.log(events.join(','));
`;
const CALL_OUTPUT = 'answer 200,ended,BYE,500,function,function,function';

const ESM_CHECK = `import * as root from 'sipkit';
import { parseMessage, createResponse, SipError, type SipRequest, type SipResponse } from 'sipkit/parser';
import { DigestClient, DigestServer, type DigestVerifyResult } from 'sipkit/digest';
import { UdpTransport, FakeClock as TransportFakeClock, type Transport } from 'sipkit/transport';
import { DEFAULT_TIMERS, TransactionLayer, type TransactionLayerOptions } from 'sipkit/transaction';
import { UserAgent, type OutgoingCall, type HangupCause } from 'sipkit/dialog';
import { B2bua, type AuthDecision, type CallRecord } from 'sipkit/b2bua';
import { FakeClock, TestNetwork, TestTransport, seededRandom, type NetworkConditions, type Clock } from 'sipkit/testing';

// The same classes through every name they are exported under.
const sameClock: typeof FakeClock = TransportFakeClock;
const sameParser: typeof parseMessage = root.parseMessage;
const conditions: NetworkConditions = { loss: 0.1, delayMs: [1, 5] };
const anyClock: Clock = new FakeClock();
const random: () => number = seededRandom(1);
const decide = (r: DigestVerifyResult): AuthDecision => (r.kind === 'ok' ? { ok: true, identity: r.username } : { ok: false, response: r.response });
const layerOptions = (transports: Transport[]): Pick<TransactionLayerOptions, 'transports'> => ({ transports });
const onEnd = (record: CallRecord, cause: HangupCause | undefined): string => record.id + (cause?.by ?? '');
const reply = (req: SipRequest): SipResponse => createResponse(req, 200);
const isSipError = (e: unknown): e is SipError => e instanceof SipError;
void [sameClock, sameParser, conditions, anyClock, random, decide, layerOptions, onEnd, reply, isSipError, TransactionLayer, DigestServer, TestTransport, B2bua];

// Internal members are not in the published types.
export function internals(outgoing: OutgoingCall, bridging: B2bua, req: SipRequest): unknown[] {
  return [
    // @ts-expect-error internal to sipkit
    outgoing.ackWait,
    // @ts-expect-error internal to sipkit
    outgoing.handleInDialog,
    // @ts-expect-error internal to sipkit
    bridging.placeCall,
    // @ts-expect-error internal to sipkit
    req.attachWire,
  ];
}
${CALL_SCRIPT.replace(/\bincoming\b = \[\]/, 'incoming: import("sipkit/dialog").IncomingCall[] = []').replace('const events = []', 'const events: string[] = []')}
`;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sipkit-package-'));
  // `npm pack` runs prepack (scripts/build.mjs), which builds dist/ if it is missing or stale.
  const out = await sh('npm', ['pack', '--json', '--pack-destination', work], root);
  const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string; size: number }>; unpackedSize: number }>;
  packed = info[0]!;
  tarball = path.join(work, path.basename(packed.filename));
}, 180_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds every file package.json points at, no source maps, no build stamp, no internal members in its types', () => {
    const files = new Set(packed.files.map((f) => f.path));
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, string | Record<string, Record<string, string>>>;
      typesVersions: Record<string, Record<string, string[]>>;
      main: string;
      module: string;
      types: string;
    };
    const targets = [pkg.main, pkg.module, pkg.types];
    for (const [key, value] of Object.entries(pkg.exports)) {
      if (typeof value === 'string') targets.push(value);
      else for (const cond of Object.values(value)) targets.push(...Object.values(cond));
      if (typeof value !== 'string' && key !== '.') expect(pkg.typesVersions['*']![key.slice(2)], `typesVersions for ${key}`).toEqual([value.import!.types]);
    }
    for (const [, paths] of Object.entries(pkg.typesVersions['*']!)) targets.push(...paths);
    for (const t of targets) expect(files, t).toContain(t.replace(/^\.\//, ''));
    expect([...files].filter((f) => f.endsWith('.map') || f.includes('.build-stamp'))).toEqual([]);

    for (const f of files) {
      if (!/\.d\.c?ts$/.test(f)) continue;
      const text = fs.readFileSync(path.join(root, f), 'utf8');
      for (const name of INTERNAL_NAMES) expect(text, `${f} declares ${name}`).not.toMatch(new RegExp(`\\b${name}\\b`));
    }
  });

  it('an ESM TypeScript project type-checks under node16, nodenext, node10 and bundler, and runs', async () => {
    const dir = path.join(work, 'esm');
    write(dir, {
      'package.json': JSON.stringify({ name: 'esm-consumer', private: true, type: 'module' }),
      'src/main.ts': ESM_CHECK,
    });
    await install(dir);
    const base = { strict: true, skipLibCheck: false, skipDefaultLibCheck: true, target: 'ES2022', lib: ['ES2022'], types: ['node'], typeRoots: [typeRoots], noEmit: true };
    const configs: Record<string, object> = {
      node16: { module: 'node16', moduleResolution: 'node16' },
      nodenext: { module: 'nodenext', moduleResolution: 'nodenext', noEmit: false, outDir: 'out' },
      node10: { module: 'es2022', moduleResolution: 'node10', esModuleInterop: true },
      bundler: { module: 'esnext', moduleResolution: 'bundler' },
    };
    for (const [name, options] of Object.entries(configs)) {
      write(dir, { [`tsconfig.${name}.json`]: JSON.stringify({ compilerOptions: { ...base, ...options }, files: ['src/main.ts'] }) });
    }
    const results = await Promise.allSettled(Object.keys(configs).map((name) => sh(bin('tsc'), ['-p', `tsconfig.${name}.json`], dir)));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${Object.keys(configs)[i]}: ${String(r.reason)}`] : []));
    expect(failures).toEqual([]);
    expect((await sh('node', ['out/main.js'], dir)).trim()).toBe(CALL_OUTPUT);
  }, 120_000);

  it('a CommonJS project requires every subpath, type-checks its .cts, and runs', async () => {
    const dir = path.join(work, 'cjs');
    const requires = SUBPATHS.map((s, i) => `const m${i} = require('${s}');`).join('\n');
    write(dir, {
      'package.json': JSON.stringify({ name: 'cjs-consumer', private: true, type: 'commonjs' }),
      'main.cjs': `${requires}
const loaded = [${SUBPATHS.map((s, i) => `['${s}', Object.keys(m${i}).length]`).join(', ')}];
for (const [name, count] of loaded) if (count === 0) throw new Error(name + ' exports nothing');
if (m0.FakeClock !== m7.FakeClock || m3.TestNetwork !== m7.TestNetwork || m0.UserAgent !== m5.UserAgent) throw new Error('one class, two copies');
const { FakeClock, TestNetwork } = m7; const { UserAgent } = m5; const { parseMessage } = m1; const { DEFAULT_TIMERS } = m4;
const { B2bua } = m6; const { DigestClient } = m2; const { UdpTransport } = m3;
(async () => {${CALL_SCRIPT}})().catch((err) => { console.error(err); process.exit(1); });
`,
      'check.cts': `import sipkit = require('sipkit');
import testing = require('sipkit/testing');
import b2bua = require('sipkit/b2bua');
import type { SipRequest } from 'sipkit/parser';
const clock: testing.Clock = new testing.FakeClock();
const method = (r: SipRequest): string => r.method;
void [clock, method, sipkit.UserAgent, b2bua.B2bua];
`,
      'tsconfig.json': JSON.stringify({ compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', types: ['node'], typeRoots: [typeRoots] }, files: ['check.cts'] }),
    });
    await install(dir);
    await sh(bin('tsc'), ['-p', 'tsconfig.json'], dir);
    expect((await sh('node', ['main.cjs'], dir)).trim()).toBe(CALL_OUTPUT);
  }, 120_000);

  it('a second build of an unchanged checkout (what npm start runs first) leaves dist/ as it is', async () => {
    const dist = path.join(root, 'dist');
    const before = { dir: fs.statSync(dist).ino, index: fs.statSync(path.join(dist, 'index.js')).mtimeMs };
    const out = await sh('node', ['scripts/build.mjs'], root);
    expect(out).toBe('');
    expect({ dir: fs.statSync(dist).ino, index: fs.statSync(path.join(dist, 'index.js')).mtimeMs }).toEqual(before);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prestart).toBe('node scripts/build.mjs');
  });
});
