import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { LOST_CAUSE } from '../../examples/trunk-server/pg-records.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { requirePostgres, startPostgres, type LocalPostgres } from '../support/postgres.js';
import { freePort } from '../support/sipp.js';
import { RawSipPeer } from './trunk-auth-peer.js';

// A trunk instance SIGKILLed with a call up (issue #18): another instance, on the same
// database, marks that call lost once the dead one's heartbeat is lostAfterSeconds old.

const has = requirePostgres('lost calls of a killed trunk instance');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOMAIN = 'acme.trunk.sipkit.test';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n';

let db: LocalPostgres;
beforeAll(async () => {
  if (has) db = await startPostgres();
}, 60_000);
afterAll(async () => {
  await db?.stop();
});

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

function configOf(id: string, sipPort: number, gwPort: number) {
  return {
    instance: { id },
    records: { store: 'postgres', url: db.url, batchMs: 10, lostAfterSeconds: 1 },
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: sipPort }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'shared-cluster-secret-0123456789abcdef' },
    domains: { [DOMAIN]: { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gwPort}`] }] } },
    cdr: { path: null },
    log: { level: 'info' },
  };
}

/** The trunk as its own process (main.ts from the sources), resolved once it logs trunk.started. */
function trunkProcess(configPath: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    // node with tsx's loader (not the tsx CLI, whose child a SIGKILL would miss).
    const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'trunk-server', 'main.ts'), '--config', configPath], {
      cwd: ROOT,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    stops.push(() => void proc.kill('SIGKILL'));
    let out = '';
    const timer = setTimeout(() => reject(new Error(`trunk did not start:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
      if (/trunk\.started/.test(out)) {
        clearTimeout(timer);
        resolve(proc);
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

async function get(t: TrunkServer, path: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${t.http.port}${path}`, { headers: { authorization: 'Bearer tok' } });
  return res.json();
}

/** Poll until `check` returns a value (bounded: 150 tries, 100 ms apart). */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 150; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!has)('a killed trunk instance', () => {
  it('its answered call is marked lost (Q.850 41) by the live instance after lostAfterSeconds, and shows so from the API', async () => {
    const gw = new UserAgent({ transports: [await UdpTransport.bind()], onInvite: (c) => void c.answer({ body: SDP }) });
    stops.push(() => gw.close());
    const gwPort = gw.layer.transports[0]!.local.port;
    const live = await startTrunk(validateConfig({ ...configOf('node-live', 0, gwPort), log: { level: 'error' } }));
    stops.push(() => live.stop('hangup'));

    const doomedPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'trunk-lost-'));
    writeFileSync(join(dir, 'trunk.json'), JSON.stringify(configOf('node-doomed', doomedPort, gwPort)));
    const doomed = await trunkProcess(join(dir, 'trunk.json'));

    const caller = await RawSipPeer.bind('127.0.0.1');
    stops.push(() => caller.close());
    const r = await caller.call(`sip:+4930123@${DOMAIN}`, DOMAIN, doomedPort, { username: '2000', password: 'pw-2000' });
    expect(r.final.status).toBe(200);

    // The live instance sees the doomed one's call, answered, through the database.
    const up = await waitFor('the call in the shared records', async () => {
      const list = await get(live, `/v1.0/calls?status=answered&trunk_domain=${DOMAIN}`);
      return list.result.find((c: { instance: string }) => c.instance === 'node-doomed') as { id: string } | undefined;
    });

    doomed.kill('SIGKILL');
    const lost = await waitFor('the call marked lost', async () => {
      const c = await get(live, `/v1.0/calls/${up.id}`);
      return c.status === 'lost' ? c : undefined;
    });
    expect(lost).toMatchObject({ id: up.id, instance: 'node-doomed', hangup_by: 'system', q850_cause: LOST_CAUSE });
    expect(Date.parse(lost.tm_hangup)).toBeGreaterThanOrEqual(Date.parse(lost.tm_answer));
    expect(live.records!.stats().markedLost).toBe(1);
  });
});
