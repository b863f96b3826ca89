import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Memory a B2BUA keeps per held bridged call and per ended call (issue #16 target 3), in
 * process: a B2bua on the in-memory TestNetwork, with a caller and a destination that are
 * scripted peers keeping nothing (they answer from each message alone), so the heap measured
 * is the B2BUA's (what the caller keeps to hang up later is copied out of the 200s: a slice would
 * keep each whole 200 and be counted as the B2BUA's). After `global.gc()`:
 *   - held:  (heap with N calls up − heap before) / N, measured 3 s after the last ACK, while
 *            the INVITE transactions are still in RFC 6026 Accepted (64·T1 = 32 s);
 *   - ended: (heap after N BYEs − heap before) / N, measured 1 s after the BYEs, while the BYE
 *            and INVITE transactions still wait (Timer J, Timer L).
 *
 *   node --expose-gc --import tsx bench/memory.ts [N] [dist …]
 *
 * With several dist directories (e.g. /work/wt-base/dist dist) each is measured in a child
 * process of its own, one after the other in the same run.
 */

interface Figures {
  dist: string;
  calls: number;
  heldBytesPerCall: number;
  endedBytesPerCall: number;
  rssHeldBytesPerCall: number;
}

async function measure(dist: string, n: number): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const url = (p: string) => pathToFileURL(resolve(dist, p)).href;
  const { B2bua } = await import(url('b2bua/index.js'));
  const { FakeClock, TestNetwork } = await import(url('transport/index.js'));
  const { parseMessage, createResponse, createRequest } = await import(url('parser/index.js'));

  const clock = new FakeClock(1);
  const net = new TestNetwork({ clock, record: false });
  const b2bua = new B2bua({
    transports: [net.transport('10.0.0.5')],
    // FakeClock lets go of a cancelled timer's callback at once, as clearTimeout does (and, from
    // issue #16's ended-call work, of its entry too, as RealClock's wheel does): what a timer costs
    // here is its entry while it is pending.
    clock,
    route: () => [{ uri: 'sip:dest@10.0.0.2:5060' }],
    noAnswerTimeoutMs: 3_600_000,
  });
  const sdp = (ip: string) => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n`;
  const TRUNK = { address: '10.0.0.5', port: 5060 };

  // The destination: 200 with SDP to each INVITE, 200 to each BYE; ACKs ignored. Nothing kept.
  const dest = net.transport('10.0.0.2', 5060);
  dest.setReceiver({
    onMessage: (bytes: Uint8Array) => {
      const m = parseMessage(bytes);
      if (m.type !== 'request' || m.method === 'ACK') return;
      const res = createResponse(m, 200, m.method === 'INVITE' ? { body: sdp('10.0.0.2'), contentType: 'application/sdp' } : {});
      if (m.method === 'INVITE') res.set('Contact', '<sip:dest@10.0.0.2:5060>');
      void dest.send(res.toBytes(), TRUNK);
    },
    onError: () => undefined,
  });

  // The caller: INVITEs, the ACK for each 200 (built from the 200 alone), BYEs later.
  const caller = net.transport('10.0.0.1', 5060);
  const answered: Array<{ to: string; callId: string; from: string }> = [];
  caller.setReceiver({
    onMessage: (bytes: Uint8Array) => {
      const m = parseMessage(bytes);
      if (m.type !== 'response' || m.status !== 200 || m.cseq.method !== 'INVITE') return;
      const ack = createRequest({
        method: 'ACK',
        uri: m.get('contact').replace(/^<|>$/g, ''),
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ack-${answered.length}`,
        from: m.get('from'),
        to: m.get('to'),
        callId: m.callId,
        cseq: 1,
      });
      void caller.send(ack.toBytes(), TRUNK);
      // Copies: a header value is a slice of the 200's whole text, which would be counted as the B2BUA's.
      answered.push({ to: copy(m.get('to')), callId: copy(m.callId), from: copy(m.get('from')) });
    },
    onError: () => undefined,
  });

  const copy = (v: string) => Buffer.from(v, 'utf8').toString('utf8');
  const settle = async (ms: number, step = 10) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  };
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage();
  };

  // Warm up (JIT, pools, lazily built tables) with calls that end, then start from quiet: with
  // too few, code V8 optimizes during the measured calls (~0.6 KB a call at 3000) counts as theirs.
  await placeCalls(300, 'warm');
  await hangUp();
  await settle(64 * 500 + 5000, 100);
  answered.length = 0;

  const snapshot = process.env.SIPKIT_MEMORY_SNAPSHOT; // a path prefix: where to write heap snapshots (before, held, ended)
  const v8 = snapshot ? await import('node:v8') : undefined;
  const before = heap();
  v8?.writeHeapSnapshot(`${snapshot}-before.heapsnapshot`);
  await placeCalls(n, 'held');
  await settle(3000, 50);
  const held = heap();
  v8?.writeHeapSnapshot(`${snapshot}-held.heapsnapshot`);
  if (answered.length !== n || b2bua.stats.bridges !== n) throw new Error(`only ${answered.length} of ${n} calls up (${b2bua.stats.bridges} bridges)`);
  await hangUp();
  // The caller's own notes (what it needed to hang up) are not the B2BUA's.
  answered.length = 0;
  await settle(1000, 50);
  const ended = heap();
  v8?.writeHeapSnapshot(`${snapshot}-ended.heapsnapshot`);
  if (b2bua.stats.bridges !== 0) throw new Error(`${b2bua.stats.bridges} calls still up after BYE`);
  return {
    dist,
    calls: n,
    heldBytesPerCall: (held.heapUsed + held.external - before.heapUsed - before.external) / n,
    endedBytesPerCall: (ended.heapUsed + ended.external - before.heapUsed - before.external) / n,
    rssHeldBytesPerCall: (held.rss - before.rss) / n,
  };

  async function placeCalls(count: number, tag: string): Promise<void> {
    for (let i = 0; i < count; i++) {
      const inv = createRequest({
        method: 'INVITE',
        uri: 'sip:+15551234567@10.0.0.5',
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-${tag}-${i};rport`,
        from: `<sip:1000@10.0.0.1>;tag=f${tag}${i}`,
        to: '<sip:+15551234567@10.0.0.5>',
        callId: `${tag}-${i}@10.0.0.1`,
        cseq: 1,
        contact: '<sip:caller@10.0.0.1:5060>',
        body: sdp('10.0.0.1'),
        contentType: 'application/sdp',
      });
      void caller.send(inv.toBytes(), TRUNK);
      if (i % 100 === 99) await settle(10, 10);
    }
    await settle(200, 10);
  }

  async function hangUp(): Promise<void> {
    for (let i = 0; i < answered.length; i++) {
      const a = answered[i]!;
      const bye = createRequest({
        method: 'BYE',
        uri: 'sip:trunk@10.0.0.5:5060',
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-bye-${a.callId}`,
        from: a.from,
        to: a.to,
        callId: a.callId,
        cseq: 2,
      });
      void caller.send(bye.toBytes(), TRUNK);
      if (i % 100 === 99) await settle(10, 10);
    }
    await settle(200, 10);
  }
}

const args = process.argv.slice(2);
const n = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 3000;
if (process.env.SIPKIT_MEMORY_CHILD) {
  const f = await measure(args[0]!, n);
  process.stdout.write(JSON.stringify(f) + '\n');
} else {
  const dists = args.length > 0 ? args : ['dist'];
  const kb = (b: number) => (b / 1024).toFixed(1).padStart(8);
  console.log(`calls: ${n}\n${'dist'.padEnd(40)}  held KB/call  ended KB/call  (RSS held KB/call)`);
  for (const d of dists) {
    const r = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', process.argv[1]!, String(n), d], { env: { ...process.env, SIPKIT_MEMORY_CHILD: '1' }, encoding: 'utf8' });
    if (r.status !== 0) {
      console.log(`${d}: failed\n${r.stderr}`);
      continue;
    }
    const f = JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
    console.log(`${d.padEnd(40)}  ${kb(f.heldBytesPerCall)}      ${kb(f.endedBytesPerCall)}       (${kb(f.rssHeldBytesPerCall).trim()})`);
  }
}
