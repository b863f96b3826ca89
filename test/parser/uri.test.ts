import { describe, expect, it } from 'vitest';
import { OpaqueUri, parseUri, SipParseError, SipUri, TelUri } from '../../src/parser/index.js';

describe('parseUri', () => {
  it('reads every part of a sip URI and re-serializes it unchanged', () => {
    const s = 'sips:alice%20b:se%3Acret@[2001:db8::1]:5061;transport=tcp;lr;maddr=239.255.255.1?Subject=hi%20there&X=1';
    const u = parseUri(s) as SipUri;
    expect(u).toBeInstanceOf(SipUri);
    expect(u.scheme).toBe('sips');
    expect(u.user).toBe('alice b');
    expect(u.userRaw).toBe('alice%20b');
    expect(u.password).toBe('se:cret');
    expect(u.host).toBe('[2001:db8::1]');
    expect(u.hostname).toBe('2001:db8::1');
    expect(u.port).toBe(5061);
    expect(u.transport).toBe('tcp');
    expect(u.lr).toBe(true);
    expect(u.param('maddr')).toBe('239.255.255.1');
    expect(u.headers).toEqual([
      ['Subject', 'hi there'],
      ['X', '1'],
    ]);
    expect(u.toString()).toBe(s);
  });

  it('keeps ; and ? inside the user part (RFC 4475 §3.1.1.2, §3.1.1.9)', () => {
    const u = parseUri('sip:user;par=u%40example.net@example.com') as SipUri;
    expect(u.user).toBe('user;par=u@example.net');
    expect(u.host).toBe('example.com');
    expect(u.params.size).toBe(0);
  });

  it('decodes escaped UTF-8 and escaped NULs on access', () => {
    const u = parseUri('sip:%E2%82%AC%00x@example.com') as SipUri;
    expect(u.user).toBe('€\u0000x');
  });

  it('parses tel URIs (RFC 3966)', () => {
    const t = parseUri('tel:+1-201-555-0123;phone-context=example.com') as TelUri;
    expect(t).toBeInstanceOf(TelUri);
    expect(t.global).toBe(true);
    expect(t.digits).toBe('+12015550123');
    expect(t.params.get('phone-context')).toBe('example.com');
    expect(t.toString()).toBe('tel:+1-201-555-0123;phone-context=example.com');
  });

  it('keeps unknown schemes opaque', () => {
    const u = parseUri('soap.beep://192.0.2.103:3002') as OpaqueUri;
    expect(u).toBeInstanceOf(OpaqueUri);
    expect(u.scheme).toBe('soap.beep');
    expect(u.toString()).toBe('soap.beep://192.0.2.103:3002');
  });

  it.each([
    ['no scheme', 'user@example.com'],
    ['unbracketed IPv6 (RFC 5118 §4.2)', 'sip:2001:db8::10'],
    ['port out of range', 'sip:a@example.com:70000'],
    ['empty host', 'sip:a@'],
    ['space', 'sip:a b@example.com'],
    ['empty param', 'sip:a@example.com;;lr'],
    ['bad IPv6 reference', 'sip:[2001:zz::1]'],
  ])('rejects %s', (_label, s) => {
    expect(() => parseUri(s)).toThrow(SipParseError);
    try {
      parseUri(s);
    } catch (e) {
      expect((e as SipParseError).code).toBe('BAD_URI');
    }
  });
});
