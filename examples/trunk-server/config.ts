import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { DIGEST_ALGORITHMS, type DigestAlgorithm } from 'sipkit/digest';
import { parseUri, type SipUri } from 'sipkit/parser';
import { CidrError, parseCidr } from './cidr.js';
import { PemError, readCertificates, readKeyPair } from './pem.js';
import { RateError, validateRates, type RateConfig } from './rates.js';

export interface ListenConfig {
  transport: 'udp' | 'tcp' | 'tls';
  host: string;
  port: number;
  /**
   * udp: make the send system calls on a worker thread (default true; UdpTransportOptions.sendThread),
   * which lifts the trunk's call rate by the quarter of its event loop they took. Its socket shares
   * the port through SO_REUSEADDR, which lets another local process bind the port too (as
   * Kamailio's sockets do): false on a host shared with untrusted users.
   */
  sendThread?: boolean;
  /** tls: the certificate chain (PEM file, leaf first) and its private key, as absolute paths. */
  cert?: string;
  key?: string;
}

/** Outgoing TLS (to route targets and registrars): whose certificates are trusted, and whether they are checked at all. */
export interface TlsConfig {
  /** PEM file of the CAs trusted to sign servers' certificates (absolute path); null: Node's bundled root CAs. */
  ca: string | null;
  /**
   * Check a server's chain against `ca` and its name against the target's SIP domain (RFC 5922
   * §7.2: `sips:carrier.example` → carrier.example, whatever SRV record led to the server; an IP
   * address target → that address). false turns every check off: logged as a warning.
   */
  verify: boolean;
}

/**
 * Register the trunk with a carrier's registrar (RFC 3261 §10.2) so that the carrier's calls
 * reach it: its Contact is `sip:<contactUser>@<listener>`, and an INVITE to that Contact from
 * an `inbound.allow` address is a call from the carrier into `inbound.domain` (registrations.ts).
 */
export interface RegistrationConfig {
  /** The registrar's URI, no user part: `sip:carrier.example` (located by RFC 3263), `sip:192.0.2.1`, `sip:localhost:5070;transport=tcp`, `sips:…` (TLS). */
  registrar: string;
  username: string;
  password: string;
  /** Binding lifetime asked for (the registrar may grant less: it is refreshed at half of what is granted). */
  expires: number;
  /** The address of record (default `sip:<username>@<registrar host>`). */
  aor: string;
  /** User part of the Contact bound (default: the username); tells the registrations' calls apart, so unique. */
  contactUser: string;
  /** RFC 5626 outbound: `+sip.instance` and `reg-id` on the Contact. */
  outbound?: { instanceId: string; regId: number };
  /**
   * Calls the carrier sends to the Contact: routed by the called number (the To URI's user part)
   * with the routes of `domain`, accepted without a challenge from the `allow` addresses
   * (default: the registrar's own). Absent: such calls are refused with 403.
   */
  inbound?: {
    domain: string;
    allow: string[];
    /**
     * Set when the registrar is named by host and `allow` was not given (then empty): its calls
     * are trusted from the addresses the trunk's resolver finds for the registrar URI (RFC 3263),
     * looked up again at each registration. A carrier whose calls come from other addresses
     * than its registrar's needs `allow`.
     */
    registrarByName?: true;
  };
}

export interface ExtensionConfig {
  password?: string;
  /** Stored H(user:realm:password) per base algorithm, instead of the password. */
  ha1?: Partial<Record<'MD5' | 'SHA-256' | 'SHA-512-256', string>>;
  /**
   * Algorithms this extension is accepted with (default: its domain's). Credentials with
   * another get a fresh challenge offering only these, e.g. MD5 for a phone that cannot
   * cope with SHA-256 in a challenge set.
   */
  algorithms?: DigestAlgorithm[];
}

export interface RouteConfig {
  /** Longest matching prefix of the dialled number wins; "" matches everything. */
  prefix: string;
  /** Gateways in fail-over order. A target without a user part gets the dialled number. */
  targets: string[];
  /** What a call on this route costs (rates.ts): destination prefix → price per minute, increments, fee, currency. */
  rates?: RateConfig[];
}

/** How a trunk's callers are authenticated (auth.ts). */
export type AuthMode = 'digest' | 'ip' | 'ip+digest' | 'ip-or-digest';
export const AUTH_MODES: readonly AuthMode[] = ['digest', 'ip', 'ip+digest', 'ip-or-digest'];
/** CIDR rules per trunk at most: each call from an IP trunk is checked against all of them. */
export const MAX_ALLOW_RULES = 256;
/** One RFC 1035 label, lower case: a provisioned trunk's name, a base domain's parts. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface DomainConfig {
  extensions: Record<string, ExtensionConfig>;
  auth?: {
    /** The domain's challenge set (default: the global auth.algorithms). */
    algorithms?: DigestAlgorithm[];
    /**
     * digest (default): a 407 challenge. ip: a source in `allow` gets through unchallenged,
     * any other 403. ip+digest: a source in `allow` is challenged, any other 403.
     * ip-or-digest: a source in `allow` gets through, any other is challenged.
     */
    mode?: AuthMode;
    /** IPv4 and IPv6 CIDRs ("203.0.113.0/24", "2001:db8::/32", a bare address); IPv4-mapped sources match IPv4 rules. */
    allow?: string[];
  };
  routes: RouteConfig[];
}

