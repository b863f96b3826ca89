/**
 * npx tsx bench/tcp-abuse.ts — issue #14 items 12–14, before and after in one run.
 * "Before" is the code at BENCH_BEFORE (a git revision; default 047c198, the commit
 * these changes start from): its framer.ts and tcp.ts are copied out of git into a
 * temporary directory and imported next to the current ones.
 *
 *  1. CPU time to frame one 64 KB message dripped one byte per chunk.
 *  2. How long a connection dripping bytes lives (scaled down: 1 byte / 20 ms,
 *     short limits), and the same at the default limits, worked out.
 *  3. How many idle inbound connections it takes to stop outbound TCP (scaled
 *     down: budgets of 16, 4 per address), and whether a new inbound one gets in.
 *
 * Not a test: prints figures. Every loop is bounded in count and time; loopback only.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { StreamFramer } from '../src/parser/index.js';
import { TcpTransport } from '../src/transport/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BEFORE = process.env.BENCH_BEFORE ?? '047c198';

interface FramerLike {
  push(chunk: Uint8Array): void;
}
type FramerCtor = new (h: { onFrame(b: Buffer): void; onError(e: Error, fatal: boolean): void }, l?: { maxMessageSize: number }) => FramerLike;
interface TransportLike {
  readonly local: { address: string; port: number };
  connectionCount: number;
  setReceiver(r: { onMessage(): void; onError?(e: { code: string }): void }): void;
  send(b: Uint8Array, to: { address: string; port: number }): Promise<void>;
  close(): Promise<void>;
}
type TransportFactory = { listen(o: Record<string, unknown>): Promise<TransportLike> };

/** The old file from git, its relative imports pointed at the current sources. */
async function importBefore(path: string, tmp: string): Promise<Record<string, unknown>> {
  const text = execFileSync('git', ['show', `${BEFORE}:${path}`], { cwd: ROOT, encoding: 'utf8' });
  const dir = join(ROOT, path, '..');
  const rewritten = text.replace(/from '(\.{1,2}\/[^']+)'/g, (_m, rel: string) => `from '${pathToFileURL(join(dir, rel)).href}'`);
  const file = join(tmp, path.replaceAll('/', '_'));
  writeFileSync(file, rewritten);
  return import(pathToFileURL(file).href);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function dripCpuMs(Framer: FramerCtor, stream: Buffer): number {
  let frames = 0;
  const f = new Framer({ onFrame: () => frames++, onError: (e) => { throw e; } }, { maxMessageSize: 70_000 });
  const t0 = process.cpuUsage();
  for (let i = 0; i < stream.length; i++) f.push(stream.subarray(i, i + 1));
  const d = process.cpuUsage(t0);
  if (frames !== 1) throw new Error(`framed ${frames} messages`);
  return (d.user + d.system) / 1000;
}

async function framing(OldFramer: FramerCtor): Promise<void> {
  const body = 'b'.repeat(64 * 1024 - 4096);
  const head = `INVITE sip:a SIP/2.0\r\n${'X-Pad: 0123456789abcdef\r\n'.repeat(160)}Content-Length: ${body.length}\r\n\r\n`;
  const stream = Buffer.from(head + body);
  const before: number[] = [];
  const after: number[] = [];
  for (let r = 0; r < 5; r++) {
    before.push(dripCpuMs(OldFramer, stream));
    after.push(dripCpuMs(StreamFramer as unknown as FramerCtor, stream));
  }
  const probe = new StreamFramer({ onFrame: () => undefined, onError: () => undefined }, { maxMessageSize: 70_000 });
  for (let i = 0; i < stream.length; i++) probe.push(stream.subarray(i, i + 1));
  console.log(`\n1. Framing ${stream.length} bytes pushed one byte per chunk (CPU ms, median of 5 alternating runs)`);
  console.log(`   before: ${median(before).toFixed(1)} ms   [${before.map((x) => x.toFixed(0)).join(', ')}]`);
  console.log(`   after:  ${median(after).toFixed(2)} ms   [${after.map((x) => x.toFixed(2)).join(', ')}]`);
  const w = probe.work;
  console.log(`   after, work: ${w.bytesCopied} bytes copied into the buffer, ${w.bytesScanned} bytes scanned for the header end (${head.length} header bytes)`);
}

