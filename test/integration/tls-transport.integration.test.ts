import { X509Certificate } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRequest, createResponse, type SipResponse } from '../../src/parser/index.js';
import { TransactionLayer, type MessageSource } from '../../src/transaction/index.js';
import { FakeClock, TlsTransport, type TlsPeerIdentity, type TlsTransportOptions, type TransportError } from '../../src/transport/index.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../support/tls-certs.js';

// SIP over TLS between real sockets on 127.0.0.1, with certificates made for the run by a test CA.
if (!hasOpenssl && process.env.CI) throw new Error('openssl is not installed: .ci/run installs it');

let pki: TestPki;
beforeAll(() => {
  if (hasOpenssl) pki = makeTestPki();
});
afterAll(() => pki?.remove());

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
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

interface Peer {
  t: TlsTransport;
  messages: string[];
  froms: Array<{ address: string; port: number }>;
  errors: TransportError[];
}

async function peer(options: TlsTransportOptions): Promise<Peer> {
  const t = await TlsTransport.listen({ host: '127.0.0.1', ...options });
  closers.push(() => t.close());
  const p: Peer = { t, messages: [], froms: [], errors: [] };
  t.setReceiver({
    onMessage: (b, from) => {
      p.messages.push(Buffer.from(b).toString('latin1'));
      p.froms.push(from);
    },
    onError: (e) => p.errors.push(e),
  });
  return p;
}

const server = (extra: TlsTransportOptions = {}) => peer({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, ...extra });
const client = (extra: TlsTransportOptions = {}) => peer({ ca: pki.ca, ...extra });
const options = (n: number) => Buffer.from(`OPTIONS sip:sip.test SIP/2.0\r\nCall-ID: ${n}\r\nContent-Length: 0\r\n\r\n`);

/** A bare TLS client (not sipkit) to the transport, trusting the test CA. */
function rawTls(port: number, extra: Record<string, unknown> = {}): Promise<TLSSocket & { received: string; gone: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'sip.test', ca: pki.ca, ...extra }) as TLSSocket & { received: string; gone: boolean };
    s.received = '';
    s.gone = false;
    s.on('data', (d: Buffer) => (s.received += d.toString('latin1')));
    s.on('close', () => (s.gone = true));
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
    closers.push(() => s.destroy());
  });
}

function rawTcp(port: number): Promise<Socket & { gone: boolean }> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port }) as Socket & { gone: boolean };
    s.gone = false;
    s.on('close', () => (s.gone = true));
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    closers.push(() => s.destroy());
  });
}

