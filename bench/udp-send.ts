/**
 * Cost of one UdpTransport.post() on a real loopback socket pair (issue #16): the sender here,
 * the receiver (a bare dgram socket that only reads) in a child process so its work is not
 * counted. Each round posts N datagrams of a SIP-sized payload in slices of 64 per event-loop
 * turn (as the inbox's drain sends its answers) and waits for every completion callback; the
 * figure is wall and CPU (user + system) time per send, median of the rounds. The dists given
 * are measured round by round in turn, in the same process, so each is read against the others
 * of the same run (e.g. this checkout's dist beside /work/base-main/dist).
 *
 *   node --import tsx bench/udp-send.ts [N] [rounds] [dist …]
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const N = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 9);
const dists = process.argv.slice(4).length > 0 ? process.argv.slice(4) : ['dist', '/work/base-main/dist'];
const SLICE = 64;
if (!(N > 0 && N <= 1_000_000) || !(ROUNDS > 0 && ROUNDS <= 100)) throw new Error('N in 1..1e6, rounds in 1..100');

const RECEIVER = `
const s = require('node:dgram').createSocket('udp4');
let n = 0;
s.on('message', () => n++);
s.bind(0, '127.0.0.1', () => { try { s.setRecvBufferSize(8 << 20); } catch {} process.stdout.write(s.address().port + '\\n'); });
process.stdin.on('data', () => process.stdout.write(n + '\\n'));
process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(1), 600_000).unref();
`;

interface UdpLike {
  post(bytes: Uint8Array, to: { address: string; port: number }, onError: (e: Error) => void, onSent?: () => void): void;
  close(): Promise<void>;
}

const payload = Buffer.alloc(900, 'x');

async function round(t: UdpLike, to: { address: string; port: number }): Promise<{ wallNs: number; cpuUs: number; sysUs: number }> {
  let done = 0;
  let failed = 0;
  const onError = () => void failed++;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const onSent = () => {
    if (++done === N) finish();
  };
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let sent = 0;
  await new Promise<void>((r) => {
    const slice = () => {
      for (let i = 0; i < SLICE && sent < N; i++, sent++) t.post(payload, to, () => (onError(), onSent()), onSent);
      if (sent < N) setImmediate(slice);
      else r();
    };
    slice();
  });
  const guard = setTimeout(() => finish(), 60_000);
  await all;
  clearTimeout(guard);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  if (failed > 0) console.warn(`  ${failed} sends failed`);
  return { wallNs: wallNs / N, cpuUs: (cpu.user + cpu.system) / N, sysUs: cpu.system / N };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quartiles = (xs: number[], k = 1) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${(s[Math.floor((s.length - 1) / 4)]! * k).toFixed(0)}–${(s[Math.ceil((3 * (s.length - 1)) / 4)]! * k).toFixed(0)}`;
};

async function main(): Promise<void> {
  const rx = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((r) => rx.stdout.once('data', (d) => r(Number(String(d).trim()))));
  const to = { address: '127.0.0.1', port };
  const senders: Array<{ dist: string; t: UdpLike; wall: number[]; cpu: number[]; sys: number[] }> = [];
  for (const dist of dists) {
    const mod = (await import(pathToFileURL(resolve(dist, 'transport/index.js')).href)) as { UdpTransport: { bind(o?: object): Promise<UdpLike> } };
    senders.push({ dist, t: await mod.UdpTransport.bind(), wall: [], cpu: [], sys: [] });
  }
  // Warm-up: one round each, not counted.
  for (const s of senders) await round(s.t, to);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of senders) {
      const f = await round(s.t, to);
      s.wall.push(f.wallNs);
      s.cpu.push(f.cpuUs);
      s.sys.push(f.sysUs);
    }
  }
  console.log(`UdpTransport.post, ${N} sends of ${payload.length} B × ${ROUNDS} rounds, slices of ${SLICE}, median per send:`);
  const base = senders.at(-1)!;
  for (const s of senders) {
    const w = median(s.wall);
    const c = median(s.cpu) * 1000;
    console.log(
      `  ${s.dist.padEnd(24)} wall ${w.toFixed(0).padStart(6)} ns (IQR ${quartiles(s.wall)})  CPU ${c.toFixed(0).padStart(6)} ns (IQR ${quartiles(s.cpu, 1000)}; of it system ${(median(s.sys) * 1000).toFixed(0)})` +
        (s === base ? '' : `  (wall ×${(w / median(base.wall)).toFixed(3)}, CPU ×${(c / (median(base.cpu) * 1000)).toFixed(3)} vs ${base.dist})`),
    );
  }
  for (const s of senders) await s.t.close();
  rx.stdin.end();
}

await main();
