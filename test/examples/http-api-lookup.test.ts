import { afterEach, describe, expect, it } from 'vitest';
import type { B2bua } from '../../src/b2bua/index.js';
import { CursorError } from '../../examples/trunk-server/call-index.js';
import { ApiError, createHttpApi, type CallLookup } from '../../examples/trunk-server/http-api.js';

// The calls API over an asynchronous lookup (a cluster's shared store, issue #18).

const servers: Array<{ close(): void }> = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

const noCalls = { list: () => [], get: () => undefined, on: () => noCalls, off: () => noCalls } as unknown as B2bua;

async function start(calls: CallLookup) {
  const logged: string[] = [];
  const server = createHttpApi(noCalls, 'secret', { calls, log: (_l, event) => logged.push(event) });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: 'Bearer secret' } });
    return { status: res.status, body: (await res.json()) as any, retry: res.headers.get('retry-after') };
  };
  return { get, logged };
}

describe('trunk HTTP API with a lookup of its own', () => {
  it('answers one call and pages of calls from the lookup, not from the B2BUA', async () => {
    const asked: unknown[] = [];
    const { get } = await start({
      get: async (id) => (id === 'c-1' ? JSON.stringify({ id, instance: 'node-b' }) : undefined),
      page: async (filter, size, after) => {
        asked.push([filter, size, after]);
        return { items: [JSON.stringify({ id: 'c-2' }), JSON.stringify({ id: 'c-1' })], next: 'tok-2' };
      },
    });
    expect(await get('/v1.0/calls/c-1')).toMatchObject({ status: 200, body: { id: 'c-1', instance: 'node-b' } });
    expect(await get('/v1.0/calls/c-9')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await get('/v1.0/calls?status=answered&trunk_domain=a.x&page_size=2&page_token=tok-1')).toMatchObject({
      status: 200,
      body: { result: [{ id: 'c-2' }, { id: 'c-1' }], next_page_token: 'tok-2' },
    });
    expect(asked).toEqual([[{ status: 'answered', domain: 'a.x' }, 2, 'tok-1']]);
  });

  it("a cursor the lookup did not make is a 400; its ApiError is answered as it says; anything else is a logged 500", async () => {
    const { get, logged } = await start({
      get: async (id) => {
        if (id === 'down') throw new ApiError(503, 'store_unavailable', 'not reachable', { 'retry-after': '1' });
        throw new Error('boom');
      },
      page: async () => {
        throw new CursorError('page_token is not one this server gave out');
      },
    });
    expect(await get('/v1.0/calls?page_token=zzz')).toMatchObject({ status: 400, body: { error: { code: 'invalid_page_token' } } });
    expect(await get('/v1.0/calls/down')).toMatchObject({ status: 503, body: { error: { code: 'store_unavailable' } }, retry: '1' });
    expect(await get('/v1.0/calls/other')).toMatchObject({ status: 500, body: { error: { code: 'internal' } } });
    expect(logged).toEqual(['http.failed']);
  });
});
