import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from './http-api.js';
import type { Logger } from './log.js';
import { extensionName, StoreError, trunkName, type ProvisionedTrunk, type StoredExtension, type TrunkStore } from './trunk-store.js';

export interface ProvisioningApiOptions {
  /** Request bodies above this are refused with 413 (default 64 KiB). */
  maxBodyBytes?: number;
  log?: Logger;
}

/** A refusal: the status, a stable code, and the field at fault when there is one. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const STATUS_OF: Record<StoreError['code'], number> = { invalid: 400, not_found: 404, conflict: 409, limit: 409 };

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = status === 204 ? '' : JSON.stringify(body);
  res.writeHead(status, { ...(status === 204 ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }), ...headers });
  res.end(text);
}

/** The body as JSON, at most `max` bytes: 413 beyond (told by Content-Length up front when it is given), 400 when it is not JSON. */
function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return reject(new Refusal(413, 'too_large', `the body may be at most ${max} bytes`, undefined, { connection: 'close' }));
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        reject(new Refusal(413, 'too_large', `the body may be at most ${max} bytes`, undefined, { connection: 'close' }));
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (over) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new Refusal(400, 'bad_json', 'the body is not valid JSON'));
      }
    });
  });
}

function decode(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new Refusal(400, 'invalid', 'malformed percent-encoding', field);
  }
}

const iso = (t: number) => new Date(t).toISOString();

function trunkView(t: ProvisionedTrunk, full: boolean) {
  return {
    name: t.name,
    domain: t.domain,
    server_address: `sip:${t.domain}`,
    auth: { mode: t.auth.mode, allow: t.auth.allow, ...(t.auth.algorithms ? { algorithms: t.auth.algorithms } : {}) },
    ...(full ? { extensions: [...t.extensions.keys()], routes: t.routes } : { extension_count: t.extensions.size, route_count: t.routes.length }),
    tm_create: iso(t.created),
    tm_update: iso(t.updated),
  };
}

/** An extension without its secrets: which HA1s are stored, never their values. */
function extensionView(username: string, e: StoredExtension) {
  return { username, credentials: Object.keys(e.ha1), algorithms: e.algorithms ?? null, tm_create: iso(e.created), tm_update: iso(e.updated) };
}

const PREFIX = '/v1.0/trunks';

/**
 * The provisioning API, as an extra route of the HTTP API (http-api.ts `routes`), behind its
 * bearer token:
 *
 *     POST   /v1.0/trunks                               { name, auth? }  → 201 the trunk, domain <name>.<base>
 *     GET    /v1.0/trunks[/{name}]
 *     DELETE /v1.0/trunks/{name}                                          → 204
 *     PUT    /v1.0/trunks/{name}/auth                    { mode, allow, algorithms? }
 *     GET    /v1.0/trunks/{name}/routes; PUT …/routes   [ { prefix, targets, rates? } ]
 *     GET    /v1.0/trunks/{name}/extensions[/{username}]
 *     POST   /v1.0/trunks/{name}/extensions              { username, password | ha1, algorithms? } → 201
 *     PUT    /v1.0/trunks/{name}/extensions/{username}   { password | ha1, algorithms? } → 201 new, 200 replaced
 *     DELETE /v1.0/trunks/{name}/extensions/{username}                   → 204
 *
 * A change is live for the next call (the store publishes a fresh domain entry) and answered
 * once it is saved. Errors are `{ error: { code, field?, message } }`: 400 invalid / bad_json
 * (naming the field), 404 not_found, 405, 409 conflict / limit, 413 too_large, 500
 * store_failed when the change is live but its save failed.
 */
