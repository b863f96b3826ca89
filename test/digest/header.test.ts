import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatChallenge, formatCredentials, parseChallenges, parseCredentials } from '../../src/digest/index.js';

describe('challenge and credentials quoting', () => {
  it('round-trips any printable realm, nonce and opaque, quotes and backslashes included', () => {
    const value = fc.stringMatching(/^[\x20-\x7e]{0,20}$/);
    fc.assert(
      fc.property(value, value, value, (realm, nonce, opaque) => {
        const [c] = parseChallenges(formatChallenge({ realm, nonce, opaque, algorithm: 'MD5', qop: ['auth'] }));
        expect(c).toMatchObject({ realm, nonce, opaque, qop: ['auth'] });
        const creds = parseCredentials(formatCredentials({ username: realm, realm, nonce, uri: 'sip:x', response: opaque }));
        expect(creds).toMatchObject({ username: realm, realm, nonce, response: opaque });
      }),
      { numRuns: 300 },
    );
    expect(formatChallenge({ realm: 'a"b\\c', nonce: 'n', algorithm: 'MD5' })).toBe('Digest realm="a\\"b\\\\c", nonce="n", algorithm=MD5');
  });
});
