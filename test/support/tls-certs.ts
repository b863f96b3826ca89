import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Certificates for the TLS tests, made fresh by the `openssl` CLI in a temp dir: nothing
// certificate-like is committed, only this recipe.

export const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

export interface KeyPair {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  dir: string;
  /** The CA every test peer trusts. */
  ca: string;
  caFile: string;
  /** sip.test: SAN DNS:sip.test and URI:sip:sip.test. */
  server: KeyPair;
  /** A client certificate (mutual TLS): CN=alice.client.test, SAN URI:sip:client.test, DNS:client.test. */
  client: KeyPair;
  /** Signed by the trusted CA, but for another host: CN=sip.test (must not count: SANs exist), SAN DNS:other.test. */
  wrongHost: KeyPair;
  /** sip.test, with the right SANs, signed by a CA nobody trusts. */
  untrusted: KeyPair;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

function ca(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/O=sipkit tests/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function leaf(dir: string, name: string, issuer: string, subject: string, san: string): KeyPair {
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** A CA, and leaf certificates signed by it (and one by a stranger CA). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sipkit-tls-'));
  ca(dir, 'ca');
  ca(dir, 'stranger-ca');
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    caFile: join(dir, 'ca.crt'),
    server: leaf(dir, 'server', 'ca', '/CN=sip.test', 'DNS:sip.test,URI:sip:sip.test'),
    client: leaf(dir, 'client', 'ca', '/O=sipkit tests/CN=alice.client.test', 'URI:sip:client.test,DNS:client.test'),
    wrongHost: leaf(dir, 'wrong', 'ca', '/CN=sip.test', 'DNS:other.test'),
    untrusted: leaf(dir, 'untrusted', 'stranger-ca', '/CN=sip.test', 'DNS:sip.test,URI:sip:sip.test'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Another leaf certificate signed by the test CA of `pki` (e.g. for an address: `IP:127.0.0.1`). */
export function issueLeaf(pki: TestPki, name: string, subject: string, san: string): KeyPair {
  return leaf(pki.dir, name, 'ca', subject, san);
}
