import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateConfig, type TrunkConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallView } from '../../examples/trunk-server/call-view.js';
import { freePort, sipp, type SippRun } from '../support/sipp.js';

// End-to-end against SIPp (Debian's sip-tester), a SIP implementation nobody here wrote:
// SIPp is the caller (answering the 407 with MD5 digest) and the destination.
const SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sipp');
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
if (!hasSipp && process.env.CI) throw new Error('SIPp is not installed: .ci/run installs sip-tester');
const PCAP = '/usr/share/sip-tester/g711a.pcap';
const NUMBER = '15551234567';
const DOMAIN = 'demo.trunk.sipkit.test';

const trunks: TrunkServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  await Promise.all(trunks.splice(0).map((t) => t.stop('hangup')));
  for (const s of sockets.splice(0)) s.close();
});

async function trunkFor(uasPort: number, extra: Record<string, unknown> = {}): Promise<{ trunk: TrunkServer; port: number; cdr: string }> {
  const port = await freePort();
  const cdr = join(mkdtempSync(join(tmpdir(), 'cdr-')), 'cdr.jsonl');
  const config: TrunkConfig = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port }] },
    http: { host: '127.0.0.1', port: 0, token: 'test-token' },
    // SIPp 3.6.1 answers MD5 only (it reads the first challenge).
    auth: { secret: 'sipp-test-secret-0123456789abcdef', algorithms: ['MD5'] },
    domains: { [DOMAIN]: { extensions: { '1000': { password: 'sipkit-demo' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${uasPort}`] }] } },
    cdr: { path: cdr },
    log: { level: 'error' },
    ...extra,
  });
  const trunk = await startTrunk(config);
  trunks.push(trunk);
  return { trunk, port, cdr };
}

async function api(trunk: TrunkServer, path: string, token = 'test-token'): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${trunk.http.port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.json() };
}

async function lastCall(trunk: TrunkServer): Promise<CallView> {
  // The record is complete once the B2BUA emitted 'end'.
  for (let i = 0; i < 50; i++) {
    const { body } = await api(trunk, '/v1.0/calls?page_size=1');
    if (body.result[0]?.status === 'hangup') return body.result[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no finished call');
}

async function callerArgs(trunkPort: number, scenario: string, extra: string[] = [], password = 'sipkit-demo', rtpPort = 16000): Promise<string[]> {
  const port = await freePort();
  return [
    `127.0.0.1:${trunkPort}`,
    '-sf', join(SIPP_DIR, scenario),
    '-i', '127.0.0.1', '-p', String(port),
    '-m', '1', '-s', NUMBER,
    '-key', 'trunk_domain', DOMAIN,
    '-key', 'caller_rtp_port', String(rtpPort),
    '-au', '1000', '-ap', password,
    // SIPp's digest uri is sip:<remote ip>:<port> unless told: the trunk insists it be the Request-URI.
    '-auth_uri', `${NUMBER}@${DOMAIN}`,
    '-d', '300',
    '-timeout', '25s', '-timeout_error',
    ...extra,
  ];
}

function destination(port: number, scenario: string, extra: string[] = []): Promise<SippRun> {
  return sipp(['-sf', join(SIPP_DIR, scenario), '-i', '127.0.0.1', '-p', String(port), '-m', '1', '-timeout', '25s', '-timeout_error', ...extra]);
}

async function call(uasScenario: string, uacScenario: string, options: { uas?: string[]; uac?: string[]; password?: string; trunk?: Record<string, unknown>; rtpPort?: number } = {}) {
  const uasPort = await freePort();
  const { trunk, port, cdr } = await trunkFor(uasPort, options.trunk);
  const uas = uasScenario ? destination(uasPort, uasScenario, options.uas) : undefined;
  await new Promise((r) => setTimeout(r, 300));
  const uac = await sipp(await callerArgs(port, uacScenario, options.uac, options.password, options.rtpPort));
  return { trunk, uac, uas: uas ? await uas : undefined, cdr, uasPort };
}

function expectOk(run: SippRun | undefined, who: string): void {
  expect(run?.code, `${who} SIPp failed:\n${run?.out.slice(-3000)}`).toBe(0);
}

describe.skipIf(!hasSipp)('trunk server against SIPp (caller and destination)', () => {
  it('1. answered call, caller hangs up', async () => {
    const { trunk, uac, uas, cdr } = await call('uas-answer.xml', 'uac-answered.xml');
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    const c = await lastCall(trunk);
    expect(c).toMatchObject({ status: 'hangup', trunk_domain: DOMAIN, extension: '1000', hangup_by: 'caller', q850_cause: 16 });
    expect(c.destination).toBe(`sip:${NUMBER}@${DOMAIN}`);
    expect(c.tm_answer).not.toBeNull();
    expect(c.tm_ringing).not.toBeNull();
    expect(c.a_leg_call_id).not.toBe(c.b_leg_call_id);
    // One CDR line per finished call (lines are written in batches: within 50 ms of the end).
    const lines = await vi.waitFor(() => {
      // The file may exist and still be empty, or hold a line not yet complete.
      const l = readFileSync(cdr, 'utf8').split('\n').filter((x) => x.length > 0);
      expect(l).toHaveLength(1);
      return l.map((x) => JSON.parse(x) as Record<string, unknown>);
    });
    expect(lines[0]).toMatchObject({ id: c.id, hangup_by: 'caller' });
  });

  it('2. answered call, destination hangs up with Reason: Q.850;cause=16 (relayed to the caller)', async () => {
    const { trunk, uac, uas } = await call('uas-answer-bye.xml', 'uac-remote-bye.xml');
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ hangup_by: 'callee', q850_cause: 16 });
  });

  it('3. early media: 183 with SDP then 200; with relay media, RTP from the destination reaches the caller before the 200', async () => {
    const rtp = createSocket('udp4');
    sockets.push(rtp);
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    const arrivals: Array<{ t: number; from: number }> = [];
    rtp.on('message', (_m, rinfo) => arrivals.push({ t: Date.now(), from: rinfo.port }));
    const { trunk, uac, uas } = await call('uas-early-media.xml', 'uac-early-media.xml', {
      uas: ['-key', 'rtp_pcap', PCAP],
      trunk: { media: 'relay', mediaAddress: '127.0.0.1' },
      rtpPort: rtp.address().port,
    });
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    const c = await lastCall(trunk);
    expect(c.tm_progressing).not.toBeNull();
    expect(arrivals.length).toBeGreaterThan(10);
    // RTP flowed during the 183, before the call was answered, through the relay.
    expect(arrivals[0]!.t).toBeLessThan(Date.parse(c.tm_answer!));
    expect(arrivals[0]!.from).toBeGreaterThanOrEqual(20_000);
  });

  it('4a. destination answers 404 → caller gets 404', async () => {
    const { trunk, uac, uas } = await call('uas-reject-404.xml', 'uac-rejected.xml');
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ hangup_by: 'callee', hangup_code: 404, hangup_reason: 'Not Found', q850_cause: 1 });
  });

  it('4b. destination answers 486 with a Reason → caller gets 486 with that Reason', async () => {
    const { trunk, uac, uas } = await call('uas-reject-reason.xml', 'uac-rejected.xml');
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ hangup_code: 486, q850_cause: 17 });
  });

  it('5. caller CANCELs after 180 → 487', async () => {
    const { trunk, uac, uas } = await call('uas-ring-cancel.xml', 'uac-cancel.xml');
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ hangup_by: 'caller', hangup_code: 487 });
  });

  it('6. wrong password → 407 again, never forwarded', async () => {
    const uasPort = await freePort();
    const watcher = createSocket('udp4');
    sockets.push(watcher);
    let forwarded = 0;
    watcher.on('message', () => forwarded++);
    await new Promise<void>((r) => watcher.bind(uasPort, '127.0.0.1', () => r()));
    const { trunk, port } = await trunkFor(uasPort);
    const uac = await sipp(await callerArgs(port, 'uac-wrong-password.xml', [], 'not-the-password'));
    expectOk(uac, 'caller');
    await new Promise((r) => setTimeout(r, 200));
    expect(forwarded).toBe(0);
    const { body } = await api(trunk, '/v1.0/calls');
    expect(body.result).toHaveLength(0);
  });

  it('7. a destination that never answers → 408', async () => {
    const { trunk, uac, uas } = await call('uas-ring-cancel.xml', 'uac-no-answer.xml', { trunk: { noAnswerTimeoutSeconds: 2 } });
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ hangup_by: 'system', hangup_code: 408, q850_cause: 102 });
  });
});

describe('trunk HTTP API', () => {
  it('needs the bearer token; unknown ids are a JSON 404', async () => {
    const { trunk } = await trunkFor(await freePort());
    expect((await api(trunk, '/v1.0/calls', '')).status).toBe(401);
    expect((await api(trunk, '/v1.0/calls', 'wrong')).status).toBe(401);
    const missing = await api(trunk, '/v1.0/calls/nope');
    expect(missing).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'no such call' } } });
    expect((await api(trunk, '/v1.0/calls')).body).toEqual({ result: [], next_page_token: null });
  });
});
