import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KAMAILIO_MODULE_DIRS } from './kamailio-registrar.js';
import type { KeyPair } from './tls-certs.js';

/** The module directory holding Kamailio's TLS module (Debian: kamailio-tls-modules), or undefined. */
export const KAMAILIO_TLS_MPATH = KAMAILIO_MODULE_DIRS.find((d) => existsSync(join(d, 'tls.so')) && existsSync(join(d, 'tm.so')) && existsSync(join(d, 'rr.so')));

export interface KamailioTlsProxy {
  process: ChildProcess;
  /** Its TLS listener on 127.0.0.1 (its only socket). */
  tlsPort: number;
  log(): string;
  /** The requests it received, as "METHOD proto" lines it logged (e.g. `INVITE tls`). */
  received(): string[];
  stop(): Promise<void>;
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kamailio (nobody here wrote it) as a carrier's TLS edge proxy: TLS on 127.0.0.1 presenting
 * `pair` (chain of the test CA), every new request relayed statefully (tm) over TLS to the
 * gateway `sips:<user>@127.0.0.1:forwardTo` (not verifying the gateway's certificate),
 * INVITEs record-routed, in-dialog requests loose-routed. Each request is logged as
 * `sipkit-peer: <METHOD> <proto>` so a test can tell what reached it. Resolves once its TLS
 * port accepts connections (bounded: 100 × 100 ms).
 */
export async function startKamailioTlsProxy(options: { pair: KeyPair; caFile: string; forwardTo: number }): Promise<KamailioTlsProxy> {
  if (KAMAILIO_TLS_MPATH === undefined) throw new Error(`Kamailio's tls.so is in none of ${KAMAILIO_MODULE_DIRS.join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'kamailio-tls-proxy-'));
  const tlsPort = await freeTcpPort();
  const cfg = join(dir, 'kamailio.cfg');
  writeFileSync(
    cfg,
    `#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
enable_tls=yes
auto_aliases=no
listen=tls:127.0.0.1:${tlsPort}
mpath="${KAMAILIO_TLS_MPATH}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "tls.so"
modparam("tls", "certificate", "${options.pair.certFile}")
modparam("tls", "private_key", "${options.pair.keyFile}")
modparam("tls", "ca_list", "${options.caFile}")
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "verify_certificate", 0)
modparam("tls", "require_certificate", 0)
request_route {
  xlog("L_NOTICE", "sipkit-peer: $rm $pr $ru\\n");
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
    sl_send_reply("404", "Not Here");
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
  if (is_method("INVITE")) record_route();
  # The carrier's gateway behind its edge, over TLS too: a sips: request stays on TLS all the way (RFC 5630 §3.1.3).
  $ru = "sips:" + $rU + "@127.0.0.1:${options.forwardTo}";
  t_relay();
  exit;
}
`,
  );
  let log = '';
  const p = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-m', '64', '-M', '8', '-P', join(dir, 'kamailio.pid'), '-Y', dir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-50_000)));
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100 && p.exitCode === null; i++) {
    if (await accepts(tlsPort)) {
      const received = () => [...log.matchAll(/sipkit-peer: (\S+) (\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
      return { process: p, tlsPort, log: () => log, received, stop };
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`kamailio did not start listening on tls:127.0.0.1:${tlsPort}:\n${log}`);
}
