import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DigestClient, DigestServer, DIGEST_ALGORITHMS, type DigestAlgorithm, type Qop } from '../../src/digest/index.js';
import { createRequest, createResponse, parseMessage, type SipRequest } from '../../src/parser/index.js';

const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => !/[\r\n]/.test(s) && s.trim() === s);
const method = fc.stringMatching(/^[A-Z]{2,9}$/);
const uri = fc.tuple(fc.stringMatching(/^[a-z0-9+]{1,10}$/), fc.stringMatching(/^[a-z]{1,8}\.[a-z]{2,5}$/)).map(([u, h]) => `sip:${u}@${h}`);

const scenario = fc.record({
  username: text,
  password: text,
  realm: text,
  method,
  uri,
  body: fc.uint8Array({ maxLength: 64 }),
  algorithm: fc.constantFrom<DigestAlgorithm>(...DIGEST_ALGORITHMS),
  qop: fc.constantFrom<Qop>('auth', 'auth-int'),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function setup(s: Scenario) {
  const server = new DigestServer({
    secret: 'property-test-secret-0123456789abcdef',
    realm: s.realm,
    algorithms: [s.algorithm],
    qop: [s.qop],
    lookup: (u) => (u === s.username ? { password: s.password } : undefined),
    throttle: false,
  });
  const req = createRequest({
    method: s.method,
    uri: s.uri,
    from: '<sip:caller@example.com>',
    to: `<${s.uri}>`,
    via: 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKprop',
    body: s.body,
  });
  // Over the wire and back, as the server would receive it.
  const signed = new DigestClient({ username: s.username, password: s.password }).authorize(req, server.challenge(req));
  return { server, signed: parseMessage(signed.toBytes()) as SipRequest };
}

describe('digest properties', () => {
  it('the client\'s credentials always verify, for any names, realm, method, URI, body, algorithm and qop', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const { server, signed } = setup(s);
        const r = await server.verify(signed);
        expect(r).toMatchObject({ kind: 'ok', username: s.username, algorithm: s.algorithm });
      }),
      { numRuns: 300 },
    );
  });

  it('a wrong password never verifies', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, text, async (s, other) => {
        fc.pre(other !== s.password);
        const { server } = setup(s);
        const req = createRequest({ method: s.method, uri: s.uri, from: '<sip:c@example.com>', to: `<${s.uri}>`, via: 'SIP/2.0/UDP h;branch=z9hG4bKx', body: s.body });
        const signed = new DigestClient({ username: s.username, password: other }).authorize(req, server.challenge(req));
        expect((await server.verify(signed)).kind).toBe('reject');
      }),
      { numRuns: 200 },
    );
  });

  it('any single-field change (method, uri, body under auth-int, nc, cnonce, nonce, response) never verifies', async () => {
    const field = fc.constantFrom('method', 'uri', 'body', 'nc', 'cnonce', 'nonce', 'response');
    await fc.assert(
      fc.asyncProperty(scenario, field, async (s, f) => {
        if (f === 'body') fc.pre(s.qop === 'auth-int');
        const { server, signed } = setup(s);
        const t = signed.clone();
        const auth = t.get('proxy-authorization')!;
        const bump = (v: string) => (v.endsWith('a') ? v.slice(0, -1) + 'b' : v.slice(0, -1) + 'a');
        switch (f) {
          case 'method':
            t.method = s.method + 'X';
            t.set('CSeq', `${t.cseq.seq} ${t.method}`);
            break;
          case 'uri':
            t.uri = s.uri + ';x';
            break;
          case 'body':
            t.body = Buffer.concat([Buffer.from(s.body), Buffer.from('!')]);
            break;
          case 'nc':
            // A different nc changes the response the server expects.
            t.set('Proxy-Authorization', auth.replace(/nc=([0-9a-f]{8})/, 'nc=00000002'));
            break;
          case 'cnonce':
          case 'nonce':
          case 'response':
            t.set('Proxy-Authorization', auth.replace(new RegExp(`(?<![a-z])${f}="([^"]*)"`), (_m, v: string) => `${f}="${bump(v)}"`));
            break;
        }
        expect((await server.verify(t)).kind).not.toBe('ok');
      }),
      { numRuns: 400 },
    );
  });

  it('the challenge survives serialization: a 407 over the wire is answerable', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const server = new DigestServer({ secret: 'property-test-secret-0123456789abcdef', realm: s.realm, algorithms: [s.algorithm], lookup: () => undefined });
        const req = createRequest({ method: s.method, uri: s.uri, from: '<sip:c@example.com>', to: `<${s.uri}>` });
        const wire = parseMessage(server.challenge(req).toBytes());
        expect(wire.type).toBe('response');
        const resent = new DigestClient({ username: s.username, password: s.password }).authorize(req, wire as ReturnType<typeof createResponse>);
        expect(resent.has('proxy-authorization')).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
