import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { hasLinphonec, startLinphonec, type Linphonec } from '../support/linphonec.js';
import { freePort, sippGateway, udpListening, type SippRun } from '../support/sipp.js';
import { hasOpenssl, issueLeaf, makeTestPki, type KeyPair, type TestPki } from '../support/tls-certs.js';
import { spawnSync } from 'node:child_process';

// linphonec (Debian's linphone-cli, liblinphone 5.1 — nobody here wrote it) calling into the
// trunk's TLS listener (issue #17): it verifies the trunk's certificate against a test CA made
// for the run, answers the trunk's SHA-256-only digest challenge (RFC 8760), and the trunk
// bridges the call to a SIPp destination.
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
const ready = hasLinphonec && hasSipp && hasOpenssl;
if (!ready && process.env.CI) throw new Error('linphonec, SIPp and openssl are needed: .ci/run installs linphone-cli, sip-tester and openssl');
if (!ready) console.warn('trunk-linphonec.peer.test: skipped (needs linphonec, sipp and openssl)');

const DOMAIN = 'tls.trunk.sipkit.test';
const NUMBER = '15557654321';

let pki: TestPki;
/** The trunk's certificate for the address linphonec dials (it checks the proxy's host). */
let trunkCert: KeyPair;
beforeAll(() => {
  if (!ready) return;
  pki = makeTestPki();
  trunkCert = issueLeaf(pki, 'trunk-ip', '/CN=127.0.0.1', 'DNS:127.0.0.1,IP:127.0.0.1');
});
afterAll(() => pki?.remove());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, what: string, log: () => string): Promise<void> {
  for (let waited = 0; !cond(); waited += 100) {
    if (waited >= ms) throw new Error(`no ${what} within ${ms} ms\n${log()}`);
    await sleep(100);
  }
}

