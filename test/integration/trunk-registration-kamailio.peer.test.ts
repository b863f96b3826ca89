import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import type { SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { startKamailioRegistrar, type KamailioRegistrar } from '../support/kamailio-registrar.js';

// The trunk registering itself with a carrier's registrar — Kamailio (Debian's kamailio), which
// nobody here wrote: usrloc + registrar with digest (401), and INVITEs to the AOR routed by
// lookup("location") to the trunk's registered Contact, which the trunk bridges to its destination.
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
if (!hasKamailio && process.env.CI) throw new Error('Kamailio is not installed: .ci/run installs kamailio');
if (!hasKamailio) console.warn('trunk-registration-kamailio.peer.test: skipped (kamailio is not installed)');

const CARRIER = 'sipkit.test';
const PASSWORD = 'kamailio-secret';
// The carrier's registrar: on its own loopback address, so the trunk can tell its calls from a caller's on 127.0.0.1.
const REGISTRAR_HOST = '127.0.0.2';
// What the registrar grants at most: less than the trunk asks, so the refresh follows the grant.
const MAX_EXPIRES = 4;
const DID = '4930123';
const TRUNK_DOMAIN = 'carrier-in.trunk.sipkit.test';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startKamailio(): Promise<KamailioRegistrar> {
  return startKamailioRegistrar({ host: REGISTRAR_HOST, domain: CARRIER, password: PASSWORD, maxExpires: MAX_EXPIRES });
}

function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

/** Poll until `cond` holds, at most `ms` of real time (a bound, not a timing assertion). */
async function until(cond: () => boolean, ms: number, what: string, log: () => string): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited >= ms) throw new Error(`no ${what} within ${ms} ms\n${log()}`);
    await sleep(50);
  }
}

function outcome(call: OutgoingCall): Promise<{ answered: true } | { answered: false; response: SipResponse }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no final answer within 10 s')), 10_000);
    call.on('answer', () => (clearTimeout(t), resolve({ answered: true })));
    call.on('failure', (response) => (clearTimeout(t), resolve({ answered: false, response })));
  });
}

describe.skipIf(!hasKamailio)('trunk registrations against Kamailio as the carrier\'s registrar', () => {
  it('registers with digest, refreshes within the grant, takes the call Kamailio routes to its Contact into the inbound domain, and unregisters on stop', async () => {
    const kamailio = await startKamailio();
    cleanup.push(() => stopProcess(kamailio.process));

    // The trunk's destination: answers every call.
    const delivered: IncomingCall[] = [];
    const dest = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], contactUser: 'dest', onInvite: (c) => void (delivered.push(c), c.answer({ body: SDP })) });
    cleanup.push(() => dest.close());
    const destPort = dest.layer.transports[0]!.local.port;

    const lines: string[] = [];
    const config = validateConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
      http: { host: '127.0.0.1', port: 0, token: 'tok' },
      auth: { secret: 'trunk-registration-secret-0123456789' },
      domains: { [TRUNK_DOMAIN]: { extensions: {}, routes: [{ prefix: '49', targets: [`sip:127.0.0.1:${destPort}`] }] } },
      registrations: [
        { registrar: `sip:${REGISTRAR_HOST}:${kamailio.port}`, username: 'acme', password: PASSWORD, aor: `sip:${DID}@${CARRIER}`, expires: 600, inbound: { domain: TRUNK_DOMAIN } },
        // Wrong credentials: refused by the registrar, logged, retried later.
        { registrar: `sip:${REGISTRAR_HOST}:${kamailio.port}`, username: 'intruder', password: 'wrong', aor: `sip:999@${CARRIER}` },
      ],
      timers: { T1: 100 },
      cdr: { path: null },
      log: { level: 'info' },
    });
    const trunk: TrunkServer = await startTrunk(config, { log: (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) });
    let stopped = false;
    cleanup.push(() => (stopped ? undefined : trunk.stop('hangup')));
    const trunkPort = trunk.sip[0]!.port;
    const log = () => `${lines.join('\n')}\n--- kamailio ---\n${kamailio.log()}`;
    const count = (event: string) => lines.filter((l) => l.includes(` ${event} `)).length;

    // Registered, then refreshed at half of Kamailio's grant (bounded: the grant plus a margin).
    await until(() => count('registration.registered') >= 1, 10_000, 'registration', log);
    const [acme, intruder] = trunk.registrations;
    expect(acme!.binding!.expires).toBeLessThanOrEqual(MAX_EXPIRES);
    expect(acme!.binding!.contacts.some((c) => c.startsWith(`<sip:acme@127.0.0.1:${trunkPort}>`))).toBe(true);
    await until(() => count('registration.registered') >= 2, (MAX_EXPIRES + 3) * 1000, 'refresh', log);
    expect(lines.find((l) => l.includes('registration.registered'))).toContain(`"aor":"sip:${DID}@${CARRIER}"`);
    await until(() => count('registration.failed') >= 1, 10_000, 'failed registration', log);
    expect(lines.find((l) => l.includes('registration.failed'))).toMatch(/^warn registration\.failed .*"aor":"sip:999@sipkit\.test".*"cause":"auth".*"status":401/);
    expect(intruder!.binding).toBeUndefined();

    // Carol calls the trunk's AOR at the carrier; Kamailio's lookup sends the INVITE to the trunk's Contact.
    const records: CallRecord[] = [];
    trunk.b2bua.on('call', (r) => records.push(r));
    const carol = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 }, contactUser: 'carol' });
    cleanup.push(() => carol.close());
    const call = carol.invite(`sip:${DID}@${CARRIER}`, { destination: { address: REGISTRAR_HOST, port: kamailio.port }, from: `<sip:carol@${CARRIER}>`, body: SDP });
    expect(await outcome(call)).toEqual({ answered: true });
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.invite.uri).toBe(`sip:${DID}@127.0.0.1:${destPort}`);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ to: `sip:acme@127.0.0.1:${trunkPort}`, source: { address: REGISTRAR_HOST }, tags: { domain: TRUNK_DOMAIN, auth: 'registration', number: DID } });
    const ended = new Promise((r) => trunk.b2bua.once('end', r));
    await call.hangup();
    await ended;

    // The Contact is no back door: the same INVITE straight from Carol's address is challenged like any call.
    const direct = carol.invite(`sip:acme@127.0.0.1:${trunkPort}`, { destination: { address: '127.0.0.1', port: trunkPort }, to: `<sip:${DID}@${CARRIER}>`, from: `<sip:carol@${CARRIER}>`, body: SDP });
    const refused = await outcome(direct);
    expect(!refused.answered && refused.response.status).toBe(407);
    expect(delivered).toHaveLength(1);

    // Stop: the binding is removed (Expires: 0) before the sockets close; the AOR then finds nobody.
    await trunk.stop('hangup');
    stopped = true;
    expect(count('registration.unregistered')).toBe(1);
    const after = carol.invite(`sip:${DID}@${CARRIER}`, { destination: { address: REGISTRAR_HOST, port: kamailio.port }, from: `<sip:carol@${CARRIER}>`, body: SDP });
    const gone = await outcome(after);
    expect(!gone.answered && gone.response.status).toBe(404);
  }, 60_000);
});