describe.skipIf(!hasOpenssl)('TlsTransport (real TLS on 127.0.0.1, test CA)', () => {
  it('carries a SIP request and its response between two TransactionLayers, Via SIP/2.0/TLS, the server verified as sip.test', async () => {
    const bT = await TlsTransport.listen({ host: '127.0.0.1', cert: pki.server.cert, key: pki.server.key });
    const aT = await TlsTransport.listen({ host: '127.0.0.1', ca: pki.ca, serverNameFor: () => 'sip.test' });
    let seenVia = '';
    const b = new TransactionLayer({
      transports: [bT],
      user: {
        onRequest: (req, tx) => {
          seenVia = req.get('via') ?? '';
          tx.respond(createResponse(req, 200));
        },
      },
    });
    const a = new TransactionLayer({ transports: [aT], user: { onRequest: () => undefined } });
    closers.push(() => a.close(), () => b.close());
    const req = createRequest({ method: 'OPTIONS', uri: 'sips:sip.test', from: '<sips:a@sip.test>', to: '<sips:sip.test>' });
    const res = await new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response')), 5000);
      a.sendRequest(req, { ...bT.local, transport: 'tls' }, {
        onResponse: (r) => {
          if (r.status < 200) return;
          clearTimeout(timer);
          resolve(r);
        },
        onTransportError: (e) => reject(e),
      });
    });
    expect(res.status).toBe(200);
    expect(res.topVia!.transport).toBe('TLS');
    expect(seenVia).toMatch(/^SIP\/2\.0\/TLS 127\.0\.0\.1:\d+;branch=z9hG4bK/);
    const server = aT.peerIdentity({ ...bT.local, serverName: 'sip.test' });
    expect(server).toMatchObject({ authorized: true, sipDomains: ['sip.test'], serverName: 'sip.test' });
    expect(server!.fingerprint256).toBe(new X509Certificate(pki.server.cert).fingerprint256);
    expect(aT.connectionCount).toBe(1);
  });

  it('refuses a server whose certificate is for another host (no CN fallback when SANs exist): TLS_IDENTITY, nothing delivered', async () => {
    const wrong = await peer({ cert: pki.wrongHost.cert, key: pki.wrongHost.key });
    const c = await client();
    const err = await c.t.send(options(1), { ...wrong.t.local, serverName: 'sip.test' }).then(
      () => undefined,
      (e: TransportError) => e,
    );
    expect(err?.code).toBe('TLS_IDENTITY');
    expect(err?.message).toContain('other.test');
    await sleep(50);
    expect(wrong.messages).toEqual([]);
    expect(c.t.connectionCount).toBe(0);
  });

  it('through a TransactionLayer, a refused certificate is a synthesized 503 and a TLS_IDENTITY transport error', async () => {
    const wrong = await peer({ cert: pki.wrongHost.cert, key: pki.wrongHost.key });
    const aT = await TlsTransport.listen({ host: '127.0.0.1', ca: pki.ca, serverNameFor: () => 'sip.test' });
    const a = new TransactionLayer({ transports: [aT], user: { onRequest: () => undefined } });
    closers.push(() => a.close());
    const req = createRequest({ method: 'OPTIONS', uri: 'sips:sip.test', from: '<sips:a@sip.test>', to: '<sips:sip.test>' });
    const codes: string[] = [];
    const status = await new Promise<number>((resolve) =>
      a.sendRequest(req, { ...wrong.t.local, transport: 'tls' }, { onResponse: (r) => r.status >= 200 && resolve(r.status), onTransportError: (e) => codes.push(e.code) }),
    );
    expect(status).toBe(503);
    expect(codes).toEqual(['TLS_IDENTITY']);
    expect(wrong.messages).toEqual([]);
  });

  it('refuses a certificate for the IP address asked when it names no such IP', async () => {
    const s = await server();
    const c = await client();
    const err = await c.t.send(options(1), s.t.local).then(
      () => undefined,
      (e: TransportError) => e,
    );
    expect(err?.code).toBe('TLS_IDENTITY');
    expect(s.messages).toEqual([]);
  });

  it('refuses a server whose certificate a CA it does not trust signed: TLS_UNTRUSTED, nothing delivered', async () => {
    const stranger = await peer({ cert: pki.untrusted.cert, key: pki.untrusted.key });
    const c = await client();
    const err = await c.t.send(options(1), { ...stranger.t.local, serverName: 'sip.test' }).then(
      () => undefined,
      (e: TransportError) => e,
    );
    expect(err?.code).toBe('TLS_UNTRUSTED');
    await sleep(50);
    expect(stranger.messages).toEqual([]);
  });

  it('mutual TLS: the receiver learns the client’s verified identity for the connection a request came on', async () => {
    const s = await server({ requestCert: true });
    const identities: Array<TlsPeerIdentity | undefined> = [];
    s.t.setReceiver({ onMessage: (_b, from) => identities.push(s.t.peerIdentity(from)) });
    const c = await client({ cert: pki.client.cert, key: pki.client.key });
    await c.t.send(options(1), { ...s.t.local, serverName: 'sip.test' });
    expect(await until(() => identities.length === 1)).toBe(true);
    expect(identities[0]).toEqual({
      authorized: true,
      subject: { O: 'sipkit tests', CN: 'alice.client.test' },
      subjectAltNames: ['URI:sip:client.test', 'DNS:client.test'],
      sipDomains: ['client.test'],
      fingerprint256: new X509Certificate(pki.client.cert).fingerprint256,
      serverName: 'sip.test',
    });
  });

  it('mutual TLS: an authenticate hook gets the identity through the MessageSource of a TransactionLayer', async () => {
    const sT = await TlsTransport.listen({ host: '127.0.0.1', cert: pki.server.cert, key: pki.server.key, ca: pki.ca, requestCert: true });
    const cT = await TlsTransport.listen({ host: '127.0.0.1', ca: pki.ca, cert: pki.client.cert, key: pki.client.key, serverNameFor: () => 'sip.test' });
    const authenticate = (source: MessageSource) => (source.transport instanceof TlsTransport ? source.transport.peerIdentity(source.address) : undefined);
    let who: string[] | undefined;
    const sL = new TransactionLayer({
      transports: [sT],
      user: {
        onRequest: (req, tx, source) => {
          const id = authenticate(source);
          who = id?.authorized ? id.sipDomains : undefined;
          tx.respond(createResponse(req, id?.authorized ? 200 : 403));
        },
      },
    });
    const cL = new TransactionLayer({ transports: [cT], user: { onRequest: () => undefined } });
    closers.push(() => cL.close(), () => sL.close());
    const req = createRequest({ method: 'OPTIONS', uri: 'sips:sip.test', from: '<sips:a@client.test>', to: '<sips:sip.test>' });
    const status = await new Promise<number>((resolve) => cL.sendRequest(req, { ...sT.local, transport: 'tls' }, { onResponse: (r) => r.status >= 200 && resolve(r.status) }));
    expect(status).toBe(200);
    expect(who).toEqual(['client.test']);
  });

  it('mutual TLS: a client without a certificate, or with an untrusted one, is refused and reported; nothing is delivered', async () => {
    const s = await server({ requestCert: true });
    const bare = await rawTls(s.t.local.port);
    bare.write(options(1));
    expect(await until(() => bare.gone)).toBe(true);
    const stranger = await rawTls(s.t.local.port, { cert: pki.untrusted.cert, key: pki.untrusted.key });
    stranger.write(options(2));
    expect(await until(() => stranger.gone)).toBe(true);
    expect(s.messages).toEqual([]);
    expect(s.errors.map((e) => e.code)).toEqual(['TLS_UNTRUSTED', 'TLS_UNTRUSTED']);
    expect(s.errors[0]!.message).toContain('missing');
    expect(s.errors[1]!.message).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(await until(() => s.t.connectionCount === 0)).toBe(true);
  });

  it('mutual TLS with rejectUnauthorizedClients: false admits an unverified client and says so', async () => {
    const s = await server({ requestCert: true, rejectUnauthorizedClients: false });
    const ids: Array<TlsPeerIdentity | undefined> = [];
    s.t.setReceiver({ onMessage: (_b, from) => ids.push(s.t.peerIdentity(from)) });
    const stranger = await rawTls(s.t.local.port, { cert: pki.untrusted.cert, key: pki.untrusted.key });
    stranger.write(options(1));
    expect(await until(() => ids.length === 1)).toBe(true);
    expect(ids[0]).toMatchObject({ authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', sipDomains: ['sip.test'] });
  });

  it('reuses one connection per address, port and SIP domain; responses go back over the request’s connection', async () => {
    const s = await server();
    s.t.setReceiver({
      onMessage: (b, from) => {
        s.froms.push(from);
        void s.t.send(Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'), from);
      },
    });
    const c = await client();
    await c.t.send(options(1), { ...s.t.local, serverName: 'sip.test' });
    await c.t.send(options(2), { ...s.t.local, serverName: 'SIP.TEST' });
    expect(await until(() => c.messages.length === 2)).toBe(true);
    expect(c.t.connectionCount).toBe(1);
    expect(s.t.connectionCount).toBe(1);
    expect(new Set(s.froms.map((f) => f.port)).size).toBe(1);
    // Another SIP domain at the same address is another connection, checked for that domain.
    const err = await c.t.send(options(3), { ...s.t.local, serverName: 'other.test' }).then(
      () => undefined,
      (e: TransportError) => e,
    );
    expect(err?.code).toBe('TLS_IDENTITY');
    expect(c.t.connectionCount).toBe(1);
  });

  it('a target naming no domain (an IP address, as in a proxy\'s Record-Route) takes the connection verified for a domain at that address (RFC 3261 §18.1.1); not once it is closed', async () => {
    const s = await server();
    const c = await client();
    await c.t.send(options(1), { ...s.t.local, serverName: 'sip.test' });
    // The certificate names sip.test, not 127.0.0.1: alone, this target would be refused (see above).
    await c.t.send(options(2), s.t.local);
    expect(await until(() => s.messages.length === 2)).toBe(true);
    expect(c.t.connectionCount).toBe(1);
    expect(new Set(s.froms.map((f) => f.port)).size).toBe(1);
    // The server goes: the closed connection is forgotten, so the next send tries to connect anew (and finds nobody).
    await s.t.close();
    expect(await until(() => c.t.connectionCount === 0)).toBe(true);
    const err = await c.t.send(options(3), s.t.local).then(
      () => undefined,
      (e: TransportError) => e,
    );
    expect(err?.code).toBe('CONNECT_FAILED');
  });

  it('an unverified connection (rejectUnauthorized: false) is not taken for a target naming no domain', async () => {
    const s = await server();
    const loose = await client({ rejectUnauthorized: false });
    await loose.t.send(options(1), { ...s.t.local, serverName: 'other.test' });
    await loose.t.send(options(2), s.t.local);
    expect(await until(() => s.messages.length === 2)).toBe(true);
    // Both went, but over two connections: the first was never verified, so it proves nothing about the address.
    expect(loose.t.connectionCount).toBe(2);
  });

  it('picks the certificate by SNI with SNICallback, and tells the receiver the name asked for', async () => {
    const contexts = new Map([['sip.test', createSecureContext({ cert: pki.server.cert, key: pki.server.key })]]);
    const asked: string[] = [];
    const s = await peer({
      SNICallback: (name, cb) => {
        asked.push(name);
        cb(null, contexts.get(name));
      },
    });
    const ids: Array<TlsPeerIdentity | undefined> = [];
    s.t.setReceiver({ onMessage: (_b, from) => ids.push(s.t.peerIdentity(from)) });
    const c = await client();
    await c.t.send(options(1), { ...s.t.local, serverName: 'sip.test' });
    expect(await until(() => ids.length === 1)).toBe(true);
    expect(asked).toEqual(['sip.test']);
    expect(ids[0]).toMatchObject({ serverName: 'sip.test', authorized: false, authorizationError: 'NO_CERTIFICATE', sipDomains: [] });
  });

  it('answers a CRLF CRLF keep-alive ping with a CRLF pong (RFC 5626 §3.5.1)', async () => {
    const s = await server();
    const c = await rawTls(s.t.local.port);
    c.write('\r\n\r\n');
    expect(await until(() => c.received === '\r\n')).toBe(true);
  });

  it('pings its own connections every keepAliveIntervalMs and closes one whose pong does not come (RFC 5626 §4.4.1)', async () => {
    const clock = new FakeClock();
    const got: string[] = [];
    let answer = true;
    const far = createTlsServer({ cert: pki.server.cert, key: pki.server.key }, (sock) => {
      sock.on('data', (d: Buffer) => {
        got.push(d.toString('latin1'));
        if (answer && d.toString('latin1') === '\r\n\r\n') sock.write('\r\n');
      });
      sock.on('error', () => undefined);
    });
    await new Promise<void>((r) => far.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise((r) => far.close(r)));
    const farPort = (far.address() as { port: number }).port;
    const c = await client({ clock, keepAliveIntervalMs: 30_000 });
    await c.t.send(options(1), { address: '127.0.0.1', port: farPort, serverName: 'sip.test' });
    expect(await until(() => got.length === 1)).toBe(true);
    clock.advance(30_000);
    expect(await until(() => got.length === 2)).toBe(true);
    expect(got[1]).toBe('\r\n\r\n');
    await sleep(50);
    clock.advance(10_000);
    await sleep(50);
    expect(c.t.connectionCount).toBe(1);
    answer = false;
    clock.advance(20_000);
    expect(await until(() => got.length === 3)).toBe(true);
    clock.advance(10_000);
    expect(await until(() => c.t.connectionCount === 0)).toBe(true);
    expect(c.errors.map((e) => e.code)).toEqual(['KEEPALIVE_TIMEOUT']);
  });
});

describe.skipIf(!hasOpenssl)('TlsTransport connection limits (the same ConnectionPool as TCP)', () => {
  it('refuses the N+1th connection from one address before any handshake', async () => {
    const s = await server({ maxConnectionsPerAddress: 2 });
    const a = await rawTls(s.t.local.port);
    const b = await rawTls(s.t.local.port);
    const extra = await rawTcp(s.t.local.port);
    expect(await until(() => extra.gone)).toBe(true);
    expect(s.errors.map((e) => e.code)).toEqual(['CONNECTION_LIMIT']);
    expect(a.gone || b.gone).toBe(false);
    expect(s.t.inboundConnectionCount).toBe(2);
  });

  it('evicts the oldest idle inbound connection (a handshake never finished counts) when the inbound budget is full', async () => {
    const s = await server({ maxInboundConnections: 2 });
    const stalled = await rawTcp(s.t.local.port);
    expect(await until(() => s.t.inboundConnectionCount === 1)).toBe(true);
    const working = await rawTls(s.t.local.port);
    working.write(options(1));
    expect(await until(() => s.messages.length === 1)).toBe(true);
    const newcomer = await rawTls(s.t.local.port);
    expect(await until(() => stalled.gone)).toBe(true);
    expect(s.errors.map((e) => e.code)).toEqual(['CONNECTION_LIMIT']);
    newcomer.write(options(2));
    expect(await until(() => s.messages.length === 2)).toBe(true);
    expect(working.gone).toBe(false);
    expect(s.t.inboundConnectionCount).toBe(2);
  });

  it('closes a connection whose handshake and first message do not come within firstMessageTimeoutMs', async () => {
    const clock = new FakeClock();
    const s = await server({ clock, firstMessageTimeoutMs: 5000 });
    const stalled = await rawTcp(s.t.local.port);
    expect(await until(() => s.t.connectionCount === 1)).toBe(true);
    clock.advance(5000);
    expect(await until(() => stalled.gone)).toBe(true);
    expect(s.errors.map((e) => e.code)).toEqual(['MESSAGE_TIMEOUT']);
    expect(s.t.connectionCount).toBe(0);
  });

  it('keeps a separate outbound budget', async () => {
    const s = await server();
    const c = await client({ maxOutboundConnections: 1 });
    await c.t.send(options(1), { ...s.t.local, serverName: 'sip.test' });
    const err = await c.t.send(options(2), { ...s.t.local, serverName: 'other.test' }).then(
      () => undefined,
      (e: TransportError) => e,
    );
    expect(err?.code).toBe('CONNECTION_LIMIT');
  });
});