async function trunkTo(destPort: number, cert: KeyPair, lines: string[]): Promise<TrunkServer> {
  const trunk = await startTrunk(
    validateConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tls', host: '127.0.0.1', port: 0, cert: cert.certFile, key: cert.keyFile }] },
      http: { host: '127.0.0.1', port: 0, token: 'tok' },
      // SHA-256 only (RFC 8760): a caller answering with MD5 would not get through.
      auth: { secret: 'trunk-linphonec-secret-0123456789abcdef', algorithms: ['SHA-256'] },
      domains: { [DOMAIN]: { extensions: { '1000': { password: 'pw-linphone-1000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${destPort}`] }] } },
      cdr: { path: null },
      log: { level: 'debug' },
    }),
    { log: (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) },
  );
  cleanups.push(() => trunk.stop('hangup'));
  return trunk;
}

function linphone(trunk: TrunkServer, options: { sips?: boolean } = {}): Linphonec {
  const tls = trunk.sip.find((s) => s.transport === 'tls')!;
  const proxy = options.sips ? `<sips:127.0.0.1:${tls.port}>` : `<sip:127.0.0.1:${tls.port};transport=tls>`;
  const l = startLinphonec({
    caFile: pki.caFile,
    account: { identity: `${options.sips ? 'sips' : 'sip'}:1000@${DOMAIN}`, username: '1000', password: 'pw-linphone-1000', realm: DOMAIN, proxy },
  });
  cleanups.push(() => l.stop());
  return l;
}

describe.skipIf(!ready)('linphonec calling into the trunk over TLS', () => {
  it('verifies the trunk against the test CA, answers the SHA-256 challenge, and is bridged to a SIPp destination; linphonec hangs up', async () => {
    const destPort = await freePort();
    const dest = sippGateway(destPort, 'uas-answer.xml', 1);
    cleanups.push(() => dest.process.exitCode === null && dest.process.kill('SIGKILL'));
    await udpListening(destPort);
    const lines: string[] = [];
    const trunk = await trunkTo(destPort, trunkCert, lines);
    const records: CallRecord[] = [];
    trunk.b2bua.on('end', (r) => records.push(r));
    const answered = new Set<string>();
    trunk.b2bua.on('update', (r) => void (r.state === 'answered' && answered.add(r.id)));

    const l = linphone(trunk);
    const log = () => `${lines.join('\n')}\n--- linphonec ---\n${l.output().slice(-6000)}\n--- linphonec log ---\n${l.log().slice(-15000)}`;
    await until(() => l.output().includes('linphonec>'), 15_000, 'linphonec prompt', log);
    l.command(`call sip:${NUMBER}@${DOMAIN}`);
    await until(() => answered.size === 1, 20_000, 'answered call', log);
    l.command('terminate');
    await until(() => records.length === 1, 10_000, 'ended call', log);
    const done: SippRun = await dest.done;
    expect(done.code, done.out.slice(-2000)).toBe(0);

    expect(records[0]).toMatchObject({ identity: '1000', source: { transport: 'tls' }, tags: { domain: DOMAIN, auth: 'digest' }, hangup: { by: 'caller' } });
    // What linphonec sent: its answer to the challenge, with SHA-256.
    const sent = l.log();
    expect(sent).toMatch(/Proxy-Authorization:\s+Digest [^\r\n]*algorithm=SHA-256/i);
    expect(sent).not.toMatch(/Proxy-Authorization:\s+Digest [^\r\n]*algorithm=MD5/i);
  }, 90_000);

  it('sips: throughout (RFC 5630): linphonec calls sips:…, the trunk answers with a sips: Contact, linphonec\'s BYE ends it', async () => {
    const destPort = await freePort();
    const dest = sippGateway(destPort, 'uas-answer.xml', 1);
    cleanups.push(() => dest.process.exitCode === null && dest.process.kill('SIGKILL'));
    await udpListening(destPort);
    const lines: string[] = [];
    const trunk = await trunkTo(destPort, trunkCert, lines);
    const records: CallRecord[] = [];
    trunk.b2bua.on('end', (r) => records.push(r));
    const answered = new Set<string>();
    trunk.b2bua.on('update', (r) => void (r.state === 'answered' && answered.add(r.id)));
    const l = linphone(trunk, { sips: true });
    const log = () => `${lines.join('\n')}\n--- linphonec ---\n${l.output().slice(-6000)}\n--- linphonec log ---\n${l.log().slice(-15000)}`;
    await until(() => l.output().includes('linphonec>'), 15_000, 'linphonec prompt', log);
    l.command(`call sips:${NUMBER}@${DOMAIN}`);
    await until(() => answered.size === 1, 20_000, 'answered call', log);
    l.command('terminate');
    await until(() => records.length === 1, 10_000, 'ended call', log);
    expect((await dest.done).code).toBe(0);
    expect(records[0]).toMatchObject({ identity: '1000', from: expect.stringContaining(`sips:1000@${DOMAIN}`), to: `sips:${NUMBER}@${DOMAIN}`, source: { transport: 'tls' }, hangup: { by: 'caller' } });
    const sent = l.log();
    expect(sent).toMatch(new RegExp(`INVITE sips:${NUMBER}@${DOMAIN.replace(/\./g, '\\.')} SIP/2\\.0`));
    // The trunk's 200 for it: its Contact is a sips: URI (RFC 3261 §12.1.1, RFC 5630 §3.1.3).
    expect(sent).toMatch(/SIP\/2\.0 200 OK\r?\n(?:[^\r\n]+\r?\n)*?Contact:\s*<sips:[^>]*>/i);
  }, 90_000);

  it('a trunk certificate for another host (sip.test, while linphonec dials 127.0.0.1) is refused by linphonec: nothing reaches the trunk', async () => {
    const destPort = await freePort();
    const lines: string[] = [];
    const trunk = await trunkTo(destPort, pki.server, lines);
    const l = linphone(trunk);
    const log = () => `${lines.join('\n')}\n--- linphonec ---\n${l.output().slice(-6000)}\n--- linphonec log ---\n${l.log().slice(-15000)}`;
    await until(() => l.output().includes('linphonec>'), 15_000, 'linphonec prompt', log);
    l.command(`call sip:${NUMBER}@${DOMAIN}`);
    await until(() => /call \d+ .*(error|failed)|Call failed|Could not reach destination/i.test(l.output()), 20_000, 'failed call at linphonec', log);
    // belle-sip's own words (its log is written a moment later than the console line).
    await until(() => /SSL handshake failed/.test(l.log()), 10_000, 'handshake failure in the linphonec log', log);
    expect(l.log()).toMatch(/Found certificate depth=\[0\], flags=\[CN-mismatch \]/);
    expect(trunk.b2bua.ua.layer.stats.requestsReceived).toBe(0);
  }, 90_000);
});
