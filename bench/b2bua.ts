import { B2bua } from '../dist/b2bua/index.js';
import { DigestServer } from '../dist/digest/index.js';
import { UserAgent } from '../dist/dialog/index.js';
import { FakeClock, TestNetwork } from '../dist/transport/index.js';
import { table } from './harness.js';

/**
 * Whole bridged calls through the B2BUA on the in-memory network: caller, trunk and
 * destination all in this process (so each call costs three stacks' work), 407 digest
 * (MD5), 180, 200, ACK, BYE on both legs.
 */
async function bridgedCalls(n: number): Promise<number> {
  const clock = new FakeClock(1);
  const net = new TestNetwork({ clock, record: false });
  const auth = new DigestServer({ secret: 'bench-secret-0123456789abcdef0123', realm: 'demo', algorithms: ['MD5'], lookup: () => ({ password: 'pw' }), throttle: false });
  const b2bua = new B2bua({
    transports: [net.transport('10.0.0.5')],
    clock,
    authenticate: async (req, s) => {
      const r = await auth.verify(req, { source: s.address.address });
      return r.kind === 'ok' ? { ok: true } : { ok: false, response: r.response };
    },
    route: () => [{ uri: 'sip:x@10.0.0.2:5060' }],
  });
  const caller = new UserAgent({ transports: [net.transport('10.0.0.1')], clock });
  new UserAgent({
    transports: [net.transport('10.0.0.2')],
    clock,
    onInvite: (c) => {
      c.provisional(180);
      void c.answer({ body: 'v=0\r\n' });
    },
  });
  let ended = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const call = caller.invite('sip:123@demo', {
      destination: { address: '10.0.0.5', port: 5060 },
      body: 'v=0\r\n',
      auth: { username: 'u', password: 'pw' },
      reliableProvisionals: 'none',
      on: { ended: () => ended++ },
    });
    call.on('answer', () => void call.hangup());
    if (i % 50 === 49) {
      for (let k = 0; k < 20; k++) {
        clock.advance(1);
        await new Promise((r) => setImmediate(r));
      }
    }
  }
  for (let k = 0; k < 400 && ended < n; k++) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  const rate = n / ((performance.now() - t0) / 1000);
  if (ended !== n || b2bua.stats.bridges !== 0) throw new Error(`only ${ended}/${n} calls ended`);
  return rate;
}

export async function benchB2bua(): Promise<string> {
  await bridgedCalls(500); // warm-up
  const rates = [await bridgedCalls(3000), await bridgedCalls(3000), await bridgedCalls(3000)].sort((a, b) => a - b);
  return table('B2BUA (whole calls, caller + trunk + destination in one process; median of 3)', [
    ['bridged calls with 407 auth', rates[1]!, 'each call: ~15 SIP messages through the trunk, as many again at the two ends'],
  ]);
}
