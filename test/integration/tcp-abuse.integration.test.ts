import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, TcpTransport, type TcpTransportOptions, type TransportError } from '../../src/transport/index.js';

// Issue #14: slow senders (items 12) and connection budgets (item 13) over real sockets on loopback.

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` until it holds or `ms` of real time pass (a bound, not an assertion on timing). */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited >= ms) return false;
    await sleep(10);
  }
  return true;
}

interface Client {
  socket: Socket;
  closed: boolean;
  received: string;
}

function client(port: number, localAddress = '127.0.0.1'): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c: Client = { socket: connect({ host: '127.0.0.1', port, localAddress }), closed: false, received: '' };
    c.socket.on('data', (d) => (c.received += d.toString('latin1')));
    c.socket.on('close', () => (c.closed = true));
    c.socket.on('error', () => undefined);
    c.socket.once('connect', () => resolve(c));
    c.socket.once('error', reject);
    closers.push(() => c.socket.destroy());
  });
}

async function listen(options: TcpTransportOptions) {
  const t = await TcpTransport.listen({ host: '127.0.0.1', ...options });
  closers.push(() => t.close());
  const errors: string[] = [];
  const messages: string[] = [];
  t.setReceiver({
    onMessage: (b) => messages.push(Buffer.from(b).toString('latin1')),
    onError: (e: TransportError) => errors.push(e.code),
  });
  return { t, errors, messages };
}

const options = (n: number) => `OPTIONS sip:a SIP/2.0\r\nCall-ID: ${n}\r\nContent-Length: 0\r\n\r\n`;

describe('TcpTransport message deadlines (FakeClock, real sockets)', () => {
  it('closes a connection dripping a message one byte per second messageTimeoutMs after its first byte', async () => {
    const clock = new FakeClock();
    const { t, errors, messages } = await listen({ clock });
    const c = await client(t.local.port);
    c.socket.write(options(1));
    expect(await until(() => messages.length === 1)).toBe(true);
    const drip = Buffer.from(options(2));
    // Default 20 s from the first byte; each byte would have reset the old 120 s idle timer.
    for (let s = 0; s < 20; s++) {
      c.socket.write(drip.subarray(s, s + 1));
      expect(await until(() => t.bufferedBytes === s + 1)).toBe(true);
      clock.advance(s < 19 ? 1000 : 999);
    }
    expect(c.closed || t.connectionCount === 0).toBe(false);
    clock.advance(1);
    expect(await until(() => c.closed)).toBe(true);
    expect(errors).toEqual(['MESSAGE_TIMEOUT']);
    expect(t.connectionCount).toBe(0);
    expect(t.bufferedBytes).toBe(0);
  });

  it('closes a new connection that sends only keep-alives and no message for firstMessageTimeoutMs', async () => {
    const clock = new FakeClock();
    const { t, errors } = await listen({ clock, firstMessageTimeoutMs: 5000 });
    const c = await client(t.local.port);
    for (let i = 1; i <= 4; i++) {
      c.socket.write('\r\n\r\n');
      expect(await until(() => c.received.length === 2 * i)).toBe(true); // each ping answered with CRLF
      clock.advance(1000);
    }
    clock.advance(999);
    expect(c.closed).toBe(false);
    clock.advance(1);
    expect(await until(() => c.closed)).toBe(true);
    expect(errors).toEqual(['MESSAGE_TIMEOUT']);
  });

  it('keeps a connection whose messages arrive whole, with keep-alives between, until it falls idle', async () => {
    const clock = new FakeClock();
    const { t, errors, messages } = await listen({ clock, idleTimeoutMs: 60_000 });
    const c = await client(t.local.port);
    for (let i = 1; i <= 5; i++) {
      // Each message in two pieces 15 s apart: within the 20 s message deadline.
      const m = options(i);
      c.socket.write(m.slice(0, 10));
      expect(await until(() => t.bufferedBytes === 10)).toBe(true);
      clock.advance(15_000);
      c.socket.write(m.slice(10));
      expect(await until(() => messages.length === i)).toBe(true);
      c.socket.write('\r\n\r\n');
      expect(await until(() => c.received.length === 2 * i)).toBe(true);
      clock.advance(15_000);
    }
    expect(c.closed).toBe(false);
    expect(errors).toEqual([]);
    clock.advance(45_000); // 60 s after the last byte: idle
    expect(await until(() => c.closed)).toBe(true);
    expect(errors).toEqual([]);
  });
});

describe('TcpTransport message deadlines (real clock, short limits)', () => {
  it('closes a connection dripping bytes slower than messageTimeoutMs allows', async () => {
    const { t, errors } = await listen({ messageTimeoutMs: 200, firstMessageTimeoutMs: 60_000 });
    const c = await client(t.local.port);
    const drip = Buffer.from(options(1));
    // Bounded: at most one byte per 20 ms, for at most the whole message (about 1.2 s).
    for (let i = 0; i < drip.length && !c.closed; i++) {
      c.socket.write(drip.subarray(i, i + 1));
      await sleep(20);
    }
    expect(await until(() => c.closed)).toBe(true);
    expect(errors).toContain('MESSAGE_TIMEOUT');
  });

  it('closes a connection that never sends a message', async () => {
    const { t, errors } = await listen({ firstMessageTimeoutMs: 200 });
    const c = await client(t.local.port);
    expect(await until(() => c.closed)).toBe(true);
    expect(errors).toEqual(['MESSAGE_TIMEOUT']);
  });
});

describe('TcpTransport connection budgets (real sockets)', () => {
  it('evicts the oldest idle inbound connection when the inbound budget is full', async () => {
    const { t, errors, messages } = await listen({ maxInboundConnections: 3 });
    const idle: Client[] = [];
    for (let i = 0; i < 3; i++) {
      idle.push(await client(t.local.port));
      expect(await until(() => t.inboundConnectionCount === i + 1)).toBe(true);
    }
    const fresh = await client(t.local.port);
    expect(await until(() => idle[0]!.closed)).toBe(true);
    fresh.socket.write(options(1));
    expect(await until(() => messages.length === 1)).toBe(true);
    expect(fresh.closed || idle[1]!.closed || idle[2]!.closed).toBe(false);
    expect(t.inboundConnectionCount).toBe(3);
    expect(errors).toEqual(['CONNECTION_LIMIT']);
  });

  it('does not evict a connection with a message in progress or one used within the grace period', async () => {
    const clock = new FakeClock();
    const { t, errors, messages } = await listen({ clock, maxInboundConnections: 2, evictionGraceMs: 10_000, messageTimeoutMs: 60_000 });
    const used = await client(t.local.port);
    used.socket.write(options(1));
    expect(await until(() => messages.length === 1)).toBe(true);
    const busy = await client(t.local.port);
    busy.socket.write('OPTIONS sip:a SIP/2.0\r\n');
    expect(await until(() => t.bufferedBytes > 0)).toBe(true);
    const refused = await client(t.local.port);
    expect(await until(() => refused.closed)).toBe(true);
    expect(errors).toEqual(['CONNECTION_LIMIT']);
    clock.advance(10_000); // `used` has now been idle for the grace period; `busy` is still mid-message
    const admitted = await client(t.local.port);
    expect(await until(() => used.closed)).toBe(true);
    admitted.socket.write(options(2));
    expect(await until(() => messages.length === 2)).toBe(true);
    expect(busy.closed || admitted.closed).toBe(false);
  });

  it('full inbound budget does not stop outbound connections', async () => {
    const { t, errors } = await listen({ maxInboundConnections: 2, maxOutboundConnections: 2 });
    const peer = await listen({});
    for (let i = 0; i < 2; i++) await client(t.local.port);
    expect(await until(() => t.inboundConnectionCount === 2)).toBe(true);
    await t.send(Buffer.from(options(1)), peer.t.local);
    expect(await until(() => peer.messages.length === 1)).toBe(true);
    expect(t.outboundConnectionCount).toBe(1);
    expect(errors).toEqual([]);
  });

  it('the deprecated shared maxConnections now gives each direction its own budget', async () => {
    // Before: one budget of 2 for both ways, so two idle inbound connections made send() throw CONNECTION_LIMIT.
    const { t } = await listen({ maxConnections: 2 });
    const peer = await listen({});
    for (let i = 0; i < 2; i++) await client(t.local.port);
    expect(await until(() => t.connectionCount === 2)).toBe(true);
    await t.send(Buffer.from(options(1)), peer.t.local);
    expect(await until(() => peer.messages.length === 1)).toBe(true);
  });

  it('refuses the N+1th connection from one address at once, while another address still connects', async () => {
    const { t, errors, messages } = await listen({ maxConnectionsPerAddress: 2, maxInboundConnections: 2 });
    const a1 = await client(t.local.port, '127.0.0.1');
    const a2 = await client(t.local.port, '127.0.0.1');
    expect(await until(() => t.inboundConnectionCount === 2)).toBe(true);
    const a3 = await client(t.local.port, '127.0.0.1');
    expect(await until(() => a3.closed)).toBe(true);
    expect(errors).toEqual(['CONNECTION_LIMIT']); // refused: no idle connection was evicted for it
    expect(a1.closed || a2.closed).toBe(false);
    // The inbound budget is full too, but 127.0.0.2 is under its own limit: the oldest idle goes.
    const b = await client(t.local.port, '127.0.0.2');
    expect(await until(() => a1.closed)).toBe(true);
    b.socket.write(options(1));
    expect(await until(() => messages.length === 1)).toBe(true);
    expect(b.closed || a2.closed).toBe(false);
  });
});
