import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { CallSource } from '../../examples/trunk-server/call-index.js';
import { closeHttpApi, createHttpApi, listenHttpApi } from '../../examples/trunk-server/http-api.js';

const empty: CallSource = { list: () => [], get: () => undefined, on: () => undefined, off: () => undefined };

/**
 * A client on `port` whose first request is answered and whose second never finishes its header
 * block. Both go in one write, so once the first is answered the server holds the second.
 */
async function stalledClient(port: number) {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let answered: () => void = () => undefined;
  const firstAnswered = new Promise<void>((r) => (answered = r));
  socket.on('data', (b) => {
    received += b.toString();
    if (received.includes('next_page_token')) answered();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const head = 'Host: 127.0.0.1\r\nAuthorization: Bearer tok\r\n';
  socket.write(`GET /v1.0/calls HTTP/1.1\r\n${head}\r\nGET /v1.0/calls HTTP/1.1\r\n${head}`);
  await firstAnswered;
  return { closed, responses: () => received.match(/^HTTP\/1\.1 \d+/gm) };
}

describe('closeHttpApi', () => {
  it('drops a connection with a request in flight instead of waiting for it (here: 10 minutes of timeouts)', async () => {
    const http = createHttpApi(empty, 'tok', { headersTimeoutMs: 600_000, requestTimeoutMs: 600_000, keepAliveTimeoutMs: 600_000 });
    const { port } = await listenHttpApi(http, 0, '127.0.0.1');
    const client = await stalledClient(port);
    // Closing first and dropping the connections after would wait here for the headers timeout.
    await closeHttpApi(http);
    await client.closed;
    expect(client.responses()).toEqual(['HTTP/1.1 200']);
    expect(http.listening).toBe(false);
  });

  it('listenHttpApi reports the address bound, and rejects when the port is taken', async () => {
    const a = createHttpApi(empty, 'tok');
    const bound = await listenHttpApi(a, 0, '127.0.0.1');
    expect(bound).toEqual({ address: '127.0.0.1', port: expect.any(Number) });
    const b = createHttpApi(empty, 'tok');
    await expect(listenHttpApi(b, bound.port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await closeHttpApi(a);
  });
});
