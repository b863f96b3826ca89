import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type IncomingCall, type OutgoingCall } from '../../src/dialog/index.js';
import type { SipRequest, SipResponse } from '../../src/parser/index.js';
import { TlsTransport, UdpTransport } from '../../src/transport/index.js';
import { DNSMASQ, startDnsmasq, type Dnsmasq } from '../support/dnsmasq.js';
import { KAMAILIO_TLS_MPATH, startKamailioTlsProxy, type KamailioTlsProxy } from '../support/kamailio-tls.js';
import { hasOpenssl, makeTestPki, type KeyPair, type TestPki } from '../support/tls-certs.js';

// The trunk routing a call over TLS to a carrier named sip.test (issue #17): its route target is
// `sips:sip.test`; Debian's dnsmasq serves _sips._tcp.sip.test → edge.sip.test → 127.0.0.1;
// Kamailio with its TLS module (nobody here wrote it) is the carrier's TLS edge, presenting a
// certificate from a test CA made for the run, and relays to the carrier's gateway (a sipkit UA
// on TLS). The trunk verifies the certificate against `tls.ca` and the SIP domain sip.test
// (RFC 5922 §7.2): Kamailio presenting a certificate for another host is refused, and no
// request reaches it.
const hasKamailio = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
const ready = hasKamailio && KAMAILIO_TLS_MPATH !== undefined && hasOpenssl && DNSMASQ !== undefined;
if (!ready && process.env.CI) throw new Error('kamailio, kamailio-tls-modules, openssl and dnsmasq-base are needed: .ci/run installs them');
if (!ready) console.warn('trunk-tls-kamailio.peer.test: skipped (needs kamailio, kamailio-tls-modules, openssl and dnsmasq)');

const DOMAIN = 'tls.trunk.sipkit.test';
const NUMBER = '15551230000';
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

/** The carrier's gateway behind Kamailio, on TLS: answers every call, keeps what it received. */
async function gateway(): Promise<{ port: number; calls: IncomingCall[]; byes: SipRequest[] }> {
  const calls: IncomingCall[] = [];
  const byes: SipRequest[] = [];
  const ua = new UserAgent({
    transports: [await TlsTransport.listen({ host: '127.0.0.1', cert: pki.server.cert, key: pki.server.key })],
    contactUser: 'gw',
    onInvite: (c) => void (calls.push(c), c.answer({ body: SDP })),
    incomingCallHandlers: { onBye: (req) => void byes.push(req) },
  });
  cleanups.push(() => ua.close({ timeoutMs: 1000 }));
  return { port: ua.layer.transports[0]!.local.port, calls, byes };
}

/** Kamailio presenting `pair`, and dnsmasq pointing sip.test's _sips._tcp SRV at it. */
async function carrier(pair: KeyPair, gatewayPort: number): Promise<{ kamailio: KamailioTlsProxy; dns: Dnsmasq }> {
  const kamailio = await startKamailioTlsProxy({ pair, caFile: pki.caFile, forwardTo: gatewayPort });
  cleanups.push(() => kamailio.stop());
  const dns = await startDnsmasq(
    [
      '--local=/sip.test/',
      // The domain itself exists (A at 5061, where nobody listens): only the SRV leads to Kamailio.
      '--host-record=sip.test,127.0.0.1',
      `--srv-host=_sips._tcp.sip.test,edge.sip.test,${kamailio.tlsPort},10,0`,
      '--host-record=edge.sip.test,127.0.0.1',
    ],
    'edge.sip.test',
  );
  cleanups.push(() => dns.stop());
  return { kamailio, dns };
}

