import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTransport, type TransportError } from '../../src/transport/index.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

function client(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
    closers.push(() => s.destroy());
  });
}

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('TcpTransport on 127.0.0.1', () => {
  it('frames messages from a stream and answers CRLF CRLF keep-alives with CRLF', async () => {
    const t = await TcpTransport.listen({ host: '127.0.0.1' });
    closers.push(() => t.close());
    const got: string[] = [];
    t.setReceiver({ onMessage: (b) => got.push(Buffer.from(b).toString().split('\r\n')[0]!) });
    const s = await client(t.local.port);
    const pong = new Promise<string>((r) => s.once('data', (d) => r(d.toString())));
    s.write('\r\n\r\n');
    expect(await pong).toBe('\r\n');
    const msg = 'OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 2\r\n\r\nhi';
    s.write(msg.slice(0, 10));
    s.write(msg.slice(10) + msg);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(['OPTIONS sip:a SIP/2.0', 'OPTIONS sip:a SIP/2.0']);
  });

  it('closes a connection whose stream cannot be framed (missing Content-Length)', async () => {
    const t = await TcpTransport.listen({ host: '127.0.0.1' });
    closers.push(() => t.close());
    const errors: string[] = [];
    t.setReceiver({ onMessage: () => undefined, onError: (e: TransportError) => errors.push(e.code) });
    const s = await client(t.local.port);
    s.write('OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\n\r\n');
    await closed(s);
    expect(errors).toEqual(['FRAMING']);
  });

  it('limits connections per address and closes idle ones', async () => {
    const t = await TcpTransport.listen({ host: '127.0.0.1', maxConnectionsPerAddress: 2, idleTimeoutMs: 300 });
    closers.push(() => t.close());
    const errors: string[] = [];
    t.setReceiver({ onMessage: () => undefined, onError: (e: TransportError) => errors.push(e.code) });
    const a = await client(t.local.port);
    const b = await client(t.local.port);
    const c = await client(t.local.port);
    await closed(c); // the third from the same address is refused
    expect(errors).toContain('CONNECTION_LIMIT');
    expect(t.connectionCount).toBe(2);
    await Promise.all([closed(a), closed(b)]); // idle for 300 ms: closed by the transport
    for (let i = 0; i < 50 && t.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.connectionCount).toBe(0);
  });

  it('reuses one connection per remote for requests and responses', async () => {
    const server = await TcpTransport.listen({ host: '127.0.0.1' });
    const caller = await TcpTransport.listen({ host: '127.0.0.1' });
    closers.push(() => server.close(), () => caller.close());
    const atServer: Array<{ port: number }> = [];
    server.setReceiver({
      onMessage: (_b, from) => {
        atServer.push(from);
        void server.send(Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'), from);
      },
    });
    const atCaller: string[] = [];
    caller.setReceiver({ onMessage: (b) => atCaller.push(Buffer.from(b).toString().split('\r\n')[0]!) });
    const req = Buffer.from('OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    await caller.send(req, server.local);
    await caller.send(req, server.local);
    await new Promise((r) => setTimeout(r, 100));
    expect(atCaller).toEqual(['SIP/2.0 200 OK', 'SIP/2.0 200 OK']);
    expect(new Set(atServer.map((f) => f.port)).size).toBe(1);
    expect(caller.connectionCount).toBe(1);
    expect(server.connectionCount).toBe(1);
  });
});