export interface TrunkConfig {
  sip: {
    listen: ListenConfig[];
    /**
     * Front proxies (IPv4/IPv6 CIDRs, bare addresses) whose requests are judged by the caller
     * they relay for — the Via below theirs (its received/rport) — in every per-source decision:
     * auth throttling, nonce binding, IP allow lists, `limits.maxCallsPerSource`. Default none.
     */
    trustedProxies: string[];
  };
  /** Outgoing TLS: trusted CAs and whether servers' certificates are checked (default: Node's CAs, checked). */
  tls: TlsConfig;
  /** Registrars the trunk registers itself with at start (and unregisters from on stop). */
  registrations: RegistrationConfig[];
  http: { host: string; port: number; token: string };
  auth: {
    secret: string;
    algorithms: DigestAlgorithm[];
    nonceTtlSeconds: number;
    /** Live nonces whose nc is remembered (each until it expires); beyond, new logins get 503. */
    maxLiveNonces: number;
  };
  /** `media` in the file: "direct" | "relay", or { mode, address, address6, ports }. */
  media: 'direct' | 'relay';
  /** IPv4 address the RTP relay binds and writes into SDP (relay mode); null: IPv4 offers get 488. */
  mediaAddress: string | null;
  /** IPv6 address for the same (`media.address6`); null: IPv6 offers get 488. Default ::1 when SIP listens on loopback only. */
  mediaAddress6: string | null;
  /** The relay's RTP ports (`media.ports`): even, RTCP on each one + 1 (RFC 3550 §11). A call takes two pairs per stream. */
  mediaPorts: { min: number; max: number };
  noAnswerTimeoutSeconds: number;
  noAnswerStatus: 408 | 480;
  domains: Record<string, DomainConfig>;
  /** One JSON line per ended call (records.ts); rotate it with logrotate, no signal needed (each line opens the path). */
  cdr: { path: string | null };
  /**
   * Calls up are written here (JSON lines) so that after a crash or SIGKILL the next start
   * ends them: a BYE to both legs with `Reason: Q.850;cause=<cause>`. null: no journal.
   * `fsync` flushes each line to disk (survives a power loss, not only a killed process).
   */
  journal: { path: string | null; cause: number; fsync: boolean };
  limits: { maxCalls: number; maxCallsPerSource: number };
  timers: { T1: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  shutdown: { mode: 'drain' | 'hangup'; drainSeconds: number };
  /**
   * The provisioning API (provisioning.ts): a trunk named "acme" gets the domain
   * acme.<baseDomain>. Trunks are saved to `storePath` (JSON, replaced atomically) and loaded
   * at start; null keeps them in memory only.
   */
  provisioning: { baseDomain: string; storePath: string | null };
  /** `GET /metrics` without the bearer token when `public` (a scraper on a trusted network). */
  metrics: { public: boolean };
  /**
   * Each call's SIP messages, kept for the ladder on the live page (`GET /v1.0/calls/{id}/messages`).
   * Bounded per call, in calls and in bytes. Off in a config file unless asked (or `--trace`).
   */
  capture: { enabled: boolean; maxMessagesPerCall: number; maxCalls: number; maxBytes: number };
  /**
   * RFC 4028 session timers, each leg on its own; null: off. On by default with 1800 s: a call
   * whose far end vanished is torn down (and stops being billed) within half an hour.
   */
  sessionTimer: SessionTimerConfig | null;
  /** RFC 3263 lookups of route targets that name a host: the DNS servers asked (null: the system's resolvers). */
  dns: { servers: string[] | null };
  /** OPTIONS probing of every route target of the config's domains (network.ts); null: off. */
  probe: ProbeConfig | null;
  /** This trunk among the instances of a cluster: its name in the shared records (default `<hostname>-<pid>`). */
  instance: { id: string };
  /**
   * Where call records are kept. memory (default): in this process (the HTTP API answers for its
   * own calls), CDRs to `cdr.path`. postgres: in the database at `url`, shared by every instance
   * (pg-records.ts): any instance answers for any call, records survive restarts; events are
   * written every `batchMs`; the calls of an instance silent for `lostAfterSeconds` are marked lost;
   * ended calls and CDRs older than `retainDays` (default 90, 0: forever) are deleted.
   */
  records: RecordsConfig;
}

export interface RecordsConfig {
  store: 'memory' | 'postgres';
  /** postgres://user@host:port/database (store postgres; a launcher may fill it in). */
  url: string | null;
  batchMs: number;
  lostAfterSeconds: number;
  /**
   * Store postgres: ended calls and their CDRs whose hangup is older than this many days are
   * deleted (in small batches, by one instance at a time); 0 keeps them forever. Default 90:
   * a billing cycle and the disputes after it, with room to spare; billing that keeps CDRs
   * longer exports them before they age out. Calls still up are never deleted. (The memory
   * store is bounded by count instead: the B2BUA's `keepRecords`, and CDR lines go to a file.)
   */
  retainDays: number;
}

/** An instance id: what names it in the shared records and logs. */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** `<hostname>-<pid>`, made to fit INSTANCE_NAME. */
function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 48);
  return host ? `${host}-${process.pid}` : 'local';
}

export interface ProbeConfig {
  intervalSeconds: number;
  /** Failed probes in a row that take a target down (its calls skip it while another is up). */
  failureThreshold: number;
  /** Good probes in a row that bring it back up. */
  successThreshold: number;
  /** A probe unanswered this long has failed. */
  timeoutSeconds: number;
}

export interface SessionTimerConfig {
  /** Interval asked for on the destination leg and proposed to callers that ask none (RFC 4028 §4 recommends 1800). */
  seconds: number;
  /** Shorter intervals from a caller get 422 (RFC 4028 §5: never below 90). */
  minSeconds: number;
  /** Who refreshes when the trunk chooses: 'local' (the trunk) or 'remote'; absent: the caller when it can. */
  refresher?: 'local' | 'remote';
  /** Intervals below 90 s, for tests only (RFC 4028 forbids them on the wire). */
  allowShortIntervals?: boolean;
}

