import { describe, expect, it } from 'vitest';
import {
  computeHA1,
  computeUserhash,
  DigestClient,
  DigestServer,
  digestResponse,
  formatCredentials,
  parseChallenges,
  type DigestServerOptions,
  type NonceCodec,
} from '../../src/digest/index.js';
import { invite } from '../support/sip.js';

const SECRET = 'a-server-secret-of-32-characters!';
const REALM = 'demo.trunk.sipkit.test';

function server(extra: Partial<DigestServerOptions> = {}) {
  let now = 1_700_000_000_000;
  const s = new DigestServer({
    secret: SECRET,
    realm: REALM,
    lookup: (u) => (u === '1000' ? { password: 'sipkit-demo' } : undefined),
    now: () => now,
    ...extra,
  });
  return { s, advance: (ms: number) => (now += ms) };
}

async function authorized(s: DigestServer, password = 'sipkit-demo', username = '1000', source?: string) {
  const req = invite();
  const first = await s.verify(req, { source });
  if (first.kind !== 'challenge') throw new Error('expected a challenge');
  const client = new DigestClient({ username, password });
  return { req, signed: client.authorize(req, first.response), client, challenge: first };
}

describe('DigestServer.challenge', () => {
  it('answers 407 with one Proxy-Authenticate per algorithm, in the configured order', () => {
    const { s } = server({ algorithms: ['SHA-512-256', 'SHA-256', 'MD5'] });
    const res = s.challenge(invite());
    expect(res.status).toBe(407);
    expect(res.reason).toBe('Proxy Authentication Required');
    const lines = res.getAll('proxy-authenticate');
    expect(lines).toHaveLength(3);
    const cs = lines.flatMap(parseChallenges);
    expect(cs.map((c) => c.algorithm)).toEqual(['SHA-512-256', 'SHA-256', 'MD5']);
    for (const c of cs) {
      expect(c.realm).toBe(REALM);
      expect(c.qop).toEqual(['auth']);
      expect(c.opaque).toBeTruthy();
      expect(c.nonce).toBe(cs[0]!.nonce);
      expect(c.stale).toBe(false);
    }
    expect(res.to.tag).toBeDefined();
  });

  it('serves 401 / WWW-Authenticate the same way', async () => {
    const { s } = server({ proxy: false });
    const res = s.challenge(invite());
    expect(res.status).toBe(401);
    expect(res.getAll('www-authenticate')).toHaveLength(2);
    const client = new DigestClient({ username: '1000', password: 'sipkit-demo' });
    const signed = client.authorize(invite(), res);
    expect(signed.has('authorization')).toBe(true);
    expect((await s.verify(signed)).kind).toBe('ok');
  });
});

