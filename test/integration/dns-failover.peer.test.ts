import { spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { B2bua, type CallRecord } from '../../src/b2bua/index.js';
import { UserAgent, type OutgoingCall } from '../../src/dialog/index.js';
import { SipResolver } from '../../src/resolver/index.js';
import { failureCause, isSynthesized } from '../../src/transaction/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { DNSMASQ, startDnsmasq } from '../support/dnsmasq.js';
import { freePort, sippGateway, udpListening, type SippRun } from '../support/sipp.js';

// RFC 3263 against a real DNS server and real SIP gateways nobody here wrote: Debian's dnsmasq
// serves carrier.test (NAPTR → SRV → A), SIPp plays the gateways, a sipkit B2BUA routes
// sip:+1555@carrier.test and fails over between them.
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
if ((DNSMASQ === undefined || !hasSipp) && process.env.CI) throw new Error('dnsmasq and SIPp are needed: .ci/run installs dnsmasq-base and sip-tester');
if (DNSMASQ === undefined || !hasSipp) console.warn(`skipping the DNS fail-over peer test: ${DNSMASQ === undefined ? 'dnsmasq' : 'sipp'} is not installed`);

const CALLS = 10;

const children: ChildProcess[] = [];

function gateway(port: number, scenario: string, calls: number): { done: Promise<SippRun> } {
  const g = sippGateway(port, scenario, calls);
  children.push(g.process);
  return g;
}

describe.skipIf(DNSMASQ === undefined || !hasSipp)('RFC 3263 fail-over against dnsmasq and SIPp gateways', () => {
  let dnsmasq: ChildProcess | undefined;
  let server = '';
  let port503 = 0;
  let port200 = 0;
  let portSilent = 0;
  let silent: Socket | undefined;
  let dropped = 0;

  beforeAll(async () => {
    // A socket that takes INVITEs and answers nothing: the SRV target that times out.
    silent = createSocket('udp4');
    silent.on('message', () => dropped++);
    await new Promise<void>((r) => silent!.bind(0, '127.0.0.1', () => r()));
    portSilent = silent.address().port;
    port503 = await freePort();
    port200 = await freePort();
    const d = await startDnsmasq(
      [
        // Authoritative here for these zones: an unknown name is NXDOMAIN.
        '--local=/carrier.test/',
        '--local=/silent.test/',
        // carrier.test: NAPTR → _sip._udp → gw1 (priority 10, answers 503), gw2 (priority 20, answers 200).
        '--naptr-record=carrier.test,10,10,S,SIP+D2U,,_sip._udp.carrier.test',
        `--srv-host=_sip._udp.carrier.test,gw1.carrier.test,${port503},10,0`,
        `--srv-host=_sip._udp.carrier.test,gw2.carrier.test,${port200},20,0`,
        '--host-record=gw1.carrier.test,127.0.0.1',
        '--host-record=gw2.carrier.test,127.0.0.1',
        // silent.test: the first SRV target never answers; the second is gw2.
        '--naptr-record=silent.test,10,10,S,SIP+D2U,,_sip._udp.silent.test',
        `--srv-host=_sip._udp.silent.test,void.silent.test,${portSilent},10,0`,
        `--srv-host=_sip._udp.silent.test,gw2.carrier.test,${port200},20,0`,
        '--host-record=void.silent.test,127.0.0.1',
      ],
      'gw1.carrier.test',
    );
    dnsmasq = d.process;
    server = d.server;
  }, 30_000);

  afterAll(() => {
    dnsmasq?.kill('SIGTERM');
    silent?.close();
  });

  const closing: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((c) => c()));
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });

  /** A B2BUA routing every call to `target`, resolving through dnsmasq; and a sipkit caller. */
  async function setUp(target: string, T1 = 500) {
    const ended: CallRecord[] = [];
    const b2bua = new B2bua({
      transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })],
      timers: { T1 },
      resolver: new SipResolver({ servers: [server], timeout: 1000, tries: 2, transports: ['udp'], families: [4] }),
      route: () => [{ uri: target }],
    });
    b2bua.on('end', (r) => ended.push(r));
    const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })], contactUser: 'caller' });
    closing.push(async () => {
      await caller.close({ timeoutMs: 1000 });
      await b2bua.close({ timeoutMs: 1000 });
    });
    const b2buaUri = `sip:+1555@127.0.0.1:${b2bua.ua.layer.transports[0]!.local.port}`;
    return { b2bua, caller, ended, b2buaUri };
  }

  /** Place a call; resolves with the final status (answered calls are hung up at once). */
  function dial(caller: UserAgent, uri: string): Promise<{ status: number; call: OutgoingCall }> {
    return new Promise((resolve) => {
      const call = caller.invite(uri, {
        body: 'v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n',
        on: {
          answer: (res) => {
            void call.hangup().then(() => resolve({ status: res.status, call }));
          },
          failure: (res) => resolve({ status: res.status, call }),
        },
      });
    });
  }

  it(`${CALLS} calls to sip:+1555@carrier.test: each refused 503 by the first SRV target, completed by the second`, async () => {
    const refuse = gateway(port503, 'uas-503.xml', CALLS);
    const answer = gateway(port200, 'uas-answer.xml', CALLS);
    await Promise.all([udpListening(port503, refuse), udpListening(port200, answer)]);
    const { caller, ended, b2buaUri } = await setUp('sip:+1555@carrier.test');
    const statuses: number[] = [];
    for (let i = 0; i < CALLS; i++) statuses.push((await dial(caller, b2buaUri)).status);
    expect(statuses).toEqual(Array(CALLS).fill(200));
    const [r503, r200] = await Promise.all([refuse.done, answer.done]);
    expect(r503.code, `503 gateway:\n${r503.out.slice(-3000)}`).toBe(0);
    expect(r200.code, `200 gateway:\n${r200.out.slice(-3000)}`).toBe(0);
    for (let i = 0; i < 50 && ended.length < CALLS; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ended).toHaveLength(CALLS);
    // One route target per call: the fail-over between the SRV targets happened below the bridge.
    for (const r of ended) expect(r.bLeg).toMatchObject({ target: 'sip:+1555@carrier.test', attempts: 1 });
  }, 90_000);

  it('an SRV target that does not answer: Timer B (T1 = 20 ms → 1.28 s), then the next target answers', async () => {
    const answer = gateway(port200, 'uas-answer.xml', 1);
    await udpListening(port200);
    const { caller, b2buaUri } = await setUp('sip:+1555@silent.test', 20);
    const before = dropped;
    const { status } = await dial(caller, b2buaUri);
    expect(status).toBe(200);
    // The INVITE and its retransmissions (Timer A) went to the silent target first.
    expect(dropped - before).toBeGreaterThanOrEqual(2);
    const r200 = await answer.done;
    expect(r200.code, r200.out.slice(-3000)).toBe(0);
  }, 60_000);

  it('a domain that does not exist (NXDOMAIN): the caller gets 404; the UA sees a 503 caused by DNS_NOT_FOUND', async () => {
    const { b2bua, caller, ended, b2buaUri } = await setUp('sip:+1555@nowhere.carrier.test');
    const { status } = await dial(caller, b2buaUri);
    expect(status).toBe(404);
    for (let i = 0; i < 50 && ended.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ended[0]!.hangup).toMatchObject({ by: 'system', status: 404 });
    const options = await b2bua.ua.request('OPTIONS', 'sip:nowhere.carrier.test');
    expect(options.status).toBe(503);
    expect(isSynthesized(options)).toBe(true);
    expect(failureCause(options)).toMatchObject({ code: 'DNS_NOT_FOUND', hostname: 'nowhere.carrier.test' });
  }, 30_000);
});
