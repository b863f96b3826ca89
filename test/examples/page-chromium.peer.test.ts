import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { hasChromium, launchChromium, type Browser } from '../support/cdp.js';
import { freePort } from '../support/sipp.js';

// The live calls page in a real browser (Debian's chromium, driven over the DevTools protocol)
// while SIPp places a real call through the trunk: SIPp is the caller (answering the 407) and
// the destination, nobody here wrote either.
const SIPP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'sipp');
const hasSipp = spawnSync('sipp', ['-v']).status !== null;
if (!hasChromium && process.env.CI) throw new Error('chromium is not installed: .ci/run installs it');
if (!hasSipp && process.env.CI) throw new Error('SIPp is not installed: .ci/run installs sip-tester');
const NUMBER = '15551234567';
const DOMAIN = 'demo.trunk.sipkit.test';
const TOKEN = 'page-browser-token';

function sipp(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('sipp', args, { cwd: mkdtempSync(join(tmpdir(), 'sipp-')), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    p.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!hasChromium || !hasSipp)('the live calls page in Chromium, with a SIPp call through the trunk', () => {
  it('logs in with the token, lists the call live as it is answered and hung up, and draws its SIP ladder', async () => {
    const uasPort = await freePort();
    const sipPort = await freePort();
    const trunk: TrunkServer = await startTrunk(
      validateConfig({
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: sipPort }] },
        http: { host: '127.0.0.1', port: 0, token: TOKEN },
        // SIPp 3.6.1 answers MD5 only.
        auth: { secret: 'page-test-secret-0123456789abcdef', algorithms: ['MD5'] },
        domains: {
          [DOMAIN]: {
            extensions: { '1000': { password: 'sipkit-demo' } },
            routes: [{ prefix: '', targets: [`sip:127.0.0.1:${uasPort}`], rates: [{ prefix: '1', perMinute: '0.0120', increments: '1/1', currency: 'USD' }] }],
          },
        },
        cdr: { path: null },
        capture: { enabled: true },
        log: { level: 'error' },
      }),
    );
    cleanups.push(() => trunk.stop('hangup'));
    const browser: Browser = await launchChromium();
    cleanups.push(() => browser.close());
    const { page } = browser;
    const problems: string[] = [];
    page.on((method, params) => {
      if (method === 'Runtime.exceptionThrown') problems.push(`exception: ${params.exceptionDetails?.exception?.description ?? params.exceptionDetails?.text}`);
      if (method === 'Log.entryAdded' && params.entry.level === 'error') problems.push(`log: ${params.entry.text} ${params.entry.url ?? ''}`);
      if (method === 'Runtime.consoleAPICalled' && params.type === 'error') problems.push(`console: ${JSON.stringify(params.args)}`);
    });
    await Promise.all([page.send('Page.enable'), page.send('Runtime.enable'), page.send('Log.enable')]);
    await page.send('Emulation.setDeviceMetricsOverride', { width: 1400, height: 900, deviceScaleFactor: 1, mobile: false });
    const loaded = page.once('Page.loadEventFired');
    await page.send('Page.navigate', { url: `http://127.0.0.1:${trunk.http.port}/` });
    await loaded;

    // No token yet: the login form. Enter it once.
    expect(await page.evaluate(`document.getElementById('login').hidden`)).toBe(false);
    await page.evaluate(`document.getElementById('token').value = ${JSON.stringify(TOKEN)}; document.querySelector('#login button[type=submit]').click(); true`);
    await page.waitFor(`document.getElementById('state').textContent === 'live'`, 'the event stream to open');
    expect(await page.evaluate(`localStorage.getItem('sipkit-trunk-token')`)).toBe(TOKEN);
    expect(await page.evaluate(`getComputedStyle(document.getElementById('login')).display`)).toBe('none');
    expect(await page.evaluate(`document.querySelectorAll('#calls tr').length`)).toBe(0);

    // The call: the destination rings then answers; the caller holds 3 s, then hangs up.
    const uas = sipp(['-sf', join(SIPP_DIR, 'uas-answer.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-m', '1', '-timeout', '25s', '-timeout_error']);
    await new Promise((r) => setTimeout(r, 300));
    const uac = sipp([
      `127.0.0.1:${sipPort}`, '-sf', join(SIPP_DIR, 'uac-answered.xml'), '-i', '127.0.0.1', '-p', String(await freePort()),
      '-m', '1', '-s', NUMBER, '-key', 'trunk_domain', DOMAIN, '-key', 'caller_rtp_port', '16010',
      '-au', '1000', '-ap', 'sipkit-demo', '-auth_uri', `${NUMBER}@${DOMAIN}`, '-d', '3000', '-timeout', '25s', '-timeout_error',
    ]);
    // Live: the row appears and turns answered while the call is up, with no reload.
    await page.waitFor(`document.querySelector('#calls tr[data-status="answered"]') !== null`, 'the answered call on the page');
    const [uacRun, uasRun] = await Promise.all([uac, uas]);
    expect(uacRun.code, uacRun.out.slice(-3000)).toBe(0);
    expect(uasRun.code, uasRun.out.slice(-3000)).toBe(0);
    await page.waitFor(`(() => { const r = document.querySelector('#calls tr[data-status="hangup"]'); return r && r.textContent.includes('USD'); })()`, 'the hung-up call with its charge');
    const row = await page.evaluate<string[]>(`Array.from(document.querySelector('#calls tr').cells).map((c) => c.textContent)`);
    expect(row[1]).toBe('hangup');
    expect(row[2]).toBe(`1000@${DOMAIN}`);
    expect(row[3]).toBe(`sip:${NUMBER}@${DOMAIN}`);
    expect(row[6]).toMatch(/^0\.\d{4,6} USD$/);

    // Select it: the ladder, every captured message as an arrow between the three columns.
    await page.evaluate(`document.querySelector('#calls tr').click(); true`);
    const id = await page.evaluate<string>(`document.querySelector('#calls tr').dataset.callId`);
    const captured = (await (await fetch(`http://127.0.0.1:${trunk.http.port}/v1.0/calls/${id}/messages`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as unknown[];
    await page.waitFor(`document.querySelectorAll('#ladder g.msg').length === ${captured.length}`, 'the ladder');
    const arrows = await page.evaluate<string[]>(
      `Array.from(document.querySelectorAll('#ladder g.msg')).map((g) => g.dataset.from + '>' + g.dataset.to + ' ' + g.dataset.firstLine.split(' ').slice(0, 2).join(' '))`,
    );
    const find = (re: RegExp) => arrows.findIndex((a) => re.test(a));
    const order = [
      /^caller>trunk INVITE sip:15551234567@/,
      /^trunk>caller SIP\/2\.0 407$/,
      /^caller>trunk ACK /,
      /^trunk>destination INVITE /,
      /^destination>trunk SIP\/2\.0 180$/,
      /^trunk>caller SIP\/2\.0 180$/,
      /^destination>trunk SIP\/2\.0 200$/,
      /^trunk>caller SIP\/2\.0 200$/,
      /^caller>trunk BYE /,
      /^trunk>destination BYE /,
    ].map(find);
    expect(order.every((i) => i >= 0), arrows.join('\n')).toBe(true);
    // The flow reads top to bottom: caller's INVITE first, destination's INVITE before its answer, BYEs last.
    expect(order[0]).toBe(0);
    expect(order[3]).toBeLessThan(order[4]!);
    expect(order[6]).toBeLessThan(order[7]!);
    expect(order[8]).toBeLessThan(order[9]!);
    // Every arrow spans two columns, and its label stays between them.
    const spans = await page.evaluate<number[][]>(`Array.from(document.querySelectorAll('#ladder g.msg line')).map((l) => [Number(l.getAttribute('x1')), Number(l.getAttribute('x2'))])`);
    expect(spans.every(([a, b]) => a !== b)).toBe(true);
    const overflow = await page.evaluate<string[]>(
      `Array.from(document.querySelectorAll('#ladder g.msg')).filter((g) => { const l = g.querySelector('line').getBBox(); const t = g.querySelectorAll('text')[0].getBBox(); return t.x < l.x - 1 || t.x + t.width > l.x + l.width + 1; }).map((g) => g.dataset.firstLine)`,
    );
    expect(overflow).toEqual([]);
    // A message clicked shows its whole text.
    await page.evaluate(`document.querySelectorAll('#ladder g.msg')[0].dispatchEvent(new MouseEvent('click', { bubbles: true })); true`);
    expect(await page.evaluate<string>(`document.getElementById('message').textContent`)).toMatch(/INVITE sip:15551234567@demo\.trunk\.sipkit\.test SIP\/2\.0\r?\n[\s\S]*Call-ID: /);

    const shot = await page.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
    const png = Buffer.from(shot.data, 'base64');
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    const file = join(mkdtempSync(join(tmpdir(), 'sipkit-page-')), 'ladder.png');
    writeFileSync(file, png);
    console.log(`live calls page screenshot: ${file}`);
    // Nothing failed in the page: no script error, no refused resource, no CSP violation.
    expect(problems, browser.log().slice(-2000)).toEqual([]);
  }, 120_000);
});
