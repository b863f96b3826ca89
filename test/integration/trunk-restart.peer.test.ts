import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallView } from '../../examples/trunk-server/call-view.js';
import { freePort } from '../support/sipp.js';

// Item 8 of issue #14: the real trunk (a child process) is SIGKILLed with a call up between two
// SIPp peers, then started again on the same ports and journal: it must end the call on both legs
// with Reason: Q.850;cause=41 and write the call down as ended by the restart.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SIPP_DIR = join(ROOT, 'test', 'sipp');
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
if (!hasSipp && process.env.CI) throw new Error('SIPp is not installed: .ci/run installs sip-tester');
const NUMBER = '15551234567';
const DOMAIN = 'demo.trunk.sipkit.test';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function sipp(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('sipp', args, { cwd: mkdtempSync(join(tmpdir(), 'sipp-')), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    p.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    p.on('close', (code) => resolve({ code, out }));
  });
}

/** Start the trunk from its sources (tsx with the dev tsconfig, whose paths map `sipkit/*` to src); resolves with its HTTP port once it logs trunk.started. */
function startTrunkProcess(configPath: string): Promise<{ proc: ChildProcess; httpPort: number; log: () => string }> {
  return new Promise((resolve, reject) => {
    // node itself with tsx's loader (not the tsx CLI, which runs node as a child a SIGKILL would miss).
    const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'trunk-server', 'main.ts'), '--config', configPath], {
      cwd: ROOT,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(proc);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`trunk did not start:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out = (out + d.toString()).slice(-50_000);
      const m = /trunk\.started .*http="?http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, httpPort: Number(m[1]), log: () => out });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`trunk exited (${code}) before starting:\n${out}`));
    });
  });
}

/** Poll until `check` returns a value (bounded: 100 tries, 100 ms apart). */
async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!hasSipp)('trunk restart after SIGKILL with a call up (journal)', () => {
  it('ends the call on both legs with Reason: Q.850;cause=41 and records it as ended by the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trunk-restart-'));
    const [trunkPort, uasPort, uacPort] = [await freePort(), await freePort(), await freePort()];
    const journal = join(dir, 'journal.jsonl');
    const cdr = join(dir, 'cdr.jsonl');
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: trunkPort }] },
        http: { host: '127.0.0.1', port: 0, token: 'test-token' },
        auth: { secret: 'sipp-test-secret-0123456789abcdef', algorithms: ['MD5'] },
        domains: { [DOMAIN]: { extensions: { '1000': { password: 'sipkit-demo' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${uasPort}`] }] } },
        cdr: { path: cdr },
        journal: { path: journal, cause: 41 },
        log: { level: 'info' },
      }),
    );
    const first = await startTrunkProcess(configPath);

    const uas = sipp(['-sf', join(SIPP_DIR, 'uas-answer-restart.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-m', '1', '-timeout', '60s', '-timeout_error']);
    await new Promise((r) => setTimeout(r, 300));
    const uac = sipp([
      `127.0.0.1:${trunkPort}`,
      '-sf', join(SIPP_DIR, 'uac-held-restart.xml'),
      '-i', '127.0.0.1', '-p', String(uacPort),
      '-m', '1', '-s', NUMBER,
      '-key', 'trunk_domain', DOMAIN,
      '-key', 'caller_rtp_port', '16000',
      '-au', '1000', '-ap', 'sipkit-demo',
      '-auth_uri', `${NUMBER}@${DOMAIN}`,
      '-timeout', '60s', '-timeout_error',
    ]);

    // The call is up once the journal holds it.
    await waitFor('the journal entry', () => (existsSync(journal) && readFileSync(journal, 'utf8').includes('"t":"up"') ? true : undefined));
    const entry = JSON.parse(readFileSync(journal, 'utf8').trim().split('\n').at(-1)!);
    expect(entry.call.caller.callId).not.toBe(entry.call.callee.callId);
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    expect(existsSync(cdr)).toBe(false); // the killed trunk wrote no CDR line for the call

    const second = await startTrunkProcess(configPath);
    const [uacRun, uasRun] = await Promise.all([uac, uas]);
    expect(uacRun.code, `caller SIPp failed:\n${uacRun.out.slice(-3000)}\ntrunk:\n${second.log().slice(-3000)}`).toBe(0);
    expect(uasRun.code, `destination SIPp failed:\n${uasRun.out.slice(-3000)}\ntrunk:\n${second.log().slice(-3000)}`).toBe(0);

    // The restarted trunk's CDR line and call record: ended by the restart, with the journal's answer time.
    const line = await waitFor('the CDR line', () => (existsSync(cdr) ? readFileSync(cdr, 'utf8').trim() || undefined : undefined));
    const view = JSON.parse(line.split('\n')[0]!) as CallView;
    expect(view).toMatchObject({ id: entry.call.id, status: 'hangup', hangup_by: 'system', hangup_reason: 'Trunk restart', q850_cause: 41, trunk_domain: DOMAIN, extension: '1000' });
    expect(Date.parse(view.tm_answer!)).toBe(entry.call.answeredAt);
    expect(Date.parse(view.tm_hangup!)).toBeGreaterThanOrEqual(entry.call.answeredAt);
    const res = await fetch(`http://127.0.0.1:${second.httpPort}/v1.0/calls/${entry.call.id}`, { headers: { authorization: 'Bearer test-token' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: entry.call.id, hangup_reason: 'Trunk restart', q850_cause: 41 });
    // Both BYEs answered: the journal no longer holds the call.
    await waitFor('the journal to drop the call', () => (readFileSync(journal, 'utf8').includes(`"t":"end","id":"${entry.call.id}"`) ? true : undefined));
    second.proc.kill('SIGTERM');
    await new Promise((r) => second.proc.once('exit', r));
  }, 120_000);
});
