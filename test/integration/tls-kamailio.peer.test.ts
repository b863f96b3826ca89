import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRequest } from '../../src/parser/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { TlsTransport, type TlsPeerIdentity, type TransportError } from '../../src/transport/index.js';
import { hasOpenssl, makeTestPki, type KeyPair, type TestPki } from '../support/tls-certs.js';

// sipkit's TlsTransport against Kamailio's TLS module (a SIP server nobody here wrote),
// with certificates from a test CA made for the run.
const MODULE_DIRS = ['/usr/lib/x86_64-linux-gnu/kamailio/modules/', '/usr/lib/kamailio/modules/'];
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
const mpath = MODULE_DIRS.find((d) => existsSync(join(d, 'tls.so')) && existsSync(join(d, 'sl.so')));
const ready = hasKamailio && mpath !== undefined && hasOpenssl;
if (!ready && process.env.CI) throw new Error('kamailio, its TLS module or openssl is missing: .ci/run installs kamailio kamailio-tls-modules openssl');
if (!ready) console.warn('tls-kamailio.peer.test: skipped (needs kamailio, kamailio-tls-modules and openssl)');

let pki: TestPki;
beforeAll(() => {
  if (ready) pki = makeTestPki();
});
afterAll(() => pki?.remove());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Kamailio listening for TLS on 127.0.0.1:port with `pair`, answering every request with 200 (sl). */
async function startKamailio(pair: KeyPair): Promise<{ port: number; log: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kamailio-tls-'));
  const port = await freePort();
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
listen=tls:127.0.0.1:${port}
mpath="${mpath}"
loadmodule "sl.so"
loadmodule "tls.so"
modparam("tls", "certificate", "${pair.certFile}")
modparam("tls", "private_key", "${pair.keyFile}")
modparam("tls", "ca_list", "${pki.caFile}")
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "verify_certificate", 0)
modparam("tls", "require_certificate", 0)
request_route {
  sl_send_reply("200", "OK");
  exit;
}
`,
  );
  let log = '';
  const p: ChildProcess = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-m', '64', '-M', '8', '-P', join(dir, 'kamailio.pid'), '-Y', dir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  cleanups.push(async () => {
    if (p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && p.exitCode === null; i++) {
    if (await accepts(port)) return { port, log: () => log };
    await sleep(100);
  }
  throw new Error(`kamailio did not start listening on tls:127.0.0.1:${port}:\n${log}`);
}

describe.skipIf(!ready)('TlsTransport against Kamailio (tls module)', () => {
  it('sends OPTIONS over TLS to Kamailio, verified as sip.test, and gets its 200', async () => {
    const k = await startKamailio(pki.server);
    const t = await TlsTransport.listen({ host: '127.0.0.1', ca: pki.ca, serverNameFor: () => 'sip.test' });
    const layer = new TransactionLayer({ transports: [t], user: { onRequest: () => undefined } });
    cleanups.push(() => layer.close());
    const req = createRequest({ method: 'OPTIONS', uri: 'sips:sip.test', from: '<sips:sipkit@sip.test>', to: '<sips:sip.test>' });
    const res = await new Promise<{ status: number; via: string | undefined }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no final response from kamailio:\n${k.log()}`)), 10_000);
      layer.sendRequest(req, { address: '127.0.0.1', port: k.port, transport: 'tls' }, {
        onResponse: (r) => {
          if (r.status < 200) return;
          clearTimeout(timer);
          resolve({ status: r.status, via: r.topVia?.transport });
        },
      });
    });
    expect(res).toEqual({ status: 200, via: 'TLS' });
    const id: TlsPeerIdentity | undefined = t.peerIdentity({ address: '127.0.0.1', port: k.port, serverName: 'sip.test' });
    expect(id).toMatchObject({ authorized: true, sipDomains: ['sip.test'] });
    expect(t.connectionCount).toBe(1);
  });

  it('refuses Kamailio presenting a certificate for another host: TLS_IDENTITY, a 503, no request sent', async () => {
    const k = await startKamailio(pki.wrongHost);
    const t = await TlsTransport.listen({ host: '127.0.0.1', ca: pki.ca, serverNameFor: () => 'sip.test' });
    const layer = new TransactionLayer({ transports: [t], user: { onRequest: () => undefined } });
    cleanups.push(() => layer.close());
    const req = createRequest({ method: 'OPTIONS', uri: 'sips:sip.test', from: '<sips:sipkit@sip.test>', to: '<sips:sip.test>' });
    const errors: TransportError[] = [];
    const status = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no final response:\n${k.log()}`)), 10_000);
      layer.sendRequest(req, { address: '127.0.0.1', port: k.port, transport: 'tls' }, {
        onResponse: (r) => {
          if (r.status < 200) return;
          clearTimeout(timer);
          resolve(r.status);
        },
        onTransportError: (e) => errors.push(e),
      });
    });
    expect(status).toBe(503);
    expect(errors.map((e) => e.code)).toEqual(['TLS_IDENTITY']);
    expect(errors[0]!.message).toContain('other.test');
  });
});
