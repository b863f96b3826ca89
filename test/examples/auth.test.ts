import { describe, expect, it } from 'vitest';
import { createRequest } from 'sipkit/parser';
import { parseChallenges, type DigestUserRecord } from 'sipkit/digest';
import { createDigestAuth, type AuthDomain } from '../../examples/trunk-server/auth.js';
import type { Level } from '../../examples/trunk-server/log.js';
import { dial, GATEWAY, run, setup, statusesTo } from './parts-harness.js';

// The auth part used alone: a plain B2bua on the in-memory network, its `authenticate` hook
// from createDigestAuth and a route of its own.

const SECRET = 'parts-test-secret-0123456789abcdef';

function withAuth(domains: Record<string, AuthDomain>) {
  const logged: Array<[Level, string]> = [];
  let clockNow = () => 0;
  const auth = createDigestAuth({ domains, secret: SECRET, algorithms: ['SHA-256', 'MD5'], now: () => clockNow(), log: (level, event) => logged.push([level, event]) });
  const s = setup({ authenticate: auth.authenticate, route: () => [{ uri: `sip:+4930123@${GATEWAY}:5060` }] });
  clockNow = () => s.clock.now();
  return { s, auth, logged };
}

const pbx = (): Record<string, { extensions: Record<string, DigestUserRecord> }> => ({ 'pbx.example.test': { extensions: { '1000': { password: 'pw-1000' } } } });

describe('createDigestAuth on a plain B2bua', () => {
  it('challenges with 407 in the dialled host as realm, then lets the extension through with its identity and domain', async () => {
    const { s } = withAuth(pbx());
    const d = dial(s, 'sip:+4930123@PBX.example.test', { auth: { username: '1000', password: 'pw-1000' } });
    await run(s);
    expect(d.answered).toBe(true);
    expect(statusesTo(s)).toEqual([407, 100, 200]);
    const challenge = s.net.packets(/^SIP\/2\.0 407/)[0]!;
    const headers = [...Buffer.from(challenge.bytes).toString().matchAll(/^Proxy-Authenticate: (.*)$/gim)].map((m) => m[1]!.trim());
    expect(headers.flatMap(parseChallenges).map((c) => [c.realm, c.algorithm])).toEqual([
      ['pbx.example.test', 'SHA-256'],
      ['pbx.example.test', 'MD5'],
    ]);
    expect(s.b2bua.list()[0]).toMatchObject({ identity: '1000', tags: { domain: 'pbx.example.test' } });
    expect(s.atGateway).toHaveLength(1);
  });

  it('a wrong password, an unknown user and an unknown domain all get a fresh 407 and never reach the gateway', async () => {
    for (const [uri, username, password] of [
      ['sip:1@pbx.example.test', '1000', 'wrong'],
      ['sip:1@pbx.example.test', '9999', 'pw-1000'],
      ['sip:1@other.example.test', '1000', 'pw-1000'],
    ] as const) {
      const { s, logged } = withAuth(pbx());
      const d = dial(s, uri, { auth: { username, password } });
      await run(s);
      expect(d.failures, uri + ' ' + username).toEqual([407]);
      expect(statusesTo(s)).toEqual([407, 407]);
      expect(s.atGateway).toHaveLength(0);
      // Nothing unauthenticated leaves a record behind.
      expect(s.b2bua.list()).toEqual([]);
      expect(logged).toContainEqual(['warn', 'auth.rejected']);
    }
  });

  it('a Request-URI that is not sip: is refused with 404 before any challenge', async () => {
    const { s, logged } = withAuth(pbx());
    const d = dial(s, 'tel:+4930123', { auth: { username: '1000', password: 'pw-1000' } });
    await run(s);
    expect(d.failures).toEqual([404]);
    expect(logged).toContainEqual(['info', 'call.rejected']);
  });

  it('reads the domains on every request: an extension added after start logs in, a host like "constructor" is no domain', async () => {
    const domains = pbx();
    const { s } = withAuth(domains);
    domains['pbx.example.test']!.extensions['2000'] = { password: 'pw-2000' };
    const added = dial(s, 'sip:1@pbx.example.test', { auth: { username: '2000', password: 'pw-2000' } });
    const proto = dial(s, 'sip:1@constructor', { auth: { username: 'toString', password: 'x' } });
    await run(s);
    expect(added.answered).toBe(true);
    expect(proto.failures).toEqual([407]);
  });

  it("a domain's own algorithms are its challenge set", async () => {
    const { s } = withAuth({ 'md5.example.test': { extensions: { '1000': { password: 'pw-1000' } }, auth: { algorithms: ['MD5'] } } });
    const d = dial(s, 'sip:1@md5.example.test', { auth: { username: '1000', password: 'pw-1000' } });
    await run(s);
    expect(d.answered).toBe(true);
    const header = Buffer.from(s.net.packets(/^SIP\/2\.0 407/)[0]!.bytes).toString();
    expect(header.match(/^Proxy-Authenticate: .*$/gim)!.map((h) => /algorithm=([\w-]+)/.exec(h)![1])).toEqual(['MD5']);
  });
});

describe('createDigestAuth: the stateless pre-check (B2buaOptions.challenge)', () => {
  const src = (address: string) => ({ transport: {} as never, address: { address, port: 5060 } });
  const req = (uri: string) => createRequest({ method: 'INVITE', uri, from: '<sip:1000@x.test>', to: `<${uri}>` });

  it('answers what needs no digest check: 407 without credentials (any domain alike), 403 outside an IP trunk, 404 without a domain; lets the rest through', () => {
    const auth = createDigestAuth({
      domains: { ...pbx(), 'ip.example.test': { extensions: {}, auth: { mode: 'ip', allow: ['192.0.2.0/24'] } } },
      secret: SECRET,
    });
    expect(auth.challenge(req('sip:1@pbx.example.test'), src('203.0.113.1'))?.status).toBe(407);
    expect(auth.challenge(req('sip:1@unknown.example.test'), src('203.0.113.1'))?.status).toBe(407);
    expect(auth.challenge(req('sip:1@ip.example.test'), src('203.0.113.1'))?.status).toBe(403);
    expect(auth.challenge(req('sip:1@ip.example.test'), src('192.0.2.9'))).toBeUndefined();
    expect(auth.challenge(req('tel:+4930123'), src('203.0.113.1'))?.status).toBe(404);
  });

  it('on a B2bua it keeps the challenge stateless: no transaction after the 407, the call still goes through', async () => {
    const auth = createDigestAuth({ domains: pbx(), secret: SECRET });
    const s = setup({ challenge: auth.challenge, authenticate: auth.authenticate, route: () => [{ uri: `sip:+4930123@${GATEWAY}:5060` }] });
    const d = dial(s, 'sip:+4930123@pbx.example.test', { auth: { username: '1000', password: 'pw-1000' } });
    await run(s);
    expect(d.answered).toBe(true);
    expect(statusesTo(s)).toEqual([407, 100, 200]);
    expect(s.b2bua.stats.statelessAcksAbsorbed).toBe(1);
  });
});
