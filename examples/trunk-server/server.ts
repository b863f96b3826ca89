import { B2bua } from 'sipkit/b2bua';
import type { Registration } from 'sipkit/dialog';
import { UdpTransport } from 'sipkit/transport';
import { createDigestAuth } from './auth.js';
import { captureRoute, createCallCapture, type CallCapture } from './capture.js';
import { createCharging } from './charges.js';
import { RateError, validateRates, type RateConfig } from './rates.js';
import { ConfigError, type TrunkConfig } from './config.js';
import { closeHttpApi, createHttpApi, listenHttpApi } from './http-api.js';
import { createLogger, sipTrace, type Logger } from './log.js';
import { createMediaRelay, directMedia } from './media.js';
import { createMetrics, metricsRoutes, type TraceHook } from './metrics.js';
import { createLivePage } from './page.js';
import { createCdrWriter, logCallEvents } from './records.js';
import { openCallJournal } from './restart.js';
import { createRouter } from './routing.js';
import { createShutdown, type ShutdownMode } from './shutdown.js';
import { createProvisioningApi } from './provisioning.js';
import { createRegistrations } from './registrations.js';
import { createCallerSource } from './trusted-proxies.js';
import { bindListeners } from './transports.js';
import { createNetwork } from './network.js';
import type { PgRecords } from './pg-records.js';
import { StoreError, TrunkStore } from './trunk-store.js';

export interface TrunkServer {
  b2bua: B2bua;
  config: TrunkConfig;
  /** Bound SIP listeners ("udp 127.0.0.1:5060"). */
  sip: Array<{ transport: string; address: string; port: number }>;
  http: { address: string; port: number };
  /** The provisioned trunks (provisioning.ts's API changes them). */
  trunks: TrunkStore;
  /** The trunk's registrations with carriers (config `registrations`, in order): state, binding. */
  registrations: readonly Registration[];
  /** The shared call records (config `records.store` postgres), else undefined (records in this process). */
  records: PgRecords | undefined;
  /** Stop taking calls, hang up or drain the rest, close everything (shutdown.ts). */
  stop(mode?: ShutdownMode): Promise<void>;
}

export interface TrunkOptions {
  log?: Logger;
  /** Print every SIP message sent and received (and keep each call's messages: `capture`). */
  trace?: boolean;
}

/**
 * The trunk: a B2BUA with each of its parts plugged in — digest auth (auth.ts), routing
 * (routing.ts), media (media.ts), call records (records.ts; shared by a cluster's instances
 * in PostgreSQL with `records.store` postgres: pg-records.ts), the crash journal (restart.ts),
 * the HTTP API (http-api.ts) and shutdown (shutdown.ts). Each part works on its own with a
 * plain B2bua; the README's "The trunk server, part by part" shows a smaller server built
 * from some of them.
 */
/** A provisioned route's rates, checked as the config file's are; a mistake is a 400 naming the field. */
function checkRates(rates: unknown, field: string): RateConfig[] {
  try {
    return validateRates(rates, field);
  } catch (err) {
    if (err instanceof RateError) throw new StoreError('invalid', err.message, err.field);
    throw err;
  }
}

