import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/**
 * The trunk-server app's own per-call work (issue #16), in process, for one or more checkouts:
 *
 * - index: examples/trunk-server/call-index.ts following a stand-in B2BUA that stores records as
 *   B2bua does (keepRecords 10 000, the ended ones dropped first-ended first) — each call `call`
 *   (dialing), then `update` to ringing and answered a few calls later, `update` + `end` (hangup)
 *   900 calls later (900 calls/s held 1 s), in one trunk domain.
 * - trace: examples/trunk-server/metrics.ts's `trace` hook for the 24 messages a SIPp call makes
 *   through the trunk (in and out, 350–900 bytes, every one distinct, and a retransmission of one
 *   in eight).
 *
 *   node --import tsx bench/app-calls.ts [calls] [rounds] [root …]
 *
 * Each root runs in its own child process, the roots alternating round by round; each child runs
 * a warm-up pass and then three, and reports its best (µs per call); the median of the rounds is
 * printed at the end. E.g. roots /work/base-main and this worktree.
 */
const [n = '30000', rounds = '5', ...roots] = process.argv.slice(2);

type Rec = { id: string; state: string; tags: { domain?: string } };

if (process.env.APP_CALLS_CHILD) {
  const root = process.env.APP_CALLS_CHILD;
  const N = Number(n);
  const { CallIndex } = await import(pathToFileURL(`${root}/examples/trunk-server/call-index.ts`).href);
  const { createMetrics } = await import(pathToFileURL(`${root}/examples/trunk-server/metrics.ts`).href);

  class Source {
    records = new Map<string, Rec>();
    // A queue (the stand-in's own cost should be small next to the index's).
    ended: string[] = [];
    endedHead = 0;
    fns = new Map<string, Array<(r: Rec) => void>>();
    activeCalls = 0;
    stats = {};
    get(id: string) {
      return this.records.get(id);
    }
    list() {
      return [...this.records.values()];
    }
    on(e: string, fn: (r: Rec) => void) {
      (this.fns.get(e) ?? this.fns.set(e, []).get(e)!).push(fn);
    }
    off() {}
    emit(e: string, r: Rec) {
      for (const f of this.fns.get(e) ?? []) f(r);
    }
    add(r: Rec) {
      this.records.set(r.id, r);
      while (this.records.size > 10_000) this.records.delete(this.ended[this.endedHead++]!);
      this.emit('call', r);
    }
    set(r: Rec, state: string) {
      r.state = state;
      if (state === 'hangup') this.ended.push(r.id);
      this.emit('update', r);
      if (state === 'hangup') this.emit('end', r);
    }
  }

  const indexPass = () => {
    const src = new Source();
    const index = new CallIndex(src);
    const recs: Rec[] = [];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      // The record and its strings are made before the timer would see them in the trunk: here too, roughly.
      const r: Rec = { id: `call-${i}-${Math.random()}`, state: 'dialing', tags: { domain: i % 50 === 0 ? 'other.example.test' : 'pbx.example.test' } };
      recs.push(r);
      src.add(r);
      if (i >= 2) src.set(recs[i - 2]!, 'ringing');
      if (i >= 3) src.set(recs[i - 3]!, 'answered');
      if (i >= 900) src.set(recs[i - 900]!, 'hangup');
    }
    const t1 = performance.now();
    index.close();
    if (index.page({ status: 'hangup' }, 5).records.length !== 5) throw new Error('index lost the ended calls');
    return ((t1 - t0) * 1000) / N;
  };

  // 24 distinct messages per call of SIP-like sizes; every eighth sent twice (a retransmission).
  const pool = Array.from({ length: 64 }, () => randomBytes(350 + Math.floor(Math.random() * 550)));
  const remote = { address: '127.0.0.1', port: 5060 };
  const udp = { protocol: 'udp' };
  const tracePass = () => {
    const metrics = createMetrics(new Source(), { eventLoop: false });
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      for (let m = 0; m < 24; m++) {
        const msg = pool[(i + m) & 63]!;
        // Distinct per call and message, as Call-IDs and branches make them.
        msg[0] = i & 0xff;
        msg[1] = (i >> 8) & 0xff;
        msg[2] = (i >> 16) & 0xff;
        msg[3] = m;
        metrics.trace(m & 1 ? 'out' : 'in', msg, remote, udp);
        if ((m & 7) === 0) metrics.trace(m & 1 ? 'out' : 'in', msg, remote, udp);
      }
    }
    const t1 = performance.now();
    const text = metrics.render();
    metrics.close();
    const retrans = /sipkit_trunk_sip_retransmissions_total\{direction="in"\} (\d+)/.exec(text);
    // A 32-bit fingerprint can collide now and then (~1e-6 per message against 4096 remembered).
    if (!retrans || Number(retrans[1]) < 3 * N || Number(retrans[1]) > 3 * N + 10) throw new Error(`retransmissions counted wrong: ${retrans?.[1]}, expected ${3 * N}`);
    return ((t1 - t0) * 1000) / N;
  };

  indexPass();
  tracePass();
  const idx = [indexPass(), indexPass(), indexPass()];
  const tr = [tracePass(), tracePass(), tracePass()];
  console.log(JSON.stringify({ index: Math.min(...idx), trace: Math.min(...tr) }));
} else {
  const results = new Map<string, Array<{ index: number; trace: number }>>();
  for (let r = 0; r < Number(rounds); r++) {
    for (const root of r % 2 === 0 ? roots : [...roots].reverse()) {
      const out = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, n], { env: { ...process.env, APP_CALLS_CHILD: root }, encoding: 'utf8', cwd: root });
      if (out.status !== 0) throw new Error(out.stderr);
      const f = JSON.parse(out.stdout.trim().split('\n').pop()!);
      (results.get(root) ?? results.set(root, []).get(root)!).push(f);
      console.log(`round ${r} ${root}: index ${f.index.toFixed(2)} µs, trace ${f.trace.toFixed(2)} µs per call`);
    }
  }
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  for (const [root, fs] of results) {
    console.log(`${root}: median index ${median(fs.map((f) => f.index)).toFixed(2)} µs, trace ${median(fs.map((f) => f.trace)).toFixed(2)} µs per call`);
  }
}
