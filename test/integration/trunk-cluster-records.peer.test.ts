import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { viewOf } from '../../examples/trunk-server/call-view.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { requirePostgres, startPostgres, type LocalPostgres } from '../support/postgres.js';
import { RawSipPeer } from './trunk-auth-peer.js';

// Trunk instances sharing their call records in PostgreSQL (issue #18): any instance answers
// GET /v1.0/calls/{id} and GET /v1.0/calls for every call, records survive restarts, and failed
// authentications spread over the instances add up to one throttle.

const has = requirePostgres('trunk instances sharing call records');
const DOMAIN = 'acme.trunk.sipkit.test';
const URI = `sip:+4930123@${DOMAIN}`;

let db: LocalPostgres;
beforeAll(async () => {
  if (has) db = await startPostgres();
}, 60_000);
afterAll(async () => {
  await db?.stop();
});

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function gateway(): Promise<number> {
  const gw = new UserAgent({ transports: [await UdpTransport.bind()], onInvite: (c) => void c.reject(486) });
  stops.push(() => gw.close());
  return gw.layer.transports[0]!.local.port;
}

async function instance(id: string, gwPort: number, records: Record<string, unknown> = {}): Promise<TrunkServer & { stopOnce(): Promise<void> }> {
  const t = await startTrunk(
    validateConfig({
      instance: { id },
      records: { store: 'postgres', url: db.url, batchMs: 10, ...records },
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
      http: { host: '127.0.0.1', port: 0, token: 'tok' },
      auth: { secret: 'shared-cluster-secret-0123456789abcdef' },
      domains: { [DOMAIN]: { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gwPort}`] }] } },
      cdr: { path: null },
      log: { level: 'error' },
    }),
  );
  let stopped: Promise<void> | undefined;
  const stopOnce = () => (stopped ??= t.stop('hangup'));
  stops.push(stopOnce);
  return Object.assign(t, { stopOnce });
}

async function get(t: TrunkServer, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${t.http.port}${path}`, { headers: { authorization: 'Bearer tok' } });
  return { status: res.status, body: await res.json() };
}

async function peer(host = '127.0.0.1') {
  const p = await RawSipPeer.bind(host);
  stops.push(() => p.close());
  return p;
}

/** A call through `t` (authenticated, refused 486 by the gateway): its record id. */
async function callThrough(t: TrunkServer, caller: RawSipPeer): Promise<string> {
  const before = new Set(t.b2bua.list().map((r) => r.id));
  const r = await caller.call(URI, DOMAIN, t.sip[0]!.port, { username: '2000', password: 'pw-2000' });
  expect(r.final.status).toBe(486);
  const created = t.b2bua.list().filter((x) => !before.has(x.id));
  expect(created).toHaveLength(1);
  return created[0]!.id;
}

describe.skipIf(!has)('trunk instances sharing call records in PostgreSQL', () => {

  it('every call is answered by every instance, listed by every instance, and still answered after both restart', async () => {
    const gw = await gateway();
    const a = await instance('node-a', gw);
    const b = await instance('node-b', gw);
    const caller = await peer();
    const viaA = await callThrough(a, caller);
    const viaB = await callThrough(b, caller);
    await Promise.all([a.records!.flush(), b.records!.flush()]);

    for (const [id, owner, other, name] of [
      [viaA, a, b, 'node-a'],
      [viaB, b, a, 'node-b'],
    ] as const) {
      // The owner answers from memory, the other from the database, which is a flush behind at most.
      let own = await get(owner, `/v1.0/calls/${id}`);
      let fromOther = await get(other, `/v1.0/calls/${id}`);
      for (let i = 0; i < 20 && JSON.stringify(fromOther) !== JSON.stringify(own); i++) {
        await owner.records!.flush();
        own = await get(owner, `/v1.0/calls/${id}`);
        fromOther = await get(other, `/v1.0/calls/${id}`);
      }
      expect(own).toEqual({ status: 200, body: { ...viewOf(owner.b2bua.get(id)!), instance: name } });
      expect(fromOther).toEqual(own);
    }
    for (const t of [a, b]) {
      const list = await get(t, `/v1.0/calls?trunk_domain=${DOMAIN}`);
      expect(list.body.result.map((c: { id: string }) => c.id)).toEqual([viaB, viaA]);
    }
    expect((await get(b, '/v1.0/calls/nope')).status).toBe(404);
    expect((await get(b, '/v1.0/calls?page_token=bm9wZQ')).body.error.code).toBe('invalid_page_token');

    // Both stop; a new instance on the same database still answers for their calls.
    const seen = (await get(a, `/v1.0/calls/${viaA}`)).body;
    await a.stopOnce();
    await b.stopOnce();
    const c = await instance('node-c', gw);
    expect(await get(c, `/v1.0/calls/${viaA}`)).toEqual({ status: 200, body: seen });
    expect((await get(c, `/v1.0/calls/${viaB}`)).body.instance).toBe('node-b');
  });

  it('wrong passwords spread over A and B add up: both then refuse the pair with 403, the right password included', async () => {
    const gw = await gateway();
    const a = await instance('thr-a', gw);
    const b = await instance('thr-b', gw);
    const attacker = await peer('127.0.0.2');
    // 5 + 5: neither instance alone reaches DigestServer's 10 failures.
    for (let i = 0; i < 10; i++) {
      const r = await attacker.call(URI, DOMAIN, (i % 2 ? a : b).sip[0]!.port, { username: '2000', password: 'guess' + i });
      expect(r.final.status).toBe(407);
    }
    await Promise.all([a.records!.flush(), b.records!.flush()]);
    await Promise.all([a.records!.pollThrottle(), b.records!.pollThrottle()]);
    for (const t of [a, b]) {
      const r = await attacker.call(URI, DOMAIN, t.sip[0]!.port, { username: '2000', password: 'pw-2000' });
      expect(r.final.status).toBe(403);
    }
    // Another address with the same username is not blocked.
    const other = await peer('127.0.0.1');
    expect((await other.call(URI, DOMAIN, a.sip[0]!.port, { username: '2000', password: 'pw-2000' })).final.status).toBe(486);
  });
});

// Last: its call stays in the shared database, which the listings above count.
describe.skipIf(!has)('trunk instances sharing call records in PostgreSQL: retention', () => {
  it('records.retainDays reaches the store: its pruning deletes an ended call older than that, not the calls of today', async () => {
    const gw = await gateway();
    const a = await instance('node-retain', gw, { retainDays: 2 });
    const id = await callThrough(a, await peer());
    await a.records!.flush();
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const old = Date.now() - 3 * 86_400_000;
      await admin.query(
        `INSERT INTO calls (id, instance_id, status, source, destination, created_ms, hangup_ms, a_leg_call_id, updated_ms) VALUES ('aged-1', 'node-retain', 'hangup', 'udp:127.0.0.1:5060', $1, $2, $2, 'aged-a', $2)`,
        [URI, old],
      );
      const result = await a.records!.prune();
      expect(result).toMatchObject({ ran: true, calls: 1 });
      expect((await admin.query("SELECT id FROM calls WHERE id IN ('aged-1', $1)", [id])).rows).toEqual([{ id }]);
    } finally {
      await admin.end();
    }
    const off = await instance('node-keep', gw, { retainDays: 0 });
    expect(await off.records!.prune()).toMatchObject({ ran: false });
  });
});