export async function startTrunk(config: TrunkConfig, options: TrunkOptions = {}): Promise<TrunkServer> {
  const log = options.log ?? createLogger(config.log.level);
  const { secret, algorithms, nonceTtlSeconds, maxLiveNonces } = config.auth;
  // First: the trunk does not start without its store (and the schema it migrates).
  const records = await openRecords(config, log);
  // The live domains: the config file's, and the provisioned trunks the store adds (and replaces on each change).
  const domains = { ...config.domains };
  const trunks = TrunkStore.open({ domains, baseDomain: config.provisioning.baseDomain, path: config.provisioning.storePath, log, validateRates: checkRates });
  // The trace hook exists before the B2BUA; what it feeds (metrics, capture) follows the B2BUA's events, so comes after.
  const traces: TraceHook[] = [];
  if (options.trace) traces.push(sipTrace(log));
  let authLog = log; // counted by the metrics once they exist
  const auth = createDigestAuth({
    domains,
    secret,
    algorithms,
    nonceTtlMs: nonceTtlSeconds * 1000,
    maxLiveNonces,
    log: (level, event, fields) => authLog(level, event, fields),
    sharedThrottle: records?.throttle,
  });
  // Each start names itself in its nonces: another instance (or this one after a restart) answers them stale=true.
  log('info', 'trunk.instance', { id: config.instance.id, nonceIssuer: auth.digest.instanceId, records: config.records.store });
  const router = createRouter(domains);
  const media = config.media === 'relay' ? createMediaRelay({ address: config.mediaAddress, address6: config.mediaAddress6, ports: config.mediaPorts, log }) : directMedia;
  // Read before the B2BUA exists; the calls the last run left up are ended once it does.
  const { path: journalPath, cause, fsync } = config.journal;
  const journal = journalPath ? openCallJournal(journalPath, { cause, fsync, log }) : undefined;
  const transports = await bindListeners(config.sip.listen, config.tls, log, config.timers).catch(async (err: unknown) => {
    await records?.close();
    throw err;
  });
  // Calls the carriers send to the trunk's registered Contacts come in before digest auth and the router.
  // Route targets by name (RFC 3263) through the configured DNS servers; probed when `probe` asks.
  const network = createNetwork(config, log);
  const registrations = createRegistrations(config.registrations, { domains, log, userAgent: 'sipkit-trunk' });
  // Behind a trusted front proxy every request comes from the front: each per-source decision
  // (auth throttling, nonce binding, IP allow lists, the per-source call limit) is about the caller
  // the front relayed for instead. Responses still go by the Via (RFC 3261 §18.2.2), to the front.
  const caller = createCallerSource(config.sip.trustedProxies, log);

  const b2bua = new B2bua({
    transports,
    // What needs no lookup (no credentials: 407; a source an IP trunk refuses: 403) is answered
    // statelessly: an unauthenticated INVITE costs one response and no memory. A carrier's call to
    // a registered Contact is decided by the registrations part first (it carries no credentials).
    challenge: (req, packetSource) => {
      const source = caller.of(req, packetSource);
      const carrier = registrations.authenticate(req, source);
      return carrier ? (carrier.ok ? undefined : carrier.response) : auth.challenge(req, source);
    },
    authenticate: (req, packetSource) => {
      const source = caller.of(req, packetSource);
      return registrations.authenticate(req, source) ?? auth.authenticate(req, source);
    },
    // The media part sees the route first: only there can an offer it cannot carry get a 488 or 503.
    route: (req, { record }) => media.admit(req, record, registrations.route(record) ?? router.route(req)),
    media,
    journal: journal?.journal,
    timers: { T1: config.timers.T1 },
    noAnswerTimeoutMs: config.noAnswerTimeoutSeconds * 1000,
    noAnswerStatus: config.noAnswerStatus,
    sessionTimer: config.sessionTimer ?? undefined,
    maxCalls: config.limits.maxCalls,
    maxCallsPerSource: config.limits.maxCallsPerSource,
    sourceOf: caller.address,
    contactUser: 'trunk',
    resolver: network.resolver,
    probe: network.probe,
    userAgent: 'sipkit-trunk',
    trace: (direction, bytes, remote, transport) => {
      for (const t of traces) t(direction, bytes, remote, transport);
    },
  });
  const udp = transports.filter((t): t is UdpTransport => t instanceof UdpTransport);
  const metrics = createMetrics(b2bua, {
    throttledSources: () => auth.digest.throttledSources(),
    udpInboxes: () => udp.map((t) => t.stats),
    udpSendThreads: () => udp.flatMap((t) => t.sendThreadStats ?? []),
  });
  traces.push(metrics.trace);
  authLog = metrics.countAuth(log);
  let capture: CallCapture | undefined;
  if (config.capture.enabled || options.trace) {
    const { maxMessagesPerCall, maxCalls, maxBytes } = config.capture;
    capture = createCallCapture(b2bua, { maxMessagesPerCall, maxCalls, maxBytes });
    traces.push(capture.trace);
  }
  // Before any other `end` listener: the CDR line and the API see the charge.
  createCharging(b2bua, domains);
  logCallEvents(b2bua, log);
  network.watch(b2bua);
  const cdr = config.cdr.path ? createCdrWriter(config.cdr.path, log) : undefined;
  if (cdr) b2bua.on('end', cdr.write);
  records?.follow(b2bua);
  journal?.endCallsLeftUp(b2bua);

  let stopping = false;
  const page = createLivePage(b2bua);
  const routes = [...metricsRoutes(metrics, { public: config.metrics.public, stopping: () => stopping }), ...page.routes, captureRoute(b2bua, capture), network.route(b2bua), createProvisioningApi(trunks, { log })];
  const http = createHttpApi(b2bua, config.http.token, { log, routes, calls: records?.lookup });
  const httpAddress = await listenHttpApi(http, config.http.port, config.http.host).catch(async (err: unknown) => {
    page.close();
    metrics.close();
    await b2bua.close();
    await records?.close();
    throw err;
  });
  const shutdown = createShutdown({
    b2bua,
    mode: config.shutdown.mode,
    drainMs: config.shutdown.drainSeconds * 1000,
    log,
    // Unregister first, while the sockets are open: the carriers stop sending calls during the drain.
    before: [() => registrations.close()],
    after: [() => page.close(), () => closeHttpApi(http), () => trunks.flush(), () => media.close(), () => cdr?.flush(), () => records?.close(), () => metrics.close(), () => capture?.close()],
  });

  registrations.start(b2bua.ua);
  const sip = transports.map((t) => ({ transport: t.protocol, address: t.local.address, port: t.local.port }));
  const stop = (mode?: ShutdownMode) => {
    stopping = true; // /healthz answers 503 from now on: load balancers stop sending calls
    return shutdown.stop(mode);
  };
  return { b2bua, config, sip, http: httpAddress, trunks, registrations: registrations.registrations, records, stop };
}

/** The shared store when the config asks for one; `pg` is loaded only then (sipkit and `npm start` need no database). */
async function openRecords(config: TrunkConfig, log: Logger): Promise<PgRecords | undefined> {
  const { store, url, batchMs, lostAfterSeconds, retainDays } = config.records;
  if (store !== 'postgres') return undefined;
  if (url === null) throw new ConfigError('records.url', 'store postgres needs the database URL');
  const { openPgRecords } = await import('./pg-records.js');
  return openPgRecords({ url, instanceId: config.instance.id, batchMs, lostAfterSeconds, retainDays, log });
}