async function trunkTo(dnsServer: string, lines: string[], extra: Record<string, unknown> = {}): Promise<TrunkServer> {
  const trunk = await startTrunk(
    validateConfig({
      ...extra,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }, { transport: 'tls', host: '127.0.0.1', port: 0, cert: pki.server.certFile, key: pki.server.keyFile }] },
      tls: { ca: pki.caFile },
      dns: { servers: [dnsServer] },
      http: { host: '127.0.0.1', port: 0, token: 'tok' },
      auth: { secret: 'trunk-tls-kamailio-secret-0123456789' },
      domains: { [DOMAIN]: { extensions: { '3000': { password: 'pw-3000' } }, routes: [{ prefix: '', targets: ['sips:sip.test'] }] } },
      timers: { T1: 100 },
      cdr: { path: null },
      log: { level: 'info' },
    }),
    { log: (level, event, fields) => lines.push(`${level} ${event} ${JSON.stringify(fields ?? {})}`) },
  );
  cleanups.push(() => trunk.stop('hangup'));
  return trunk;
}

async function caller(): Promise<UserAgent> {
  const ua = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 }, contactUser: 'caller' });
  cleanups.push(() => ua.close({ timeoutMs: 1000 }));
  return ua;
}

function dial(ua: UserAgent, trunk: TrunkServer): OutgoingCall {
  return ua.invite(`sip:${NUMBER}@${DOMAIN}`, {
    destination: { address: '127.0.0.1', port: trunk.sip[0]!.port, transport: 'udp' },
    from: `<sip:3000@${DOMAIN}>`,
    body: SDP,
    auth: { username: '3000', password: 'pw-3000' },
  });
}

