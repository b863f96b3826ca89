import { createRequest, createResponse } from '../dist/parser/index.js';
import { FakeClock, TestNetwork, UdpTransport } from '../dist/transport/index.js';
import { TransactionLayer } from '../dist/transaction/index.js';
import { table } from './harness.js';

function options(i: number) {
  return createRequest({ method: 'OPTIONS', uri: 'sip:b@10.0.0.2', from: '<sip:a@10.0.0.1>', to: '<sip:b@10.0.0.2>', callId: `bench-${i}` });
}

/** OPTIONS transactions through two layers on the in-memory network (parse, match, respond, complete). */
function inMemory(n: number): number {
  const clock = new FakeClock();
  const net = new TestNetwork({ clock, record: false });
  const answer = { onRequest: (req: any, tx: any) => tx.respond(createResponse(req, 200)) };
  const a = new TransactionLayer({ transports: [net.transport('10.0.0.1')], user: { onRequest: () => undefined }, clock });
  new TransactionLayer({ transports: [net.transport('10.0.0.2')], user: answer, clock });
  let done = 0;
  const user = { onResponse: (r: any) => r.status >= 200 && done++ };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    a.sendRequest(options(i), { address: '10.0.0.2', port: 5060 }, user);
    if (i % 200 === 199) clock.advance(2);
  }
  clock.advance(10);
  const rate = n / ((performance.now() - t0) / 1000);
  if (done !== n) throw new Error(`only ${done}/${n} completed`);
  return rate;
}

/** The same over real UDP sockets on 127.0.0.1, with a bounded window of outstanding transactions. */
async function loopback(n: number, window = 200): Promise<number> {
  const bT = await UdpTransport.bind();
  const aT = await UdpTransport.bind();
  const b = new TransactionLayer({ transports: [bT], user: { onRequest: (req, tx) => tx.respond(createResponse(req, 200)) } });
  const a = new TransactionLayer({ transports: [aT], user: { onRequest: () => undefined } });
  let sent = 0;
  let done = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('loopback bench timed out')), 60_000);
    const user = {
      onResponse: (r: { status: number }) => {
        if (r.status < 200) return;
        done++;
        if (done === n) {
          clearTimeout(deadline);
          resolve();
        } else if (sent < n) next();
      },
    };
    const next = () => a.sendRequest(options(sent++), { ...bT.local }, user);
    for (let i = 0; i < window && sent < n; i++) next();
  });
  const rate = n / ((performance.now() - t0) / 1000);
  await a.close();
  await b.close();
  return rate;
}

export async function benchTransaction(): Promise<string> {
  inMemory(2000); // warm-up
  const mem = [inMemory(20_000), inMemory(20_000), inMemory(20_000)].sort((x, y) => x - y)[1]!;
  await loopback(2000);
  const udp = [await loopback(20_000), await loopback(20_000), await loopback(20_000)].sort((x, y) => x - y)[1]!;
  return table('transactions (OPTIONS/200, both ends in this process; median of 3)', [
    ['in-memory test network', mem, 'parse + match + respond + complete, both sides'],
    ['loopback UDP (127.0.0.1)', udp, `${((udp / mem) * 100).toFixed(0)}% of the in-memory rate: the cost of real sockets`],
  ]);
}