/** The embedded default: exactly the documented example, with a fresh secret per start. */
export function defaultConfig(): TrunkConfig {
  return {
    sip: {
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: 5060 },
        { transport: 'tcp', host: '127.0.0.1', port: 5060 },
      ],
      trustedProxies: [],
    },
    tls: { ca: null, verify: true },
    registrations: [],
    http: { host: '127.0.0.1', port: 8080, token: 'demo-token' },
    auth: { secret: randomBytes(32).toString('hex'), algorithms: ['SHA-256', 'MD5'], nonceTtlSeconds: 300, maxLiveNonces: 1_000_000 },
    media: 'direct',
    mediaAddress: '127.0.0.1',
    mediaAddress6: '::1',
    mediaPorts: { min: 20_000, max: 39_998 },
    noAnswerTimeoutSeconds: 60,
    noAnswerStatus: 408,
    domains: {
      'demo.trunk.sipkit.test': {
        extensions: { '1000': { password: 'sipkit-demo' } },
        routes: [{ prefix: '', targets: ['sip:127.0.0.1:5080'] }],
      },
    },
    cdr: { path: 'cdr.jsonl' },
    journal: { path: 'trunk-journal.jsonl', cause: 41, fsync: false },
    limits: { maxCalls: 10_000, maxCallsPerSource: 1_000 },
    timers: { T1: 500 },
    log: { level: 'info' },
    shutdown: { mode: 'hangup', drainSeconds: 30 },
    provisioning: { baseDomain: 'trunk.sipkit.test', storePath: 'trunks.json' },
    sessionTimer: { seconds: 1800, minSeconds: 90 },
    metrics: { public: false },
    capture: { enabled: true, maxMessagesPerCall: 200, maxCalls: 1000, maxBytes: 32 * 1024 * 1024 },
    dns: { servers: null },
    probe: null,
    instance: { id: defaultInstanceId() },
    records: { store: 'memory', url: null, batchMs: 50, lostAfterSeconds: 60, retainDays: 90 },
  };
}

/** `instance`: { id }. */
function validateInstance(v: unknown): TrunkConfig['instance'] {
  const o = obj(v, 'instance');
  for (const k of Object.keys(o)) if (k !== 'id') throw new ConfigError(`instance.${k}`, 'unknown key');
  if (o.id === undefined) return { id: defaultInstanceId() };
  const id = str(o.id, 'instance.id');
  if (!INSTANCE_NAME.test(id)) throw new ConfigError('instance.id', 'letters, digits, . _ : - (1 to 64, starting with a letter or digit)');
  return { id };
}

/** `records`: { store, url, batchMs, lostAfterSeconds, retainDays }. */
function validateRecords(v: unknown): RecordsConfig {
  const o = obj(v, 'records');
  for (const k of Object.keys(o)) if (!['store', 'url', 'batchMs', 'lostAfterSeconds', 'retainDays'].includes(k)) throw new ConfigError(`records.${k}`, 'unknown key');
  const r: RecordsConfig = {
    store: o.store === undefined ? 'memory' : oneOf(o.store, 'records.store', ['memory', 'postgres'] as const),
    url: o.url === undefined || o.url === null ? null : str(o.url, 'records.url'),
    batchMs: o.batchMs === undefined ? 50 : int(o.batchMs, 'records.batchMs', 1, 60_000),
    lostAfterSeconds: o.lostAfterSeconds === undefined ? 60 : int(o.lostAfterSeconds, 'records.lostAfterSeconds', 1, 86_400),
    retainDays: o.retainDays === undefined ? 90 : retainDays(o.retainDays),
  };
  if (r.url !== null && !/^postgres(ql)?:\/\//.test(r.url)) throw new ConfigError('records.url', 'must be a postgres:// URL');
  if (r.store === 'memory' && r.url !== null) throw new ConfigError('records.url', 'is for store postgres');
  return r;
}

/** `records.retainDays`: whole days, 0 (keep forever) to 100 years; the message says how to keep everything. */
function retainDays(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 36_500) {
    throw new ConfigError('records.retainDays', 'must be a whole number of days from 1 to 36500, or 0 to keep calls and CDRs forever');
  }
  return v;
}

/** `sessionTimer`: null (off) or { seconds, minSeconds, refresher, allowShortIntervals }. */
function validateSessionTimer(v: unknown): SessionTimerConfig | null {
  if (v === null) return null;
  const o = obj(v, 'sessionTimer');
  for (const k of Object.keys(o)) if (!['seconds', 'minSeconds', 'refresher', 'allowShortIntervals'].includes(k)) throw new ConfigError(`sessionTimer.${k}`, 'unknown key');
  const short = o.allowShortIntervals === undefined ? false : bool(o.allowShortIntervals, 'sessionTimer.allowShortIntervals');
  // RFC 4028 §4/§5: no interval below 90 s, unless a test asked for it explicitly.
  const floor = short ? 1 : 90;
  const minSeconds = o.minSeconds === undefined ? 90 : int(o.minSeconds, 'sessionTimer.minSeconds', floor, 86_400);
  const seconds = o.seconds === undefined ? Math.max(1800, minSeconds) : int(o.seconds, 'sessionTimer.seconds', floor, 86_400);
  if (seconds < minSeconds) throw new ConfigError('sessionTimer.seconds', 'must not be below sessionTimer.minSeconds');
  const c: SessionTimerConfig = { seconds, minSeconds };
  if (o.refresher !== undefined) c.refresher = oneOf(o.refresher, 'sessionTimer.refresher', ['local', 'remote'] as const);
  if (short) c.allowShortIntervals = true;
  return c;
}

