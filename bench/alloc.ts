import { spawnSync } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * JS heap allocated per bridged call (issue #16), in process: a B2bua on the in-memory
 * TestNetwork with scripted peers that keep nothing (as in bench/memory.ts), each call
 * INVITE → 200 → ACK → BYE → 200 on both legs. V8's sampling heap profiler counts every
 * allocation, including objects a minor or major GC has since collected, so the figure is
 * what the call makes the GC work through, not what it keeps. The peers' own parsing and
 * building (with the same dist's parser) is included: it is the same work for every dist.
 *
 *   node --import tsx bench/alloc.ts [N] [dist …]
 *
 * Each dist is measured in a child process of its own, one after the other in the same run,
 * so a change is read against a baseline of the same run (e.g. /work/base-main/dist dist).
 * Allocation bytes do not move with machine load, only with sampling (interval 256 bytes).
 */

interface Site {
  name: string;
  bytes: number;
}
interface Figures {
  dist: string;
  calls: number;
  bytesPerCall: number;
  sites: Site[];
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

async function measure(dist: string, n: number): Promise<Figures> {
  const url = (p: string) => pathToFileURL(resolve(dist, p)).href;
  const { B2bua } = await import(url('b2bua/index.js'));
  const { FakeClock, TestNetwork } = await import(url('transport/index.js'));
  const { parseMessage, createResponse, createRequest } = await import(url('parser/index.js'));

  const clock = new FakeClock(1);
  const net = new TestNetwork({ clock, record: false });
  const b2bua = new B2bua({ transports: [net.transport('10.0.0.5')], clock, route: () => [{ uri: 'sip:dest@10.0.0.2:5060' }] });
  const sdp = (ip: string) => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n`;
  const TRUNK = { address: '10.0.0.5', port: 5060 };

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

  const caller = net.transport('10.0.0.1', 5060);
  const answered: Array<{ to: string; callId: string; from: string }> = [];
  let byeOk = 0;
  caller.setReceiver({
    onMessage: (bytes: Uint8Array) => {
      const m = parseMessage(bytes);
      if (m.type !== 'response' || m.status !== 200) return;
      if (m.cseq.method === 'BYE') {
        byeOk++;
        return;
      }
      if (m.cseq.method !== 'INVITE') return;
      const ack = createRequest({
        method: 'ACK',
        uri: m.get('contact').replace(/^<|>$/g, ''),
        via: `SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ack-${m.callId}`,
        from: m.get('from'),
        to: m.get('to'),
        callId: m.callId,
        cseq: 1,
      });
      void caller.send(ack.toBytes(), TRUNK);
      answered.push({ to: m.get('to'), callId: m.callId, from: m.get('from') });
    },
    onError: () => undefined,
  });

  const settle = async (ms: number, step = 10) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  };

  // Calls in batches of 100: set up, answered, hung up, then the transactions' wait timers run out.
  async function calls(count: number, tag: string): Promise<void> {
    for (let b = 0; b < count; b += 100) {
      answered.length = 0;
      const m = Math.min(100, count - b);
      for (let i = b; i < b + m; i++) {
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
      }
      await settle(100, 10);
      for (const a of answered) {
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
      }
      await settle(100, 10);
    }
    await settle(64 * 500 + 2000, 500);
  }

  await calls(500, 'warm');
  byeOk = 0;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  await calls(n, 'm');
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
  session.disconnect();
  if (byeOk !== n || b2bua.stats.bridges !== 0) throw new Error(`only ${byeOk} of ${n} calls ended (${b2bua.stats.bridges} bridges up)`);

  const bySite = new Map<string, number>();
  let total = 0;
  const label = (f: ProfileNode['callFrame']) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules|bench)\//, '$1/')}:${f.lineNumber + 1}`;
  // A builtin (splice, push, …) is charged to it and its caller: 'splice ← insertLine …'.
  const walk = (node: ProfileNode, parent?: ProfileNode) => {
    if (node.selfSize > 0) {
      const f = node.callFrame;
      const name = f.url === '' && parent !== undefined ? `${f.functionName} ← ${label(parent.callFrame)}` : label(f);
      bySite.set(name, (bySite.get(name) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, node);
  };
  walk(profile.head);
  const sites = [...bySite].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { dist, calls: n, bytesPerCall: total / n, sites: sites.slice(0, 25) };
}

const args = process.argv.slice(2);
const n = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 2000;
if (process.env.SIPKIT_ALLOC_CHILD) {
  const f = await measure(args[0]!, n);
  process.stdout.write(JSON.stringify(f) + '\n');
} else {
  const dists = args.length > 0 ? args : ['dist'];
  const kb = (b: number) => (b / 1024).toFixed(1);
  const results: Figures[] = [];
  for (const d of dists) {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, String(n), d], {
      env: { ...process.env, SIPKIT_ALLOC_CHILD: '1' },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) {
      console.log(`${d}: failed\n${r.stderr}`);
      continue;
    }
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures);
  }
  for (const f of results) {
    console.log(`\n## ${f.dist}: ${kb(f.bytesPerCall)} KB allocated per call (${f.calls} calls; top sites, KB per call)`);
    for (const s of f.sites.slice(0, 20)) console.log(`  ${kb(s.bytes / f.calls).padStart(7)}  ${((s.bytes / f.calls / f.bytesPerCall) * 100).toFixed(1).padStart(5)}%  ${s.name}`);
  }
  if (results.length > 1) {
    console.log('\ncalls: ' + n);
    for (const f of results) console.log(`  ${f.dist.padEnd(40)} ${kb(f.bytesPerCall).padStart(8)} KB/call  (${((f.bytesPerCall / results[0]!.bytesPerCall) * 100).toFixed(1)}% of the first)`);
  }
}