export function createProvisioningApi(store: TrunkStore, options: ProvisioningApiOptions = {}): HttpRoute {
  const max = options.maxBodyBytes ?? 64 * 1024;
  const log = options.log;

  const methods = (req: IncomingMessage, allowed: string[]) => {
    if (!allowed.includes(req.method ?? '')) throw new Refusal(405, 'method_not_allowed', `only ${allowed.join(', ')}`, undefined, { allow: allowed.join(', ') });
    return req.method!;
  };
  /** Answer after the change is on disk. */
  const saved = async (res: ServerResponse, status: number, body: unknown) => {
    try {
      await store.save();
    } catch {
      throw new Refusal(500, 'store_failed', 'the change is live but could not be saved; it is saved with the next change that is');
    }
    send(res, status, body);
  };
  const trunkOf = (segment: string) => {
    const name = decode(segment, 'name').toLowerCase();
    try {
      return store.get(name);
    } catch {
      throw new Refusal(404, 'not_found', 'no such trunk');
    }
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<void> => {
    if (parts.length === 0) {
      if (methods(req, ['GET', 'POST']) === 'GET') return send(res, 200, { result: store.list().map((t) => trunkView(t, false)) });
      const body = await readJson(req, max);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Refusal(400, 'invalid', 'must be a JSON object', '(body)');
      const b = body as Record<string, unknown>;
      for (const k of Object.keys(b)) if (k !== 'name' && k !== 'auth') throw new Refusal(400, 'invalid', 'unknown field', k);
      const trunk = store.create(trunkName(b.name), b.auth);
      log?.('info', 'provisioning.trunk_created', { name: trunk.name, domain: trunk.domain });
      return saved(res, 201, trunkView(trunk, true));
    }
    const trunk = trunkOf(parts[0]!);
    if (parts.length === 1) {
      if (methods(req, ['GET', 'DELETE']) === 'GET') return send(res, 200, trunkView(trunk, true));
      store.remove(trunk.name);
      log?.('info', 'provisioning.trunk_deleted', { name: trunk.name });
      return saved(res, 204, null);
    }
    if (parts.length === 2 && parts[1] === 'auth') {
      if (methods(req, ['GET', 'PUT']) === 'GET') return send(res, 200, trunk.auth);
      store.setAuth(trunk.name, await readJson(req, max));
      return saved(res, 200, trunk.auth);
    }
    if (parts.length === 2 && parts[1] === 'routes') {
      if (methods(req, ['GET', 'PUT']) === 'GET') return send(res, 200, trunk.routes);
      store.setRoutes(trunk.name, await readJson(req, max));
      return saved(res, 200, trunk.routes);
    }
    if (parts[1] === 'extensions' && parts.length === 2) {
      if (methods(req, ['GET', 'POST']) === 'GET') return send(res, 200, { result: [...trunk.extensions].map(([u, e]) => extensionView(u, e)) });
      const body = await readJson(req, max);
      const username = extensionName(typeof body === 'object' && body !== null ? (body as Record<string, unknown>).username : undefined);
      const { extension } = store.putExtension(trunk.name, username, body, 'create');
      return saved(res, 201, extensionView(username, extension));
    }
    if (parts[1] === 'extensions' && parts.length === 3) {
      const username = extensionName(decode(parts[2]!, 'username'));
      const method = methods(req, ['GET', 'PUT', 'DELETE']);
      if (method === 'GET') {
        const e = trunk.extensions.get(username);
        if (!e) throw new Refusal(404, 'not_found', 'no such extension');
        return send(res, 200, extensionView(username, e));
      }
      if (method === 'DELETE') {
        store.removeExtension(trunk.name, username);
        return saved(res, 204, null);
      }
      const { created, extension } = store.putExtension(trunk.name, username, await readJson(req, max), 'upsert');
      return saved(res, created ? 201 : 200, extensionView(username, extension));
    }
    throw new Refusal(404, 'not_found', 'unknown path');
  };

  return (req, res, { path, authorized }) => {
    // Unauthenticated requests fall through to the API's own 401.
    if (!authorized || (path !== PREFIX && !path.startsWith(`${PREFIX}/`))) return false;
    const parts = path.slice(PREFIX.length + 1).split('/');
    if (parts.length === 1 && parts[0] === '') parts.length = 0;
    dispatch(req, res, parts).catch((err: unknown) => {
      if (err instanceof StoreError) return send(res, STATUS_OF[err.code], { error: { code: err.code, ...(err.field !== undefined ? { field: err.field } : {}), message: err.message } });
      if (err instanceof Refusal) {
        send(res, err.status, { error: { code: err.code, ...(err.field !== undefined ? { field: err.field } : {}), message: err.message } }, err.headers);
        // A body refused for its size is not read to its end: the connection closes after the answer.
        if (err.status === 413) res.once('finish', () => req.destroy());
        return;
      }
      log?.('error', 'http.failed', { method: req.method, path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      send(res, 500, { error: { code: 'internal', message: 'internal error' } });
    });
    return true;
  };
}
