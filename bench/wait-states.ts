import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Bytes a transaction costs while it only waits (issue #16): N transactions of one kind driven
 * into a wait state, heap + external after `global.gc()`, minus the same before, over N. The
 * layer under test runs on node's timers (RealClock), so each Timeout it holds is counted; the
 * peer on the other side is `layer.receive` fed fresh datagrams (each its own buffer, as a UDP
 * socket hands them over) and a sink transport that keeps nothing.
 *
 *   node --expose-gc --import tsx bench/wait-states.ts [N] [dist …]
 *
 * BENCH_COARSE_FROM=Infinity turns RealClock's coarse timer wheel off (every timer a node Timeout).
 *
 * Wait states measured (RFC 3261 §17 with RFC 6026):
 *   - invite-server accepted:   INVITE answered 200 (Timer L, 64·T1)
 *   - invite-server completed:  INVITE answered 486, no ACK yet (Timers G, H)
 *   - invite-server confirmed:  … and ACKed (Timer I)
 *   - non-invite-server completed: BYE answered 200 (Timer J)
 *   - invite-client accepted:   INVITE sent, 200 received (Timer M)
 *   - invite-client completed:  INVITE sent, 486 received, ACK sent (Timer D)
 *   - non-invite-client completed: BYE sent, 200 received (Timer K)
 * With several dist directories each is measured in a child process of its own, in the same run.
 */

type Scenario =
  | 'invite-server accepted'
  | 'invite-server completed'
  | 'invite-server confirmed'
  | 'non-invite-server completed'
  | 'invite-client accepted'
  | 'invite-client completed'
  | 'non-invite-client completed';

const SCENARIOS: Scenario[] = [
  'invite-server accepted',
  'invite-server completed',
  'invite-server confirmed',
  'non-invite-server completed',
  'invite-client accepted',
  'invite-client completed',
  'non-invite-client completed',
];

async function measure(dist: string, n: number, scenario: Scenario): Promise<{ bytes: number; states: Record<string, number>; timers: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const url = (p: string) => pathToFileURL(resolve(dist, p)).href;
  const { TransactionLayer } = await import(url('transaction/index.js'));
  const { parseMessage, createResponse } = await import(url('parser/index.js'));
  const { RealClock } = await import(url('transport/index.js'));
  // BENCH_COARSE_FROM=Infinity: every timer a node Timeout (RealClock's coarse wheel off).
  const coarse = process.env.BENCH_COARSE_FROM;

  const LOCAL = { address: '10.0.0.5', port: 5060 };
  const PEER = { address: '10.0.0.1', port: 5060 };
  let lastSent: Uint8Array | undefined;
  const sink = {
    protocol: 'udp',
    reliable: false,
    local: LOCAL,
    setReceiver() {},
    send(bytes: Uint8Array) {
      lastSent = bytes;
      return Promise.resolve();
    },
    post(bytes: Uint8Array) {
      lastSent = bytes;
    },
    close: () => Promise.resolve(),
  };
  const server = scenario.includes('server');
  const answer = scenario.includes('accepted') || scenario.startsWith('non-invite') ? 200 : 486;
  const txs: Array<{ state: string; timerCount: number }> = [];
  const layer = new TransactionLayer({
    transports: [sink],
    user: {
      onRequest(req: any, tx: any) {
        txs.push(tx);
        const res = createResponse(req, answer);
        if (answer === 200 && req.method === 'INVITE') res.set('Contact', '<sip:b@10.0.0.5:5060>');
        tx.respond(res);
      },
    },
    tryingAfterMs: -1,
    clock: coarse === undefined ? undefined : new RealClock({ coarseFromMs: Number(coarse) }),
  });
  const datagram = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
  const sdp = 'v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const request = (method: string, tag: string, i: number, toTag = '') =>
    `${method} sip:+15551234567@10.0.0.5 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-${tag}-${i};rport\r\nMax-Forwards: 70\r\n` +
    `From: <sip:1000@10.0.0.1>;tag=f${tag}${i}\r\nTo: <sip:+15551234567@10.0.0.5>${toTag}\r\nCall-ID: ${tag}-${i}@10.0.0.1\r\nCSeq: 1 ${method}\r\n` +
    (method === 'INVITE' ? `Contact: <sip:caller@10.0.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}` : 'Content-Length: 0\r\n\r\n');
  const method = scenario.startsWith('non-invite') ? 'BYE' : 'INVITE';

  // One user for every client transaction: what the bench measures is the transactions.
  const clientUser = { onResponse: () => undefined };
  const run = (count: number, tag: string) => {
    for (let i = 0; i < count; i++) {
      if (server) {
        layer.receive(datagram(request(method, tag, i)), PEER, sink);
        if (scenario === 'invite-server confirmed') {
          const res = parseMessage(lastSent!);
          const ack = request('ACK', tag, i, ';tag=' + res.to.tag).replace(/CSeq: 1 ACK/, 'CSeq: 1 ACK');
          layer.receive(datagram(ack), PEER, sink);
        }
      } else {
        const req = parseMessage(datagram(request(method, tag, i)));
        req.removeFirst('Via');
        const tx = layer.sendRequest(req, { address: PEER.address, port: PEER.port }, clientUser);
        txs.push(tx);
        const sent = parseMessage(lastSent!);
        const res = createResponse(sent, answer);
        if (answer === 200 && method === 'INVITE') res.set('Contact', '<sip:caller@10.0.0.1:5060>');
        layer.receive(datagram(res.toBytes().toString('latin1')), PEER, sink);
      }
    }
  };
  const heap = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  run(200, 'warm');
  txs.length = 0;
  lastSent = undefined;
  const snapshot = process.env.SIPKIT_WAIT_SNAPSHOT; // a path prefix: heap snapshots before and after
  const v8 = snapshot ? await import('node:v8') : undefined;
  const before = heap();
  v8?.writeHeapSnapshot(`${snapshot}-before.heapsnapshot`);
  run(n, 'w');
  lastSent = undefined;
  const after = heap();
  v8?.writeHeapSnapshot(`${snapshot}-after.heapsnapshot`);
  const states: Record<string, number> = {};
  let timers = 0;
  for (const t of txs) {
    states[t.state] = (states[t.state] ?? 0) + 1;
    timers += t.timerCount;
  }
  // The array of transactions the bench keeps: 8 bytes a slot, not the transactions'.
  return { bytes: (after - before) / n - 8, states, timers: timers / n };
}

const args = process.argv.slice(2);
const n = args[0] && /^\d+$/.test(args[0]) ? Number(args.shift()) : 10_000;
if (process.env.SIPKIT_WAIT_CHILD) {
  const r = await measure(args[0]!, n, process.env.SIPKIT_WAIT_CHILD as Scenario);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0); // the layer's timers (up to 64·T1) need not run
} else {
  const dists = args.length > 0 ? args : ['dist'];
  console.log(`transactions per scenario: ${n}; bytes per transaction (heap + external, node timers counted)`);
  console.log(`${'scenario'.padEnd(30)} ${dists.map((d) => d.slice(-28).padStart(28)).join(' ')}`);
  for (const s of SCENARIOS) {
    const cells: string[] = [];
    for (const d of dists) {
      const r = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', process.argv[1]!, String(n), d], { env: { ...process.env, SIPKIT_WAIT_CHILD: s }, encoding: 'utf8' });
      if (r.status !== 0) {
        cells.push('failed'.padStart(28));
        console.error(r.stderr);
        continue;
      }
      const f = JSON.parse(r.stdout.trim().split('\n').pop()!) as { bytes: number; states: Record<string, number>; timers: number };
      cells.push(`${f.bytes.toFixed(0)} B (${Object.keys(f.states).join('/')}, ${f.timers} timers)`.padStart(28));
    }
    console.log(`${s.padEnd(30)} ${cells.join(' ')}`);
  }
}
