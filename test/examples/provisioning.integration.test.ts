import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeHA1, DigestClient, parseChallenges } from '../../src/digest/index.js';
import { startTrunk } from '../../examples/trunk-server/server.js';
import { RawSipPeer } from '../integration/trunk-auth-peer.js';
import { dial, ended, gateway, onCleanup, trunk, trunkConfig } from './provisioning-harness.js';

// The provisioning API over real HTTP against a started trunk, and real SIP calls through what it provisions.

const ACME = 'acme.trunk.sipkit.test';

describe('provisioning API: trunks', () => {
  it('POST creates a trunk at <name>.<base domain> (201), GET lists and shows it, DELETE removes it (204, then 404)', async () => {
    const t = await trunk();
    const created = await t.api('POST', '/v1.0/trunks', { name: 'Acme' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'acme', domain: ACME, server_address: `sip:${ACME}`, auth: { mode: 'digest', allow: [] }, extensions: [], routes: [] });
    expect((await t.api('GET', '/v1.0/trunks')).body).toMatchObject({ result: [{ name: 'acme', domain: ACME, extension_count: 0, route_count: 0 }] });
    expect((await t.api('GET', '/v1.0/trunks/acme')).body).toMatchObject({ name: 'acme', domain: ACME });
    expect((await t.api('GET', '/v1.0/trunks/ACME')).status).toBe(200);
    expect((await t.api('DELETE', '/v1.0/trunks/acme')).status).toBe(204);
    expect((await t.api('GET', '/v1.0/trunks/acme')).status).toBe(404);
    expect((await t.api('DELETE', '/v1.0/trunks/acme')).status).toBe(404);
    expect((await t.api('GET', '/v1.0/trunks')).body).toEqual({ result: [] });
  });

  it('refuses a duplicate, and a name whose domain the config file has, with 409', async () => {
    const t = await trunk();
    expect((await t.api('POST', '/v1.0/trunks', { name: 'acme' })).status).toBe(201);
    const dup = await t.api('POST', '/v1.0/trunks', { name: 'ACME' });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ code: 'conflict', field: 'name' });
    const clash = await t.api('POST', '/v1.0/trunks', { name: 'demo' });
    expect(clash.status).toBe(409);
    expect(clash.body.error.message).toContain('demo.trunk.sipkit.test');
  });

  it('refuses names that are not RFC 1035 labels with 400 naming the field', async () => {
    const t = await trunk();
    for (const name of ['', '-acme', 'acme-', 'a.b', 'a_b', 'x'.repeat(64), 'ac me', 'é', 42, null, ['acme']]) {
      const r = await t.api('POST', '/v1.0/trunks', { name });
      expect(r.status, JSON.stringify(name)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid', field: 'name' });
    }
    expect((await t.api('POST', '/v1.0/trunks', { name: 'x'.repeat(63) })).status).toBe(201);
    expect((await t.api('POST', '/v1.0/trunks', { name: 'a', colour: 'red' })).body.error).toMatchObject({ code: 'invalid', field: 'colour' });
    expect((await t.api('POST', '/v1.0/trunks', { name: 'b', auth: { mode: 'ip', allow: ['10.0.0.1/8'] } })).body.error).toMatchObject({ code: 'invalid', field: 'auth.allow[0]' });
    expect((await t.api('POST', '/v1.0/trunks', { name: 'c', auth: { mode: 'ip' } })).body.error).toMatchObject({ code: 'invalid', field: 'auth.allow' });
  });

  it('answers bad JSON with 400, a body over 64 KiB with 413, no token with 401, a wrong method with 405, an unknown path with 404', async () => {
    const t = await trunk();
    const bad = await t.api('POST', '/v1.0/trunks', undefined, { raw: '{"name": "acme"' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('bad_json');
    const big = await t.api('POST', '/v1.0/trunks', undefined, { raw: JSON.stringify({ name: 'acme', pad: 'x'.repeat(70_000) }) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('too_large');
    expect((await t.api('POST', '/v1.0/trunks', { name: 'acme' }, { token: null })).status).toBe(401);
    expect((await t.api('POST', '/v1.0/trunks', { name: 'acme' }, { token: 'wrong' })).status).toBe(401);
    expect((await t.api('GET', '/v1.0/trunks')).body).toEqual({ result: [] });
    const put = await t.api('PUT', '/v1.0/trunks', {});
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    expect((await t.api('GET', '/v1.0/trunks/nope/extensions')).status).toBe(404);
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    expect((await t.api('GET', '/v1.0/trunks/acme/nothing')).status).toBe(404);
    expect((await t.api('GET', '/v1.0/trunks/acme/extensions/%zz')).status).toBe(400);
    // The call-tracking API is untouched.
    expect((await t.api('GET', '/v1.0/calls')).body).toEqual({ result: [], next_page_token: null });
  });
});

describe('provisioning API: extensions and routes', () => {
  it('adds, lists, replaces and deletes extensions; never returns a password or an HA1', async () => {
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    const added = await t.api('POST', '/v1.0/trunks/acme/extensions', { username: '1000', password: 'pw-1000-secret' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ username: '1000', credentials: ['SHA-512-256', 'SHA-256', 'MD5'], algorithms: null });
    const md5 = computeHA1('MD5', '2000', ACME, 'pw-2000-secret');
    const sha = computeHA1('SHA-256', '2000', ACME, 'pw-2000-secret');
    const byHa1 = await t.api('POST', '/v1.0/trunks/acme/extensions', { username: '2000', ha1: { MD5: md5, 'SHA-256': sha } });
    expect(byHa1.status).toBe(201);
    expect(byHa1.body).toMatchObject({ credentials: ['MD5', 'SHA-256'], algorithms: ['SHA-256', 'MD5'] });
    expect((await t.api('POST', '/v1.0/trunks/acme/extensions', { username: '1000', password: 'again' })).status).toBe(409);
    expect((await t.api('PUT', '/v1.0/trunks/acme/extensions/1000', { password: 'pw-1000-new' })).status).toBe(200);
    expect((await t.api('PUT', '/v1.0/trunks/acme/extensions/3000', { password: 'pw-3000' })).status).toBe(201);
    const list = await t.api('GET', '/v1.0/trunks/acme/extensions');
    expect(list.body.result.map((e: { username: string }) => e.username)).toEqual(['1000', '2000', '3000']);
    const one = await t.api('GET', '/v1.0/trunks/acme/extensions/2000');
    const everything = [list.text, one.text, (await t.api('GET', '/v1.0/trunks/acme')).text, (await t.api('GET', '/v1.0/trunks')).text].join();
    for (const secret of ['pw-1000', 'pw-3000', md5, sha, computeHA1('MD5', '1000', ACME, 'pw-1000-new')]) expect(everything).not.toContain(secret);
    expect((await t.api('DELETE', '/v1.0/trunks/acme/extensions/3000')).status).toBe(204);
    expect((await t.api('GET', '/v1.0/trunks/acme/extensions/3000')).status).toBe(404);
    expect((await t.api('DELETE', '/v1.0/trunks/acme/extensions/3000')).status).toBe(404);
  });

  it('names the field of each invalid extension body', async () => {
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    const cases: Array<[unknown, string]> = [
      [{ password: 'x' }, 'username'],
      [{ username: 'a b', password: 'x' }, 'username'],
      [{ username: '1000' }, 'password'],
      [{ username: '1000', password: '' }, 'password'],
      [{ username: '1000', password: 'x'.repeat(257) }, 'password'],
      [{ username: '1000', password: 'x', ha1: { MD5: 'a'.repeat(32) } }, 'password'],
      [{ username: '1000', ha1: { MD5: 'abc' } }, 'ha1.MD5'],
      [{ username: '1000', ha1: { SHA1: 'a'.repeat(40) } }, 'ha1.SHA1'],
      [{ username: '1000', ha1: {} }, 'ha1'],
      [{ username: '1000', password: 'x', algorithms: ['MD4'] }, 'algorithms[0]'],
      [{ username: '1000', ha1: { MD5: 'a'.repeat(32) }, algorithms: ['SHA-256'] }, 'algorithms'],
      [{ username: '1000', password: 'x', extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const r = await t.api('POST', '/v1.0/trunks/acme/extensions', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toMatchObject({ code: 'invalid', field });
    }
    const mismatch = await t.api('PUT', '/v1.0/trunks/acme/extensions/1000', { username: '2000', password: 'x' });
    expect(mismatch.body.error).toMatchObject({ code: 'invalid', field: 'username' });
    expect((await t.api('GET', '/v1.0/trunks/acme/extensions')).body).toEqual({ result: [] });
  });

  it('replaces routes (validated like config routes, rates included) and names the bad field', async () => {
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    const routes = [
      { prefix: '', targets: ['sip:127.0.0.1:5080'] },
      { prefix: '+49', targets: ['sip:127.0.0.1:5081', 'sip:gw@127.0.0.1:5082'], rates: [{ prefix: '+4930', perMinute: '0.0100', increments: '60/60', currency: 'EUR' }] },
    ];
    const put = await t.api('PUT', '/v1.0/trunks/acme/routes', routes);
    expect(put.status).toBe(200);
    expect(put.body).toEqual(routes);
    expect((await t.api('GET', '/v1.0/trunks/acme/routes')).body).toEqual(routes);
    for (const [body, field] of [
      [{}, 'routes'],
      [[{ targets: ['sip:127.0.0.1'] }], 'routes[0].prefix'],
      [[{ prefix: '', targets: [] }], 'routes[0].targets'],
      [[{ prefix: '', targets: ['http://x'] }], 'routes[0].targets[0]'],
      [[{ prefix: '1', targets: ['sip:127.0.0.1'] }, { prefix: '2', targets: ['sip:127.0.0.1', 7] }], 'routes[1].targets[1]'],
      [[{ prefix: '', targets: ['sip:127.0.0.1'], weight: 2 }], 'routes[0].weight'],
      [[{ prefix: '', targets: ['sip:127.0.0.1'], rates: { per_minute: 0.01 } }], 'routes[0].rates'],
    ] as const) {
      const r = await t.api('PUT', '/v1.0/trunks/acme/routes', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid', field });
    }
    expect((await t.api('GET', '/v1.0/trunks/acme/routes')).body).toEqual(routes);
  });
});

describe('provisioned trunks carry calls', () => {
  it('a real SIP call through a provisioned trunk: 407, then bridged to its route, tracked with its domain', async () => {
    const gw = await gateway();
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    await t.api('POST', '/v1.0/trunks/acme/extensions', { username: '1000', password: 'pw-1000' });
    await t.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gw.uri] }]);
    const { call, status } = await dial(t, ACME, { username: '1000', password: 'pw-1000' });
    expect(status).toBe(200);
    expect(call.invite.get('proxy-authorization')).toContain('algorithm=SHA-256');
    expect(gw.seen.invites).toBe(1);
    const list = await t.api('GET', `/v1.0/calls?trunk_domain=${ACME}`);
    expect(list.body.result).toMatchObject([{ status: 'answered', extension: '1000', trunk_domain: ACME, auth_method: 'digest' }]);
    await call.hangup();
    // The config file's demo domain still works next to it.
    expect((await dial(t, 'demo.trunk.sipkit.test', { username: '1000', password: 'pw-1000' })).status).toBe(407);
  });

  it('an HA1-only extension (MD5 only) logs in: an answer with another algorithm is offered only what its HA1s can check', async () => {
    const gw = await gateway();
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    await t.api('POST', '/v1.0/trunks/acme/extensions', { username: '1000', ha1: { MD5: computeHA1('MD5', '1000', ACME, 'pw-1000') } });
    await t.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gw.uri] }]);
    const p = await RawSipPeer.bind('127.0.0.1');
    onCleanup(() => p.close());
    const first = await p.call(`sip:+4930123@${ACME}`, ACME, t.sip[0]!.port, { username: '1000', password: 'pw-1000' });
    expect(first.signed!.get('proxy-authorization')).toContain('algorithm=SHA-256');
    expect(first.final.status).toBe(407);
    expect(first.final.getAll('proxy-authenticate').flatMap(parseChallenges).map((c) => c.algorithm)).toEqual(['MD5']);
    const retry = new DigestClient({ username: '1000', password: 'pw-1000' }).authorize(first.signed!, first.final);
    expect((await p.transact(retry, t.sip[0]!.port)).status).toBe(200);
    expect(gw.seen.invites).toBe(1);
  });

  it('a trunk-level challenge set (auth.algorithms) is what its 407 offers, for the next call (a phone that answers MD5 only)', async () => {
    const gw = await gateway();
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    await t.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gw.uri] }]);
    const offered = async () => {
      const p = await RawSipPeer.bind('127.0.0.1');
      onCleanup(() => p.close());
      const challenge = await p.transact(p.invite(`sip:+4930123@${ACME}`, '1000', ACME), t.sip[0]!.port);
      expect(challenge.status).toBe(407);
      return challenge.getAll('proxy-authenticate').flatMap(parseChallenges).map((c) => c.algorithm);
    };
    expect(await offered()).toEqual(['SHA-256', 'MD5']);
    const put = await t.api('PUT', '/v1.0/trunks/acme/auth', { mode: 'digest', algorithms: ['MD5'] });
    expect(put.body).toEqual({ mode: 'digest', allow: [], algorithms: ['MD5'] });
    expect(await offered()).toEqual(['MD5']);
    expect((await t.api('PUT', '/v1.0/trunks/acme/auth', { algorithms: ['MD4'] })).body.error).toMatchObject({ code: 'invalid', field: 'auth.algorithms[0]' });
  });

  it('an IP-mode provisioned trunk takes calls from 127.0.0.1 without a challenge (PUT auth is live for the next call)', async () => {
    const gw = await gateway();
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    await t.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gw.uri] }]);
    expect((await dial(t, ACME)).status).toBe(407);
    expect((await t.api('PUT', '/v1.0/trunks/acme/auth', { mode: 'ip', allow: ['127.0.0.1'] })).body).toEqual({ mode: 'ip', allow: ['127.0.0.1'] });
    const { call, status } = await dial(t, ACME);
    expect(status).toBe(200);
    expect(call.invite.has('proxy-authorization')).toBe(false);
    await call.hangup();
    await t.api('PUT', '/v1.0/trunks/acme/auth', { mode: 'ip', allow: ['127.0.0.2'] });
    expect((await dial(t, ACME)).status).toBe(403);
  });

  it('a password change and a route change leave the call up as it started; the next call uses the new values', async () => {
    const gwA = await gateway();
    const gwB = await gateway();
    const t = await trunk();
    await t.api('POST', '/v1.0/trunks', { name: 'acme' });
    await t.api('POST', '/v1.0/trunks/acme/extensions', { username: '1000', password: 'old-pw' });
    await t.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gwA.uri] }]);
    const first = await dial(t, ACME, { username: '1000', password: 'old-pw' });
    expect(first.status).toBe(200);
    expect((await t.api('PUT', '/v1.0/trunks/acme/extensions/1000', { password: 'new-pw' })).status).toBe(200);
    expect((await t.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gwB.uri] }])).status).toBe(200);
    // The call that was up keeps going: still answered, and its hangup reaches the gateway it started with.
    const [view] = (await t.api('GET', `/v1.0/calls?trunk_domain=${ACME}`)).body.result;
    expect(view).toMatchObject({ status: 'answered', b_leg_target: expect.stringContaining(gwA.uri.slice(4)) });
    const up = ended(first.call);
    await first.call.hangup();
    await up;
    await expect.poll(() => gwA.seen.byes).toBe(1);
    // The next call: the old password is refused, the new one goes to the new route.
    expect((await dial(t, ACME, { username: '1000', password: 'old-pw' })).status).toBe(407);
    const next = await dial(t, ACME, { username: '1000', password: 'new-pw' });
    expect(next.status).toBe(200);
    expect([gwA.seen.invites, gwB.seen.invites]).toEqual([1, 1]);
    await next.call.hangup();
  });
});

