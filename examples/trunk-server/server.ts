import { appendFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { B2bua, type CallRecord, type MediaHooks, type RouteTarget } from 'sipkit/b2bua';
import { DigestServer } from 'sipkit/digest';
import { createResponse, parseUri, type SipRequest, type SipUri } from 'sipkit/parser';
import { TcpTransport, UdpTransport, type Transport } from 'sipkit/transport';
import { viewOf } from './call-view.js';
import { CallJournalFile } from './journal.js';
import { endJournaledCalls } from './restart.js';
import type { DomainConfig, TrunkConfig } from './config.js';
import { createHttpApi } from './http-api.js';
import { createLogger, type Logger } from './log.js';
import { RtpSession, rewriteSdp } from './rtp-relay.js';

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

/** The trunk domain a Request-URI names (its host), if configured. */
function domainOf(req: SipRequest, config: TrunkConfig): [string, DomainConfig] | undefined {
  let host: string;
  try {
    const u = req.requestUri;
    if (u.kind !== 'sip') return undefined;
    host = u.host.toLowerCase();
  } catch {
    return undefined;
  }
  const d = config.domains[host];
  return d ? [host, d] : undefined;
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
  const auth = new DigestServer({
    secret: config.auth.secret,
    realm: (req) => domainOf(req, config)?.[0] ?? 'unknown',
    algorithms: config.auth.algorithms,
    nonceTtlMs: config.auth.nonceTtlSeconds * 1000,
    lookup: (username, realm) => {
      const ext = config.domains[realm]?.extensions[username];
      return ext ? { password: ext.password, ha1: ext.ha1 } : undefined;
    },
  });

  // Media relay: one RTP session per call, found by call id.
  const rtp = new Map<string, RtpSession>();
  const media: MediaHooks =
    config.media === 'relay'
      ? {
          onOffer: async (sdp, ctx) => {
            let s = rtp.get(ctx.record.id);
            if (!s) {
              s = await RtpSession.open(config.mediaAddress);
              rtp.set(ctx.record.id, s);
            }
            const toward = ctx.from === 'caller' ? s.calleeFacingPort : s.callerFacingPort;
            const r = rewriteSdp(Buffer.from(sdp).toString(), config.mediaAddress, toward);
            if (r.address && r.port) s.setPeer(ctx.from, r.address, r.port);
            return r.sdp;
          },
          onAnswer: async (sdp, ctx) => {
            const s = rtp.get(ctx.record.id);
            if (!s) return sdp;
            const toward = ctx.from === 'callee' ? s.callerFacingPort : s.calleeFacingPort;
            const r = rewriteSdp(Buffer.from(sdp).toString(), config.mediaAddress, toward);
            if (r.address && r.port) s.setPeer(ctx.from, r.address, r.port);
            return r.sdp;
          },
          onEnd: (record) => {
            rtp.get(record.id)?.close();
            rtp.delete(record.id);
          },
        }
      : {};

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
      const dom = domainOf(req, config);
      if (!dom) {
        // Unknown trunk domain: 404, and nothing that tells which domains exist.
        log('info', 'call.rejected', { reason: 'unknown domain', from: source.address.address });
        return { ok: false, response: createResponse(req, 404) };
      }
      const r = await auth.verify(req, { source: source.address.address });
      if (r.kind === 'ok') return { ok: true, identity: r.username, tags: { domain: dom[0] } };
      log(r.kind === 'reject' ? 'warn' : 'debug', r.kind === 'reject' ? 'auth.rejected' : 'auth.challenge', {
        reason: r.reason,
        domain: dom[0],
        from: `${source.address.address}:${source.address.port}`,
      });
      return { ok: false, response: r.response };
    },
    route: (req): RouteTarget[] => {
      const dom = domainOf(req, config)!;
      const number = (req.requestUri as SipUri).user ?? '';
      return routeFor(number, dom[1]).map((t) => ({ uri: targetUri(t, number) }));
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

  const http = createHttpApi(b2bua, config.http.token);
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
      if (b2bua.activeCalls > 0) {
        b2bua.hangupAll();
        // Give the BYEs a moment to go out and be answered.
        const until = Date.now() + 2000;
        while (b2bua.stats.transactions > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections?.();
      await b2bua.close();
      for (const s of rtp.values()) s.close();
      await cdrWrites;
      log('info', 'trunk.stopped', {});
    },
  };
  return server;
}