/** A config error that names the bad field. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`config: ${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(field, 'must be an object');
  return v as Json;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'must be a non-empty string');
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(field, `must be an integer from ${min} to ${max}`);
  return v;
}

function algorithmList(v: unknown, field: string): DigestAlgorithm[] {
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError(field, 'must be a non-empty array');
  const list = v.map((x, i) => oneOf(x, `${field}[${i}]`, DIGEST_ALGORITHMS));
  if (new Set(list).size !== list.length) throw new ConfigError(field, 'lists an algorithm twice');
  return list;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
  return v;
}

function oneOf<T extends string>(v: unknown, field: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) throw new ConfigError(field, `must be one of ${values.join(', ')}`);
  return v as T;
}

/** An address that can be bound and written into SDP: a literal of the family, not the unspecified one. */
function mediaAddress(v: unknown, field: string, family: 4 | 6): string | null {
  if (v === null) return null;
  const s = str(v, field);
  const ok = family === 4 ? isIPv4(s) && s !== '0.0.0.0' : isIPv6(s) && !s.includes('%') && !/^[0:]+$/.test(s);
  if (!ok) throw new ConfigError(field, `must be an IPv${family} address${family === 4 ? ' (use media.address6 for IPv6)' : ''}, or null`);
  return s;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

/**
 * `media` is "direct" | "relay" (with the older top-level `mediaAddress`), or
 * { mode, address, address6, ports: { min, max } }.
 */
function validateMedia(j: Json, c: TrunkConfig): void {
  let address: unknown = j.mediaAddress;
  let addressField = 'mediaAddress';
  let address6: unknown;
  if (typeof j.media === 'string') c.media = oneOf(j.media, 'media', ['direct', 'relay'] as const);
  else if (j.media !== undefined) {
    if (typeof j.media !== 'object' || j.media === null || Array.isArray(j.media)) throw new ConfigError('media', 'must be one of direct, relay, or an object');
    const m = j.media as Json;
    for (const k of Object.keys(m)) if (!['mode', 'address', 'address6', 'ports'].includes(k)) throw new ConfigError(`media.${k}`, 'unknown key');
    c.media = oneOf(m.mode, 'media.mode', ['direct', 'relay'] as const);
    if (m.address !== undefined) {
      if (address !== undefined) throw new ConfigError('mediaAddress', 'give media.address only');
      address = m.address;
      addressField = 'media.address';
    }
    address6 = m.address6;
    if (m.ports !== undefined) {
      const p = obj(m.ports, 'media.ports');
      for (const k of Object.keys(p)) if (k !== 'min' && k !== 'max') throw new ConfigError(`media.ports.${k}`, 'unknown key');
      const min = int(p.min, 'media.ports.min', 1024, 65534);
      const max = int(p.max, 'media.ports.max', 1024, 65534);
      // RTP even, RTCP the odd port above (RFC 3550 §11): the range holds whole pairs.
      if (min % 2 !== 0) throw new ConfigError('media.ports.min', 'must be even');
      if (max % 2 !== 0) throw new ConfigError('media.ports.max', 'must be even');
      if (min >= max) throw new ConfigError('media.ports', 'min must be below max');
      c.mediaPorts = { min, max };
    }
  }
  if (address !== undefined) c.mediaAddress = mediaAddress(address, addressField, 4);
  if (address6 !== undefined) c.mediaAddress6 = mediaAddress(address6, 'media.address6', 6);
  else c.mediaAddress6 = c.sip.listen.every((l) => isLoopback(l.host)) ? '::1' : null;
  if (c.media === 'relay' && c.mediaAddress === null && c.mediaAddress6 === null) throw new ConfigError('media.address', 'relay mode needs an IPv4 or an IPv6 media address');
}

/** An extension: a password, or stored HA1s per base algorithm, and optionally the algorithms it may use. */
export function validateExtension(e: unknown, field: string): ExtensionConfig {
  const eo = obj(e, field);
  if (eo.password === undefined && eo.ha1 === undefined) throw new ConfigError(field, 'needs password or ha1');
  const ext: ExtensionConfig = {
    password: eo.password === undefined ? undefined : str(eo.password, `${field}.password`),
    ha1: eo.ha1 === undefined ? undefined : validateHa1(eo.ha1, `${field}.ha1`),
  };
  if (eo.algorithms !== undefined) {
    const ef = `${field}.algorithms`;
    const algorithms = algorithmList(eo.algorithms, ef);
    // Without a password, each algorithm needs its stored HA1, or the extension could never log in with it.
    const ha1 = ext.ha1;
    const missing = ext.password === undefined ? algorithms.find((x) => ha1?.[x.replace(/-sess$/, '') as 'MD5'] === undefined) : undefined;
    if (missing !== undefined) throw new ConfigError(ef, `${missing} needs a password or an ha1.${missing.replace(/-sess$/, '')}`);
    ext.algorithms = algorithms;
  }
  return ext;
}

const HA1_LENGTH = { MD5: 32, 'SHA-256': 64, 'SHA-512-256': 64 } as const;

/** Stored HA1s: hex digests of the length their algorithm gives, at least one. */
function validateHa1(v: unknown, field: string): NonNullable<ExtensionConfig['ha1']> {
  const o = obj(v, field);
  const ha1: NonNullable<ExtensionConfig['ha1']> = {};
  for (const [k, h] of Object.entries(o)) {
    if (!Object.hasOwn(HA1_LENGTH, k)) throw new ConfigError(`${field}.${k}`, 'unknown algorithm: MD5, SHA-256 or SHA-512-256');
    const len = HA1_LENGTH[k as keyof typeof HA1_LENGTH];
    if (typeof h !== 'string' || h.length !== len || !/^[0-9a-fA-F]+$/.test(h)) throw new ConfigError(`${field}.${k}`, `must be ${len} hex digits`);
    ha1[k as keyof typeof HA1_LENGTH] = h.toLowerCase();
  }
  if (Object.keys(ha1).length === 0) throw new ConfigError(field, 'must hold at least one HA1');
  return ha1;
}

/** Routes: a prefix and sip: targets each. */
export function validateRoutes(routes: unknown, field: string): RouteConfig[] {
  if (!Array.isArray(routes)) throw new ConfigError(field, 'must be an array');
  return routes.map((r, i) => {
    const ro = obj(r, `${field}[${i}]`);
    if (typeof ro.prefix !== 'string') throw new ConfigError(`${field}[${i}].prefix`, 'must be a string');
    if (!Array.isArray(ro.targets) || ro.targets.length === 0) throw new ConfigError(`${field}[${i}].targets`, 'must be a non-empty array');
    const targets = ro.targets.map((t, k) => {
      const s = str(t, `${field}[${i}].targets[${k}]`);
      try {
        if (parseUri(s).kind !== 'sip') throw new Error();
      } catch {
        throw new ConfigError(`${field}[${i}].targets[${k}]`, 'must be a sip: or sips: URI');
      }
      return s;
    });
    if (ro.rates === undefined) return { prefix: ro.prefix, targets };
    try {
      return { prefix: ro.prefix, targets, rates: validateRates(ro.rates, `${field}[${i}].rates`) };
    } catch (err) {
      if (err instanceof RateError) throw new ConfigError(err.field, err.message.slice(err.field.length + 2));
      throw err;
    }
  });
}

/** A list of IPv4/IPv6 CIDRs or bare addresses (cidr.ts), each checked now. */
function validateCidrList(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) throw new ConfigError(field, 'must be an array of CIDRs');
  if (v.length > MAX_ALLOW_RULES) throw new ConfigError(field, `at most ${MAX_ALLOW_RULES} rules`);
  return v.map((r, i) => {
    const s = str(r, `${field}[${i}]`);
    try {
      parseCidr(s);
    } catch (err) {
      throw new ConfigError(`${field}[${i}]`, err instanceof CidrError ? err.message : 'must be a CIDR');
    }
    return s;
  });
}

