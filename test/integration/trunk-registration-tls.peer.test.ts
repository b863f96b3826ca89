import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import type { SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { DNSMASQ, startDnsmasq } from '../support/dnsmasq.js';
import { startKamailioRegistrar } from '../support/kamailio-registrar.js';
import { KAMAILIO_TLS_MPATH } from '../support/kamailio-tls.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../support/tls-certs.js';

// The trunk registering with a carrier it knows by name only, over TLS (issue #17):
// `registrar: "sips:sip.test"`; Debian's dnsmasq serves _sips._tcp.sip.test →
// registrar.sip.test → 127.0.0.2; Kamailio (usrloc + registrar + auth, tls module — nobody here
// wrote it) presents a certificate for sip.test from a test CA, which the trunk checks against
// `tls.ca`. A call to the trunk's AOR reaches Kamailio over UDP; its lookup sends it over TLS to
// the trunk's registered sips: Contact, and the trunk — trusting calls from where DNS says the
// registrar is — bridges it into the inbound domain.
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
const ready = hasKamailio && KAMAILIO_TLS_MPATH !== undefined && hasOpenssl && DNSMASQ !== undefined;
if (!ready && process.env.CI) throw new Error('kamailio, kamailio-tls-modules, openssl and dnsmasq-base are needed: .ci/run installs them');
if (!ready) console.warn('trunk-registration-tls.peer.test: skipped (needs kamailio, kamailio-tls-modules, openssl and dnsmasq)');

const CARRIER = 'sip.test';
const REGISTRAR_HOST = '127.0.0.2';
const PASSWORD = 'kamailio-tls-secret';
const MAX_EXPIRES = 4;
const DID = '4930777';
const TRUNK_DOMAIN = 'carrier-in.trunk.sipkit.test';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

let pki: TestPki;
beforeAll(() => {
  if (ready) pki = makeTestPki();
});
afterAll(() => pki?.remove());

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

async function until(cond: () => boolean, ms: number, what: string, log: () => string): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited >= ms) throw new Error(`no ${what} within ${ms} ms\n${log()}`);
    await sleep(50);
  }
}

function outcome(call: OutgoingCall): Promise<{ answered: true } | { answered: false; response: SipResponse }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no final answer within 15 s')), 15_000);
    call.on('answer', () => (clearTimeout(t), resolve({ answered: true })));
    call.on('failure', (response) => (clearTimeout(t), resolve({ answered: false, response })));
  });
}

describe.skipIf(!ready)('trunk registering with sips:sip.test (dnsmasq, Kamailio over TLS)', () => {
  it('locates the registrar by SRV, registers over TLS with digest, refreshes, takes the call Kamailio sends to its sips: Contact, and unregisters on stop', async () => {
    const kamailio = await startKamailioRegistrar({ host: REGISTRAR_HOST, domain: CARRIER, password: PASSWORD, maxExpires: MAX_EXPIRES, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile } });
    cleanups.push(() => stopProcess(kamailio.process));
    const dns = await startDnsmasq(
      [
        `--local=/${CARRIER}/`,
        // The domain's own A record leads nowhere: only the SRV finds the registrar.
        `--host-record=${CARRIER},127.0.0.9`,
        `--srv-host=_sips._tcp.${CARRIER},registrar.${CARRIER},${kamailio.tlsPort},10,0`,
        `--host-record=registrar.${CARRIER},${REGISTRAR_HOST}`,
      ],
      `registrar.${CARRIER}`,
    );
    cleanups.push(() => dns.stop());

    const delivered: IncomingCall[] = [];
    const dest = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], contactUser: 'dest', onInvite: (c) => void (delivered.push(c), c.answer({ body: SDP })) });
    cleanups.push(() => dest.close({ timeoutMs: 1000 }));
    const destPort = dest.layer.transports[0]!.local.port;

    const lines: string[] = [];
    const trunk: TrunkServer = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tls', host: '127.0.0.1', port: 0, cert: pki.server.certFile, key: pki.server.keyFile }] },
        tls: { ca: pki.caFile },
        dns: { servers: [dns.server] },
        http: { host: '127.0.0.1', port: 0, token: 'tok' },
        auth: { secret: 'trunk-registration-tls-secret-0123456789' },
        domains: { [TRUNK_DOMAIN]: { extensions: {}, routes: [{ prefix: '49', targets: [`sip:127.0.0.1:${destPort}`] }] } },
        registrations: [{ registrar: `sips:${CARRIER}`, username: 'acme', password: PASSWORD, aor: `sip:${DID}@${CARRIER}`, expires: 600, inbound: { domain: TRUNK_DOMAIN } }],
        timers: { T1: 100 },
        cdr: { path: null },
        log: { level: 'info' },
      }),
      { log: (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) },
    );
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : trunk.stop('hangup')));
    const tlsPort = trunk.sip.find((s) => s.transport === 'tls')!.port;
    const log = () => `${lines.join('\n')}\n--- kamailio ---\n${kamailio.log().slice(-8000)}`;
    const count = (event: string) => lines.filter((l) => l.includes(` ${event} `)).length;

    await until(() => count('registration.registered') >= 1, 10_000, 'registration', log);
    const [acme] = trunk.registrations;
    expect(acme!.binding!.contacts.some((c) => c.startsWith(`<sips:acme@127.0.0.1:${tlsPort}>`)), log()).toBe(true);
    expect(acme!.binding!.expires).toBeLessThanOrEqual(MAX_EXPIRES);
    await until(() => count('registration.registered') >= 2, (MAX_EXPIRES + 3) * 1000, 'refresh', log);
    expect(lines.filter((l) => l.includes('tls.connect_failed'))).toEqual([]);

    // Carol calls the trunk's number at the carrier; Kamailio's lookup sends it over TLS to the trunk's Contact.
    const records: CallRecord[] = [];
    trunk.b2bua.on('call', (r) => records.push(r));
    const carol = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 }, contactUser: 'carol' });
    cleanups.push(() => carol.close({ timeoutMs: 1000 }));
    const call = carol.invite(`sip:${DID}@${CARRIER}`, { destination: { address: REGISTRAR_HOST, port: kamailio.port }, from: `<sip:carol@${CARRIER}>`, body: SDP });
    expect(await outcome(call), log()).toEqual({ answered: true });
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.invite.uri).toBe(`sip:${DID}@127.0.0.1:${destPort}`);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ to: `sips:acme@127.0.0.1:${tlsPort}`, source: { address: REGISTRAR_HOST, transport: 'tls' }, tags: { domain: TRUNK_DOMAIN, auth: 'registration', number: DID } });
    const ended = new Promise((r) => trunk.b2bua.once('end', r));
    await call.hangup();
    await ended;

    await trunk.stop('hangup');
    stopped = true;
    expect(count('registration.unregistered')).toBe(1);
  }, 60_000);
});
