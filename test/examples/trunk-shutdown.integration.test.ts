import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk } from '../../examples/trunk-server/server.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

describe('trunk stop() and the HTTP API', () => {
  it('stop() closes the HTTP API and cuts off a client stalled mid-request (see http-close.integration.test.ts for the wait it avoids)', async () => {
    const trunk = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
        http: { host: '127.0.0.1', port: 0, token: 'tok' },
        domains: {},
        cdr: { path: null },
        log: { level: 'error' },
      }),
    );
    stops.push(() => trunk.stop());
    const socket = connect(trunk.http.port, '127.0.0.1');
    let received = '';
    let answered: () => void = () => undefined;
    const firstAnswered = new Promise<void>((r) => (answered = r));
    socket.on('data', (b) => {
      received += b.toString();
      if (received.includes('next_page_token')) answered();
    });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    // One write: a whole request, then the start of a second whose header block never ends: once the
    // first is answered, the server holds the second.
    const head = 'Host: 127.0.0.1\r\nAuthorization: Bearer tok\r\n';
    socket.write(`GET /v1.0/calls HTTP/1.1\r\n${head}\r\nGET /v1.0/calls HTTP/1.1\r\n${head}`);
    await firstAnswered;
    await trunk.stop();
    await closed;
    // Dropped, not answered.
    expect(received.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 200']);
  });
});