/** A domain's `auth`: its challenge set, and who may call without (or besides) digest. */
export function validateDomainAuth(v: unknown, field: string): NonNullable<DomainConfig['auth']> {
  const da = obj(v, field);
  for (const k of Object.keys(da)) if (k !== 'algorithms' && k !== 'mode' && k !== 'allow') throw new ConfigError(`${field}.${k}`, 'unknown key');
  const auth: NonNullable<DomainConfig['auth']> = {};
  if (da.algorithms !== undefined) auth.algorithms = algorithmList(da.algorithms, `${field}.algorithms`);
  if (da.mode !== undefined) auth.mode = oneOf(da.mode, `${field}.mode`, AUTH_MODES);
  if (da.allow !== undefined) {
    if (!Array.isArray(da.allow)) throw new ConfigError(`${field}.allow`, 'must be an array of CIDRs');
    if (da.allow.length > MAX_ALLOW_RULES) throw new ConfigError(`${field}.allow`, `at most ${MAX_ALLOW_RULES} rules`);
    auth.allow = da.allow.map((r, i) => {
      const s = str(r, `${field}.allow[${i}]`);
      try {
        parseCidr(s);
      } catch (err) {
        throw new ConfigError(`${field}.allow[${i}]`, err instanceof CidrError ? err.message : 'must be a CIDR');
      }
      return s;
    });
  }
  // An IP mode with no addresses would refuse (ip, ip+digest) or skip (ip-or-digest) everyone: a mistake either way.
  if (auth.mode !== undefined && auth.mode !== 'digest' && (auth.allow?.length ?? 0) === 0) throw new ConfigError(`${field}.allow`, `mode ${auth.mode} needs at least one address`);
  return auth;
}

/** One trunk domain: extensions, routes and optionally its own auth. */
export function validateDomain(v: unknown, f: string): DomainConfig {
  const dom = obj(v, f);
  const extensions: Record<string, ExtensionConfig> = {};
  for (const [ext, e] of Object.entries(obj(dom.extensions, `${f}.extensions`))) extensions[ext] = validateExtension(e, `${f}.extensions.${ext}`);
  const domainAuth = dom.auth === undefined ? undefined : validateDomainAuth(dom.auth, `${f}.auth`);
  return { extensions, ...(domainAuth ? { auth: domainAuth } : {}), routes: validateRoutes(dom.routes, `${f}.routes`) };
}

/** A PEM file's problem as a ConfigError naming the field. */
function pemChecked<T>(field: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof PemError) throw new ConfigError(field, err.message);
    throw err;
  }
}

/** One `sip.listen` entry; a tls listener's certificate and key are read and checked now, not at the first call. */
function validateListen(l: unknown, f: string, baseDir: string): ListenConfig {
  const o = obj(l, f);
  const transport = oneOf(o.transport, `${f}.transport`, ['udp', 'tcp', 'tls'] as const);
  const listen: ListenConfig = { transport, host: str(o.host, `${f}.host`), port: int(o.port, `${f}.port`, 0, 65535) };
  if (o.sendThread !== undefined) {
    if (transport !== 'udp') throw new ConfigError(`${f}.sendThread`, 'only a udp listener has a send thread');
    if (typeof o.sendThread !== 'boolean') throw new ConfigError(`${f}.sendThread`, 'must be true or false');
    listen.sendThread = o.sendThread;
  }
  if (transport !== 'tls') {
    for (const k of ['cert', 'key']) if (o[k] !== undefined) throw new ConfigError(`${f}.${k}`, 'only a tls listener has a certificate');
    return listen;
  }
  const cert = resolve(baseDir, str(o.cert, `${f}.cert`));
  const key = resolve(baseDir, str(o.key, `${f}.key`));
  pemChecked(`${f}.cert`, () => readCertificates(cert));
  pemChecked(`${f}.key`, () => readKeyPair(cert, key));
  return { ...listen, cert, key };
}

/** `tls`: { ca, verify } for outgoing TLS, which leaves through a tls listener. */
function validateTls(v: unknown, baseDir: string, listen: readonly ListenConfig[]): TlsConfig {
  const o = obj(v, 'tls');
  for (const k of Object.keys(o)) if (k !== 'ca' && k !== 'verify') throw new ConfigError(`tls.${k}`, 'unknown key');
  if (!listen.some((l) => l.transport === 'tls')) throw new ConfigError('tls', 'outgoing TLS leaves through a tls listener: add one to sip.listen');
  const tls: TlsConfig = { ca: null, verify: true };
  if (o.ca !== undefined && o.ca !== null) {
    const ca = resolve(baseDir, str(o.ca, 'tls.ca'));
    pemChecked('tls.ca', () => readCertificates(ca));
    tls.ca = ca;
  }
  if (o.verify !== undefined) tls.verify = bool(o.verify, 'tls.verify');
  return tls;
}

