import { spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallRecord } from '../../src/b2bua/index.js';
import { UserAgent } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { DNSMASQ, startDnsmasq } from '../support/dnsmasq.js';
import { freePort, sippGateway, udpListening, type SippRun } from '../support/sipp.js';

// The trunk server pointed at a carrier by name (issue #17): Debian's dnsmasq serves carrier.test
// (NAPTR → SRV → A), SIPp plays the carrier's two gateways, a sipkit UA calls the trunk with digest
// auth. The trunk's route target is `sip:carrier.test`; `dns.servers` is dnsmasq.
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
if ((DNSMASQ === undefined || !hasSipp) && process.env.CI) throw new Error('dnsmasq and SIPp are needed: .ci/run installs dnsmasq-base and sip-tester');
if (DNSMASQ === undefined || !hasSipp) console.warn(`skipping the trunk DNS peer test: ${DNSMASQ === undefined ? 'dnsmasq' : 'sipp'} is not installed`);

const CALLS = 5;
const DOMAIN = 'acme.trunk.sipkit.test';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

const children: ChildProcess[] = [];

function gateway(port: number, scenario: string, calls: number): { done: Promise<SippRun> } {
  const g = sippGateway(port, scenario, calls);
  children.push(g.process);
  return g;
}

describe.skipIf(DNSMASQ === undefined || !hasSipp)('trunk server routing to sip:carrier.test through dnsmasq, SIPp gateways', () => {
  let dnsmasq: ChildProcess | undefined;
  let server = '';
  let port503 = 0;
  let port200 = 0;

  beforeAll(async () => {
    port503 = await freePort();
    port200 = await freePort();
    const d = await startDnsmasq(
      [
        // Authoritative for carrier.test: an unknown name in it is NXDOMAIN.
        '--local=/carrier.test/',
        // carrier.test: NAPTR → _sip._udp → gw1 (priority 10, answers 503), gw2 (priority 20, answers 200).
        '--naptr-record=carrier.test,10,10,S,SIP+D2U,,_sip._udp.carrier.test',
        `--srv-host=_sip._udp.carrier.test,gw1.carrier.test,${port503},10,0`,
        `--srv-host=_sip._udp.carrier.test,gw2.carrier.test,${port200},20,0`,
        '--host-record=gw1.carrier.test,127.0.0.1',
        '--host-record=gw2.carrier.test,127.0.0.1',
      ],
      'gw1.carrier.test',
    );
    dnsmasq = d.process;
    server = d.server;
  }, 30_000);

  afterAll(() => {
    dnsmasq?.kill('SIGTERM');
  });

  const closing: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((c) => c()));
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  /** The trunk (routes: +1404… to a name that does not exist, everything else to carrier.test) and a caller. */
  async function setUp(): Promise<{ trunk: TrunkServer; caller: UserAgent; ended: CallRecord[] }> {
    const trunk = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
        http: { host: '127.0.0.1', port: 0, token: 'tok' },
        auth: { secret: 'trunk-dns-peer-secret-0123456789abcdef' },
        dns: { servers: [server] },
        domains: {
          [DOMAIN]: {
            extensions: { '2000': { password: 'pw-2000' } },
            routes: [
              { prefix: '', targets: ['sip:carrier.test'] },
              { prefix: '+1404', targets: ['sip:nowhere.carrier.test'] },
            ],
          },
        },
        cdr: { path: null },
        log: { level: 'error' },
      }),
    );
    const ended: CallRecord[] = [];
    trunk.b2bua.on('end', (r) => ended.push(r));
    const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })] });
    closing.push(async () => {
      await caller.close({ timeoutMs: 1000 });
      await trunk.stop('hangup');
    });
    return { trunk, caller, ended };
  }

  /** A call with digest auth; resolves with the final status (an answered call is hung up at once). */
  function dial(caller: UserAgent, trunk: TrunkServer, number: string): Promise<number> {
    return new Promise((resolve) => {
      const call = caller.invite(`sip:${number}@${DOMAIN}`, {
        destination: { address: '127.0.0.1', port: trunk.sip[0]!.port, transport: 'udp' },
        from: `<sip:2000@${DOMAIN}>`,
        body: SDP,
        auth: { username: '2000', password: 'pw-2000' },
        on: {
          answer: (res) => void call.hangup().then(() => resolve(res.status)),
          failure: (res) => resolve(res.status),
        },
      });
    });
  }

  it(`${CALLS} calls through the trunk to sip:carrier.test: each refused 503 by the first SRV gateway, completed by the second`, async () => {
    const refuse = gateway(port503, 'uas-503.xml', CALLS);
    const answer = gateway(port200, 'uas-answer.xml', CALLS);
    await Promise.all([udpListening(port503, refuse), udpListening(port200, answer)]);
    const { trunk, caller, ended } = await setUp();
    const statuses: number[] = [];
    for (let i = 0; i < CALLS; i++) statuses.push(await dial(caller, trunk, '+1555'));
    expect(statuses).toEqual(Array(CALLS).fill(200));
    const [r503, r200] = await Promise.all([refuse.done, answer.done]);
    expect(r503.code, `503 gateway:\n${r503.out.slice(-3000)}`).toBe(0);
    expect(r200.code, `200 gateway:\n${r200.out.slice(-3000)}`).toBe(0);
    for (let i = 0; i < 100 && ended.length < CALLS; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ended).toHaveLength(CALLS);
    // The route target is the name; the fail-over between its SRV gateways happened below the bridge.
    for (const r of ended) expect(r.bLeg).toMatchObject({ target: 'sip:+1555@carrier.test', attempts: 1 });
  }, 90_000);

  it('a route target whose name does not exist (NXDOMAIN): the caller gets 404', async () => {
    const { trunk, caller, ended } = await setUp();
    expect(await dial(caller, trunk, '+1404555')).toBe(404);
    for (let i = 0; i < 100 && ended.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ended[0]!.hangup).toMatchObject({ by: 'system', status: 404 });
  }, 30_000);

  it('GET /v1.0/targets shows each route target as dnsmasq resolves it: both SRV gateways in order, NXDOMAIN as DNS_NOT_FOUND', async () => {
    const { trunk } = await setUp();
    const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/targets`, { headers: { authorization: 'Bearer tok' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { probing: boolean; dnsServers: unknown; targets: Array<Record<string, unknown>> };
    expect(body).toMatchObject({ probing: false, dnsServers: [server] });
    expect(body.targets).toEqual([
      expect.objectContaining({ uri: 'sip:carrier.test', resolved: [`udp 127.0.0.1:${port503}`, `udp 127.0.0.1:${port200}`], state: 'unknown' }),
      expect.objectContaining({ uri: 'sip:nowhere.carrier.test', resolved: [], error: 'DNS_NOT_FOUND' }),
    ]);
  }, 30_000);
});
