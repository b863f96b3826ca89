// The UDP inbox on real loopback sockets (issue #16): the socket is read fast and what was read is
// handed over by priority. To put a burst in the kernel's receive buffer before our event loop
// reads any of it, a child `node -e` sends it while execFileSync blocks this process: libuv then
// reads the whole burst (up to 32 datagrams) in one poll, before the inbox's drain runs.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';

const SENDER = `
const dgram = require('node:dgram');
const msgs = JSON.parse(process.argv[1]);
const port = Number(process.argv[2]);
const s = dgram.createSocket('udp4');
let left = msgs.length;
for (const m of msgs) s.send(Buffer.from(m), port, '127.0.0.1', (err) => { if (err) throw err; if (--left === 0) s.close(); });
`;

/** Sends the datagrams in order from one socket of a child process, blocking this event loop until all are sent. */
function burst(port: number, msgs: string[]): void {
  execFileSync(process.execPath, ['-e', SENDER, JSON.stringify(msgs), String(port)], { stdio: 'pipe' });
}

const req = (method: string, n: number | string) => `${method} sip:${n}@example.com SIP/2.0\r\nCall-ID: ${method.toLowerCase()}-${n}\r\n\r\n`;
const resp = (n: number | string) => `SIP/2.0 200 OK\r\nCall-ID: resp-${n}\r\n\r\n`;
const firstLine = (b: Uint8Array) => Buffer.from(b).toString('latin1').split('\r\n')[1]!;

/** Collects the Call-ID lines of what the transport delivers; `until` resolves once `n` have come. */
function collect(t: UdpTransport, onEach?: (got: string[]) => void) {
  const got: string[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  t.setReceiver({
    onMessage(bytes) {
      got.push(firstLine(bytes));
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
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('UdpTransport inbox: read fast, process by priority (real sockets, 127.0.0.1)', () => {
  it('delivers a response before the INVITEs that arrived ahead of it, and the INVITEs in their order', async () => {
    const t = await UdpTransport.bind();
    try {
      const c = collect(t);
      const invites = Array.from({ length: 20 }, (_, i) => req('INVITE', i));
      burst(t.local.port, [...invites, resp(1)]);
      await c.until(21);
      expect(c.got).toEqual(['Call-ID: resp-1', ...Array.from({ length: 20 }, (_, i) => `Call-ID: invite-${i}`)]);
      await turns();
      expect(t.stats).toMatchObject({ queued: 0, dropped: 0 });
      expect(t.stats.maxQueued).toBeGreaterThanOrEqual(21);
    } finally {
      await t.close();
    }
  });

  it('keeps arrival order within each lane: BYE before ACK, INVITE before CANCEL, the lanes interleaved by priority', async () => {
    const t = await UdpTransport.bind();
    try {
      const c = collect(t);
      burst(t.local.port, [req('INVITE', 'a'), req('BYE', 1), req('CANCEL', 'a'), req('ACK', 1), req('INVITE', 'b'), resp(2), req('OPTIONS', 1)]);
      await c.until(7);
      expect(c.got).toEqual([
        'Call-ID: bye-1',
        'Call-ID: ack-1',
        'Call-ID: resp-2',
        'Call-ID: options-1',
        'Call-ID: invite-a',
        'Call-ID: cancel-a',
        'Call-ID: invite-b',
      ]);
    } finally {
      await t.close();
    }
  });

  it('drops and counts new INVITEs beyond the low lane cap, while a response in the same burst is delivered', async () => {
    const t = await UdpTransport.bind({ inboxLimit: { datagrams: 5 } });
    try {
      const c = collect(t);
      burst(t.local.port, [...Array.from({ length: 20 }, (_, i) => req('INVITE', i)), resp(3)]);
      await c.until(6);
      await turns();
      expect(c.got).toEqual(['Call-ID: resp-3', ...Array.from({ length: 5 }, (_, i) => `Call-ID: invite-${i}`)]);
      expect(t.stats).toMatchObject({ queued: 0, dropped: 15, droppedLow: 15, droppedHigh: 0, droppedOnClose: 0, maxQueued: 6 });
    } finally {
      await t.close();
    }
  });

  it('caps the high lane too: responses beyond it are dropped and counted', async () => {
    const t = await UdpTransport.bind({ highInboxLimit: { datagrams: 3 } });
    try {
      const c = collect(t);
      burst(t.local.port, Array.from({ length: 8 }, (_, i) => resp(i)));
      await c.until(3);
      await turns();
      expect(c.got).toEqual(['Call-ID: resp-0', 'Call-ID: resp-1', 'Call-ID: resp-2']);
      expect(t.stats).toMatchObject({ queued: 0, dropped: 5, droppedHigh: 5, droppedLow: 0 });
    } finally {
      await t.close();
    }
  });

  it('close() drops what is still queued, counted, and delivers nothing afterwards', async () => {
    const t = await UdpTransport.bind();
    let closing: Promise<void> | undefined;
    const c = collect(t, () => {
      closing ??= t.close();
    });
    burst(t.local.port, [...Array.from({ length: 10 }, (_, i) => req('INVITE', i)), resp(4)]);
    await c.until(1);
    await closing;
    await turns();
    expect(c.got).toEqual(['Call-ID: resp-4']);
    expect(t.stats).toMatchObject({ queued: 0, dropped: 10, droppedOnClose: 10 });
  });
});
