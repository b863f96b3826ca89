import { readFileSync } from 'node:fs';
import { TcpTransport, TlsTransport, UdpTransport, type Transport, type TransportError } from 'sipkit/transport';
import { ConfigError, type ListenConfig, type TlsConfig } from './config.js';
import type { Logger } from './log.js';
import { PemError, readKeyPair } from './pem.js';

/**
 * One listener. A tls listener presents `cert` (read now: a file replaced since the config was
 * checked is read as it is at start) and carries the trunk's outgoing TLS too (the first tls
 * listener does): servers' certificates checked against `tls.ca` and the target's SIP domain (or
 * its IP address when it names none; RFC 5922 §7.2), and its own presented when a server asks
 * for one.
 */
async function bind(l: ListenConfig, field: string, tls: TlsConfig, log: Logger | undefined, t1: number | undefined): Promise<Transport> {
  // A new INVITE waits in the UDP inbox at most T1 (then the caller has retransmitted it): the T1 the trunk is configured
  // with when raised for slow networks, never less than RFC 3261's 500 ms, which callers use whatever the trunk's own is.
  if (l.transport === 'udp') return UdpTransport.bind({ host: l.host, port: l.port, inboxMaxAgeMs: t1 !== undefined && t1 > 500 ? t1 : undefined, sendThread: l.sendThread ?? true });
  if (l.transport === 'tcp') return TcpTransport.listen({ host: l.host, port: l.port });
  let pair: { cert: string; key: string };
  let ca: string | undefined;
  try {
    pair = readKeyPair(l.cert ?? '', l.key ?? '');
    ca = tls.ca === null ? undefined : readFileSync(tls.ca, 'utf8');
  } catch (err) {
    if (err instanceof PemError) throw new ConfigError(field, err.message);
    throw new ConfigError('tls.ca', (err as Error).message);
  }
  const t = await TlsTransport.listen({ host: l.host, port: l.port, cert: pair.cert, key: pair.key, ca, rejectUnauthorized: tls.verify });
  if (log) logConnectFailures(t, log);
  return t;
}

/**
 * A refused outgoing TLS connection reaches the caller only as a 503 (the transaction layer
 * makes it up, RFC 3261 §8.1.3.1), so the operator would not learn why: a carrier whose
 * certificate is for another host (TLS_IDENTITY) or not signed by `tls.ca` (TLS_UNTRUSTED)
 * looks like a carrier that is down. Each failed connection is logged with its typed cause.
 */
const CONNECT_FAILURES = new Set<string>(['TLS_IDENTITY', 'TLS_UNTRUSTED', 'TLS_HANDSHAKE', 'CONNECT_FAILED']);

function logConnectFailures(t: TlsTransport, log: Logger): void {
  const send = t.send.bind(t);
  t.send = (bytes, to) =>
    send(bytes, to).catch((err: unknown) => {
      const e = err as TransportError;
      if (CONNECT_FAILURES.has(e.code)) {
        log('warn', 'tls.connect_failed', { code: e.code, to: `${to.address}:${to.port}`, serverName: to.serverName, error: e.message });
      }
      throw err;
    });
}

/**
 * Bind every listener, in order; if one fails, those already bound are closed again.
 *
 * On its own, for a plain B2BUA:
 *
 *     const transports = await bindListeners([{ transport: 'tls', host: '0.0.0.0', port: 5061, cert: '/etc/trunk/cert.pem', key: '/etc/trunk/key.pem' }], { ca: null, verify: true });
 *     const b2bua = new B2bua({ transports, route });
 */
export async function bindListeners(listen: readonly ListenConfig[], tls: TlsConfig, log?: Logger, timers?: { T1?: number }): Promise<Transport[]> {
  if (!tls.verify && listen.some((l) => l.transport === 'tls')) {
    log?.('warn', 'tls.verify_off', { detail: 'outgoing TLS accepts any certificate: anyone on the path can read and change the calls' });
  }
  const transports: Transport[] = [];
  try {
    for (const [i, l] of listen.entries()) transports.push(await bind(l, `sip.listen[${i}]`, tls, log, timers?.T1));
    return transports;
  } catch (err) {
    await Promise.allSettled(transports.map((t) => t.close()));
    throw err;
  }
}