/** A Contact user part: RFC 3261 unreserved characters only, so it needs no escaping and compares exactly. */
const CONTACT_USER = /^[A-Za-z0-9._~+-]{1,64}$/;
/** RFC 5626 §4.1: a URN (RFC 4122 UUIDs as urn:uuid:…), or a bare UUID. */
const INSTANCE_ID = /^(urn:[a-z0-9][a-z0-9-]{0,31}:[\x21-\x7e]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
export const MAX_REGISTRATIONS = 64;

/** The addresses a registrar host stands for: an IP literal, or localhost (both loopbacks). */
export function registrarAddresses(registrar: string): string[] {
  const host = (parseUri(registrar) as SipUri).host.replace(/^\[|\]$/g, '');
  if (host.toLowerCase() === 'localhost') return ['127.0.0.1', '::1'];
  // A name: its addresses are what DNS says when the trunk runs (RFC 3263), not known here.
  return isIP(host) === 0 ? [] : [host];
}

function validateRegistration(v: unknown, f: string, c: TrunkConfig): RegistrationConfig {
  const o = obj(v, f);
  for (const k of Object.keys(o)) if (!['registrar', 'username', 'password', 'expires', 'aor', 'contactUser', 'outbound', 'inbound'].includes(k)) throw new ConfigError(`${f}.${k}`, 'unknown key');
  const registrar = str(o.registrar, `${f}.registrar`);
  let uri: SipUri;
  try {
    const u = parseUri(registrar);
    if (u.kind !== 'sip') throw new Error();
    uri = u as SipUri;
  } catch {
    throw new ConfigError(`${f}.registrar`, 'must be a sip: or sips: URI');
  }
  if (uri.userRaw !== undefined) throw new ConfigError(`${f}.registrar`, 'names the registrar, no user part (RFC 3261 §10.2)');
  const transport = (uri.transport ?? (uri.scheme === 'sips' ? 'tls' : 'udp')).toLowerCase();
  if (uri.scheme === 'sips' && transport !== 'tls') throw new ConfigError(`${f}.registrar`, 'a sips: URI is reached over TLS only (RFC 5630 §3.1.3)');
  if (!['udp', 'tcp', 'tls'].includes(transport)) throw new ConfigError(`${f}.registrar`, 'transport must be udp, tcp or tls');
  if (!c.sip.listen.some((l) => l.transport === transport)) throw new ConfigError(`${f}.registrar`, `needs a ${transport} listener in sip.listen (the Contact registered is one)`);
  const username = str(o.username, `${f}.username`);
  const reg: RegistrationConfig = {
    registrar,
    username,
    password: str(o.password, `${f}.password`),
    expires: o.expires === undefined ? 600 : int(o.expires, `${f}.expires`, 10, 86_400),
    aor: o.aor === undefined ? `sip:${username}@${uri.host}` : str(o.aor, `${f}.aor`),
    contactUser: o.contactUser === undefined ? username : str(o.contactUser, `${f}.contactUser`),
  };
  try {
    const a = parseUri(reg.aor);
    if (a.kind !== 'sip' || (a as SipUri).userRaw === undefined) throw new Error();
  } catch {
    throw new ConfigError(`${f}.aor`, o.aor === undefined ? `sip:${username}@${uri.host} is no SIP URI: give aor` : 'must be a sip: URI with a user part');
  }
  if (!CONTACT_USER.test(reg.contactUser)) throw new ConfigError(`${f}.contactUser`, o.contactUser === undefined ? 'the username is no plain Contact user part: give contactUser (letters, digits, . _ ~ + -)' : 'letters, digits, . _ ~ + - only');
  if (o.outbound !== undefined) {
    const ob = obj(o.outbound, `${f}.outbound`);
    for (const k of Object.keys(ob)) if (k !== 'instanceId' && k !== 'regId') throw new ConfigError(`${f}.outbound.${k}`, 'unknown key');
    const instanceId = str(ob.instanceId, `${f}.outbound.instanceId`);
    if (!INSTANCE_ID.test(instanceId)) throw new ConfigError(`${f}.outbound.instanceId`, 'must be a UUID or a urn: (RFC 5626 §4.1); keep it the same across restarts');
    reg.outbound = { instanceId, regId: ob.regId === undefined ? 1 : int(ob.regId, `${f}.outbound.regId`, 1, 0x7fffffff) };
  }
  if (o.inbound !== undefined) {
    const ib = obj(o.inbound, `${f}.inbound`);
    for (const k of Object.keys(ib)) if (k !== 'domain' && k !== 'allow') throw new ConfigError(`${f}.inbound.${k}`, 'unknown key');
    const domain = str(ib.domain, `${f}.inbound.domain`).toLowerCase();
    if (!Object.hasOwn(c.domains, domain)) throw new ConfigError(`${f}.inbound.domain`, 'must be one of the domains');
    let allow = registrarAddresses(registrar);
    // A registrar named by host: its calls are trusted from the addresses DNS gives for it.
    const byName = ib.allow === undefined && allow.length === 0;
    if (ib.allow !== undefined) {
      if (!Array.isArray(ib.allow) || ib.allow.length === 0) throw new ConfigError(`${f}.inbound.allow`, 'must be a non-empty array of CIDRs');
      if (ib.allow.length > MAX_ALLOW_RULES) throw new ConfigError(`${f}.inbound.allow`, `at most ${MAX_ALLOW_RULES} rules`);
      allow = ib.allow.map((r, i) => {
        const s = str(r, `${f}.inbound.allow[${i}]`);
        try {
          parseCidr(s);
        } catch (err) {
          throw new ConfigError(`${f}.inbound.allow[${i}]`, err instanceof CidrError ? err.message : 'must be a CIDR');
        }
        return s;
      });
    }
    reg.inbound = byName ? { domain, allow, registrarByName: true } : { domain, allow };
  }
  return reg;
}

/** `registrations`: each with its own Contact user part, so a call to one is told from a call to another. */
function validateRegistrations(v: unknown, c: TrunkConfig): RegistrationConfig[] {
  if (!Array.isArray(v)) throw new ConfigError('registrations', 'must be an array');
  if (v.length > MAX_REGISTRATIONS) throw new ConfigError('registrations', `at most ${MAX_REGISTRATIONS}`);
  const seen = new Set<string>();
  return v.map((r, i) => {
    const reg = validateRegistration(r, `registrations[${i}]`, c);
    if (seen.has(reg.contactUser)) throw new ConfigError(`registrations[${i}].contactUser`, `${reg.contactUser} is another registration's Contact user already`);
    seen.add(reg.contactUser);
    return reg;
  });
}

/** A DNS name: dot-separated RFC 1035 labels, lower-cased. */
function hostName(v: unknown, field: string): string {
  const s = str(v, field).toLowerCase();
  if (s.length > 253 - 64 || !s.split('.').every((l) => DNS_LABEL.test(l))) throw new ConfigError(field, 'must be a DNS name (letters, digits, hyphens; dot-separated labels)');
  return s;
}

export interface ValidateOptions {
  /** Relative file paths (TLS certificates and keys) are relative to this (default: the working directory); loadConfig gives the file's own. */
  baseDir?: string;
}

/** Validate a parsed JSON config over the defaults; every error names its field. */
export function validateConfig(input: unknown, options: ValidateOptions = {}): TrunkConfig {
  const c = defaultConfig();
  const j = obj(input, '(root)');
  const baseDir = options.baseDir ?? process.cwd();
  const known = new Set(['sip', 'tls', 'registrations', 'http', 'auth', 'media', 'mediaAddress', 'noAnswerTimeoutSeconds', 'noAnswerStatus', 'domains', 'provisioning', 'cdr', 'journal', 'limits', 'timers', 'log', 'shutdown', 'sessionTimer', 'metrics', 'capture', 'dns', 'probe', 'instance', 'records']);
  for (const k of Object.keys(j)) if (!known.has(k)) throw new ConfigError(k, 'unknown key');
  if (j.sip !== undefined) {
    const sip = obj(j.sip, 'sip');
    const listen = sip.listen;
    // `sip: { trustedProxies }` alone keeps the default listeners.
    if (listen !== undefined || sip.trustedProxies === undefined) {
      if (!Array.isArray(listen) || listen.length === 0) throw new ConfigError('sip.listen', 'must be a non-empty array');
      c.sip.listen = listen.map((l, i) => validateListen(l, `sip.listen[${i}]`, baseDir));
    }
    if (sip.trustedProxies !== undefined) c.sip.trustedProxies = validateCidrList(sip.trustedProxies, 'sip.trustedProxies');
  }
  if (j.tls !== undefined) c.tls = validateTls(j.tls, baseDir, c.sip.listen);
  if (j.http !== undefined) {
    const h = obj(j.http, 'http');
    c.http = { host: str(h.host, 'http.host'), port: int(h.port, 'http.port', 0, 65535), token: str(h.token, 'http.token') };
  }
  if (j.auth !== undefined) {
    const a = obj(j.auth, 'auth');
    c.auth = {
      secret: a.secret === undefined ? c.auth.secret : str(a.secret, 'auth.secret'),
      algorithms: a.algorithms === undefined ? c.auth.algorithms : algorithmList(a.algorithms, 'auth.algorithms'),
      nonceTtlSeconds: a.nonceTtlSeconds === undefined ? 300 : int(a.nonceTtlSeconds, 'auth.nonceTtlSeconds', 1, 86_400),
      maxLiveNonces: a.maxLiveNonces === undefined ? c.auth.maxLiveNonces : int(a.maxLiveNonces, 'auth.maxLiveNonces', 1, 100_000_000),
    };
    if (Buffer.byteLength(c.auth.secret) < 16) throw new ConfigError('auth.secret', 'must be at least 16 bytes');
  }
  validateMedia(j, c);
  if (j.noAnswerTimeoutSeconds !== undefined) c.noAnswerTimeoutSeconds = int(j.noAnswerTimeoutSeconds, 'noAnswerTimeoutSeconds', 1, 3600);
  if (j.noAnswerStatus !== undefined) c.noAnswerStatus = int(j.noAnswerStatus, 'noAnswerStatus', 408, 480) === 480 ? 480 : 408;
  if (j.domains !== undefined) {
    const d = obj(j.domains, 'domains');
    c.domains = {};
    for (const [name, v] of Object.entries(d)) c.domains[name.toLowerCase()] = validateDomain(v, `domains.${name}`);
  }
  if (j.registrations !== undefined) c.registrations = validateRegistrations(j.registrations, c);
  if (j.provisioning !== undefined) {
    const p = obj(j.provisioning, 'provisioning');
    for (const k of Object.keys(p)) if (k !== 'baseDomain' && k !== 'storePath') throw new ConfigError(`provisioning.${k}`, 'unknown key');
    if (p.baseDomain !== undefined) c.provisioning.baseDomain = hostName(p.baseDomain, 'provisioning.baseDomain');
    c.provisioning.storePath = p.storePath === undefined || p.storePath === null ? null : str(p.storePath, 'provisioning.storePath');
  } else c.provisioning.storePath = null;
  if (j.cdr !== undefined) {
    const cd = obj(j.cdr, 'cdr');
    c.cdr = { path: cd.path === null ? null : str(cd.path, 'cdr.path') };
  }
  // A config file gets a journal only when it asks for one: two trunks sharing a journal
  // would end each other's calls on restart.
  c.journal = { path: null, cause: 41, fsync: false };
  if (j.journal !== undefined) {
    const jo = obj(j.journal, 'journal');
    c.journal = {
      path: jo.path === null || jo.path === undefined ? null : str(jo.path, 'journal.path'),
      // Q.850 cause values are 1–127 (ITU-T Q.850 §2.2.5).
      cause: jo.cause === undefined ? 41 : int(jo.cause, 'journal.cause', 1, 127),
      fsync: jo.fsync === undefined ? false : bool(jo.fsync, 'journal.fsync'),
    };
  }
  if (j.limits !== undefined) {
    const l = obj(j.limits, 'limits');
    if (l.maxCalls !== undefined) c.limits.maxCalls = int(l.maxCalls, 'limits.maxCalls', 1, 10_000_000);
    if (l.maxCallsPerSource !== undefined) c.limits.maxCallsPerSource = int(l.maxCallsPerSource, 'limits.maxCallsPerSource', 1, 10_000_000);
  }
  if (j.timers !== undefined) {
    const t = obj(j.timers, 'timers');
    if (t.T1 !== undefined) c.timers.T1 = int(t.T1, 'timers.T1', 10, 10_000);
  }
  if (j.log !== undefined) c.log.level = oneOf(obj(j.log, 'log').level, 'log.level', ['debug', 'info', 'warn', 'error'] as const);
  if (j.shutdown !== undefined) {
    const s = obj(j.shutdown, 'shutdown');
    if (s.mode !== undefined) c.shutdown.mode = oneOf(s.mode, 'shutdown.mode', ['drain', 'hangup'] as const);
    if (s.drainSeconds !== undefined) c.shutdown.drainSeconds = int(s.drainSeconds, 'shutdown.drainSeconds', 0, 86_400);
  }
  if (j.sessionTimer !== undefined) c.sessionTimer = validateSessionTimer(j.sessionTimer);
  if (j.metrics !== undefined) {
    const m = obj(j.metrics, 'metrics');
    for (const k of Object.keys(m)) if (k !== 'public') throw new ConfigError(`metrics.${k}`, 'unknown key');
    if (m.public !== undefined) c.metrics.public = bool(m.public, 'metrics.public');
  }
  // Like the journal: a config file gets a capture only when it asks for one.
  c.capture.enabled = false;
  if (j.capture !== undefined) {
    const k = obj(j.capture, 'capture');
    for (const key of Object.keys(k)) if (!['enabled', 'maxMessagesPerCall', 'maxCalls', 'maxBytes'].includes(key)) throw new ConfigError(`capture.${key}`, 'unknown key');
    c.capture.enabled = k.enabled === undefined ? true : bool(k.enabled, 'capture.enabled');
    if (k.maxMessagesPerCall !== undefined) c.capture.maxMessagesPerCall = int(k.maxMessagesPerCall, 'capture.maxMessagesPerCall', 1, 10_000);
    if (k.maxCalls !== undefined) c.capture.maxCalls = int(k.maxCalls, 'capture.maxCalls', 1, 1_000_000);
    if (k.maxBytes !== undefined) c.capture.maxBytes = int(k.maxBytes, 'capture.maxBytes', 1024, 4 * 1024 * 1024 * 1024);
  }
  if (j.dns !== undefined) c.dns = validateDns(j.dns);
  if (j.probe !== undefined) c.probe = validateProbe(j.probe);
  if (j.instance !== undefined) c.instance = validateInstance(j.instance);
  if (j.records !== undefined) c.records = validateRecords(j.records);
  checkTargetTransports(c);
  return c;
}

/** A DNS server as `dns.setServers` takes it: an IP address, `a.b.c.d:port` or `[v6]:port`. */
function dnsServer(v: unknown, field: string): string {
  const s = str(v, field);
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:]+):(\d{1,5})$/.exec(s);
  const host = m ? m[1]! : s;
  const port = m ? Number(m[2]) : 53;
  if (isIP(host) === 0 || host.includes('%') || port < 1 || port > 65535) throw new ConfigError(field, 'must be an IP address, with an optional port: 192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53');
  return s;
}