function client(port: number, localAddress = '127.0.0.1'): Promise<Socket & { gone?: boolean }> {
  return new Promise((resolve, reject) => {
    const s: Socket & { gone?: boolean } = connect({ host: '127.0.0.1', port, localAddress });
    s.on('close', () => (s.gone = true));
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Drip one byte of an endless header section per `everyMs` until the server closes; bounded by `maxMs`. */
async function dripLifetime(T: TransportFactory, opts: Record<string, unknown>, everyMs: number, maxMs: number): Promise<{ ms: number; bytes: number; errors: string[] }> {
  const t = await T.listen({ host: '127.0.0.1', ...opts });
  const errors: string[] = [];
  t.setReceiver({ onMessage: () => undefined, onError: (e) => errors.push(e.code) });
  const s = await client(t.local.port);
  const start = performance.now();
  const filler = Buffer.from('OPTIONS sip:a SIP/2.0\r\nX: ' + 'y'.repeat(100_000));
  let bytes = 0;
  while (!s.gone && performance.now() - start < maxMs && bytes < filler.length) {
    s.write(filler.subarray(bytes, bytes + 1));
    bytes++;
    await sleep(everyMs);
  }
  const ms = performance.now() - start;
  s.destroy();
  await t.close();
  return { ms, bytes, errors };
}

async function slowloris(Old: TransportFactory): Promise<void> {
  const scaled = { idleTimeoutMs: 1000, messageTimeoutMs: 500, firstMessageTimeoutMs: 500, limits: { maxMessageSize: 100 } };
  const before = await dripLifetime(Old, scaled, 20, 10_000);
  const after = await dripLifetime(TcpTransport as unknown as TransportFactory, scaled, 20, 10_000);
  console.log('\n2. A connection dripping 1 byte / 20 ms; idle 1000 ms, message and first-message deadlines 500 ms, maxMessageSize 100');
  console.log(`   before: closed after ${before.ms.toFixed(0)} ms and ${before.bytes} bytes (${before.errors.join(', ') || 'no error'}): only the size limit ends it`);
  console.log(`   after:  closed after ${after.ms.toFixed(0)} ms and ${after.bytes} bytes (${after.errors.join(', ') || 'no error'})`);
  console.log('   at the defaults and 1 byte/s: before, every byte resets the 120 s idle timer, so the connection lives until');
  console.log('   maxMessageSize (65 535 bytes) is exceeded: 65 536 s ≈ 18.2 h; after, 20 s (messageTimeoutMs / firstMessageTimeoutMs).');
}

/**
 * Open `n` idle inbound connections (4 per address from 127.0.0.<firstHost> up), then try
 * one outbound connection (to 127.0.0.1) and one more inbound connection from a fresh address.
 */
async function budgets(T: TransportFactory, opts: Record<string, unknown>, n: number, firstHost = 2): Promise<string> {
  const t = await T.listen({ host: '127.0.0.1', maxConnectionsPerAddress: 4, ...opts });
  const target = await TcpTransport.listen({ host: '127.0.0.1' });
  t.setReceiver({ onMessage: () => undefined, onError: () => undefined });
  target.setReceiver({ onMessage: () => undefined });
  const idle: Array<Socket & { gone?: boolean }> = [];
  for (let i = 0; i < n; i++) {
    idle.push(await client(t.local.port, `127.0.0.${firstHost + (i >> 2)}`));
    for (let w = 0; w < 100 && t.connectionCount + idle.filter((s) => s.gone).length < i + 1; w++) await sleep(5);
  }
  await sleep(50);
  const open = idle.filter((s) => !s.gone).length;
  let outbound = 'outbound connect works';
  try {
    await t.send(Buffer.from('OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n'), target.local);
  } catch (e) {
    outbound = `outbound REFUSED (${(e as { code?: string }).code})`;
  }
  const newcomer = await client(t.local.port, '127.0.0.200');
  await sleep(100);
  const evicted = idle.filter((s) => !s.gone).length < open;
  const inbound = newcomer.gone ? 'new inbound refused' : evicted ? 'new inbound admitted, oldest idle evicted' : 'new inbound admitted';
  for (const s of [...idle, newcomer]) s.destroy();
  await target.close();
  await t.close();
  return `${open} idle inbound open: ${outbound}; ${inbound}`;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'sipkit-before-'));
  try {
    const oldFramer = (await importBefore('src/parser/framer.ts', tmp)).StreamFramer as FramerCtor;
    const oldTcp = (await importBefore('src/transport/tcp.ts', tmp)).TcpTransport as TransportFactory;
    console.log(`before = ${BEFORE}, after = working tree`);
    await framing(oldFramer);
    await slowloris(oldTcp);
    console.log('\n3. Idle inbound connections (4 per address) against TCP both ways; budgets scaled down from 1 024 to 16');
    for (const n of [15, 16]) console.log(`   before (one shared maxConnections: 16), ${n} idle: ${await budgets(oldTcp, { maxConnections: 16 }, n)}`);
    console.log(`   before, 4 idle from the outbound target's own address 127.0.0.1: ${await budgets(oldTcp, { maxConnections: 16 }, 4, 1)}`);
    console.log(`   after,  4 idle from the outbound target's own address 127.0.0.1: ${await budgets(TcpTransport as unknown as TransportFactory, { maxInboundConnections: 16 }, 4, 1)}`);
    for (const n of [15, 16, 32]) {
      const r = await budgets(TcpTransport as unknown as TransportFactory, { maxInboundConnections: 16, maxOutboundConnections: 16 }, n);
      console.log(`   after (16 inbound, 16 outbound), ${n} idle: ${r}`);
    }
    console.log('   at the defaults: before, 1 024 idle inbound connections (32 addresses × 32) stop all outbound TCP and all new inbound,');
    console.log('   and 32 idle inbound connections from one address stop outbound TCP to that address (the per-address limit counted outbound too);');
    console.log('   after, no number of inbound connections stops outbound TCP (its own 1 024), and a new inbound connection evicts the oldest idle one.');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
