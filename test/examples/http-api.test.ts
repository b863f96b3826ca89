import { afterEach, describe, expect, it } from 'vitest';
import type { B2bua, CallRecord } from '../../src/b2bua/index.js';
import { createHttpApi } from '../../examples/trunk-server/http-api.js';

function record(i: number, state: CallRecord['state'], domain: string): CallRecord {
  return {
    id: `call-${i}`,
    state,
    from: '<sip:1000@x>',
    to: `sip:${i}@${domain}`,
    identity: '1000',
    source: { address: '127.0.0.1', port: 5060 + i, transport: 'udp' },
    aLeg: { callId: `a-${i}` },
    bLeg: { callId: `b-${i}`, target: 'sip:gw', attempts: 1 },
    timestamps: { created: 1_700_000_000_000 + i },
    hangup: state === 'hangup' ? { by: 'callee', status: 486, phrase: 'Busy Here', q850: 17 } : undefined,
    tags: { domain },
  };
}

const servers: Array<{ close(): void }> = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

async function start(records: CallRecord[]) {
  const fake = { list: () => records.slice(), get: (id: string) => records.find((r) => r.id === id), on: () => fake, off: () => fake } as unknown as B2bua;
  const server = createHttpApi(fake, 'secret');
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return async (path: string, token: string | null = 'secret', method = 'GET') => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as any, auth: res.headers.get('www-authenticate') };
  };
}

describe('trunk HTTP API', () => {
  it('lists newest first with filters and paging', async () => {
    const recs = Array.from({ length: 7 }, (_, i) => record(i, i % 2 ? 'hangup' : 'answered', i < 4 ? 'a.trunk.x' : 'b.trunk.x'));
    const get = await start(recs);
    const p1 = await get('/v1.0/calls?page_size=3');
    expect(p1.body.result.map((c: { id: string }) => c.id)).toEqual(['call-6', 'call-5', 'call-4']);
    // The token is opaque: follow it.
    expect(p1.body.next_page_token).toEqual(expect.any(String));
    const p2 = await get(`/v1.0/calls?page_size=3&page_token=${p1.body.next_page_token}`);
    expect(p2.body.result.map((c: { id: string }) => c.id)).toEqual(['call-3', 'call-2', 'call-1']);
    const p3 = await get(`/v1.0/calls?page_size=3&page_token=${p2.body.next_page_token}`);
    expect(p3.body.result.map((c: { id: string }) => c.id)).toEqual(['call-0']);
    expect(p3.body.next_page_token).toBeNull();
    const busy = await get('/v1.0/calls?status=hangup&trunk_domain=a.trunk.x');
    expect(busy.body.result.map((c: { id: string }) => c.id)).toEqual(['call-3', 'call-1']);
    expect(busy.body.result[0]).toMatchObject({ hangup_by: 'callee', hangup_code: 486, hangup_reason: 'Busy Here', q850_cause: 17, trunk_domain: 'a.trunk.x', a_leg_call_id: 'a-3', b_leg_call_id: 'b-3' });
  });

  it('one call by id; 404 JSON for unknown ids and paths; 401 with a challenge; only GET', async () => {
    const get = await start([record(1, 'answered', 'a.trunk.x')]);
    expect((await get('/v1.0/calls/call-1')).body).toMatchObject({ id: 'call-1', status: 'answered', extension: '1000' });
    expect(await get('/v1.0/calls/none')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await get('/v1.0/else')).toMatchObject({ status: 404 });
    expect(await get('/v1.0/calls', null)).toMatchObject({ status: 401, auth: 'Bearer' });
    expect(await get('/v1.0/calls', 'secreT')).toMatchObject({ status: 401 });
    expect((await get('/v1.0/calls', 'secret', 'DELETE')).status).toBe(405);
  });
});
