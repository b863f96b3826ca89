import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import type { SipResponse } from '../../src/parser/index.js';
import { TlsTransport, UdpTransport } from '../../src/transport/index.js';
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

interface Env {
  kamailio: Awaited<ReturnType<typeof startKamailioRegistrar>>;
  trunk: TrunkServer;
  lines: string[];
  delivered: IncomingCall[];
  destPort: number;
  tlsPort: number;
  log(): string;
  count(event: string): number;
  stopped: { value: boolean };
}

/** Kamailio as the registrar of sip.test over TLS, dnsmasq pointing _sips._tcp.sip.test at it, a destination, and the trunk registering. */
async function setUp(options: { maxExpires: number; outbound?: { flowTimer: number; connectionLifetime: number }; registration?: Record<string, unknown> }): Promise<Env> {
  const kamailio = await startKamailioRegistrar({
    host: REGISTRAR_HOST,
    domain: CARRIER,
    password: PASSWORD,
    maxExpires: options.maxExpires,
    tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.caFile },
    ...(options.outbound ? { outbound: options.outbound } : {}),
  });
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
      registrations: [{ registrar: `sips:${CARRIER}`, username: 'acme', password: PASSWORD, aor: `sip:${DID}@${CARRIER}`, expires: 600, inbound: { domain: TRUNK_DOMAIN }, ...options.registration }],
      timers: { T1: 100 },
      cdr: { path: null },
      log: { level: 'info' },
    }),
    { log: (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) },
  );
  const stopped = { value: false };
  cleanups.push(() => (stopped.value ? undefined : trunk.stop('hangup')));
  const tlsPort = trunk.sip.find((s) => s.transport === 'tls')!.port;
  return {
    kamailio,
    trunk,
    lines,
    delivered,
    destPort,
    tlsPort,
    stopped,
    log: () => `${lines.join('\n')}\n--- kamailio ---\n${kamailio.log().slice(-8000)}`,
    count: (event: string) => lines.filter((l) => l.includes(` ${event} `)).length,
  };
}

/** Carol calls the trunk's number at the carrier, through Kamailio (UDP). */
async function carolCalls(env: Env): Promise<{ call: OutgoingCall; records: CallRecord[] }> {
  const records: CallRecord[] = [];
  env.trunk.b2bua.on('call', (r) => records.push(r));
  const carol = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 }, contactUser: 'carol' });
  cleanups.push(() => carol.close({ timeoutMs: 1000 }));
  const call = carol.invite(`sip:${DID}@${CARRIER}`, { destination: { address: REGISTRAR_HOST, port: env.kamailio.port }, from: `<sip:carol@${CARRIER}>`, body: SDP });
  expect(await outcome(call), env.log()).toEqual({ answered: true });
  return { call, records };
}

function tlsTransportOf(trunk: TrunkServer): TlsTransport {
  return trunk.b2bua.ua.layer.transports.find((t) => t.protocol === 'tls') as TlsTransport;
}

describe.skipIf(!ready)('trunk registering with sips:sip.test (dnsmasq, Kamailio over TLS)', () => {
  it('locates the registrar by SRV, registers over TLS with digest, refreshes, takes the call Kamailio sends to its sips: Contact, and unregisters on stop', async () => {
    const env = await setUp({ maxExpires: MAX_EXPIRES });
    const { trunk, log, count, tlsPort } = env;
    await until(() => count('registration.registered') >= 1, 10_000, 'registration', log);
    const [acme] = trunk.registrations;
    expect(acme!.binding!.contacts.some((c) => c.startsWith(`<sips:acme@127.0.0.1:${tlsPort}>`)), log()).toBe(true);
    expect(acme!.binding!.expires).toBeLessThanOrEqual(MAX_EXPIRES);
    await until(() => count('registration.registered') >= 2, (MAX_EXPIRES + 3) * 1000, 'refresh', log);
    expect(env.lines.filter((l) => l.includes('tls.connect_failed'))).toEqual([]);

    // Kamailio's lookup sends Carol's call over TLS to the trunk's Contact.
    const { call, records } = await carolCalls(env);
    expect(env.delivered).toHaveLength(1);
    expect(env.delivered[0]!.invite.uri).toBe(`sip:${DID}@127.0.0.1:${env.destPort}`);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ to: `sips:acme@127.0.0.1:${tlsPort}`, source: { address: REGISTRAR_HOST, transport: 'tls' }, tags: { domain: TRUNK_DOMAIN, auth: 'registration', number: DID } });
    const ended = new Promise((r) => trunk.b2bua.once('end', r));
    await call.hangup();
    await ended;

    await trunk.stop('hangup');
    env.stopped.value = true;
    expect(count('registration.unregistered')).toBe(1);
  }, 60_000);

  it('with RFC 5626 outbound: Kamailio requires it (Flow-Timer 2 s), CRLF keep-alives hold the TLS flow open past Kamailio\'s idle limit, and its call comes back over that flow', async () => {
    const env = await setUp({
      maxExpires: 120,
      outbound: { flowTimer: 2, connectionLifetime: 4 },
      registration: { outbound: { instanceId: '6d3f4a2e-1b7c-4e8a-9f0d-2c5b8e7a1d34' } },
    });
    const { trunk, log, count } = env;
    await until(() => count('registration.registered') >= 1, 10_000, 'registration', log);
    const [acme] = trunk.registrations;
    expect(acme!.binding!.contacts.join(' ')).toMatch(/reg-id=1/);
    const tls = tlsTransportOf(trunk);
    expect(tls.outboundConnectionCount).toBe(1);

    // Quiet for longer than Kamailio lets an idle connection live (its 4 s lifetime is enforced
    // by a coarse timer: an idle connection is gone within about 11 s): only the keep-alives
    // (every 1.6–2 s, RFC 5626 §4.4.1) keep it. Without them Kamailio closes it, the trunk sees
    // its flow fail and registers again.
    await sleep(14_000);
    expect(count('registration.failed'), log()).toBe(0);
    expect(count('registration.registered'), log()).toBe(1);
    expect(tls.outboundConnectionCount).toBe(1);

    // Carol's call comes over the flow: from Kamailio's TLS port, on the connection the trunk opened.
    const { call, records } = await carolCalls(env);
    expect(records[0]).toMatchObject({ source: { address: REGISTRAR_HOST, port: env.kamailio.tlsPort, transport: 'tls' }, tags: { auth: 'registration', number: DID } });
    expect(tls.inboundConnectionCount).toBe(0);
    const ended = new Promise((r) => trunk.b2bua.once('end', r));
    await call.hangup();
    await ended;
  }, 60_000);
});
