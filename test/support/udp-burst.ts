// Bursts of datagrams into a UdpTransport's inbox on real loopback sockets, for the inbox tests. To put a
// burst in the kernel's receive buffer before our event loop reads any of it, a child `node -e` sends it
// while execFileSync blocks this process: libuv then reads the whole burst (up to 32 datagrams) in one
// poll, before the inbox's drain runs.
import { execFileSync } from 'node:child_process';
import type { UdpTransport } from '../../src/transport/index.js';

const SENDER = `
const dgram = require('node:dgram');
const msgs = JSON.parse(process.argv[1]);
const port = Number(process.argv[2]);
const s = dgram.createSocket('udp4');
let left = msgs.length;
for (const m of msgs) s.send(Buffer.from(m), port, '127.0.0.1', (err) => { if (err) throw err; if (--left === 0) s.close(); });
`;

/** Sends the datagrams in order from one socket of a child process, blocking this event loop until all are sent. */
export function burst(port: number, msgs: string[]): void {
  execFileSync(process.execPath, ['-e', SENDER, JSON.stringify(msgs), String(port)], { stdio: 'pipe' });
}

/** A minimal request whose Call-ID is `<method>-<n>` (lower case). */
export const req = (method: string, n: number | string): string => `${method} sip:${n}@example.com SIP/2.0\r\nCall-ID: ${method.toLowerCase()}-${n}\r\n\r\n`;
/** A minimal 200 whose Call-ID is `resp-<n>`. */
export const resp = (n: number | string): string => `SIP/2.0 200 OK\r\nCall-ID: resp-${n}\r\n\r\n`;

const callId = (b: Uint8Array): string => Buffer.from(b).toString('latin1').split('\r\n')[1]!.slice('Call-ID: '.length);

/** Collects the Call-IDs of what the transport delivers, in order; `until` resolves once `n` have come. */
export function collect(t: UdpTransport, onEach?: (got: string[]) => void) {
  const got: string[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  t.setReceiver({
    onMessage(bytes) {
      got.push(callId(bytes));
      onEach?.(got);
      for (const w of waiters) if (got.length >= w.n) w.resolve();
    },
  });
  return {
    got,
    until: (n: number) =>
      new Promise<void>((resolve, reject) => {
        if (got.length >= n) return resolve();
        const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} delivered: ${got.join(', ')}`)), 5000);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
}

/** A few event-loop turns: anything still queued in the inbox would be delivered by then. */
export const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
