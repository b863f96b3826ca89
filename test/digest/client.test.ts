import { describe, expect, it } from 'vitest';
import { DigestClient, DigestError, formatChallenge, parseCredentials } from '../../src/digest/index.js';
import { createResponse } from '../../src/parser/index.js';
import { invite } from '../support/sip.js';

function challengeFor(req = invite(), lines: string[], status = 407) {
  const res = createResponse(req, status);
  for (const l of lines) res.append(status === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate', l);
  return res;
}

const ch = (realm: string, algorithm: string, extra: Partial<Parameters<typeof formatChallenge>[0]> = {}) =>
  formatChallenge({ realm, nonce: 'nonce-' + realm + '-' + algorithm, algorithm, qop: ['auth'], opaque: 'op', ...extra });

describe('DigestClient', () => {
  it('answers with the strongest algorithm offered, whatever the order', () => {
    const req = invite();
    const res = challengeFor(req, [ch('r', 'MD5'), ch('r', 'SHA-512-256'), ch('r', 'SHA-256')]);
    const next = new DigestClient({ username: 'u', password: 'p' }).authorize(req, res);
    const creds = parseCredentials(next.get('proxy-authorization')!);
    expect(creds.algorithm).toBe('SHA-512-256');
    expect(creds.nonce).toBe('nonce-r-SHA-512-256');
  });

  it('re-sends with CSeq+1, same Call-ID and From tag, a new branch, and one credential per realm', () => {
    const req = invite();
    const res = challengeFor(req, [ch('proxy-a', 'MD5'), ch('proxy-b', 'SHA-256')]);
    const next = new DigestClient({ username: 'u', password: 'p' }).authorize(req, res);
    expect(next.cseq.seq).toBe(req.cseq.seq + 1);
    expect(next.callId).toBe(req.callId);
    expect(next.from.tag).toBe(req.from.tag);
    expect(next.topVia!.branch).not.toBe(req.topVia!.branch);
    expect(next.topVia!.branch!.startsWith('z9hG4bK')).toBe(true);
    const realms = next.getAll('proxy-authorization').map((v) => parseCredentials(v).realm);
    expect(realms.sort()).toEqual(['proxy-a', 'proxy-b']);
    // the original request is not modified
    expect(req.has('proxy-authorization')).toBe(false);
  });

  it('counts nc per nonce and uses a fresh cnonce each time', () => {
    const req = invite();
    const client = new DigestClient({ username: 'u', password: 'p' });
    const first = client.authorize(req, challengeFor(req, [ch('r', 'MD5')]));
    const c1 = parseCredentials(first.get('proxy-authorization')!);
    const c2 = parseCredentials(client.sign(first.clone()).get('proxy-authorization')!);
    expect(c1.nc).toBe('00000001');
    expect(c2.nc).toBe('00000002');
    expect(c1.cnonce).not.toBe(c2.cnonce);
  });

  it('retries once on stale=true, then gives up on a second failure', () => {
    const req = invite();
    const client = new DigestClient({ username: 'u', password: 'p' });
    const a = client.authorize(req, challengeFor(req, [ch('r', 'MD5')]));
    const b = client.authorize(a, challengeFor(a, [ch('r', 'MD5', { nonce: 'fresh', stale: true })]));
    expect(parseCredentials(b.get('proxy-authorization')!).nonce).toBe('fresh');
    expect(b.getAll('proxy-authorization')).toHaveLength(1);
    expect(() => client.authorize(b, challengeFor(b, [ch('r', 'MD5', { nonce: 'again', stale: true })]))).toThrowError(
      expect.objectContaining({ code: 'AUTH_REJECTED' }),
    );
  });

  it('a second challenge without stale means the password is wrong', () => {
    const req = invite();
    const client = new DigestClient({ username: 'u', password: 'p' });
    const a = client.authorize(req, challengeFor(req, [ch('r', 'MD5')]));
    let err: unknown;
    try {
      client.authorize(a, challengeFor(a, [ch('r', 'MD5', { nonce: 'n2' })]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DigestError);
    expect((err as DigestError).code).toBe('AUTH_REJECTED');
    expect((err as DigestError).message).toContain('"r"');
  });

  it('uses Authorization for 401', () => {
    const req = invite();
    const next = new DigestClient({ username: 'u', password: 'p' }).authorize(req, challengeFor(req, [ch('r', 'SHA-256')], 401));
    expect(next.has('authorization')).toBe(true);
    expect(next.has('proxy-authorization')).toBe(false);
  });

  it('refuses challenges it cannot answer', () => {
    const req = invite();
    const res = challengeFor(req, ['Digest realm="r", nonce="n", algorithm=SHA-1', 'Basic realm="r"']);
    expect(() => new DigestClient({ username: 'u', password: 'p' }).authorize(req, res)).toThrowError(
      expect.objectContaining({ code: 'NO_USABLE_CHALLENGE' }),
    );
    const onlyMd5Ha1 = new DigestClient({ username: 'u', ha1: { MD5: '0'.repeat(32) } });
    expect(() => onlyMd5Ha1.authorize(req, challengeFor(req, [ch('r', 'SHA-256')]))).toThrowError(
      expect.objectContaining({ code: 'NO_USABLE_CHALLENGE' }),
    );
  });
});

describe('challenge parsing', () => {
  it('reads several challenges joined in one header value, skipping other schemes', async () => {
    const { parseChallenges } = await import('../../src/digest/index.js');
    const cs = parseChallenges('Digest realm="a", nonce="1", algorithm=SHA-256, qop="auth", Basic realm="b", Digest realm="c", nonce="2"');
    expect(cs.map((c) => [c.realm, c.nonce, c.algorithm])).toEqual([
      ['a', '1', 'SHA-256'],
      ['c', '2', undefined],
    ]);
  });
});
