import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CallRecord } from 'sipkit/b2bua';
import { CallIndex, CursorError, type CallFilter, type CallSource } from './call-index.js';
import { viewOf } from './call-view.js';
import type { Logger } from './log.js';

export interface HttpApiOptions {
  /** Where a request that failed unexpectedly (a 500) is reported. */
  log?: Logger;
  /** Open connections at most; beyond, a new one is closed at once (default 256). */
  maxConnections?: number;
  /** The whole header block must arrive within this (default 10 s; 408 otherwise). */
  headersTimeoutMs?: number;
  /** The whole request must arrive within this (default 30 s; 408 otherwise). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** How often the two request timeouts are checked (default 1 s; Node's own is 30 s). */
  timeoutCheckIntervalMs?: number;
  /** Requests are answered in turns of at most about this long, with SIP I/O between turns (default 5 ms). */
  turnMs?: number;
  /** Requests waiting for a turn at most; beyond, 503 (default 1024). */
  maxQueued?: number;
  /**
   * More endpoints, asked in order before the calls API (and before its method and token
   * checks): each answers the request and returns true, or returns false to pass it on. One
   * may throw an `ApiError` for a JSON error response.
   */
  routes?: readonly HttpRoute[];
  /**
   * Where the calls API looks calls up, when not in this process's own records: a cluster's
   * shared store (pg-records.ts), so any instance answers for every call. Default: the B2BUA's
   * records through a `CallIndex`, answered synchronously.
   */
  calls?: CallLookup;
}

/** An asynchronous source of the calls API's answers (each call as its JSON text). */
export interface CallLookup {
  /** The call's JSON, or undefined when there is no such call. */
  get(id: string): Promise<string | undefined>;
  /**
   * Up to `size` calls matching `filter`, newest first, after the cursor `after`.
   * @throws CursorError (or rejects with it) for a cursor it did not make.
   */
  page(filter: CallFilter, size: number, after: string | undefined): Promise<{ items: string[]; next: string | null }>;
}

/** What a route sees of the request besides itself. */
export interface RouteContext {
  path: string;
  query: URLSearchParams;
  /** The request carries the API's bearer token. */
  authorized: boolean;
  /** Whether `candidate` is the API's token (constant time), for a token sent another way. */
  tokenMatches(candidate: string): boolean;
}

/**
 * An extra endpoint of the HTTP API (provisioning, metrics, health, the calls page…): it
 * returns true when it answers the request — then or later, after reading a body — and
 * false to pass it on. It checks `ctx.authorized` itself (the page and health are public).
 */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => boolean;

/** A request the API refuses, with the status and stable code it answers with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, JSON.stringify(body), headers);
}

function sendJson(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function tokenOk(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m ? sameToken(m[1]!, token) : false;
}

function sameToken(candidate: string, token: string): boolean {
  const a = Buffer.from(candidate);
  const b = Buffer.from(token);
  // Constant-time, whatever the length of what was sent.
  return a.length === b.length ? timingSafeEqual(a, b) : (timingSafeEqual(b, b), false);
}

/**
 * The request-target as a path and a query, without `new URL()` (which throws on
 * targets such as `//[`). Origin-form and absolute-form are accepted (RFC 9112 §3.2.1, §3.2.2).
 */
function parseTarget(raw: string): { path: string; query: URLSearchParams } {
  let target = raw.replace(/^https?:\/\/[^/?#]*/i, '');
  if (target !== raw && !target.startsWith('/')) target = '/' + target; // http://host?q names the path '/'
  if (!target.startsWith('/')) throw new ApiError(400, 'bad_request', 'the request-target must be a path');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  // URLSearchParams leaves a malformed percent-escape as it is instead of throwing.
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  return { path, query };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, 'bad_request', 'malformed percent-encoding in the path');
  }
}

/** A raw JSON error on a socket the HTTP parser gave up on (no ServerResponse exists there). */
function rawError(status: number, phrase: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${phrase}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/** What the HTTP parser's errors are answered with (the rest: 400). */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'headers_too_large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request_timeout'],
};

function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset peer gets nothing; nor does a socket whose response has started (it would corrupt it).
  const pending = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, phrase, code] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request', 'bad_request'];
  socket.end(rawError(status, phrase, code, status === 400 ? 'malformed HTTP request' : phrase.toLowerCase()));
}

/**
 * Call tracking: GET /v1.0/calls/{id} and GET /v1.0/calls?status=&trunk_domain=&page_size=&page_token=.
 * Bearer-token auth on everything. No request throws out of the handler: a malformed one is a
 * 4xx JSON error, anything unexpected a logged 500.
 *
 * The API runs on the SIP event loop, so what a request costs is bounded: lists come from a
 * `CallIndex` (a page costs its length, not the number of stored calls), each call's JSON is
 * made once per change, and requests are answered in short turns with SIP I/O in between.
 * With `options.calls` (a cluster's shared store, pg-records.ts) both endpoints answer from it
 * instead, asynchronously: every instance's calls, not only this process's.
 *
 * On its own, with a plain B2BUA:
 *
 *     const http = createHttpApi(b2bua, process.env.API_TOKEN!);
 *     await listenHttpApi(http, 8080, '127.0.0.1');
 *     // on shutdown: await closeHttpApi(http);
 */
