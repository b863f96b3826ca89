import { describe, expect, it } from 'vitest';
import { appendHeaders, createRequest, createResponse, isSipError, parseMessage, SipError, SipParseError, type RequestInit } from '../../src/parser/index.js';

const OK: RequestInit = { method: 'INVITE', uri: 'sip:bob@example.com', from: '<sip:alice@example.com>', to: '<sip:bob@example.com>' };

function codeOf(f: () => unknown): { code: string; message: string; cause: unknown } {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(SipError);
    expect(isSipError(err)).toBe(true);
    const e = err as SipError;
    return { code: e.code, message: e.message, cause: e.cause };
  }
  throw new Error('expected a SipError');
}

describe('createRequest checks what it is given (RFC 3261 §25.1)', () => {
  it('a Request-URI that is not a URI throws BAD_URI instead of emitting "INVITE not a uri SIP/2.0"', () => {
    const e = codeOf(() => createRequest({ ...OK, uri: 'not a uri' }));
    expect(e.code).toBe('BAD_URI');
    expect(e.message).toContain('"not a uri"');
    expect(e.cause).toBeInstanceOf(SipParseError);
    for (const uri of ['sip:', 'sip:bob@', 'sip:bob@host:99999', 'sip:bob@exa mple.com', '<sip:bob@example.com>', 'bob@example.com', 'tel:', 'tel:+1-555-CALL-NOW', 'urn:']) {
      expect(codeOf(() => createRequest({ ...OK, uri })).code, uri).toBe('BAD_URI');
    }
  });

  it('accepts SIP, SIPS, tel and other absolute URIs, and what it builds parses back', () => {
    for (const uri of ['sip:bob@example.com', 'sips:bob@[2001:db8::1]:5061;transport=tcp', 'tel:+1-555-0100;phone-context=example.com', 'urn:service:sos', 'sip:example.com']) {
      const req = createRequest({ ...OK, uri });
      const back = parseMessage(req.toBytes());
      expect(back.type === 'request' && back.uri).toBe(uri);
    }
  });

  it('a method that is not a token throws BAD_METHOD', () => {
    for (const method of ['IN VITE', '', 'INVITE\r\n', 'INVITÉ', undefined as unknown as string]) {
      expect(codeOf(() => createRequest({ ...OK, method })).code, String(method)).toBe('BAD_METHOD');
    }
  });

  it('From, To, Contact, Via, Call-ID, CSeq, Max-Forwards and Content-Type that do not read throw BAD_HEADER', () => {
    const cases: Array<[Partial<RequestInit>, RegExp]> = [
      [{ from: 'alice' }, /From/],
      [{ from: '<sip:alice@>' }, /From/],
      [{ to: '"Bob <sip:bob@example.com>' }, /To/],
      [{ to: '<sip:bob@example.com>;=x' }, /To/],
      [{ contact: '<mailto' }, /Contact/],
      [{ via: 'SIP/2.0/UDP' }, /Via/],
      [{ via: ['SIP/2.0/UDP h;branch=z9hG4bK1', 'garbage'] }, /Via/],
      [{ callId: 'has space' }, /Call-ID/],
      [{ callId: 'a@b@c' }, /Call-ID/],
      [{ cseq: 2 ** 31 }, /CSeq/],
      [{ cseq: -1 }, /CSeq/],
      [{ cseq: 1.5 }, /CSeq/],
      [{ maxForwards: 2 ** 31 }, /Max-Forwards/],
      [{ maxForwards: 1.5 }, /Max-Forwards/],
      [{ from: '"Alice\r\nVia: SIP/2.0/UDP evil" <sip:alice@example.com>' }, /From/],
      [{ to: '<sip:bob@example.com>;x="\n"' }, /To/],
      [{ maxForwards: -1 }, /Max-Forwards/],
      [{ body: 'x', contentType: 'text' }, /Content-Type/],
    ];
    for (const [patch, what] of cases) {
      const e = codeOf(() => createRequest({ ...OK, ...patch }));
      expect(e.code, JSON.stringify(patch)).toBe('BAD_HEADER');
      expect(e.message, JSON.stringify(patch)).toMatch(what);
    }
    // What is well-formed still goes through: wildcard Contact, addr-spec From, bracketed Call-ID words.
    const req = createRequest({ ...OK, method: 'REGISTER', from: 'sip:alice@example.com', contact: '*', callId: 'a<b>c@[host]', cseq: 2 ** 31 - 1, maxForwards: 0 });
    expect(req.get('contact')).toBe('*');
    expect(req.callId).toBe('a<b>c@[host]');
    // Max-Forwards has no upper bound in §20.22 (a B2BUA forwards what it received, less one).
    expect(createRequest({ ...OK, maxForwards: 999 }).maxForwards).toBe(999);
  });

  it('header injection through extra headers throws BAD_HEADER (createRequest, createResponse, appendHeaders)', () => {
    expect(codeOf(() => createRequest({ ...OK, headers: { Subject: 'hi\r\nVia: SIP/2.0/UDP evil' } })).code).toBe('BAD_HEADER');
    expect(codeOf(() => createRequest({ ...OK, headers: [['X-A', 'a\nb']] })).code).toBe('BAD_HEADER');
    expect(codeOf(() => createRequest({ ...OK, headers: [['Bad Name', 'v']] })).code).toBe('BAD_HEADER');
    expect(codeOf(() => createRequest({ ...OK, headers: [['X-A:', 'v']] })).code).toBe('BAD_HEADER');
    const req = createRequest(OK);
    expect(codeOf(() => appendHeaders(req, { 'X-A': ['ok', 'bad\u0000'] })).code).toBe('BAD_HEADER');
    expect(codeOf(() => createResponse(req, 486, { headers: { 'Retry-After': '30\r\n\r\nbody' } })).code).toBe('BAD_HEADER');
  });

  it('createResponse: bad status or reason phrase throws BAD_STATUS, a bad To tag BAD_HEADER', () => {
    const req = parseMessage(createRequest(OK).toBytes());
    if (req.type !== 'request') throw new Error('request expected');
    expect(codeOf(() => createResponse(req, 99)).code).toBe('BAD_STATUS');
    expect(codeOf(() => createResponse(req, 486, { reason: 'Busy\r\nX-Injected: 1' })).code).toBe('BAD_STATUS');
    expect(codeOf(() => createResponse(req, 180, { toTag: 'a b' })).code).toBe('BAD_HEADER');
    expect(createResponse(req, 486, { reason: 'Occupé' }).reason).toBe('Occupé');
  });
});