function outcome(call: OutgoingCall, log: () => string): Promise<{ answered: true } | { answered: false; response: SipResponse }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no final answer within 15 s\n${log()}`)), 15_000);
    call.on('answer', () => (clearTimeout(t), resolve({ answered: true })));
    call.on('failure', (response) => (clearTimeout(t), resolve({ answered: false, response })));
  });
}

async function until(cond: () => boolean, ms: number, what: string, log: () => string): Promise<void> {
  for (let waited = 0; !cond(); waited += 50) {
    if (waited >= ms) throw new Error(`no ${what} within ${ms} ms\n${log()}`);
    await sleep(50);
  }
}

describe.skipIf(!ready)('trunk routing to sips:sip.test: Kamailio (tls module) as the carrier\'s TLS edge', () => {
  it('resolves _sips._tcp.sip.test, verifies Kamailio\'s certificate for sip.test against tls.ca, and the call is answered and hung up through it', async () => {
    const gw = await gateway();
    const { kamailio, dns } = await carrier(pki.server, gw.port);
    const lines: string[] = [];
    const trunk = await trunkTo(dns.server, lines);
    const log = () => `${lines.join('\n')}\n--- kamailio ---\n${kamailio.log().slice(-8000)}`;
    const records: CallRecord[] = [];
    trunk.b2bua.on('end', (r) => records.push(r));

    const call = dial(await caller(), trunk);
    expect(await outcome(call, log)).toEqual({ answered: true });
    expect(gw.calls).toHaveLength(1);
    const invite = gw.calls[0]!.invite;
    // Kamailio's hop on top, beneath it the trunk's: both over TLS.
    const vias = invite.getAll('via').join(',').split(/,\s*/).filter((v) => /^SIP\//i.test(v));
    expect(vias).toHaveLength(2);
    expect(vias[0]).toMatch(new RegExp(`^SIP/2\\.0/TLS 127\\.0\\.0\\.1:${kamailio.tlsPort};`, 'i'));
    expect(vias[1]).toMatch(/^SIP\/2\.0\/TLS /i);
    expect(invite.uri).toBe(`sips:${NUMBER}@127.0.0.1:${gw.port}`);
    // The trunk's ACK of the 2xx is its own request (RFC 3261 §13.2.2.4), routed like the BYE.
    await until(() => kamailio.received().length >= 2, 5000, 'ACK at Kamailio', log);
    expect(kamailio.received()).toEqual(['INVITE tls', 'ACK tls']);

    // The trunk's BYE follows Kamailio's Record-Route back over TLS, and reaches the gateway.
    const ended = new Promise((r) => trunk.b2bua.once('end', r));
    await call.hangup();
    await ended;
    await until(() => gw.byes.length === 1, 5000, 'BYE at the gateway', log);
    expect(kamailio.received()).toEqual(['INVITE tls', 'ACK tls', 'BYE tls']);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ identity: '3000', bLeg: { attempts: 1 }, hangup: { by: 'caller' } });
    expect(records[0]!.bLeg.target).toMatch(/^sips:/);
  }, 60_000);

  it('Kamailio presenting a certificate for another host (other.test, same CA) is refused: TLS_IDENTITY logged, 503 to the caller, nothing reaches Kamailio', async () => {
    const gw = await gateway();
    const { kamailio, dns } = await carrier(pki.wrongHost, gw.port);
    const lines: string[] = [];
    const trunk = await trunkTo(dns.server, lines);
    const log = () => `${lines.join('\n')}\n--- kamailio ---\n${kamailio.log().slice(-8000)}`;
    const records: CallRecord[] = [];
    trunk.b2bua.on('end', (r) => records.push(r));

    const r = await outcome(dial(await caller(), trunk), log);
    expect(r.answered).toBe(false);
    expect(!r.answered && r.response.status).toBe(503);
    expect(records).toHaveLength(1);
    expect(records[0]!.hangup).toMatchObject({ by: 'system', status: 503 });
    // Why, for the operator: the typed cause of the refused connection.
    const refused = lines.filter((l) => l.includes(' tls.connect_failed '));
    expect(refused, log()).toHaveLength(1);
    expect(refused[0]).toMatch(/^warn tls\.connect_failed .*"code":"TLS_IDENTITY"/);
    expect(refused[0]).toContain('sip.test');
    expect(refused[0]).toContain('other.test');
    // The handshake failed before any SIP was sent: Kamailio saw no request, the gateway no call.
    await sleep(200);
    expect(kamailio.received()).toEqual([]);
    expect(gw.calls).toHaveLength(0);
  }, 60_000);

  it('probing sips:sip.test over TLS: GET /v1.0/targets shows it resolved by SRV and up once Kamailio answers the OPTIONS; with a certificate for another host it goes down', async () => {
    const probe = { intervalSeconds: 2, failureThreshold: 1, successThreshold: 1, timeoutSeconds: 1 };
    const targetsOf = async (trunk: TrunkServer) => {
      const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/targets`, { headers: { authorization: 'Bearer tok' } });
      return ((await res.json()) as { targets: Array<{ uri: string; resolved: string[]; state: string; lastStatus?: number }> }).targets;
    };
    for (const [pair, state] of [[pki.server, 'up'], [pki.wrongHost, 'down']] as const) {
      const gw = await gateway();
      const { kamailio, dns } = await carrier(pair, gw.port);
      const lines: string[] = [];
      const trunk = await trunkTo(dns.server, lines, { probe });
      const log = () => `${lines.join('\n')}\n--- kamailio ---\n${kamailio.log().slice(-8000)}`;
      let targets = await targetsOf(trunk);
      for (let i = 0; i < 100 && targets[0]?.state !== state; i++) {
        await sleep(100);
        targets = await targetsOf(trunk);
      }
      expect(targets, log()).toMatchObject([{ uri: 'sips:sip.test', resolved: [`tls 127.0.0.1:${kamailio.tlsPort}`], state }]);
      if (state === 'up') {
        expect(kamailio.received()[0]).toBe('OPTIONS tls');
        expect(targets[0]!.lastStatus).toBe(200);
      } else {
        expect(kamailio.received()).toEqual([]);
        expect(lines.some((l) => /^warn tls\.connect_failed .*"code":"TLS_IDENTITY"/.test(l)), log()).toBe(true);
      }
      for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
    }
  }, 60_000);
});
