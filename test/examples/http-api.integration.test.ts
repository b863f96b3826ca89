import { connect } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import type { CallSource } from '../../examples/trunk-server/call-index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { createHttpApi, type HttpApiOptions } from '../../examples/trunk-server/http-api.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed, when the content-type is JSON. */
  json: any;
  /** Bytes of the stream this response took. */
  length: number;
}

/**
 * Write `request` as raw bytes on a new TCP connection and read one whole response: until the
 * peer closes or Content-Length bytes of body have arrived. Rejects after `timeoutMs`.
 */
function rawRequest(port: number, request: string | Buffer, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      let parsed: RawResponse | undefined;
      try {
        parsed = err ? undefined : parse(Buffer.concat(chunks));
      } catch (e) {
        err = e as Error;
      }
      if (!err && !parsed) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(parsed!);
    };
    const timer = setTimeout(() => finish(new Error(`no whole response in ${timeoutMs} ms: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`)), timeoutMs);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      finish();
    });
    sock.on('end', () => {
      finish();
      finish(new Error(`closed without a whole response: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    });
    sock.on('error', (e) => finish(e));
    sock.write(request);
  });
}

/** One HTTP/1.1 response with a Content-Length body, or undefined while incomplete. */
function parse(all: Buffer): RawResponse | undefined {
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = all.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(lines[0]!);
  if (!m) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i <= 0) throw new Error(`malformed header line: ${JSON.stringify(l)}`);
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length']);
  if (!Number.isInteger(length)) throw new Error(`no Content-Length: ${JSON.stringify(lines)}`);
  const bodyBytes = all.subarray(end + 4);
  if (bodyBytes.length < length) return undefined;
  const body = bodyBytes.subarray(0, length).toString('utf8');
  const json = /^application\/json\b/.test(headers['content-type'] ?? '') ? JSON.parse(body) : undefined;
  return { status: Number(m[1]), headers, body, json, length: end + 4 + length };
}

/** Write `request` (several pipelined requests) and read `count` responses off the one connection. */
function pipelined(port: number, request: string, count: number, timeoutMs = 5_000): Promise<RawResponse[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const out: RawResponse[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${out.length} of ${count} responses in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      try {
        for (let r = parse(buf); r; r = parse(buf)) {
          out.push(r);
          buf = buf.subarray(r.length);
        }
      } catch (e) {
        reject(e as Error);
      }
      if (out.length >= count) {
        clearTimeout(timer);
        sock.destroy();
        resolve(out);
      }
    });
    sock.write(request);
  });
}

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** The real trunk on ephemeral ports; its error log lines are kept. */
async function trunk(): Promise<{ trunk: TrunkServer; port: number; errors: string[] }> {
  const errors: string[] = [];
  const config = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'http-hardening-secret-0123456789abcdef' },
    cdr: { path: null },
    log: { level: 'error' },
  });
  const t = await startTrunk(config, { log: (level, event, fields) => level === 'error' && errors.push(`${event} ${JSON.stringify(fields)}`) });
  stops.push(() => t.stop('hangup'));
  return { trunk: t, port: t.http.port, errors };
}

const get = (path: string, headers = 'Authorization: Bearer tok\r\n') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`;

/** The API still answers a valid request. */
async function stillUp(port: number): Promise<void> {
  const ok = await rawRequest(port, get('/v1.0/calls'));
  expect(ok).toMatchObject({ status: 200, json: { result: [], next_page_token: null } });
}

describe('trunk HTTP API: malformed requests never crash it (issue #14)', () => {
  it('GET //[ (which new URL() throws on) is a JSON 401 without a token, a JSON 404 with one; the trunk answers on', async () => {
    const { port } = await trunk();
    // The operator's probe, byte for byte.
    const probe = await rawRequest(port, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(probe).toMatchObject({ status: 401, json: { error: { code: 'unauthorized' } } });
    const authed = await rawRequest(port, get('//['));
    // A path (RFC 9112 §3.2.1 origin-form) that names nothing here.
    expect(authed).toMatchObject({ status: 404, json: { error: { code: 'not_found', message: expect.any(String) } } });
    await stillUp(port);
  });

  it('GET /v1.0/calls/%zz (which decodeURIComponent throws on) is a JSON 400', async () => {
    const { port } = await trunk();
    expect(await rawRequest(port, get('/v1.0/calls/%zz'))).toMatchObject({ status: 400, json: { error: { code: 'bad_request' } } });
    expect(await rawRequest(port, get('/v1.0/calls/%E0%A4%A'))).toMatchObject({ status: 400 });
    await stillUp(port);
  });

  it('absolute-form targets are served; a target that is not a path is a JSON 400', async () => {
    const { port } = await trunk();
    expect(await rawRequest(port, get('http://x/v1.0/calls?page_size=1'))).toMatchObject({ status: 200, json: { result: [] } });
    expect(await rawRequest(port, get('*'))).toMatchObject({ status: 400, json: { error: { code: 'bad_request' } } });
    await stillUp(port);
  });

  it('what the HTTP parser rejects is a JSON 400 too (not a bare status line)', async () => {
    const { port } = await trunk();
    const bad = await rawRequest(port, 'GET /v1.0/calls HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'bad_request' } } });
    const huge = await rawRequest(port, `GET /v1.0/calls HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatchObject({ status: 431, json: { error: { code: 'headers_too_large' } } });
    await stillUp(port);
  });

  it('a failure inside the handler is a logged JSON 500, and the trunk answers on', async () => {
    const { trunk: t, port, errors } = await trunk();
    // A record the view cannot render (an invalid time) stands for any unexpected bug.
    const broken = { id: 'broken', state: 'hangup', timestamps: { created: Number.NaN }, source: {}, aLeg: {}, bLeg: {}, tags: {} };
    const realGet = t.b2bua.get.bind(t.b2bua);
    t.b2bua.get = ((id: string) => (id === 'broken' ? broken : realGet(id))) as typeof t.b2bua.get;
    expect(await rawRequest(port, get('/v1.0/calls/broken'))).toMatchObject({ status: 500, json: { error: { code: 'internal' } } });
    expect(errors).toEqual([expect.stringContaining('http.failed')]);
    await stillUp(port);
  });

  it('fuzzed paths, query strings and headers always get a whole JSON response, and the trunk answers on', async () => {
    const { port, errors } = await trunk();
    const seen = new Set<number>();
    const pathChar = fc.constantFrom(...'/%[]?#@:;=&+,.~!$\'()*az09AZ-_v1calls'.split(''), '/v1.0/calls', '/v1.0/calls/', '%zz', '%E0%A4', '%00', '%2F', '..', '\u00e9', '\u0000', '\u007f', ' ', '\t');
    const path = fc.oneof({ arbitrary: fc.constant(''), weight: 2 }, { arbitrary: fc.array(pathChar, { maxLength: 24 }).map((a) => a.join('')), weight: 3 });
    const query = fc.array(fc.tuple(fc.constantFrom('status', 'trunk_domain', 'page_size', 'page_token', 'x', ''), fc.string({ maxLength: 12 })), { maxLength: 4 })
      .map((kv) => (kv.length ? '?' + kv.map(([k, v]) => `${k}=${v}`).join('&') : ''));
    const headerName = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/).filter((n) => !/^(content-length|transfer-encoding|connection|host|expect|upgrade)$/i.test(n));
    const headerValue = fc.oneof({ arbitrary: fc.string({ maxLength: 40 }), weight: 4 }, { arbitrary: fc.string({ maxLength: 40, unit: 'binary-ascii' }), weight: 1 });
    const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 3 });
    const auth = fc.constantFrom('Authorization: Bearer tok\r\n', 'Authorization: Bearer tok\r\n', 'Authorization: Bearer wrong\r\n', 'Authorization: Basic dG9r\r\n', 'Authorization: Bearer\r\n', '');
    const method = fc.constantFrom('GET', 'GET', 'GET', 'POST', 'DELETE', 'OPTIONS', 'G\u00c9T');
    await fc.assert(
      fc.asyncProperty(method, fc.tuple(fc.constantFrom('/v1.0/calls', '/v1.0/calls/', '/', ''), path, query), headers, auth, async (m, [prefix, p, q], hs, a) => {
        const extra = hs.map(([n, v]) => `${n}: ${v}\r\n`).join('');
        const req = Buffer.from(`${m} ${prefix}${p}${q} HTTP/1.1\r\nHost: x\r\n${a}${extra}Connection: close\r\n\r\n`, 'latin1');
        const res = await rawRequest(port, req);
        expect([200, 400, 401, 404, 405, 431]).toContain(res.status);
        seen.add(res.status);
        // The live calls page (page.ts) is the one HTML answer.
        if (res.status === 200 && /^\/(index\.html)?$/.test(`${prefix}${p}${q}`.split('?')[0]!)) return void expect(res.headers['content-type']).toMatch(/^text\/html/);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        if (res.status === 200) expect(Array.isArray(res.json.result) || typeof res.json.id === 'string').toBe(true);
        else expect(res.json).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
      }),
      { numRuns: 250, seed: 14, interruptAfterTimeLimit: 60_000 },
    );
    // The fuzz reached past the parser, the token check and the router.
    expect([...seen].sort()).toEqual(expect.arrayContaining([200, 400, 401, 404, 405]));
    expect(errors).toEqual([]);
    await stillUp(port);
  }, 90_000);
});

describe('trunk HTTP API: bounded connections, request times and turns (issue #14 item 15)', () => {
  const empty: CallSource = { get: () => undefined, list: () => [], on: () => undefined, off: () => undefined };

  async function api(options: HttpApiOptions): Promise<{ server: Server; port: number }> {
    const server = createHttpApi(empty, 'tok', options);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    stops.push(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    return { server, port: (server.address() as { port: number }).port };
  }

  /** A connection that has sent half a request and waits. */
  async function hold(port: number): Promise<ReturnType<typeof connect>> {
    const s = connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.on('error', () => undefined);
    s.write('GET /v1.0/calls HTTP/1.1\r\nHost: x\r\n');
    stops.push(async () => void s.destroy());
    return s;
  }

  it('beyond maxConnections a new connection is closed unanswered; once one closes, requests are served again', async () => {
    const { server, port } = await api({ maxConnections: 2 });
    const dropped = new Promise((r) => server.once('drop', r));
    const a = await hold(port);
    await hold(port);
    await expect(rawRequest(port, get('/v1.0/calls'))).rejects.toThrow(/closed without a whole response/);
    await dropped;
    a.destroy();
    // The server sees the close on its next turn; ask until it has (bounded).
    for (let n = 0; ; n++) {
      const r = await rawRequest(port, get('/v1.0/calls')).catch(() => undefined);
      if (r) {
        expect(r).toMatchObject({ status: 200, json: { result: [] } });
        break;
      }
      if (n === 50) throw new Error('never served again');
      await new Promise((res) => setTimeout(res, 20));
    }
  });

  it('a header block that does not finish within headersTimeout gets a JSON 408 and the connection is closed', async () => {
    const { port } = await api({ headersTimeoutMs: 200, requestTimeoutMs: 400, timeoutCheckIntervalMs: 50 });
    // Half a request; the other half never comes.
    const r = await rawRequest(port, 'GET /v1.0/calls HTTP/1.1\r\nHost: x\r\n', 5_000);
    expect(r).toMatchObject({ status: 408, headers: { connection: 'close' }, json: { error: { code: 'request_timeout' } } });
  });

  it('an idle keep-alive connection is closed after keepAliveTimeout', async () => {
    const { port } = await api({ keepAliveTimeoutMs: 100 });
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    stops.push(async () => void s.destroy());
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write('GET /v1.0/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n');
    const bound = new Promise<'open'>((r) => setTimeout(() => r('open'), 3_000));
    expect(await Promise.race([closed.then(() => 'closed' as const), bound])).toBe('closed');
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('requests are answered in turns with the event loop running between them, not all in one go', async () => {
    // A loop-turn counter, and the turn each request is served in (a lookup by id reads get()).
    let turns = 0;
    const servedIn: number[] = [];
    const source: CallSource = { ...empty, get: () => void servedIn.push(turns) };
    const server = createHttpApi(source, 'tok', { turnMs: 0 });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    stops.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking && turns < 100_000) setImmediate(tick);
    };
    setImmediate(tick);
    // Six pipelined requests in one write reach the server in one read.
    const req = 'GET /v1.0/calls/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n';
    const res = await pipelined(port, req.repeat(6), 6);
    ticking = false;
    expect(res.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 404]);
    expect(servedIn).toHaveLength(6);
    // Each in a turn of its own.
    expect(new Set(servedIn).size).toBe(6);
  });

  it('beyond maxQueued waiting requests, a JSON 503 with Retry-After', async () => {
    const { port } = await api({ maxQueued: 2 });
    const req = 'GET /v1.0/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n\r\n';
    const res = await pipelined(port, req.repeat(5), 5);
    expect(res.map((r) => r.status)).toEqual([200, 200, 503, 503, 503]);
    expect(res[2]).toMatchObject({ headers: { 'retry-after': '1' }, json: { error: { code: 'busy' } } });
    expect(await rawRequest(port, get('/v1.0/calls'))).toMatchObject({ status: 200 });
  });
});