describe('DigestServer.verify', () => {
  it('accepts the right credentials and names the user', async () => {
    const { s } = server();
    const { signed } = await authorized(s);
    expect(await s.verify(signed)).toEqual({ kind: 'ok', username: '1000', realm: REALM, algorithm: 'SHA-256' });
  });

  it('accepts a stored HA1 instead of a password, and an async lookup', async () => {
    const ha1 = computeHA1('MD5', 'carol', REALM, 'pw');
    const { s } = server({ algorithms: ['MD5'], lookup: async (u) => (u === 'carol' ? { ha1: { MD5: ha1 } } : undefined) });
    const req = invite();
    const signed = new DigestClient({ username: 'carol', password: 'pw' }).authorize(req, s.challenge(req));
    expect((await s.verify(signed)).kind).toBe('ok');
  });

  it('a nonce of another instance sharing the secret (or of this server before a restart) is answered stale=true', async () => {
    const a = server().s;
    const b = server().s;
    expect(a.instanceId).not.toBe(b.instanceId);
    const { signed } = await authorized(a);
    const r = await b.verify(signed);
    expect(r).toMatchObject({ kind: 'challenge', reason: 'STALE_NONCE', response: { status: 407 } });
    if (r.kind !== 'challenge') throw new Error();
    expect(r.response.getAll('proxy-authenticate').flatMap(parseChallenges).every((c) => c.stale)).toBe(true);
    // The issuer is named in the nonce, so a later scale-out can tell whose it is.
    const nonce = parseChallenges(r.response.get('proxy-authenticate')!)[0]!.nonce;
    const codec = (b as unknown as { nonces: NonceCodec }).nonces;
    expect(codec.issuerOf(nonce)).toBe(b.instanceId);
    // A wrong password on another instance's nonce is still a counted failure, not a stale.
    expect(await b.verify((await authorized(a, 'wrong')).signed)).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE' });
    const other = server({ secret: 'another-secret-of-32-characters!!' }).s;
    expect(await other.verify(signed)).toMatchObject({ kind: 'reject', reason: 'BAD_NONCE' });
  });

  it('a restart does not reopen a replay window: the new instance answers a captured request stale, the old one REPLAYED_NC', async () => {
    const before = server().s;
    const { signed } = await authorized(before);
    expect((await before.verify(signed)).kind).toBe('ok');
    expect(await before.verify(signed)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
    const restarted = server().s; // same secret, same clock: the nonce is well within its TTL
    const replay = signed.clone();
    replay.set('call-id', 'replayed-call-id');
    replay.from.params.set('tag', 'replayedtag');
    expect(await restarted.verify(replay)).toMatchObject({ kind: 'challenge', reason: 'STALE_NONCE' });
    expect(await restarted.verify(signed)).toMatchObject({ kind: 'challenge', reason: 'STALE_NONCE' });
  });

  it('missing credentials → challenge', async () => {
    const { s } = server();
    expect(await s.verify(invite())).toMatchObject({ kind: 'challenge', reason: 'MISSING_CREDENTIALS', response: { status: 407 } });
  });

  it('expired but authentic nonce → fresh challenge with stale=true', async () => {
    const { s, advance } = server({ nonceTtlMs: 60_000 });
    const { signed } = await authorized(s);
    advance(61_000);
    const r = await s.verify(signed);
    expect(r).toMatchObject({ kind: 'challenge', reason: 'STALE_NONCE' });
    if (r.kind !== 'challenge') throw new Error();
    expect(parseChallenges(r.response.get('proxy-authenticate')!)[0]!.stale).toBe(true);
  });

  it('expired nonce with a wrong password is a reject, not stale', async () => {
    const { s, advance } = server({ nonceTtlMs: 60_000 });
    const { signed } = await authorized(s, 'wrong');
    advance(61_000);
    expect(await s.verify(signed)).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE' });
  });

  it('wrong password → reject BAD_RESPONSE with a fresh 407', async () => {
    const { s } = server();
    const { signed } = await authorized(s, 'not-the-password');
    expect(await s.verify(signed)).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE', response: { status: 407 } });
  });

  it('unknown user looks exactly like a wrong password from outside', async () => {
    const { s } = server();
    const wrong = await s.verify((await authorized(s, 'bad')).signed);
    const unknown = await s.verify((await authorized(s, 'whatever', 'nobody')).signed);
    expect(unknown).toMatchObject({ kind: 'reject', reason: 'UNKNOWN_USER' });
    if (wrong.kind !== 'reject' || unknown.kind !== 'reject') throw new Error();
    expect(unknown.response.status).toBe(wrong.response.status);
    expect(unknown.response.getAll('proxy-authenticate').length).toBe(wrong.response.getAll('proxy-authenticate').length);
    const shape = (v: string) => v.replace(/nonce="[^"]*"/, 'nonce=""');
    expect(unknown.response.getAll('proxy-authenticate').map(shape)).toEqual(wrong.response.getAll('proxy-authenticate').map(shape));
  });

  it('wrong realm → reject WRONG_REALM', async () => {
    const { s } = server();
    const { signed } = await authorized(s);
    const other = server({ realm: 'other.trunk.sipkit.test' }).s;
    expect(await other.verify(signed)).toMatchObject({ kind: 'reject', reason: 'WRONG_REALM' });
  });

  it('digest uri not matching the Request-URI → URI_MISMATCH', async () => {
    const { s } = server();
    const { signed } = await authorized(s);
    signed.uri = 'sip:+15559999999@demo.trunk.sipkit.test';
    expect(await s.verify(signed)).toMatchObject({ kind: 'reject', reason: 'URI_MISMATCH' });
  });

  it('the digest uri may differ from the Request-URI only in scheme/host case', async () => {
    const { s } = server();
    const { signed } = await authorized(s);
    signed.uri = 'sip:+15551234567@DEMO.trunk.sipkit.test';
    expect((await s.verify(signed)).kind).toBe('ok');
  });

  it('replayed nc → REPLAYED_NC; the next nc is fine', async () => {
    const { s } = server();
    const { signed, client } = await authorized(s);
    expect((await s.verify(signed)).kind).toBe('ok');
    expect(await s.verify(signed)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
    const again = client.sign(signed.clone());
    expect((await s.verify(again)).kind).toBe('ok');
  });

  it('an nc far ahead of the last one → NC_OUT_OF_WINDOW', async () => {
    const { s } = server({ ncWindow: 10 });
    const req = invite();
    const ch = s.challenge(req);
    const c = parseChallenges(ch.getAll('proxy-authenticate')[0]!)[0]!;
    const nc = '00000100';
    const response = digestResponse({ algorithm: 'SHA-256', username: '1000', password: 'sipkit-demo', realm: REALM, method: 'INVITE', uri: req.uri, nonce: c.nonce, cnonce: 'abc', nc, qop: 'auth' });
    req.set('Proxy-Authorization', formatCredentials({ username: '1000', realm: REALM, nonce: c.nonce, uri: req.uri, response, algorithm: 'SHA-256', cnonce: 'abc', nc, qop: 'auth', opaque: c.opaque }));
    expect(await s.verify(req)).toMatchObject({ kind: 'reject', reason: 'NC_OUT_OF_WINDOW' });
  });

  it('replay memory lasts a nonce\'s whole lifetime: when full it refuses new nonces (503) and forgets none', async () => {
    const { s, advance } = server({ replayTableSize: 2, nonceTtlMs: 60_000 });
    const first = await authorized(s);
    expect((await s.verify(first.signed)).kind).toBe('ok');
    advance(10_000);
    const second = await authorized(s);
    expect((await s.verify(second.signed)).kind).toBe('ok');
    // A third live nonce does not fit: refused with 503 + Retry-After, and not a counted failure.
    const third = await authorized(s);
    const full = await s.verify(third.signed, {});
    expect(full).toMatchObject({ kind: 'reject', reason: 'NONCE_TABLE_FULL', response: { status: 503 } });
    if (full.kind !== 'reject') throw new Error();
    expect(Number(full.response.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Nothing was forgotten: both tracked nonces still refuse their replays, and go on with the next nc.
    expect(await s.verify(first.signed)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
    expect(await s.verify(second.signed)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
    expect((await s.verify(first.client.sign(first.signed.clone()))).kind).toBe('ok');
    // Once the first nonce has expired (its entry with it), a new nonce fits again.
    advance(55_000); // the first nonce is 65 s old (TTL 60 s), the second 55 s
    expect(await s.verify(first.signed)).toMatchObject({ kind: 'challenge', reason: 'STALE_NONCE' });
    const fourth = await authorized(s);
    expect((await s.verify(fourth.signed)).kind).toBe('ok');
    expect(await s.verify(second.signed)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
  });

  it('more than 10 000 logins do not push a live nonce out of the replay memory', async () => {
    const { s, advance } = server({ throttle: false });
    const victim = await authorized(s);
    expect((await s.verify(victim.signed)).kind).toBe('ok');
    for (let i = 0; i < 10_050; i++) {
      const req = invite();
      const client = new DigestClient({ username: '1000', password: 'sipkit-demo' });
      expect((await s.verify(client.authorize(req, s.challenge(req)))).kind).toBe('ok');
      if (i % 1000 === 0) advance(1_000);
    }
    expect(await s.verify(victim.signed)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
  });

  it('unknown or disabled algorithm → UNSUPPORTED_ALGORITHM', async () => {
    const { s } = server({ algorithms: ['SHA-256'] });
    const req = invite();
    const c = parseChallenges(s.challenge(req).get('proxy-authenticate')!)[0]!;
    const response = digestResponse({ algorithm: 'MD5', username: '1000', password: 'sipkit-demo', realm: REALM, method: 'INVITE', uri: req.uri, nonce: c.nonce, cnonce: 'x', nc: '00000001', qop: 'auth' });
    req.set('Proxy-Authorization', formatCredentials({ username: '1000', realm: REALM, nonce: c.nonce, uri: req.uri, response, algorithm: 'MD5', cnonce: 'x', nc: '00000001', qop: 'auth' }));
    expect(await s.verify(req)).toMatchObject({ kind: 'reject', reason: 'UNSUPPORTED_ALGORITHM' });
    req.set('Proxy-Authorization', formatCredentials({ username: '1000', realm: REALM, nonce: c.nonce, uri: req.uri, response, algorithm: 'SHA-1', cnonce: 'x', nc: '00000001', qop: 'auth' }));
    expect(await s.verify(req)).toMatchObject({ kind: 'reject', reason: 'UNSUPPORTED_ALGORITHM' });
  });

  it('malformed header → reject MALFORMED with 400', async () => {
    const { s } = server();
    const req = invite();
    req.set('Proxy-Authorization', 'Digest username="1000", realm="' + REALM);
    expect(await s.verify(req)).toMatchObject({ kind: 'reject', reason: 'MALFORMED', response: { status: 400 } });
  });

  it('a forged nonce → BAD_NONCE; a nonce bound to another source → BAD_NONCE', async () => {
    const { s } = server({ bindNonce: 'source' });
    const req = invite();
    const first = s.challenge(req, { source: '192.0.2.10' });
    const signed = new DigestClient({ username: '1000', password: 'sipkit-demo' }).authorize(req, first);
    expect((await s.verify(signed, { source: '192.0.2.10' })).kind).toBe('ok');
    const again = new DigestClient({ username: '1000', password: 'sipkit-demo' }).authorize(req, first);
    expect(await s.verify(again, { source: '198.51.100.1' })).toMatchObject({ kind: 'reject', reason: 'BAD_NONCE' });
    const forged = signed.clone();
    forged.set('Proxy-Authorization', signed.get('proxy-authorization')!.replace(/nonce="(.)/, (_m, c: string) => `nonce="${c === 'A' ? 'B' : 'A'}`));
    expect(await s.verify(forged, { source: '192.0.2.10' })).toMatchObject({ kind: 'reject', reason: 'BAD_NONCE' });
  });

  it('opaque from elsewhere → OPAQUE_MISMATCH; qop not offered → QOP_NOT_OFFERED', async () => {
    const { s } = server();
    const { signed } = await authorized(s);
    const bad = signed.clone();
    bad.set('Proxy-Authorization', signed.get('proxy-authorization')!.replace(/opaque="[^"]*"/, 'opaque="nope"'));
    expect(await s.verify(bad)).toMatchObject({ kind: 'reject', reason: 'OPAQUE_MISMATCH' });
    const int = signed.clone();
    int.set('Proxy-Authorization', signed.get('proxy-authorization')!.replace('qop=auth', 'qop=auth-int'));
    expect(await s.verify(int)).toMatchObject({ kind: 'reject', reason: 'QOP_NOT_OFFERED' });
  });

  it('RFC 2069 credentials (no qop) work once per nonce', async () => {
    const { s } = server({ algorithms: ['MD5'] });
    const req = invite();
    const c = parseChallenges(s.challenge(req).get('proxy-authenticate')!)[0]!;
    const response = digestResponse({ algorithm: 'MD5', username: '1000', password: 'sipkit-demo', realm: REALM, method: 'INVITE', uri: req.uri, nonce: c.nonce });
    req.set('Proxy-Authorization', formatCredentials({ username: '1000', realm: REALM, nonce: c.nonce, uri: req.uri, response }));
    expect((await s.verify(req)).kind).toBe('ok');
    expect(await s.verify(req)).toMatchObject({ kind: 'reject', reason: 'REPLAYED_NC' });
    const strict = server({ algorithms: ['MD5'], allowNoQop: false }).s;
    expect(await strict.verify(req)).toMatchObject({ kind: 'reject', reason: 'QOP_NOT_OFFERED' });
  });

  it('auth-int covers the body: a changed body does not verify', async () => {
    const { s } = server({ qop: ['auth-int'] });
    const req = invite({ body: 'v=0\r\no=a 1 1 IN IP4 192.0.2.10\r\n' });
    const signed = new DigestClient({ username: '1000', password: 'sipkit-demo' }).authorize(req, s.challenge(req));
    expect(signed.get('proxy-authorization')).toContain('qop=auth-int');
    const tampered = signed.clone();
    tampered.body = Buffer.from('v=0\r\no=a 1 1 IN IP4 203.0.113.66\r\n');
    expect(await s.verify(tampered)).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE' });
    expect((await s.verify(signed)).kind).toBe('ok');
  });

  it('userhash credentials resolve through lookupUserhash, and are refused without it', async () => {
    const users = new Map([['1000', 'sipkit-demo']]);
    const { s } = server({
      userhash: true,
      lookupUserhash: (h, realm, alg) => [...users.keys()].find((u) => computeUserhash(alg, u, realm) === h),
    });
    const req = invite();
    const signed = new DigestClient({ username: '1000', password: 'sipkit-demo' }).authorize(req, s.challenge(req));
    expect(signed.get('proxy-authorization')).toContain('userhash=true');
    expect(signed.get('proxy-authorization')).not.toContain('username="1000"');
    expect(await s.verify(signed)).toMatchObject({ kind: 'ok', username: '1000' });
    const noResolver = server({ userhash: true }).s;
    const signed2 = new DigestClient({ username: '1000', password: 'sipkit-demo' }).authorize(req, noResolver.challenge(req));
    expect(await noResolver.verify(signed2)).toMatchObject({ kind: 'reject', reason: 'USERHASH_UNSUPPORTED' });
  });

  it('a non-ASCII username travels as username* and verifies', async () => {
    const { s } = server({ lookup: (u) => (u === 'Jäsøn Doe' ? { password: 'Secret, or not?' } : undefined) });
    const req = invite();
    const signed = new DigestClient({ username: 'Jäsøn Doe', password: 'Secret, or not?' }).authorize(req, s.challenge(req));
    expect(signed.get('proxy-authorization')).toContain("username*=UTF-8''J%C3%A4s%C3%B8n%20Doe");
    expect(await s.verify(signed)).toMatchObject({ kind: 'ok', username: 'Jäsøn Doe' });
  });
});

describe('algorithms per realm and per user', () => {
  const realms = (realm: string) => (realm === 'md5only.trunk.sipkit.test' ? (['MD5'] as const) : undefined);
  const algs = (r: { getAll(n: string): string[] }) => r.getAll('proxy-authenticate').flatMap(parseChallenges).map((c) => c.algorithm);

  it('a realm may narrow the challenge set; other realms keep the server\'s', () => {
    const { s } = server({ realm: (req) => (req.requestUri as { host: string }).host, realmAlgorithms: realms });
    expect(algs(s.challenge(invite({ uri: 'sip:+1555@md5only.trunk.sipkit.test' })))).toEqual(['MD5']);
    expect(algs(s.challenge(invite()))).toEqual(['SHA-256', 'MD5']);
  });

  it('a user accepted with MD5 only: SHA-256 credentials with the right password get a stale MD5-only challenge, then MD5 works', async () => {
    const { s } = server({ lookup: (u) => (u === '1000' ? { password: 'sipkit-demo', algorithms: ['MD5'] } : undefined) });
    const req = invite();
    const client = new DigestClient({ username: '1000', password: 'sipkit-demo' });
    const signed = client.authorize(req, s.challenge(req));
    expect(signed.get('proxy-authorization')).toContain('algorithm=SHA-256');
    const r = await s.verify(signed);
    expect(r).toMatchObject({ kind: 'challenge', reason: 'USER_ALGORITHMS', response: { status: 407 } });
    if (r.kind !== 'challenge') throw new Error();
    expect(algs(r.response)).toEqual(['MD5']);
    expect(parseChallenges(r.response.get('proxy-authenticate')!)[0]!.stale).toBe(true);
    const retry = client.authorize(signed, r.response);
    expect(await s.verify(retry)).toMatchObject({ kind: 'ok', algorithm: 'MD5' });
  });

  it('a wrong password with a disallowed algorithm is a plain failure: the user\'s set is not revealed', async () => {
    const { s } = server({ lookup: (u) => (u === '1000' ? { password: 'sipkit-demo', algorithms: ['MD5'] } : undefined) });
    const { signed } = await authorized(s, 'wrong');
    const r = await s.verify(signed);
    expect(r).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE' });
    if (r.kind !== 'reject') throw new Error();
    expect(algs(r.response)).toEqual(['SHA-256', 'MD5']);
  });

  it('a user\'s set may go beyond the realm\'s: SHA-512-256 is accepted for that user only', async () => {
    const { s } = server({
      lookup: (u) => (u === '1000' ? { password: 'sipkit-demo', algorithms: ['SHA-512-256'] } : u === '1001' ? { password: 'pw' } : undefined),
    });
    const sign = (username: string, password: string, algorithm: 'SHA-512-256') => {
      const req = invite();
      const c = parseChallenges(s.challenge(req).get('proxy-authenticate')!)[0]!;
      const response = digestResponse({ algorithm, username, password, realm: REALM, method: 'INVITE', uri: req.uri, nonce: c.nonce, cnonce: 'c', nc: '00000001', qop: 'auth' });
      req.set('Proxy-Authorization', formatCredentials({ username, realm: REALM, nonce: c.nonce, uri: req.uri, response, algorithm, cnonce: 'c', nc: '00000001', qop: 'auth', opaque: c.opaque }));
      return req;
    };
    expect(await s.verify(sign('1000', 'sipkit-demo', 'SHA-512-256'))).toMatchObject({ kind: 'ok', algorithm: 'SHA-512-256' });
    expect(await s.verify(sign('1001', 'pw', 'SHA-512-256'))).toMatchObject({ kind: 'reject', reason: 'UNSUPPORTED_ALGORITHM' });
  });
});

describe('brute-force throttling', () => {
  const users: Record<string, string> = { '1000': 'sipkit-demo', '1001': 'pw-1001' };
  const pbx = (extra: Partial<DigestServerOptions> = {}) =>
    server({ lookup: (u) => (users[u] !== undefined ? { password: users[u] } : undefined), ...extra });

  it('blocks one username from one source after maxFailures (403, even with the right password), not the rest', async () => {
    const { s, advance } = pbx({ throttle: { maxFailures: 3, windowMs: 60_000, blockMs: 30_000 } });
    const attacker = '203.0.113.66';
    for (let i = 0; i < 3; i++) {
      const r = await s.verify((await authorized(s, 'guess' + i, '1000', attacker)).signed, { source: attacker });
      expect(r).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE' });
    }
    const blocked = await s.verify((await authorized(s, 'sipkit-demo', '1000', attacker)).signed, { source: attacker });
    expect(blocked).toMatchObject({ kind: 'reject', reason: 'THROTTLED', response: { status: 403 } });
    expect(s.isThrottled(attacker, { realm: REALM, username: '1000' })).toBe(true);
    expect(s.throttledSources()).toBe(1);
    // Another extension behind the same address (a PBX) is not blocked…
    expect(s.isThrottled(attacker)).toBe(false);
    expect((await s.verify((await authorized(s, 'pw-1001', '1001', attacker)).signed, { source: attacker })).kind).toBe('ok');
    // …nor the same extension from another address.
    expect((await s.verify((await authorized(s, 'sipkit-demo', '1000', '192.0.2.10')).signed, { source: '192.0.2.10' })).kind).toBe('ok');
    advance(30_001);
    expect(s.throttledSources()).toBe(0);
    expect((await s.verify((await authorized(s, 'sipkit-demo', '1000', attacker)).signed, { source: attacker })).kind).toBe('ok');
  });

  it('a spoofed source cannot lock out a caller: a nonce issued to another address is answered stale and not counted', async () => {
    const { s } = pbx({ throttle: { maxFailures: 3 } });
    const attacker = '203.0.113.66';
    const victim = '192.0.2.10';
    for (let i = 0; i < 20; i++) {
      // The attacker can only read challenges sent to its own address; it sends wrong passwords as the victim.
      const { signed } = await authorized(s, 'guess' + i, '1000', attacker);
      const r = await s.verify(signed, { source: victim });
      expect(r).toMatchObject({ kind: 'reject', reason: 'BAD_NONCE', response: { status: 407 } });
      if (r.kind !== 'reject') throw new Error();
      expect(parseChallenges(r.response.get('proxy-authenticate')!)[0]!.stale).toBe(true);
    }
    expect(s.isThrottled(victim, { realm: REALM, username: '1000' })).toBe(false);
    expect((await s.verify((await authorized(s, 'sipkit-demo', '1000', victim)).signed, { source: victim })).kind).toBe('ok');
  });

  it('a source failing on many usernames is scanning, and is blocked as a whole', async () => {
    const { s } = pbx({ throttle: { maxFailures: 10, maxUsersPerSource: 4 } });
    const scanner = '203.0.113.7';
    for (let i = 0; i < 4; i++) {
      expect(await s.verify((await authorized(s, 'x', 'user' + i, scanner)).signed, { source: scanner })).toMatchObject({ reason: 'UNKNOWN_USER' });
    }
    expect(s.isThrottled(scanner)).toBe(false);
    await s.verify((await authorized(s, 'x', 'user4', scanner)).signed, { source: scanner });
    expect(s.isThrottled(scanner)).toBe(true);
    const req = invite();
    const signed = new DigestClient({ username: '1001', password: 'pw-1001' }).authorize(req, s.challenge(req, { source: scanner }));
    expect(await s.verify(signed, { source: scanner })).toMatchObject({ reason: 'THROTTLED', response: { status: 403 } });
    expect(await s.verify(invite(), { source: scanner })).toMatchObject({ reason: 'THROTTLED' });
  });

  it('the failure table is bounded: a flood of sources costs a fixed amount of memory', async () => {
    const { s } = pbx({ throttle: { maxFailures: 3, tableSize: 50, maxUsersPerSource: 2 } });
    for (let i = 0; i < 500; i++) {
      const source = `10.0.${i >> 8}.${i & 255}`;
      const r = await s.verify((await authorized(s, 'bad', '1000', source)).signed, { source });
      expect(r).toMatchObject({ reason: 'BAD_RESPONSE' });
    }
    expect((s as unknown as { throttle: { size: number } }).throttle.size).toBe(50);
  });
});

describe('DigestServer.challengeIfNoCredentials (the stateless pre-check)', () => {
  const stale = (r: { getAll(n: string): string[] } | undefined) => r!.getAll('proxy-authenticate').flatMap(parseChallenges).map((c) => c.stale);

  it('answers at once what verify would challenge or refuse without a lookup, and leaves credentials to verify', async () => {
    const { s } = server();
    const src = { source: '192.0.2.7' };
    // No credentials: the same 407 verify gives (one challenge per algorithm, not stale).
    const none = s.challengeIfNoCredentials(invite(), src);
    expect(none).toMatchObject({ status: 407 });
    expect(stale(none)).toEqual([false, false]);
    // Credentials for another realm only: challenged for ours.
    const foreign = invite();
    foreign.set('Proxy-Authorization', 'Digest username="1000", realm="elsewhere.test", nonce="x", uri="sip:a@b", response="00"');
    expect(s.challengeIfNoCredentials(foreign, src)).toMatchObject({ status: 407 });
    // Malformed credentials: 400, as verify.
    const bad = invite();
    bad.set('Proxy-Authorization', 'Digest username=');
    expect(s.challengeIfNoCredentials(bad, src)).toMatchObject({ status: 400 });
    expect(await s.verify(bad, src)).toMatchObject({ kind: 'reject', reason: 'MALFORMED', response: { status: 400 } });
    // Credentials on a nonce of ours for this source: verify's job (the password has to be checked).
    const { signed } = await authorized(s, 'sipkit-demo', '1000', '192.0.2.7');
    expect(s.challengeIfNoCredentials(signed, src)).toBeUndefined();
    // The same credentials from another source (a nonce not issued to it): stale=true, as verify answers BAD_NONCE.
    expect(stale(s.challengeIfNoCredentials(signed, { source: '192.0.2.99' }))).toEqual([true, true]);
    expect(await s.verify(signed, { source: '192.0.2.99' })).toMatchObject({ kind: 'reject', reason: 'BAD_NONCE' });
    // It changed nothing: the signed request still verifies once.
    expect((await s.verify(signed, src)).kind).toBe('ok');
  });

  it('verify after the pre-check judges the credentials the request holds then, not what the pre-check read', async () => {
    const { s } = server();
    const src = { source: '192.0.2.7' };
    const { signed } = await authorized(s, 'sipkit-demo', '1000', '192.0.2.7');
    const header = signed.get('proxy-authorization')!;
    expect(s.challengeIfNoCredentials(signed, src)).toBeUndefined();
    // The same request object, its credentials changed in between: a wrong response now.
    signed.set('Proxy-Authorization', header.replace(/response="([0-9a-f])/, (_m, c: string) => `response="${c === '0' ? '1' : '0'}`));
    expect(await s.verify(signed, src)).toMatchObject({ kind: 'reject', reason: 'BAD_RESPONSE' });
    // And a nonce whose MAC was just checked for this source is not taken for another binding.
    signed.set('Proxy-Authorization', header);
    expect(s.challengeIfNoCredentials(signed, src)).toBeUndefined();
    expect(await s.verify(signed, { source: '192.0.2.8' })).toMatchObject({ kind: 'reject', reason: 'BAD_NONCE' });
    expect((await s.verify(signed, src)).kind).toBe('ok');
  });

  it('a source throttled as a whole gets 403 at once', async () => {
    const { s } = server({ throttle: { maxFailures: 10, maxUsersPerSource: 2 } });
    const src = '198.51.100.1';
    for (const user of ['a', 'b', 'c']) await s.verify((await authorized(s, 'wrong', user, src)).signed, { source: src });
    expect(s.isThrottled(src)).toBe(true);
    expect(s.challengeIfNoCredentials(invite(), { source: src })).toMatchObject({ status: 403 });
    expect(s.challengeIfNoCredentials(invite(), { source: '198.51.100.2' })).toMatchObject({ status: 407 });
  });
});
