import { describe, expect, it } from 'vitest';
import {
  parseMessage,
  parseNameAddr,
  parseReason,
  parseVia,
  SipParseError,
  splitList,
  validate,
  type SipRequest,
  type SipUri,
} from '../../src/parser/index.js';

const INVITE = [
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'v: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bK776asdhds;rport;received=2001:db8::9:255, SIP/2.0/TCP 10.0.0.1',
  'Via: SIP/2.0/TLS proxy.example.com:5061;branch=z9hG4bKnashds8;maddr=239.255.255.1;ttl=16',
  'Max-Forwards: 70',
  't: "Bob \\"the\\" Builder" <sip:bob@biloxi.example.com>',
  'f: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  'i: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'm: <sip:alice@pc33.atlanta.example.com;transport=tcp>;expires=60;q=0.7, "x, y" <sip:x@y>',
  'Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
  'Route: <sip:p3.example.com;lr>',
  'Proxy-Authorization: Digest username="alice", realm="atlanta.example.com", nonce="abc", uri="sip:bob@biloxi.example.com", response="0123"',
  'Date: Sat, 13 Nov 2010 23:29:00 GMT',
  'Reason: Q.850;cause=16;text="Normal call clearing", SIP;cause=487',
  'X-Custom: a, b',
  'X-Custom: c',
  'Subject: lunch,',
  '  folded onto two lines',
  'c: application/sdp;charset=UTF-8',
  'l: 4',
  '',
  'v=0\n',
].join('\r\n');

