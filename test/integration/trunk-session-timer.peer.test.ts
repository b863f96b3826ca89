import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import type { CallView } from '../../examples/trunk-server/call-view.js';
import { freePort, sipp, type SippRun } from '../support/sipp.js';

// RFC 4028 session timers through the trunk against SIPp as caller and destination: a caller
// that refreshes keeps its call up past the interval; one that stops is BYEd, and so is the
// destination, with Reason Q.850 102. The intervals are seconds long (allowShortIntervals):
// the 90 s floor of RFC 4028 §5 would make each case take minutes.
const SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sipp');
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
if (!hasSipp && process.env.CI) throw new Error('SIPp is not installed: .ci/run installs sip-tester');
if (!hasSipp) console.warn('trunk-session-timer.peer.test.ts: SIPp (sipp) not installed — skipped');
const NUMBER = '15551234567';
const DOMAIN = 'demo.trunk.sipkit.test';

const trunks: TrunkServer[] = [];
afterEach(async () => {
  await Promise.all(trunks.splice(0).map((t) => t.stop('hangup')));
});

async function lastCall(trunk: TrunkServer): Promise<CallView> {
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls?page_size=1`, { headers: { authorization: 'Bearer test-token' } });
    const body = (await res.json()) as { result: CallView[] };
    if (body.result[0]?.status === 'hangup') return body.result[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no finished call');
}

/** The trunk between a SIPp caller and a SIPp destination; the trunk's own interval is `seconds`. */
async function call(uacScenario: string, uasScenario: string, seconds: number) {
  const [uasPort, trunkPort, uacPort] = [await freePort(), await freePort(), await freePort()];
  const trunk = await startTrunk(
    validateConfig({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: trunkPort }] },
      http: { host: '127.0.0.1', port: 0, token: 'test-token' },
      auth: { secret: 'sipp-test-secret-0123456789abcdef', algorithms: ['MD5'] },
      domains: { [DOMAIN]: { extensions: { '1000': { password: 'sipkit-demo' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${uasPort}`] }] } },
      cdr: { path: null },
      log: { level: 'error' },
      sessionTimer: { seconds, minSeconds: 4, allowShortIntervals: true },
    }),
  );
  trunks.push(trunk);
  const uas = sipp(['-sf', join(SIPP_DIR, uasScenario), '-i', '127.0.0.1', '-p', String(uasPort), '-m', '1', '-key', 'dest_se', String(seconds), '-timeout', '25s', '-timeout_error']);
  await new Promise((r) => setTimeout(r, 300));
  const uac = await sipp([
    `127.0.0.1:${trunkPort}`,
    '-sf', join(SIPP_DIR, uacScenario),
    '-i', '127.0.0.1', '-p', String(uacPort),
    '-m', '1', '-s', NUMBER,
    '-key', 'trunk_domain', DOMAIN,
    '-key', 'caller_rtp_port', '16000',
    '-au', '1000', '-ap', 'sipkit-demo',
    '-auth_uri', `${NUMBER}@${DOMAIN}`,
    '-timeout', '25s', '-timeout_error',
  ]);
  return { trunk, uac, uas: await uas };
}

function expectOk(run: SippRun, who: string): void {
  expect(run.code, `${who} SIPp failed:\n${run.out.slice(-3000)}`).toBe(0);
}

describe.skipIf(!hasSipp)('trunk session timers against SIPp (RFC 4028)', () => {
  it('a caller refreshing every 2.5 s (UPDATE, then re-INVITE) keeps a 6 s session up; the trunk refreshes the destination leg on its own', async () => {
    // Trunk leg to the destination: 10 s, refreshed by the trunk at 5 s; the caller hangs up at about 7.5 s.
    const { trunk, uac, uas } = await call('uac-timer-refresh.xml', 'uas-timer-refresh.xml', 10);
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ status: 'hangup', hangup_by: 'caller' });
  }, 40_000);

  it('a caller that stops refreshing is BYEd at expiry, and the destination with the same Reason (Q.850 102)', async () => {
    // Destination leg 20 s (no refresh due there); the caller's 6 s leg is ended at 6 − min(32, 6/3) = 4 s.
    const { trunk, uac, uas } = await call('uac-timer-silent.xml', 'uas-timer-bye.xml', 20);
    expectOk(uac, 'caller');
    expectOk(uas, 'destination');
    expect(await lastCall(trunk)).toMatchObject({ status: 'hangup', hangup_by: 'system', q850_cause: 102 });
  }, 40_000);
});