/** `dns`: { servers } — absent or null servers: the system's resolvers (/etc/resolv.conf). */
function validateDns(v: unknown): TrunkConfig['dns'] {
  const o = obj(v, 'dns');
  for (const k of Object.keys(o)) if (k !== 'servers') throw new ConfigError(`dns.${k}`, 'unknown key');
  if (o.servers === undefined || o.servers === null) return { servers: null };
  if (!Array.isArray(o.servers) || o.servers.length === 0 || o.servers.length > 8) throw new ConfigError('dns.servers', 'must be an array of 1 to 8 servers, or null');
  return { servers: o.servers.map((x, i) => dnsServer(x, `dns.servers[${i}]`)) };
}

/** `probe`: null (off) or { intervalSeconds, failureThreshold, successThreshold, timeoutSeconds }. */
function validateProbe(v: unknown): ProbeConfig | null {
  if (v === null) return null;
  const o = obj(v, 'probe');
  for (const k of Object.keys(o)) if (!['intervalSeconds', 'failureThreshold', 'successThreshold', 'timeoutSeconds'].includes(k)) throw new ConfigError(`probe.${k}`, 'unknown key');
  const p: ProbeConfig = {
    intervalSeconds: o.intervalSeconds === undefined ? 30 : int(o.intervalSeconds, 'probe.intervalSeconds', 1, 3600),
    failureThreshold: o.failureThreshold === undefined ? 3 : int(o.failureThreshold, 'probe.failureThreshold', 1, 100),
    successThreshold: o.successThreshold === undefined ? 2 : int(o.successThreshold, 'probe.successThreshold', 1, 100),
    timeoutSeconds: o.timeoutSeconds === undefined ? 5 : int(o.timeoutSeconds, 'probe.timeoutSeconds', 1, 60),
  };
  // A target has one probe out at a time: a timeout as long as the interval would hold back the next probe.
  if (p.timeoutSeconds >= p.intervalSeconds) throw new ConfigError('probe.timeoutSeconds', 'must be below probe.intervalSeconds');
  return p;
}

