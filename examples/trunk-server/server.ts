import { appendFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { B2bua, type CallRecord, type MediaHooks, type RouteDecision, type RouteTarget } from 'sipkit/b2bua';
import { DigestServer } from 'sipkit/digest';
import { createResponse, parseUri, type SipRequest, type SipUri } from 'sipkit/parser';
import { TcpTransport, UdpTransport, type Transport } from 'sipkit/transport';
import { viewOf } from './call-view.js';
import { CallJournalFile } from './journal.js';
import { endJournaledCalls } from './restart.js';
import type { DomainConfig, TrunkConfig } from './config.js';
import { createHttpApi } from './http-api.js';
import { createLogger, type Logger } from './log.js';
import { MediaRelay } from './rtp-relay.js';

export interface TrunkServer {
  b2bua: B2bua;
  config: TrunkConfig;
  /** Bound SIP listeners ("udp 127.0.0.1:5060"). */
  sip: Array<{ transport: string; address: string; port: number }>;
  http: { address: string; port: number };
  /** Stop taking calls, hang up or drain the rest, close everything. */
  stop(mode?: 'drain' | 'hangup'): Promise<void>;
}

export interface TrunkOptions {
  log?: Logger;
  /** Print every SIP message sent and received. */
  trace?: boolean;
}

/** The host a Request-URI names, lower-cased: the realm it is challenged in, configured or not. */
function requestedHost(req: SipRequest): string | undefined {
  try {
    const u = req.requestUri;
    return u.kind === 'sip' ? u.host.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** The trunk domain a Request-URI names (its host), if configured. */
function domainOf(req: SipRequest, config: TrunkConfig): [string, DomainConfig] | undefined {
  const host = requestedHost(req);
  const d = host === undefined ? undefined : ownEntry(config.domains, host);
  return d ? [host!, d] : undefined;
}

/** A record's own entry: a host or username such as "constructor" must not find Object.prototype's. */
function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Longest number-prefix match → targets in fail-over order. */
export function routeFor(number: string, domain: DomainConfig): string[] {
  let best: { prefix: string; targets: string[] } | undefined;
  for (const r of domain.routes) {
    if (number.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best?.targets ?? [];
}

/** A gateway URI without a user part gets the dialled number. */
function targetUri(target: string, number: string): string {
  const u = parseUri(target) as SipUri;
  if (u.userRaw !== undefined) return target;
  const c = u.clone();
  c.userRaw = number;
  return c.toString();
}

export async function startTrunk(config: TrunkConfig, options: TrunkOptions = {}): Promise<TrunkServer> {
  const log = options.log ?? createLogger(config.log.level);
  const transports: Transport[] = [];
  for (const l of config.sip.listen) {
    transports.push(l.transport === 'udp' ? await UdpTransport.bind({ host: l.host, port: l.port }) : await TcpTransport.listen({ host: l.host, port: l.port }));
  }
  // Every domain is challenged the same way, configured or not (realm = the host dialled),
  // and refused the same way after its credentials are checked: an unknown domain has no
  // extensions, so its credentials fail exactly like a wrong password (a fresh 407, the same
  // decoy-HA1 work — see DigestServer.verify). Neither domains nor users can be enumerated.
  // Only a domain whose own auth.algorithms differ from the global set is told apart by its
  // challenge, which is the point of configuring it.
  const auth = new DigestServer({
    secret: config.auth.secret,
    realm: (req) => requestedHost(req) ?? '',
    algorithms: config.auth.algorithms,
    realmAlgorithms: (realm) => ownEntry(config.domains, realm)?.auth?.algorithms,
    nonceTtlMs: config.auth.nonceTtlSeconds * 1000,
    replayTableSize: config.auth.maxLiveNonces,
    // Nonces are bound to the caller's address, so a spoofed source cannot count failures
    // against (and lock out) someone else; throttling is per (address, extension).
    bindNonce: 'source',
    lookup: (username, realm) => {
      const dom = ownEntry(config.domains, realm);
      const ext = dom ? ownEntry(dom.extensions, username) : undefined;
      return ext ? { password: ext.password, ha1: ext.ha1, algorithms: ext.algorithms } : undefined;
    },
  });

  // Media relay: each call's streams anchored on the trunk (rtp-relay.ts). The route hook
  // admits the offer first, since only it can refuse a call with 488 or 503.
  const relay = new MediaRelay({
    addresses: { IP4: config.mediaAddress, IP6: config.mediaAddress6 },
    ports: config.mediaPorts,
    log,
  });
  // Calls by id; whatever is left is closed on stop().
  const rtp = relay.calls;
  const media: MediaHooks = config.media === 'relay' ? relay.hooks() : {};
  const admitMedia = (req: SipRequest, record: CallRecord, targets: RouteTarget[]): RouteDecision | Promise<RouteDecision> =>
    config.media === 'relay' && targets.length > 0 ? relay.admit(record.id, req.body).then((refused) => refused ?? targets) : targets;

  // The journal is read before the B2BUA exists: the calls the last run left up are ended below.
  const opened = config.journal.path
    ? CallJournalFile.open(config.journal.path, { fsync: config.journal.fsync, onError: (err) => log('error', 'journal.write_failed', { error: err.message }) })
    : undefined;
  if (opened && opened.journal.skipped > 0) log('warn', 'journal.unreadable_lines', { count: opened.journal.skipped });

  const b2bua = new B2bua({
    transports,
    journal: opened?.journal,
    timers: { T1: config.timers.T1 },
    media,
    noAnswerTimeoutMs: config.noAnswerTimeoutSeconds * 1000,
    noAnswerStatus: config.noAnswerStatus,
    maxCalls: config.limits.maxCalls,
    maxCallsPerSource: config.limits.maxCallsPerSource,
    contactUser: 'trunk',
    userAgent: 'sipkit-trunk',
    trace: options.trace
      ? (dir, bytes, remote, t) =>
          log('debug', dir === 'in' ? 'sip.recv' : 'sip.send', { transport: t.protocol, peer: `${remote.address}:${remote.port}`, message: Buffer.from(bytes).toString() })
      : undefined,
    authenticate: async (req, source) => {
      const host = requestedHost(req);
      if (host === undefined) {
        // Not a sip:/sips: Request-URI: there is no domain to authenticate in.
        log('info', 'call.rejected', { reason: 'no trunk domain', from: source.address.address });
        return { ok: false, response: createResponse(req, 404) };
      }
      const r = await auth.verify(req, { source: source.address.address });
      const dom = domainOf(req, config);
      if (r.kind === 'ok' && dom) return { ok: true, identity: r.username, tags: { domain: dom[0] } };
      // (An unknown domain has no extensions, so `ok` cannot happen without `dom`; refuse anyway.)
      const response = r.kind === 'ok' ? createResponse(req, 403) : r.response;
      const rejected = r.kind === 'reject' || r.kind === 'ok';
      log(rejected ? 'warn' : 'debug', rejected ? 'auth.rejected' : 'auth.challenge', {
        reason: r.kind === 'ok' ? 'unknown domain' : r.reason,
        domain: host,
        known: dom !== undefined,
        from: `${source.address.address}:${source.address.port}`,
      });
      return { ok: false, response };
    },
    route: (req, ctx) => {
      const dom = domainOf(req, config)!;
      const number = (req.requestUri as SipUri).user ?? '';
      return admitMedia(req, ctx.record, routeFor(number, dom[1]).map((t) => ({ uri: targetUri(t, number) })));
    },
  });

  const cdr = config.cdr.path;
  let cdrWrites: Promise<void> = Promise.resolve();
  b2bua.on('call', (r) => log('info', 'call.created', { id: r.id, from: r.from, to: r.to, extension: r.identity, domain: r.tags.domain }));
  b2bua.on('update', (r: CallRecord) => log('debug', 'call.updated', { id: r.id, status: r.state }));
  b2bua.on('end', (r) => {
    log('info', 'call.ended', { id: r.id, by: r.hangup?.by, code: r.hangup?.status, q850: r.hangup?.q850 });
    if (cdr) {
      const line = JSON.stringify(viewOf(r)) + '\n';
      cdrWrites = cdrWrites.then(() => appendFile(cdr, line)).catch((err: Error) => log('error', 'cdr.write_failed', { error: err.message }));
    }
  });

  if (opened && opened.up.length > 0) {
    log('warn', 'journal.ending_calls', { count: opened.up.length, cause: config.journal.cause });
    endJournaledCalls(b2bua, opened.journal, opened.up, config.journal.cause, log);
  }

  const http = createHttpApi(b2bua, config.http.token, { log });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.http.port, config.http.host, () => resolve());
  });
  const ha = http.address() as AddressInfo;

  const server: TrunkServer = {
    b2bua,
    config,
    sip: transports.map((t) => ({ transport: t.protocol, address: t.local.address, port: t.local.port })),
    http: { address: ha.address, port: ha.port },
    async stop(mode = config.shutdown.mode) {
      b2bua.stopAccepting();
      log('info', 'trunk.stopping', { mode, calls: b2bua.activeCalls });
      if (mode === 'drain') {
        const deadline = Date.now() + config.shutdown.drainSeconds * 1000;
        while (b2bua.activeCalls > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      }
      // What is left is hung up (BYE, CANCEL or 503, with a Reason); each call gets its `end`
      // event and CDR line at once; the far ends get up to 2 s to answer before the sockets close.
      await b2bua.close({ reason: { protocol: 'Q.850', cause: 16, text: 'Shutdown' }, timeoutMs: 2000 });
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections?.();
      for (const s of rtp.values()) s.close();
      await cdrWrites;
      log('info', 'trunk.stopped', {});
    },
  };
  return server;
}