export function createHttpApi(b2bua: CallSource, token: string, options: HttpApiOptions = {}): Server {
  const lookup = options.calls;
  const index = lookup ? undefined : new CallIndex(b2bua);
  // Every change of a record is an `update` (or `end`) event of the B2BUA: its JSON is made again on the next read.
  const views = new WeakMap<CallRecord, string>();
  const forget = (r: CallRecord) => void views.delete(r);
  b2bua.on('update', forget);
  b2bua.on('end', forget);
  const jsonOf = (r: CallRecord): string => {
    let j = views.get(r);
    if (j === undefined) views.set(r, (j = JSON.stringify(viewOf(r))));
    return j;
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const { path, query } = parseTarget(req.url ?? '/');
    if (options.routes?.length) {
      const ctx: RouteContext = { path, query, authorized: tokenOk(req, token), tokenMatches: (t) => sameToken(t, token) };
      for (const route of options.routes) if (route(req, res, ctx)) return;
    }
    if (!tokenOk(req, token)) throw new ApiError(401, 'unauthorized', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
    if (req.method !== 'GET') throw new ApiError(405, 'method_not_allowed', 'only GET', { allow: 'GET' });
    const one = /^\/v1\.0\/calls\/([^/]+)$/.exec(path);
    if (one && lookup) {
      const id = decodeSegment(one[1]!);
      return answerLater(req, res, lookup.get(id).then((json) => {
        if (json === undefined) throw new ApiError(404, 'not_found', 'no such call');
        return json;
      }));
    }
    if (one) {
      const r = b2bua.get(decodeSegment(one[1]!));
      if (!r) throw new ApiError(404, 'not_found', 'no such call');
      return sendJson(res, 200, jsonOf(r));
    }
    if (path === '/v1.0/calls') {
      // Whole numbers only: a page of 2.5 would never be full, and would list everything.
      const size = Math.floor(Math.min(Math.max(Number(query.get('page_size') ?? 50) || 50, 1), 500));
      const filter = { status: query.get('status') ?? undefined, domain: query.get('trunk_domain') ?? undefined };
      if (lookup) {
        const after = query.get('page_token') || undefined;
        return answerLater(req, res, Promise.resolve().then(() => lookup.page(filter, size, after)).then((p) => `{"result":[${p.items.join(',')}],"next_page_token":${JSON.stringify(p.next)}}`));
      }
      let page;
      try {
        page = index!.page(filter, size, query.get('page_token') || undefined);
      } catch (err) {
        if (err instanceof CursorError) throw new ApiError(400, err.code, err.message);
        throw err;
      }
      return sendJson(res, 200, `{"result":[${page.records.map(jsonOf).join(',')}],"next_page_token":${JSON.stringify(page.next)}}`);
    }
    throw new ApiError(404, 'not_found', 'unknown path');
  };

  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (err instanceof CursorError) err = new ApiError(400, err.code, err.message);
    if (err instanceof ApiError) return send(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
    options.log?.('error', 'http.failed', { method: req.method, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    if (res.headersSent) res.destroy();
    else send(res, 500, { error: { code: 'internal', message: 'internal error' } });
  };
  /** An answer from the asynchronous lookup: its JSON, or the error it failed with. */
  const answerLater = (req: IncomingMessage, res: ServerResponse, json: Promise<string>): void => {
    json.then(
      (text) => {
        if (!res.destroyed) sendJson(res, 200, text);
      },
      (err: unknown) => {
        if (!res.destroyed) fail(req, res, err);
      },
    );
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      handle(req, res);
    } catch (err) {
      fail(req, res, err);
    }
  };
  // Requests wait for a turn; a turn answers them until turnMs has passed, then yields to the loop.
  const turnMs = options.turnMs ?? 5;
  const maxQueued = options.maxQueued ?? 1024;
  const queue: Array<[IncomingMessage, ServerResponse]> = [];
  let turnPending = false;
  const turn = (): void => {
    turnPending = false;
    const until = performance.now() + turnMs;
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (!next[1].destroyed) onRequest(next[0], next[1]);
      if (performance.now() >= until) break;
    }
    if (queue.length > 0) schedule();
  };
  const schedule = (): void => {
    if (turnPending) return;
    turnPending = true;
    setImmediate(turn);
  };
  const server = createServer(
    {
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      connectionsCheckingInterval: options.timeoutCheckIntervalMs ?? 1_000,
    },
    (req, res) => {
      if (queue.length >= maxQueued) return send(res, 503, { error: { code: 'busy', message: 'too many requests waiting' } }, { 'retry-after': '1' });
      queue.push([req, res]);
      schedule();
    },
  );
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  // The API shares the SIP event loop: a bounded number of connections bounds the work one burst can queue.
  server.maxConnections = options.maxConnections ?? 256;
  server.on('clientError', onClientError);
  server.on('close', () => {
    index?.close();
    b2bua.off('update', forget);
    b2bua.off('end', forget);
  });
  return server;
}

/** Listen on host:port; resolves with the address bound (port 0 picks a free one), rejects if it cannot bind. */
export function listenHttpApi(server: Server, port: number, host: string): Promise<{ address: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({ address: a.address, port: a.port });
    });
  });
}

/**
 * Close the API at once: connections are dropped first, requests in flight with them, so a
 * slow or stalled client cannot hold the shutdown for up to the request timeout.
 */
export function closeHttpApi(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // After close(): the listener is gone, so no connection can arrive after this drops them all.
    server.closeAllConnections();
  });
}