describe('provisioned trunks persist', () => {
  it('are saved atomically (0600, no password, no temp file left) and loaded by the next start', async () => {
    const gw = await gateway();
    const dir = mkdtempSync(join(tmpdir(), 'sipkit-prov-'));
    const storePath = join(dir, 'trunks.json');
    const config = trunkConfig({ provisioning: { baseDomain: 'trunk.sipkit.test', storePath } });
    const first = await trunk(config);
    await first.api('POST', '/v1.0/trunks', { name: 'acme', auth: { mode: 'ip-or-digest', allow: ['2001:db8::/32'] } });
    await first.api('POST', '/v1.0/trunks/acme/extensions', { username: '1000', password: 'pw-1000-persisted' });
    await first.api('PUT', '/v1.0/trunks/acme/routes', [{ prefix: '', targets: [gw.uri], rates: [{ prefix: '', perMinute: '0.0200', increments: '1/1', currency: 'USD' }] }]);
    await first.api('POST', '/v1.0/trunks', { name: 'gone' });
    await first.api('DELETE', '/v1.0/trunks/gone');
    const text = readFileSync(storePath, 'utf8');
    expect(text).not.toContain('pw-1000-persisted');
    expect(JSON.parse(text)).toMatchObject({ version: 1, trunks: [{ name: 'acme', domain: ACME }] });
    expect(statSync(storePath).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['trunks.json']);
    const before = (await first.api('GET', '/v1.0/trunks/acme')).body;
    await first.stop();

    const second = await trunk(trunkConfig({ provisioning: { baseDomain: 'trunk.sipkit.test', storePath } }));
    expect((await second.api('GET', '/v1.0/trunks/acme')).body).toEqual(before);
    expect((await second.api('GET', '/v1.0/trunks')).body.result).toHaveLength(1);
    const { call, status } = await dial(second, ACME, { username: '1000', password: 'pw-1000-persisted' });
    expect(status).toBe(200);
    await call.hangup();
  });

  it('a saved trunk whose domain the config file now has, or a corrupt file, refuses the start with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipkit-prov-'));
    const storePath = join(dir, 'trunks.json');
    const first = await trunk(trunkConfig({ provisioning: { baseDomain: 'trunk.sipkit.test', storePath } }));
    await first.api('POST', '/v1.0/trunks', { name: 'acme' });
    await first.stop();
    const clash = trunkConfig({ provisioning: { baseDomain: 'trunk.sipkit.test', storePath } });
    clash.domains[ACME] = { extensions: {}, routes: [] };
    await expect(startTrunk(clash)).rejects.toThrow(/acme\.trunk\.sipkit\.test is also in the config file/);
    writeFileSync(storePath, '{"version": 1, "trunks": [');
    await expect(startTrunk(trunkConfig({ provisioning: { baseDomain: 'trunk.sipkit.test', storePath } }))).rejects.toThrow(/provisioning\.storePath/);
  });
});