/**
 * A route target that fixes its transport (`sips:` → TLS, `;transport=tcp`) can only be
 * reached through a listener of that transport: found now, not at the first call's 503.
 */
function checkTargetTransports(c: TrunkConfig): void {
  const have = new Set(c.sip.listen.map((l) => l.transport));
  for (const [name, d] of Object.entries(c.domains)) {
    d.routes.forEach((r, i) =>
      r.targets.forEach((t, k) => {
        const u = parseUri(t) as SipUri;
        const transport = u.scheme === 'sips' ? 'tls' : u.transport?.toLowerCase();
        if (u.scheme === 'sips' && u.transport !== undefined && u.transport.toLowerCase() !== 'tls') throw new ConfigError(`domains.${name}.routes[${i}].targets[${k}]`, 'a sips: URI is reached over TLS only (RFC 5630 §3.1.3)');
        if (transport !== undefined && (transport === 'udp' || transport === 'tcp' || transport === 'tls') && !have.has(transport)) throw new ConfigError(`domains.${name}.routes[${i}].targets[${k}]`, `needs a ${transport} listener in sip.listen`);
      }),
    );
  }
}

export function loadConfig(path: string): TrunkConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('(file)', `not valid JSON: ${(err as Error).message}`);
  }
  return validateConfig(json, { baseDir: dirname(resolve(path)) });
}
