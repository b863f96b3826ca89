import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian (and others) put Kamailio's modules. */
export const KAMAILIO_MODULE_DIRS = ['/usr/lib/x86_64-linux-gnu/kamailio/modules/', '/usr/lib/aarch64-linux-gnu/kamailio/modules/', '/usr/lib/kamailio/modules/', '/usr/lib64/kamailio/modules/'];

export interface KamailioRegistrar {
  process: ChildProcess;
  port: number;
  /** With `tls`: its TLS port on the same host. */
  tlsPort?: number;
  log(): string;
}

function freeTcpPortOn(host: string): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function freePortOn(host: string): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Kamailio as a registrar nobody here wrote: usrloc + registrar, digest with qop=auth against a
 * fixed password (no database) and nonce-count checking (a reused nc is refused, so a signed
 * refresh must count on), and INVITEs to a registered AOR relayed to its Contact (`lookup`).
 * It grants at most `maxExpires` seconds. Resolves once it answers an OPTIONS (bounded: 50 × 200 ms).
 */
export async function startKamailioRegistrar(options: {
  host: string;
  domain: string;
  password: string;
  maxExpires: number;
  /** Also listen for TLS (Kamailio's tls module) presenting this certificate; it does not check clients'. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /**
   * RFC 5626 outbound (registrar `outbound_mode` 1): a client saying `Supported: outbound` with
   * `+sip.instance` and `reg-id` gets `Require: outbound` and `Flow-Timer: flowTimer`; calls to it
   * go back over the connection it registered on (its source address is the binding's
   * `received`); and a TCP/TLS connection carrying nothing for `connectionLifetime` seconds is
   * closed — so only keep-alives keep a quiet flow open.
   */
  outbound?: { flowTimer: number; connectionLifetime: number };
}): Promise<KamailioRegistrar> {
  const { host, domain, password, maxExpires, tls, outbound } = options;
  const mpath = KAMAILIO_MODULE_DIRS.find((d) => existsSync(join(d, 'registrar.so')) && (!tls || existsSync(join(d, 'tls.so'))));
  if (mpath === undefined) throw new Error(`kamailio is installed but its modules${tls ? ' (with tls.so)' : ''} are in none of ${KAMAILIO_MODULE_DIRS.join(', ')}`);
  const port = await freePortOn(host);
  const tlsPort = tls ? await freeTcpPortOn(host) : undefined;
  const outboundConfig = outbound
    ? `tcp_connection_lifetime=${outbound.connectionLifetime}
loadmodule "nathelper.so"
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "outbound_mode", 1)
modparam("registrar", "flow_timer", ${outbound.flowTimer})
`
    : '';
  const tlsConfig = tls
    ? `enable_tls=yes
tcp_children=1
listen=tls:${host}:${tlsPort}
loadmodule "tls.so"
modparam("tls", "certificate", "${tls.certFile}")
modparam("tls", "private_key", "${tls.keyFile}")
modparam("tls", "ca_list", "${tls.caFile}")
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "verify_certificate", 0)
modparam("tls", "require_certificate", 0)
${outbound ? `modparam("tls", "connection_timeout", ${outbound.connectionLifetime})\n` : ''}`
    : '';
  const dir = mkdtempSync(join(tmpdir(), 'kamailio-reg-'));
  const cfg = join(dir, 'kamailio.cfg');
  writeFileSync(
    cfg,
    `#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:${host}:${port}
auto_aliases=no
alias="${domain}"
mpath="${mpath}"
${tlsConfig}loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
${outboundConfig}modparam("usrloc", "db_mode", 0)
modparam("auth", "nonce_count", 1)
modparam("registrar", "min_expires", 2)
modparam("registrar", "default_expires", ${maxExpires})
modparam("registrar", "max_expires", ${maxExpires})
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("REGISTER")) {
    if (!pv_www_authenticate("$td", "${password}", "0")) { www_challenge("$td", "1"); exit; }
    consume_credentials();
    ${outbound ? 'fix_nated_register();' : ''}
    if (!save("location")) sl_reply_error();
    exit;
  }
  if (has_totag()) {
    if (is_method("ACK") && !t_check_trans()) exit;
    t_relay();
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (is_method("INVITE")) {
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_relay();
    exit;
  }
  sl_send_reply("405", "Method Not Allowed");
}
`,
  );
  const p = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-m', '64', '-M', '8', '-P', join(dir, 'kamailio.pid'), '-Y', dir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  // Ready when it answers: an OPTIONS gets its 405.
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
  let answered = false;
  probe.on('message', () => (answered = true));
  const { port: probePort } = probe.address();
  for (let i = 0; i < 50 && !answered && p.exitCode === null; i++) {
    const msg =
      `OPTIONS sip:${domain} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${probePort};branch=z9hG4bK-probe-${i}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:probe@127.0.0.1>;tag=p${i}\r\nTo: <sip:${domain}>\r\nCall-ID: probe-${i}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
    probe.send(msg, port, host);
    await new Promise((r) => setTimeout(r, 200));
  }
  probe.close();
  if (!answered) {
    p.kill('SIGKILL');
    throw new Error(`kamailio did not start (exit ${p.exitCode}):\n${log}`);
  }
  return { process: p, port, ...(tlsPort !== undefined ? { tlsPort } : {}), log: () => log };
}
