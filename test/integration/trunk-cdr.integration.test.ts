import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserAgent, type HangupCause } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';
const DOMAIN = 'acme.trunk.sipkit.test';

/** A trunk on real sockets writing CDR lines to a temporary file; routes only +49 numbers to an answering gateway. */
async function setup(limits?: { maxCalls?: number; maxCallsPerSource?: number }) {
  const dir = await mkdtemp(join(tmpdir(), 'sipkit-cdr-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const gw = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], onInvite: (c) => void c.answer({ body: SDP }) });
  cleanups.push(() => gw.close());
  const cdrPath = join(dir, 'cdr.jsonl');
  const config = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'integration-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'] },
    domains: {
      [DOMAIN]: {
        extensions: { '2000': { password: 'pw-2000' } },
        routes: [{ prefix: '+49', targets: [`sip:127.0.0.1:${gw.layer.transports[0]!.local.port}`] }],
      },
    },
    cdr: { path: cdrPath },
    limits,
    log: { level: 'error' },
    shutdown: { mode: 'hangup', drainSeconds: 0 },
  });
  const trunk = await startTrunk(config);
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= trunk.stop('hangup'));
  cleanups.push(stop);
  const caller = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })] });
  cleanups.push(() => caller.close());
  /** CDR lines, read after the trunk stopped (stop() waits for the writes). */
  const cdr = async () => {
    await stop();
    const text = await readFile(cdrPath, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { trunk, caller, cdr };
}

function dial(ua: UserAgent, trunk: TrunkServer, number: string, domain = DOMAIN) {
  return ua.invite(`sip:${number}@${domain}`, {
    destination: { address: '127.0.0.1', port: trunk.sip[0]!.port },
    from: `<sip:2000@${DOMAIN}>`,
    body: SDP,
    auth: { username: '2000', password: 'pw-2000' },
  });
}

const failed = (call: ReturnType<typeof dial>) => new Promise<number>((resolve) => call.on('failure', (r) => resolve(r.status)));
const answered = (call: ReturnType<typeof dial>) =>
  new Promise<void>((resolve, reject) => {
    call.on('answer', () => resolve());
    call.on('failure', (r) => reject(new Error(`failed ${r.status}`)));
  });

describe('trunk CDR: every authenticated call is one line with its final status', () => {
  it('no route → 404 to the caller and one CDR line with 404; the 407 round and an unknown domain write none', async () => {
    const { trunk, caller, cdr } = await setup();
    // An unknown domain is challenged like a known one (no enumeration, #14.5): its credentials fail.
    expect(await failed(dial(caller, trunk, '+15551234567', 'nope.trunk.sipkit.test'))).toBe(407);
    expect(await failed(dial(caller, trunk, '+15551234567'))).toBe(404);
    const lines = await cdr();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ status: 'hangup', extension: '2000', trunk_domain: DOMAIN, hangup_by: 'system', hangup_code: 404, q850_cause: 1, destination: `sip:+15551234567@${DOMAIN}` });
  });

  it('over maxCalls → 503 to the caller and a CDR line with 503', async () => {
    const { trunk, caller, cdr } = await setup({ maxCalls: 1 });
    const first = dial(caller, trunk, '+4930123');
    await answered(first);
    expect(await failed(dial(caller, trunk, '+4930999'))).toBe(503);
    await first.hangup();
    const lines = await cdr();
    expect(lines.map((l) => [l.destination, l.hangup_by, l.hangup_code])).toEqual(
      expect.arrayContaining([
        [`sip:+4930999@${DOMAIN}`, 'system', 503],
        [`sip:+4930123@${DOMAIN}`, 'caller', null],
      ]),
    );
    expect(lines).toHaveLength(2);
  });

  it('stop() in hangup mode: the answered call is BYEd with a Reason and its CDR line has no SIP status', async () => {
    const { trunk, caller, cdr } = await setup();
    const call = dial(caller, trunk, '+4930123');
    await answered(call);
    const ended = new Promise<HangupCause>((resolve) => call.on('ended', resolve));
    const lines = await cdr();
    expect(await ended).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ hangup_by: 'system', hangup_code: null, q850_cause: 16 });
    expect(lines[0]!.tm_answer).not.toBeNull();
  });
});
