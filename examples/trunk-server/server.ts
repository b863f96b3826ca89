import { B2bua } from 'sipkit/b2bua';
import { TcpTransport, UdpTransport, type Transport } from 'sipkit/transport';
import { createDigestAuth } from './auth.js';
import type { ListenConfig, TrunkConfig } from './config.js';
import { closeHttpApi, createHttpApi, listenHttpApi } from './http-api.js';
import { createLogger, sipTrace, type Logger } from './log.js';
import { createMediaRelay, directMedia } from './media.js';
import { createCdrWriter, logCallEvents } from './records.js';
import { openCallJournal } from './restart.js';
import { createRouter } from './routing.js';
import { createShutdown, type ShutdownMode } from './shutdown.js';
import { createProvisioningApi } from './provisioning.js';
import { TrunkStore } from './trunk-store.js';

export interface TrunkServer {
  b2bua: B2bua;
  config: TrunkConfig;
  /** Bound SIP listeners ("udp 127.0.0.1:5060"). */
  sip: Array<{ transport: string; address: string; port: number }>;
  http: { address: string; port: number };
  /** The provisioned trunks (provisioning.ts's API changes them). */
  trunks: TrunkStore;
  /** Stop taking calls, hang up or drain the rest, close everything (shutdown.ts). */
  stop(mode?: ShutdownMode): Promise<void>;
}

export interface TrunkOptions {
  log?: Logger;
  /** Print every SIP message sent and received. */
  trace?: boolean;
}

/** Bind every listener, in order; if one fails, those already bound are closed again. */
async function bindListeners(listen: readonly ListenConfig[]): Promise<Transport[]> {
  const transports: Transport[] = [];
  try {
    for (const l of listen) transports.push(l.transport === 'udp' ? await UdpTransport.bind({ host: l.host, port: l.port }) : await TcpTransport.listen({ host: l.host, port: l.port }));
    return transports;
  } catch (err) {
    await Promise.allSettled(transports.map((t) => t.close()));
    throw err;
  }
}

/**
 * The trunk: a B2BUA with each of its parts plugged in — digest auth (auth.ts), routing
 * (routing.ts), media (media.ts), call records (records.ts), the crash journal (restart.ts),
 * the HTTP API (http-api.ts) and shutdown (shutdown.ts). Each part works on its own with a
 * plain B2bua; the README's "The trunk server, part by part" shows a smaller server built
 * from some of them.
 */
export async function startTrunk(config: TrunkConfig, options: TrunkOptions = {}): Promise<TrunkServer> {
  const log = options.log ?? createLogger(config.log.level);
  const { secret, algorithms, nonceTtlSeconds, maxLiveNonces } = config.auth;
  // The live domains: the config file's, and the provisioned trunks the store adds (and replaces on each change).
  const domains = { ...config.domains };
  const trunks = TrunkStore.open({ domains, baseDomain: config.provisioning.baseDomain, path: config.provisioning.storePath, log });
  const auth = createDigestAuth({ domains, secret, algorithms, nonceTtlMs: nonceTtlSeconds * 1000, maxLiveNonces, log });
  const router = createRouter(domains);
  const media = config.media === 'relay' ? createMediaRelay({ address: config.mediaAddress, address6: config.mediaAddress6, ports: config.mediaPorts, log }) : directMedia;
  // Read before the B2BUA exists; the calls the last run left up are ended once it does.
  const { path: journalPath, cause, fsync } = config.journal;
  const journal = journalPath ? openCallJournal(journalPath, { cause, fsync, log }) : undefined;
  const transports = await bindListeners(config.sip.listen);

  const b2bua = new B2bua({
    transports,
    // What needs no lookup (no credentials: 407; a source an IP trunk refuses: 403) is answered
    // statelessly: an unauthenticated INVITE costs one response and no memory.
    challenge: auth.challenge,
    authenticate: auth.authenticate,
    // The media part sees the route first: only there can an offer it cannot carry get a 488 or 503.
    route: (req, { record }) => media.admit(req, record, router.route(req)),
    media,
    journal: journal?.journal,
    timers: { T1: config.timers.T1 },
    noAnswerTimeoutMs: config.noAnswerTimeoutSeconds * 1000,
    noAnswerStatus: config.noAnswerStatus,
    maxCalls: config.limits.maxCalls,
    maxCallsPerSource: config.limits.maxCallsPerSource,
    contactUser: 'trunk',
    userAgent: 'sipkit-trunk',
    trace: options.trace ? sipTrace(log) : undefined,
  });
  logCallEvents(b2bua, log);
  const cdr = config.cdr.path ? createCdrWriter(config.cdr.path, log) : undefined;
  if (cdr) b2bua.on('end', cdr.write);
  journal?.endCallsLeftUp(b2bua);

  const http = createHttpApi(b2bua, config.http.token, { log, routes: [createProvisioningApi(trunks, { log })] });
  const httpAddress = await listenHttpApi(http, config.http.port, config.http.host).catch(async (err: unknown) => {
    await b2bua.close();
    throw err;
  });
  const shutdown = createShutdown({
    b2bua,
    mode: config.shutdown.mode,
    drainMs: config.shutdown.drainSeconds * 1000,
    log,
    after: [() => closeHttpApi(http), () => trunks.flush(), () => media.close(), () => cdr?.flush()],
  });

  const sip = transports.map((t) => ({ transport: t.protocol, address: t.local.address, port: t.local.port }));
  return { b2bua, config, sip, http: httpAddress, trunks, stop: shutdown.stop };
}
