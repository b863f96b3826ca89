import { readFileSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { computeHA1, type DigestAlgorithm } from 'sipkit/digest';
import { ConfigError, DNS_LABEL, validateDomainAuth, validateExtension, validateRoutes, type AuthMode, type DomainConfig, type ExtensionConfig, type RouteConfig } from './config.js';
import type { Logger } from './log.js';
import { ownEntry } from './trunk-domain.js';

type Ha1 = NonNullable<ExtensionConfig['ha1']>;

/** An extension as stored: HA1s only — a password given to the API is hashed on arrival and dropped. */
export interface StoredExtension {
  ha1: Ha1;
  algorithms?: DigestAlgorithm[];
  created: number;
  updated: number;
}

/** A route as stored: a config route, with its rates as `validateRates` returned them. */
export type StoredRoute = RouteConfig;

export interface ProvisionedTrunk {
  /** The RFC 1035 label the trunk was created with; its domain is `<name>.<baseDomain>`. */
  name: string;
  /** Fixed at creation (a later change of baseDomain leaves it, and its extensions' HA1s, as they are). */
  domain: string;
  /** Who may call without (or besides) digest, and the challenge set (default: the server's). */
  auth: { mode: AuthMode; allow: string[]; algorithms?: DigestAlgorithm[] };
  extensions: Map<string, StoredExtension>;
  routes: StoredRoute[];
  created: number;
  updated: number;
}

/** Why a change is refused: the HTTP API answers 400 (invalid), 404, 409 (conflict, limit). */
export class StoreError extends Error {
  constructor(
    readonly code: 'invalid' | 'not_found' | 'conflict' | 'limit',
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export interface TrunkStoreLimits {
  trunks: number;
  extensionsPerTrunk: number;
  routesPerTrunk: number;
  targetsPerRoute: number;
}

export const DEFAULT_LIMITS: TrunkStoreLimits = { trunks: 10_000, extensionsPerTrunk: 10_000, routesPerTrunk: 1_000, targetsPerRoute: 16 };

export interface TrunkStoreOptions {
  /**
   * The live trunk domains auth.ts and routing.ts read on every call. The store adds, replaces
   * and deletes its trunks' entries here; the config file's entries are left alone.
   */
  domains: Record<string, DomainConfig>;
  baseDomain: string;
  /** Where trunks are saved (JSON, replaced atomically) and loaded from; null: memory only. */
  path: string | null;
  /** Checks a route's `rates` and returns what to store (default: stored as given). */
  validateRates?: (rates: unknown, field: string) => RouteConfig['rates'];
  limits?: Partial<TrunkStoreLimits>;
  now?: () => number;
  log?: Logger;
}

const USERNAME = /^[A-Za-z0-9._~+-]{1,64}$/;
const MAX_PASSWORD = 256;
const BASES = ['SHA-512-256', 'SHA-256', 'MD5'] as const;
const FILE_VERSION = 1;

function invalid(field: string, message: string): StoreError {
  return new StoreError('invalid', message, field);
}

/** Run a config.ts validator; its ConfigError becomes an `invalid` StoreError naming the same field (less `strip`, the body's own name). */
function checked<T>(fn: () => T, strip?: string): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const message = err.message.slice(`config: ${err.field}: `.length);
    const field = strip === undefined ? err.field : err.field === strip ? 'password' : err.field.replace(`${strip}.`, '');
    throw invalid(field, message);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], prefix: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw invalid(prefix + k, 'unknown field');
}

/** A trunk name as given: a string that lower-cases to one RFC 1035 label. */
export function trunkName(v: unknown, field = 'name'): string {
  if (typeof v !== 'string') throw invalid(field, 'must be a string');
  const name = v.toLowerCase();
  if (!DNS_LABEL.test(name)) throw invalid(field, 'must be a DNS label: 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen');
  return name;
}

export function extensionName(v: unknown, field = 'username'): string {
  if (typeof v !== 'string' || !USERNAME.test(v)) throw invalid(field, 'must be 1 to 64 letters, digits or . _ ~ + -');
  return v;
}

/**
 * Provisioned trunks: each a domain with extensions, routes and an auth mode, published into
 * the live `domains` record as a new object on every change (copy-on-write), so a call reads
 * one consistent version: calls in progress keep what they started with, the next call sees
 * the change. Saved as one JSON file, written to a temporary file, fsynced and renamed over
 * the old one, so a crash leaves the old file or the new one, never half of one.
 */
export class TrunkStore {
  private readonly trunks = new Map<string, ProvisionedTrunk>();
  private readonly limits: TrunkStoreLimits;
  private readonly now: () => number;
  /** The last write (settled or not); each write starts after it. */
  private saving: Promise<void> = Promise.resolve();
  /** A write queued and not yet started: changes made meanwhile ride along with it. */
  private queued: Promise<void> | undefined;

  constructor(private readonly options: TrunkStoreOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.now = options.now ?? Date.now;
  }

  /** Read the saved trunks (a missing file is an empty store). A trunk whose domain the config file also has, or a file that cannot be read, refuses the start. */
  static open(options: TrunkStoreOptions): TrunkStore {
    const store = new TrunkStore(options);
    if (options.path === null) return store;
    let text: string;
    try {
      text = readFileSync(options.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw new ConfigError('provisioning.storePath', `cannot read ${options.path}: ${(err as Error).message}`);
    }
    try {
      store.load(JSON.parse(text));
    } catch (err) {
      const why = err instanceof StoreError ? `${err.field ?? ''}: ${err.message}` : (err as Error).message;
      throw new ConfigError('provisioning.storePath', `${options.path}: ${why}`);
    }
    options.log?.('info', 'provisioning.loaded', { trunks: store.trunks.size, path: options.path });
    return store;
  }

  private load(json: unknown): void {
    if (!isObject(json) || json.version !== FILE_VERSION || !Array.isArray(json.trunks)) throw new Error(`not a version ${FILE_VERSION} trunk file`);
    json.trunks.forEach((t, i) => {
      const f = `trunks[${i}]`;
      if (!isObject(t)) throw invalid(f, 'must be an object');
      const name = trunkName(t.name, `${f}.name`);
      if (typeof t.domain !== 'string' || !t.domain.startsWith(`${name}.`)) throw invalid(`${f}.domain`, 'must be <name>.<base domain>');
      const domain = t.domain.toLowerCase();
      if (this.trunks.has(name)) throw invalid(`${f}.name`, 'saved twice');
      if (ownEntry(this.options.domains, domain)) throw invalid(`${f}.domain`, `${domain} is also in the config file's domains: remove one`);
      const extensions = new Map<string, StoredExtension>();
      if (!isObject(t.extensions)) throw invalid(`${f}.extensions`, 'must be an object');
      for (const [u, e] of Object.entries(t.extensions)) {
        const ef = `${f}.extensions.${u}`;
        const ext = checked(() => validateExtension(e, ef));
        if (!ext.ha1 || ext.password !== undefined) throw invalid(ef, 'must hold ha1 only');
        extensions.set(extensionName(u, ef), { ha1: ext.ha1, algorithms: ext.algorithms, created: stamp((e as Record<string, unknown>).created), updated: stamp((e as Record<string, unknown>).updated) });
      }
      this.trunks.set(name, {
        name,
        domain,
        auth: this.auth(t.auth, `${f}.auth`),
        extensions,
        routes: this.routes(t.routes, `${f}.routes`),
        created: stamp(t.created),
        updated: stamp(t.updated),
      });
      this.publish(this.trunks.get(name)!);
    });
  }

  get size(): number {
    return this.trunks.size;
  }

  list(): ProvisionedTrunk[] {
    return [...this.trunks.values()];
  }

  get(name: string): ProvisionedTrunk {
    const t = this.trunks.get(name);
    if (!t) throw new StoreError('not_found', `no trunk named ${name}`);
    return t;
  }

  /** A new trunk `name` (already a checked label) at `<name>.<baseDomain>`, with an optional auth. */
  create(name: string, auth?: unknown): ProvisionedTrunk {
    const domain = `${name}.${this.options.baseDomain}`;
    if (this.trunks.has(name)) throw new StoreError('conflict', `a trunk named ${name} exists`, 'name');
    if (ownEntry(this.options.domains, domain)) throw new StoreError('conflict', `${domain} is a domain of the config file`, 'name');
    if (this.trunks.size >= this.limits.trunks) throw new StoreError('limit', `at most ${this.limits.trunks} trunks`);
    const t = this.now();
    const trunk: ProvisionedTrunk = { name, domain, auth: this.auth(auth, 'auth'), extensions: new Map(), routes: [], created: t, updated: t };
    this.trunks.set(name, trunk);
    this.publish(trunk);
    return trunk;
  }

  remove(name: string): void {
    const trunk = this.get(name);
    this.trunks.delete(name);
    delete this.options.domains[trunk.domain];
  }

  setAuth(name: string, auth: unknown): ProvisionedTrunk {
    const trunk = this.get(name);
    trunk.auth = this.auth(auth, 'auth');
    return this.touch(trunk);
  }

  setRoutes(name: string, routes: unknown): ProvisionedTrunk {
    const trunk = this.get(name);
    trunk.routes = this.routes(routes, 'routes');
    return this.touch(trunk);
  }

  /**
   * Add (`create`: 409 if it exists) or replace an extension from an API body
   * `{ password } | { ha1: { MD5, SHA-256, SHA-512-256 } }`, optionally with `algorithms`.
   * Returns whether it was created.
   */
  putExtension(name: string, username: string, body: unknown, mode: 'create' | 'upsert'): { created: boolean; extension: StoredExtension } {
    const trunk = this.get(name);
    if (!isObject(body)) throw invalid('(body)', 'must be a JSON object');
    onlyKeys(body, ['username', 'password', 'ha1', 'algorithms'], '');
    if (body.username !== undefined && body.username !== username) throw invalid('username', 'differs from the one in the path');
    if (body.password !== undefined && body.ha1 !== undefined) throw invalid('password', 'give password or ha1, not both');
    if (typeof body.password === 'string' && body.password.length > MAX_PASSWORD) throw invalid('password', `at most ${MAX_PASSWORD} characters`);
    const { username: _, ...credentials } = body;
    const ext = checked(() => validateExtension(credentials, '(body)'), '(body)');
    const existing = trunk.extensions.get(username);
    if (existing && mode === 'create') throw new StoreError('conflict', `extension ${username} exists`, 'username');
    if (!existing && trunk.extensions.size >= this.limits.extensionsPerTrunk) throw new StoreError('limit', `at most ${this.limits.extensionsPerTrunk} extensions per trunk`);
    // The realm is the trunk's domain (auth.ts): an HA1 per base algorithm the server may be asked for.
    const ha1: Ha1 = ext.password !== undefined ? Object.fromEntries(BASES.map((a) => [a, computeHA1(a, username, trunk.domain, ext.password!)])) : ext.ha1!;
    // Without a password, offer only what the stored HA1s can check (else a SHA-256 answer to an MD5-only extension would loop on 407s).
    const algorithms = ext.algorithms ?? (ext.password === undefined ? BASES.filter((a) => ha1[a] !== undefined) : undefined);
    const t = this.now();
    const stored: StoredExtension = { ha1, ...(algorithms ? { algorithms } : {}), created: existing?.created ?? t, updated: t };
    trunk.extensions.set(username, stored);
    this.touch(trunk);
    return { created: !existing, extension: stored };
  }

  removeExtension(name: string, username: string): void {
    const trunk = this.get(name);
    if (!trunk.extensions.delete(username)) throw new StoreError('not_found', `no extension ${username}`);
    this.touch(trunk);
  }

  /** Write the store to its file; resolves once a write holding every change made before this call is on disk. */
  save(): Promise<void> {
    const path = this.options.path;
    if (path === null) return Promise.resolve();
    if (this.queued) return this.queued;
    const write = this.saving.then(() => {
      this.queued = undefined;
      return writeAtomic(path, this.serialize());
    });
    this.queued = write;
    this.saving = write.catch((err: Error) => {
      this.options.log?.('error', 'provisioning.save_failed', { path, error: err.message });
    });
    return write;
  }

  /** Resolves when the writes started so far have finished (a shutdown step). */
  flush(): Promise<void> {
    return this.saving;
  }

  private auth(v: unknown, field: string): ProvisionedTrunk['auth'] {
    if (v === undefined) return { mode: 'digest', allow: [] };
    if (!isObject(v)) throw invalid(field, 'must be an object');
    onlyKeys(v, ['mode', 'allow', 'algorithms'], `${field}.`);
    const a = checked(() => validateDomainAuth(v, field));
    return { mode: a.mode ?? 'digest', allow: a.allow ?? [], ...(a.algorithms ? { algorithms: a.algorithms } : {}) };
  }

  private routes(v: unknown, field: string): StoredRoute[] {
    if (!Array.isArray(v)) throw invalid(field, 'must be an array');
    if (v.length > this.limits.routesPerTrunk) throw invalid(field, `at most ${this.limits.routesPerTrunk} routes`);
    const routes = checked(() => validateRoutes(v, field));
    return routes.map((r, i) => {
      const given = v[i] as Record<string, unknown>;
      onlyKeys(given, ['prefix', 'targets', 'rates'], `${field}[${i}].`);
      if (r.prefix.length > 64) throw invalid(`${field}[${i}].prefix`, 'at most 64 characters');
      if (r.targets.length > this.limits.targetsPerRoute) throw invalid(`${field}[${i}].targets`, `at most ${this.limits.targetsPerRoute} targets`);
      if (given.rates === undefined) return r;
      const validate = this.options.validateRates;
      return { ...r, rates: validate ? validate(given.rates, `${field}[${i}].rates`) : (given.rates as RouteConfig['rates']) };
    });
  }

  private touch(trunk: ProvisionedTrunk): ProvisionedTrunk {
    trunk.updated = this.now();
    this.publish(trunk);
    return trunk;
  }

  /** Replace the trunk's live entry with a fresh object: a call that already read the old one keeps it. */
  private publish(trunk: ProvisionedTrunk): void {
    const extensions = Object.fromEntries([...trunk.extensions].map(([u, e]) => [u, { ha1: e.ha1, ...(e.algorithms ? { algorithms: e.algorithms } : {}) }]));
    const { mode, allow, algorithms } = trunk.auth;
    const auth = mode === 'digest' && !algorithms ? undefined : { ...(mode === 'digest' ? {} : { mode, allow: [...allow] }), ...(algorithms ? { algorithms: [...algorithms] } : {}) };
    this.options.domains[trunk.domain] = { extensions, ...(auth ? { auth } : {}), routes: trunk.routes.map((r) => ({ ...r, targets: [...r.targets] })) };
  }

  private serialize(): string {
    const trunks = this.list().map((t) => ({
      name: t.name,
      domain: t.domain,
      auth: t.auth,
      extensions: Object.fromEntries(t.extensions),
      routes: t.routes,
      created: t.created,
      updated: t.updated,
    }));
    return JSON.stringify({ version: FILE_VERSION, trunks }, null, 1) + '\n';
  }
}

function stamp(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

let tmpCounter = 0;

/**
 * Replace `path` with `text` so that a crash at any point leaves the old file or the new one:
 * write a temporary file next to it, fsync it, rename it over (atomic on POSIX), fsync the
 * directory so the rename itself survives a power loss. Mode 0600: the file holds HA1s.
 */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  try {
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Some file systems cannot fsync a directory; the rename is still atomic.
  }
}
