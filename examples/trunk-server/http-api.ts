import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { B2bua } from 'sipkit/b2bua';
import { viewOf } from './call-view.js';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function tokenOk(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  // Constant-time, whatever the length of what was sent.
  return a.length === b.length ? timingSafeEqual(a, b) : (timingSafeEqual(b, b), false);
}

/**
 * Call tracking: GET /v1.0/calls/{id} and GET /v1.0/calls?status=&trunk_domain=&page_size=&page_token=.
 * Bearer-token auth on everything.
 */
export function createHttpApi(b2bua: B2bua, token: string): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET') return send(res, 405, { error: { code: 'method_not_allowed', message: 'only GET' } }, { allow: 'GET' });
    if (!tokenOk(req, token)) {
      return send(res, 401, { error: { code: 'unauthorized', message: 'a valid bearer token is required' } }, { 'www-authenticate': 'Bearer' });
    }
    const one = /^\/v1\.0\/calls\/([^/]+)$/.exec(url.pathname);
    if (one) {
      const r = b2bua.get(decodeURIComponent(one[1]!));
      if (!r) return send(res, 404, { error: { code: 'not_found', message: 'no such call' } });
      return send(res, 200, viewOf(r));
    }
    if (url.pathname === '/v1.0/calls') {
      const status = url.searchParams.get('status');
      const domain = url.searchParams.get('trunk_domain');
      const size = Math.min(Math.max(Number(url.searchParams.get('page_size') ?? 50) || 50, 1), 500);
      const start = Math.max(Number(url.searchParams.get('page_token') ?? 0) || 0, 0);
      // Newest first.
      const all = b2bua
        .list()
        .reverse()
        .filter((r) => (!status || r.state === status) && (!domain || r.tags.domain === domain));
      const page = all.slice(start, start + size).map(viewOf);
      return send(res, 200, { result: page, next_page_token: start + size < all.length ? String(start + size) : null });
    }
    return send(res, 404, { error: { code: 'not_found', message: 'unknown path' } });
  });
}
