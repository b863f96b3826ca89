import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CallRecord } from 'sipkit/b2bua';
import { viewOf } from './call-view.js';
import { ApiError, type HttpRoute } from './http-api.js';
import { PAGE_SCRIPT, PAGE_STYLE, pageHtml } from './page-html.js';

/** The B2BUA events the live page follows (a `B2bua` has them). */
export interface PageEvents {
  on(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
  off(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
}

export interface PageOptions {
  /** Event streams open at most; beyond, 503 (default 32). */
  maxStreams?: number;
  /** A stream whose client reads slower than this many bytes behind is closed (default 1 MiB). */
  maxBuffered?: number;
  /** A comment line this often keeps proxies from closing an idle stream (default 15 s). */
  keepAliveMs?: number;
}

export interface LivePage {
  /** `GET /` (the page, no token: it holds no data) and `GET /v1.0/events` (the token, as a header or `?token=`). */
  routes: HttpRoute[];
  /** Streams open now. */
  readonly streams: number;
  /** End every stream and stop following the B2BUA. */
  close(): void;
}

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/**
 * The live calls page: `GET /` serves one self-contained HTML document (page-html.ts) that
 * lists the calls from `GET /v1.0/calls`, follows them over Server-Sent Events from
 * `GET /v1.0/events` (one `call` event with the call's JSON per change of any call), and draws
 * a selected call's SIP ladder from `GET /v1.0/calls/{id}/messages` (capture.ts).
 *
 * EventSource cannot send headers, so the events endpoint — and only it — also takes the
 * token as `?token=`; the page keeps it in localStorage.
 */
export function createLivePage(b2bua: PageEvents, options: PageOptions = {}): LivePage {
  const maxStreams = options.maxStreams ?? 32;
  const maxBuffered = options.maxBuffered ?? 1024 * 1024;
  const html = pageHtml();
  const headers = {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(html)),
    'cache-control': 'no-store',
    // Only the page's own script and style run, and it talks only to this server.
    'content-security-policy': `default-src 'none'; script-src ${hash(PAGE_SCRIPT)}; style-src ${hash(PAGE_STYLE)}; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  const streams = new Set<ServerResponse>();
  const write = (res: ServerResponse, chunk: string) => {
    if (res.writableLength > maxBuffered) return void res.destroy();
    res.write(chunk);
  };
  const onChange = (r: CallRecord) => {
    if (streams.size === 0) return;
    const event = `event: call\ndata: ${JSON.stringify(viewOf(r))}\n\n`;
    for (const res of streams) write(res, event);
  };
  b2bua.on('call', onChange);
  b2bua.on('update', onChange);
  b2bua.on('end', onChange);
  const keepAlive = setInterval(() => {
    for (const res of streams) write(res, ': keep-alive\n\n');
  }, options.keepAliveMs ?? 15_000);
  keepAlive.unref();

  const page: HttpRoute = (req, res, { path }) => {
    if (path !== '/' && path !== '/index.html') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError(405, 'method_not_allowed', 'only GET', { allow: 'GET, HEAD' });
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : html);
    return true;
  };
  const events: HttpRoute = (req, res, { path, query, authorized, tokenMatches }) => {
    if (path !== '/v1.0/events') return false;
    if (req.method !== 'GET') throw new ApiError(405, 'method_not_allowed', 'only GET', { allow: 'GET' });
    const t = query.get('token');
    if (!authorized && !(t !== null && tokenMatches(t))) throw new ApiError(401, 'unauthorized', 'a valid bearer token (or ?token=) is required', { 'www-authenticate': 'Bearer' });
    if (streams.size >= maxStreams) throw new ApiError(503, 'busy', 'too many event streams', { 'retry-after': '5' });
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    // The client reconnects after 2 s when the stream drops (and re-reads the list itself).
    res.write('retry: 2000\n\n');
    streams.add(res);
    res.on('close', () => streams.delete(res));
    return true;
  };
  return {
    routes: [page, events],
    get streams() {
      return streams.size;
    },
    close() {
      clearInterval(keepAlive);
      b2bua.off('call', onChange);
      b2bua.off('update', onChange);
      b2bua.off('end', onChange);
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