describe('header access', () => {
  const m = parseMessage(INVITE) as SipRequest;

  it('resolves compact forms and case-insensitive names', () => {
    expect(m.get('CALL-ID')).toBe('a84b4c76e66710@pc33.atlanta.example.com');
    expect(m.get('i')).toBe(m.get('Call-Id'));
    expect(m.callId).toBe('a84b4c76e66710@pc33.atlanta.example.com');
    expect(m.get('content-type')).toBe('application/sdp;charset=UTF-8');
  });

  it('splits list headers, respecting quotes and <>', () => {
    expect(m.getAll('via')).toHaveLength(3);
    expect(m.getAll('contact')).toEqual([
      '<sip:alice@pc33.atlanta.example.com;transport=tcp>;expires=60;q=0.7',
      '"x, y" <sip:x@y>',
    ]);
    expect(m.get('via')).toBe('SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bK776asdhds;rport;received=2001:db8::9:255');
  });

  it('never splits auth headers, Date, or unknown extension headers', () => {
    expect(m.getAll('proxy-authorization')).toHaveLength(1);
    expect(m.getAll('date')).toEqual(['Sat, 13 Nov 2010 23:29:00 GMT']);
    expect(m.getAll('x-custom')).toEqual(['a, b', 'c']);
  });

  it('unfolds continuation lines with a single space', () => {
    expect(m.get('subject')).toBe('lunch, folded onto two lines');
  });

  it('gives typed Via with IPv6, rport and received', () => {
    const [v1, v2, v3] = m.via;
    expect(v1!.transport).toBe('UDP');
    expect(v1!.host).toBe('[2001:db8::9:1]');
    expect(v1!.port).toBe(5070);
    expect(v1!.branch).toBe('z9hG4bK776asdhds');
    expect(v1!.rport).toBe(true);
    expect(v1!.received).toBe('2001:db8::9:255');
    expect(v2!.transport).toBe('TCP');
    expect(v2!.port).toBeUndefined();
    expect(v3!.maddr).toBe('239.255.255.1');
    expect(v3!.ttl).toBe(16);
    expect(m.topVia!.sentBy).toBe('[2001:db8::9:1]:5070');
  });

  it('gives typed name-addrs with unescaped display names and params', () => {
    expect(m.to.displayName).toBe('Bob "the" Builder');
    expect(m.from.displayName).toBe('Alice');
    expect(m.from.tag).toBe('1928301774');
    expect((m.from.uri as SipUri).host).toBe('atlanta.example.com');
    const contacts = m.contact;
    expect(contacts).not.toBe('*');
    if (contacts !== '*') {
      expect(contacts[0]!.expires).toBe(60);
      expect(contacts[0]!.q).toBe(0.7);
      expect((contacts[0]!.uri as SipUri).transport).toBe('tcp');
      expect(contacts[1]!.displayName).toBe('x, y');
    }
    expect(m.recordRoute.map((r) => r.uriText)).toEqual(['sip:p1.example.com;lr', 'sip:p2.example.com;lr']);
    expect(m.route[0]!.uriText).toBe('sip:p3.example.com;lr');
  });

  it('gives CSeq, Max-Forwards, Content-Length, Content-Type and Reason', () => {
    expect(m.cseq).toEqual({ seq: 314159, method: 'INVITE' });
    expect(m.maxForwards).toBe(70);
    expect(m.contentLength).toBe(4);
    expect(m.contentType!.mediaType).toBe('application/sdp');
    expect(m.contentType!.params.get('charset')).toBe('UTF-8');
    expect(m.reasons).toEqual([
      expect.objectContaining({ protocol: 'Q.850', cause: 16, text: 'Normal call clearing' }),
      expect.objectContaining({ protocol: 'SIP', cause: 487, text: undefined }),
    ]);
    expect(m.bodyText).toBe('v=0\n');
  });

  it('reads Contact: * as the wildcard', () => {
    const r = parseMessage('REGISTER sip:x SIP/2.0\r\nContact: *\r\nExpires: 0\r\n\r\n');
    expect(r.contact).toBe('*');
  });

  it('mutations invalidate typed views', () => {
    const c = m.clone();
    c.prepend('Via', 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnew');
    expect(c.via).toHaveLength(4);
    expect(c.topVia!.branch).toBe('z9hG4bKnew');
    expect(c.removeFirst('via')).toBe('SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnew');
    expect(c.via).toHaveLength(3);
    c.set('To', '<sip:carol@example.com>;tag=9');
    expect(c.to.tag).toBe('9');
    expect(c.remove('x-custom')).toBe(2);
    expect(c.has('x-custom')).toBe(false);
    // the original is untouched
    expect(m.via).toHaveLength(3);
    expect(m.getAll('x-custom')).toHaveLength(2);
  });
});

describe('lazy Vias', () => {
  const twoVias = (second: string) =>
    parseMessage(
      [
        'OPTIONS sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtop',
        `Via: ${second}`,
        'From: <sip:a@example.com>;tag=1',
        'To: <sip:bob@example.com>',
        'Call-ID: lazy-via',
        'CSeq: 1 OPTIONS',
        'Max-Forwards: 70',
        '',
        '',
      ].join('\r\n'),
    );

  it('a malformed lower Via does not stop the top one from being read; reading it throws', () => {
    const m = twoVias('SIP/2.0/UDP bad host:99999;branch=z9hG4bKx');
    const [top, below] = m.via;
    expect(top!.branch).toBe('z9hG4bKtop');
    expect(top!.sentBy).toBe('192.0.2.1:5060');
    expect(() => below!.host).toThrow(SipParseError);
    // It stays unparsed: every read says so, none returns a half-filled field.
    expect(() => below!.port).toThrow(SipParseError);
    expect(validate(m)).toMatchObject({ status: 400 });
  });

  it('an unread Via serializes as received, a read one as the model', () => {
    const m = twoVias('SIP/2.0/tcp 198.51.100.7;received=198.51.100.8');
    const below = m.via[1]!;
    expect(String(below)).toBe('SIP/2.0/tcp 198.51.100.7;received=198.51.100.8');
    expect(below.transport).toBe('TCP');
    expect(below.received).toBe('198.51.100.8');
    below.port = 5061;
    expect(String(below)).toBe('SIP/2.0/TCP 198.51.100.7:5061;received=198.51.100.8');
  });

  it('parseVia stays eager: a malformed via-parm throws at once', () => {
    expect(() => parseVia('SIP/2.0/UDP')).toThrow(SipParseError);
    expect(() => parseVia('SIP/2.0/UDP host:70000')).toThrow(SipParseError);
  });
});

describe('header grammars', () => {
  it('parseVia tolerates LWS around slashes and semicolons (RFC 4475 §3.1.1.1)', () => {
    const v = parseVia('SIP  /   2.0 /UDP    192.0.2.2 ; branch = z9hG4bK1 ; received=10.0.0.1');
    expect(v.protocol).toBe('SIP/2.0');
    expect(v.branch).toBe('z9hG4bK1');
    expect(v.received).toBe('10.0.0.1');
    expect(v.toString()).toBe('SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1;received=10.0.0.1');
  });

  it.each([
    ['SIP/2.0/UDP'],
    ['SIP/2.0 UDP host'],
    ['SIP/2.0/UDP host;;'],
    ['SIP/2.0/UDP host:99999'],
    [''],
  ])('parseVia rejects %j (parameters on first use)', (s) => {
    expect(() => parseVia(s).params).toThrow(SipParseError);
  });

  it('parseNameAddr: addr-spec params belong to the header (§20.10)', () => {
    const na = parseNameAddr('sip:+19725552222@gw1.example.net;unknownparam');
    expect(na.uriText).toBe('sip:+19725552222@gw1.example.net');
    expect(na.params.has('unknownparam')).toBe(true);
    expect(na.toString()).toBe('<sip:+19725552222@gw1.example.net>;unknownparam');
  });

  it('parseNameAddr keeps UTF-8 display names and round-trips quoting', () => {
    const na = parseNameAddr('"Jürgen \\\\ Ünal" <sip:j@example.com>;tag=x');
    expect(na.displayName).toBe('Jürgen \\ Ünal');
    expect(parseNameAddr(na.toString()).displayName).toBe('Jürgen \\ Ünal');
  });

  it.each([
    ['"unbalanced <sip:a@b>'],
    ['Bell, Alexander <sip:a@b>'],
    ['< sip:a@b >'],
    ['<sip:a@b'],
    ['sip:a@b?Route=x'],
    ['<>'],
  ])('parseNameAddr rejects %j', (s) => {
    expect(() => parseNameAddr(s)).toThrow(SipParseError);
  });

  it('splitList handles escaped quotes', () => {
    expect(splitList('"a \\" , b" <sip:x>, <sip:y,z>')).toEqual(['"a \\" , b" <sip:x>', '<sip:y,z>']);
    expect(splitList('')).toEqual([]);
  });

  it('parseReason reads RFC 3326 values', () => {
    expect(parseReason('Q.850 ;cause=17 ;text="User busy"')).toMatchObject({ protocol: 'Q.850', cause: 17, text: 'User busy' });
  });
});

describe('parameter lists', () => {
  // parseParams sizes its list from the semicolons ahead; one inside a quoted value must not
  // leave an empty slot that size, entries or serialization would see.
  it('a semicolon inside a quoted value is part of the value', () => {
    const na = parseNameAddr('<sip:a@example.com>;x="a;b;c";tag=1;lr', 'to');
    expect(na.params.size).toBe(3);
    expect([...na.params.entries()]).toEqual([
      ['x', '"a;b;c"'],
      ['tag', '1'],
      ['lr', null],
    ]);
    expect(na.params.get('x')).toBe('a;b;c');
    na.params.set('y', '2');
    expect(na.params.toString()).toBe(';x="a;b;c";tag=1;lr;y=2');
  });
});
