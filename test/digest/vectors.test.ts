import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  computeHA1,
  computeUserhash,
  digestResponse,
  parseChallenges,
  parseCredentials,
  type DigestAlgorithm,
  type HashFunction,
  type Qop,
} from '../../src/digest/index.js';
import { CONFORMANCE_DIR } from '../support/conformance.js';

interface Vector {
  id: string;
  algorithm: DigestAlgorithm;
  hash_function: string;
  header_name: string;
  inputs: Record<string, string | boolean | undefined>;
  intermediate: Record<string, string>;
  expected: { response: string; userhash?: string };
  challenge: string;
  header: string;
}

const data = JSON.parse(readFileSync(join(CONFORMANCE_DIR, 'digest', 'vectors.json'), 'utf8')) as { vectors: Vector[] };

/** RFC 7616 §3.9.2 printed its values with SHA-512 cut to 256 bits; only that vector uses this. */
const truncatedSha512: HashFunction = (d) => createHash('sha512').update(d).digest('hex').slice(0, 64);

describe('digest test vectors (test/fixtures/conformance/digest)', () => {
  it('covers every vector in the file', () => {
    expect(data.vectors.length).toBeGreaterThanOrEqual(16);
  });

  for (const v of data.vectors) {
    it(`${v.id}: response${v.expected.userhash ? ' and userhash' : ''}`, () => {
      const i = v.inputs;
      const hashFunction = v.hash_function === 'sha512-truncated-256' ? truncatedSha512 : undefined;
      const params = {
        algorithm: v.algorithm,
        username: i.username as string,
        realm: i.realm as string,
        method: i.method as string,
        uri: i.uri as string,
        nonce: i.nonce as string,
        cnonce: i.cnonce as string | undefined,
        nc: i.nc as string | undefined,
        qop: i.qop as Qop | undefined,
        body: i.entity_body as string | undefined,
        hashFunction,
      };
      expect(digestResponse({ ...params, password: i.password as string })).toBe(v.expected.response);
      // A server storing only HA1 computes the same response.
      const ha1 = computeHA1(v.algorithm.replace(/-sess$/, ''), params.username, params.realm, i.password as string, hashFunction);
      if (!v.algorithm.endsWith('-sess')) expect(ha1).toBe(v.intermediate.ha1);
      expect(digestResponse({ ...params, ha1 })).toBe(v.expected.response);
      if (v.expected.userhash) {
        expect(computeUserhash(v.algorithm, params.username, params.realm, hashFunction)).toBe(v.expected.userhash);
      }
    });

    it(`${v.id}: its challenge and credentials headers parse to the inputs`, () => {
      const challengeValue = v.challenge.slice(v.challenge.indexOf(':') + 1);
      const [c] = parseChallenges(challengeValue);
      expect(c!.realm).toBe(v.inputs.realm);
      expect(c!.nonce).toBe(v.inputs.nonce);
      const creds = parseCredentials(v.header.slice(v.header.indexOf(':') + 1));
      expect(creds.response).toBe(v.expected.response);
      expect(creds.uri).toBe(v.inputs.uri);
      expect(creds.nc).toBe(v.inputs.nc);
      if (v.inputs.userhash) expect(creds.username).toBe(v.expected.userhash);
      else expect(creds.username).toBe(v.inputs.username);
    });
  }

  it('SHA-512-256 is FIPS 180-4 SHA-512/256, not truncated SHA-512', () => {
    const fips = data.vectors.find((v) => v.hash_function === 'sha512-256' && v.id.startsWith('rfc7616-3.9.2'))!;
    const published = data.vectors.find((v) => v.hash_function === 'sha512-truncated-256')!;
    const common = {
      algorithm: 'SHA-512-256' as const,
      username: fips.inputs.username as string,
      password: fips.inputs.password as string,
      realm: fips.inputs.realm as string,
      method: 'GET',
      uri: fips.inputs.uri as string,
      nonce: fips.inputs.nonce as string,
      cnonce: fips.inputs.cnonce as string,
      nc: '00000001',
      qop: 'auth' as const,
    };
    expect(digestResponse(common)).toBe(fips.expected.response);
    expect(digestResponse(common)).not.toBe(published.expected.response);
  });

  it('reads username* (RFC 8187) as in RFC 7616 §3.9.2', () => {
    const c = parseCredentials(
      "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"api@example.org\", uri=\"/doe.json\", algorithm=SHA-512-256, nonce=\"n\", nc=00000001, cnonce=\"c\", qop=auth, response=\"r\"",
    );
    expect(c.username).toBe('Jäsøn Doe');
    expect(c.userhash).toBe(false);
  });
});
