// UdpTransport's send thread (issue #16): datagrams are copied into a shared ring and a worker
// thread makes the send system calls from a socket sharing the transport's port, so replies
// leave from the port requests came to (RFC 3261 §18.2.2, RFC 3581 §4) while the transport
// itself still receives everything. Real loopback sockets throughout.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { TransportError, UdpTransport, type TransportAddress } from '../../src/transport/index.js';

const linux = process.platform === 'linux';
if (!linux) console.warn('SKIPPED udp-send-thread: relies on Linux delivering to the socket bound last');

interface Peer {
  socket: Socket;
  address: TransportAddress;
  got: { text: string; port: number }[];
  until(n: number): Promise<void>;
}

async function peer(): Promise<Peer> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  socket.setRecvBufferSize(4 * 1024 * 1024);
  const got: Peer['got'] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (m, ri) => {
    got.push({ text: m.toString('latin1'), port: ri.port });
    for (const w of waiters.splice(0)) w();
  });
  const until = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${n} datagrams`)), 5000);
      const check = (): void => {
        if (got.length >= n) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { socket, address: { address: '127.0.0.1', port: socket.address().port }, got, until };
}

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function threaded(options: { ringBytes?: number } = {}): Promise<UdpTransport> {
  const t = await UdpTransport.bind({ sendThread: options.ringBytes === undefined ? true : options });
  open.push(t);
  return t;
}

describe.skipIf(!linux)('UdpTransport sendThread (integration)', () => {
  it('sends on the worker thread, in order, from the port it listens on', async () => {
    const t = await threaded();
    const p = await peer();
    open.push(p.socket);
    expect(t.sendThreadStats).toMatchObject({ active: true, posted: 0, refused: 0 });
    const failed: TransportError[] = [];
    for (let i = 0; i < 300; i++) t.post(Buffer.from(`datagram ${i}`), p.address, (e) => failed.push(e));
    await p.until(300);
    expect(p.got.map((g) => g.text)).toEqual(Array.from({ length: 300 }, (_, i) => `datagram ${i}`));
    expect(new Set(p.got.map((g) => g.port))).toEqual(new Set([t.local.port]));
    expect(t.sendThreadStats).toMatchObject({ active: true, posted: 300, refused: 0 });
    expect(failed).toEqual([]);
  });

  it('receives what is sent to its port itself (the thread’s socket gets nothing)', async () => {
    const t = await threaded();
    const p = await peer();
    open.push(p.socket);
    const received: string[] = [];
    t.setReceiver({ onMessage: (bytes) => received.push(Buffer.from(bytes).toString()) });
    // A minimal request the inbox hands on (it only reads the start line and the method).
    for (let i = 0; i < 20; i++) p.socket.send(`OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nCall-ID: c${i}\r\nCSeq: 1 OPTIONS\r\n\r\n`, t.local.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toHaveLength(20);
  });

  it('reports a send the kernel refuses to the caller, asynchronously, as SEND_FAILED with the errno as cause', async () => {
    const t = await threaded();
    // Broadcast without SO_BROADCAST: refused locally (EACCES), nothing leaves the host.
    const error = await new Promise<TransportError>((resolve) => t.post(Buffer.from('x'), { address: '255.255.255.255', port: 9 }, resolve));
    expect(error).toBeInstanceOf(TransportError);
    expect(error.code).toBe('SEND_FAILED');
    expect(error.remote).toEqual({ address: '255.255.255.255', port: 9 });
    expect((error.cause as NodeJS.ErrnoException).code).toBe('EACCES');
    expect(t.sendThreadStats!.posted).toBe(1);
  });

  it('send() resolves once the thread has the datagram; a later failure goes to the receiver', async () => {
    const t = await threaded();
    const errors: TransportError[] = [];
    t.setReceiver({ onMessage: () => {}, onError: (e) => errors.push(e) });
    await t.send(Buffer.from('x'), { address: '255.255.255.255', port: 9 });
    await new Promise((r) => setTimeout(r, 100));
    expect(errors.map((e) => e.code)).toEqual(['SEND_FAILED']);
  });

  it('keeps datagrams that find the ring full waiting, in order, and loses none', async () => {
    const t = await threaded({ ringBytes: 64 * 1024 });
    const p = await peer();
    open.push(p.socket);
    const body = 'x'.repeat(1000);
    for (let i = 0; i < 400; i++) t.post(Buffer.from(`${i} ${body}`), p.address, () => {});
    await p.until(400);
    expect(p.got.map((g) => Number(g.text.split(' ')[0]))).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(t.sendThreadStats).toMatchObject({ posted: 400, refused: 0 });
  });

  it('lets go of the failure callbacks of sends that completed (they hold their transactions)', async () => {
    const t = await threaded();
    const p = await peer();
    open.push(p.socket);
    for (let i = 0; i < 100; i++) t.post(Buffer.from(`d ${i}`), p.address, () => {});
    await p.until(100);
    await new Promise((r) => setTimeout(r, 250));
    const slots = (t as unknown as { thread: { slotCallbacks: unknown[] } }).thread.slotCallbacks;
    expect(slots.filter((c) => c !== undefined)).toEqual([]);
  });

  it('refuses a port another SO_REUSEADDR socket holds (it would take that socket’s traffic)', async () => {
    const first = await threaded();
    const err = await UdpTransport.bind({ port: first.local.port, sendThread: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('SOCKET');
  });

  it('takes any ring size: out of range or not a number gives a working ring', async () => {
    for (const ringBytes of [Number.NaN, 1, 2 ** 40]) {
      const t = await threaded({ ringBytes });
      expect(t.sendThreadStats?.active).toBe(true);
    }
  });

  it('sends what is queued before close, then gives the port up', async () => {
    const t = await UdpTransport.bind({ sendThread: true });
    const p = await peer();
    open.push(p.socket);
    for (let i = 0; i < 200; i++) t.post(Buffer.from(`q ${i}`), p.address, () => {});
    await t.close();
    await p.until(200);
    // Both sockets are closed: a socket without SO_REUSEADDR can have the port.
    const again = await UdpTransport.bind({ port: t.local.port });
    await again.close();
    const late = await new Promise<TransportError>((resolve) => t.post(Buffer.from('late'), p.address, resolve));
    expect(late.code).toBe('CLOSED');
  });

  it('keeps send() (a promise of the datagram leaving) working beside the thread', async () => {
    const t = await threaded();
    const p = await peer();
    open.push(p.socket);
    await t.send(Buffer.from('promised'), p.address);
    await p.until(1);
    expect(p.got[0]).toEqual({ text: 'promised', port: t.local.port });
  });

  it('sends what the ring held when the thread ended unexpectedly, and says so to the receiver', async () => {
    const t = await threaded();
    const p = await peer();
    open.push(p.socket);
    const errors: TransportError[] = [];
    t.setReceiver({ onMessage: () => {}, onError: (e) => errors.push(e) });
    // The worker is private: ended from outside here, as a crash would end it, while datagrams are queued.
    void (t as unknown as { thread: { worker: { terminate(): Promise<number> } } }).thread.worker.terminate();
    for (let i = 0; i < 50; i++) t.post(Buffer.from(`before ${i}`), p.address, () => {});
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 50; i++) t.post(Buffer.from(`after ${i}`), p.address, () => {});
    await p.until(100);
    expect(new Set(p.got.map((g) => g.port))).toEqual(new Set([t.local.port]));
    expect(t.sendThreadStats?.active).toBe(false);
    expect(errors.map((e) => e.code)).toEqual(['SOCKET']);
  });

  it('fails to bind, as SOCKET, a port a socket without SO_REUSEADDR holds', async () => {
    const plain = await UdpTransport.bind();
    open.push(plain);
    const err = await UdpTransport.bind({ port: plain.local.port, sendThread: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('SOCKET');
  });
});
