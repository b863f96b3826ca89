import { describe, expect, it } from 'vitest';
import {
  createRequest,
  createResponse,
  parseMessage,
  SipParseError,
  SipRequest,
  SipResponse,
  validate,
  type SipParseErrorCode,
} from '../../src/parser/index.js';

function codeOf(fn: () => unknown): SipParseErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof SipParseError) return e.code;
    throw e;
  }
  return undefined;
}

const OPTIONS = 'OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n';

describe('parseMessage', () => {
  it('parses a response, including an empty reason phrase and a UTF-8 one', () => {
    const r = parseMessage('SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n') as SipResponse;
    expect(r.status).toBe(100);
    expect(r.reason).toBe('');
    const u = parseMessage('SIP/2.0 486 Занято\r\nl: 0\r\n\r\n') as SipResponse;
    expect(u.reason).toBe('Занято');
    expect(u.toString()).toContain('SIP/2.0 486 Занято\r\n');
  });

  it('accepts bytes and strings alike and skips leading CRLFs (§7.5)', () => {
    const s = '\r\n\r\n' + OPTIONS + 'Content-Length: 0\r\n\r\n';
    const a = parseMessage(s);
    const b = parseMessage(new Uint8Array(Buffer.from(s)));
    expect(a.toString()).toBe(b.toString());
  });

  it('keeps binary bodies exact (NULs, bare LFs)', () => {
    const body = Buffer.from([0, 10, 13, 0, 255, 10, 10, 0]);
    const msg = Buffer.concat([Buffer.from(OPTIONS + `Content-Length: ${body.length}\r\n\r\n`), body]);
    const m = parseMessage(msg);
    expect(Buffer.from(m.body).equals(body)).toBe(true);
    expect(parseMessage(m.toBytes()).body).toEqual(m.body);
  });

  it('discards datagram octets past Content-Length (§18.3)', () => {
    const m = parseMessage(OPTIONS + 'Content-Length: 2\r\n\r\nabcdef');
    expect(m.bodyText).toBe('ab');
  });

  it('takes a datagram without Content-Length to its end', () => {
    expect(parseMessage(OPTIONS + '\r\nhello').bodyText).toBe('hello');
  });

  it('accepts bare-LF line ends liberally', () => {
    const m = parseMessage(OPTIONS.replace(/\r\n/g, '\n') + 'l: 2\n\nhi');
    expect(m.callId).toBe('c1');
    expect(m.bodyText).toBe('hi');
  });

  // Lines are read by byte offsets; in a message that is not all ASCII, values are decoded
  // from the bytes as UTF-8 when read. Both kinds of message must read alike.
  it.each([
    ['ASCII headers, ASCII body', 'José', false],
    ['UTF-8 display name', 'José', true],
    ['binary body', 'Jose', false],
  ])('reads headers and body alike on either decode path: %s', (_label, name, utf8Header) => {
    const body = _label === 'binary body' ? Buffer.from([0xff, 0xfe, 13, 10, 13, 10, 0x80]) : Buffer.from('v=0\r\n');
    const from = utf8Header ? `"${name}" <sip:b@example.com>;tag=1` : '<sip:b@example.com>;tag=1';
    const head = OPTIONS.replace('From: <sip:b@example.com>;tag=1', `From: ${from}`) + 'X-Folded: a\r\n  b\r\n';
    const bytes = Buffer.concat([Buffer.from(head + `Content-Length: ${body.length}\r\n\r\n`), body]);
    const m = parseMessage(bytes);
    expect(m.from.tag).toBe('1');
    if (utf8Header) expect(m.from.displayName).toBe('José');
    expect(m.get('x-folded')).toBe('a b');
    expect(m.cseq).toEqual({ seq: 1, method: 'OPTIONS' });
    expect(m.bodyLength).toBe(body.length);
    expect(Buffer.from(m.body).equals(body)).toBe(true);
    const again = parseMessage(m.toBytes());
    expect(again.headerLines()).toEqual(m.headerLines());
    expect(Buffer.from(again.body).equals(body)).toBe(true);
  });

  it('decodes UTF-8 values, folds and the start line by byte offsets, and re-sends them unchanged', () => {
    const head =
      'MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: "Jürgen Ö" <sip:j@example.com>;tag=ä1\r\n' +
      'To: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\nSubject: 日本語\r\nX-Folded: ä\r\n  ö ü\r\n' +
      'X-Bad: a\xffb\r\nX-Last: €\r\n';
    const bytes = Buffer.concat([Buffer.from(head.replace('\xff', '\u0000'), 'utf8'), Buffer.from('Content-Length: 2\r\n\r\nhé')]);
    bytes[bytes.indexOf(0)] = 0xff; // a byte that is not UTF-8
    const m = parseMessage(bytes);
    expect(m.from.displayName).toBe('Jürgen Ö');
    expect(m.from.tag).toBe('ä1');
    expect(m.get('subject')).toBe('日本語');
    expect(m.get('x-folded')).toBe('ä ö ü');
    expect(m.get('x-bad')).toBe('a\ufffdb');
    expect(m.get('x-last')).toBe('€');
    expect(m.callId).toBe('c1');
    expect(m.bodyText).toBe('h\ufffd'); // Content-Length 2 cuts 'é' (2 bytes) in half
    const out = m.toBytes().toString('latin1');
    // Unchanged lines are re-sent byte for byte (the undecodable byte as U+FFFD); the fold is joined.
    expect(out).toContain(Buffer.from('From: "Jürgen Ö" <sip:j@example.com>;tag=ä1\r\n').toString('latin1'));
    expect(out).toContain(Buffer.from('Subject: 日本語\r\nX-Folded: ä ö ü\r\nX-Bad: a\ufffdb\r\nX-Last: €\r\n').toString('latin1'));
    const r = parseMessage(Buffer.from('SIP/2.0 480 Temporairement indisponible — réessayez\r\nContent-Length: 0\r\n\r\n')) as SipResponse;
    expect(r.reason).toBe('Temporairement indisponible — réessayez');
  });

  it('keeps the wire names of extension headers and writes registered ones long', () => {
    const m = parseMessage(OPTIONS.replace('Call-ID', 'i') + 'x-lower: 1\r\nX-Upper: 2\r\nsubject: s\r\nContent-Length: 0\r\n\r\n');
    expect(m.headerLines().map(([n]) => n)).toEqual(['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'x-lower', 'X-Upper', 'Subject', 'Content-Length']);
    m.set('X-lower', 'a');
    m.append('x-new', 'b');
    m.prepend('X-First', 'c');
    expect(m.headerLines().map(([n]) => n)).toEqual(['X-First', 'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'X-lower', 'X-Upper', 'Subject', 'Content-Length', 'x-new']);
    expect(m.get('x-lower')).toBe('a');
  });

  it('refuses a folded Content-Length whose character beyond ASCII ends in a digit byte', () => {
    // U+0131 is 0x31 ('1') in its low byte: only its UTF-8 bytes are read as the value.
    expect(codeOf(() => parseMessage(OPTIONS + 'Content-Length:\r\n \u0131\r\n\r\nx'))).toBe('BAD_CONTENT_LENGTH');
    expect(parseMessage(OPTIONS + 'Content-Length:\r\n 1\r\n\r\nx').bodyLength).toBe(1);
  });

  it('judges repeated Content-Length values after unfolding them', () => {
    const m = parseMessage(OPTIONS + 'Content-Length: 2\r\nContent-Length:\r\n 2\r\n\r\nhi');
    expect(m.framingError).toBe(false);
    expect(m.bodyText).toBe('hi');
    const bad = parseMessage(OPTIONS + 'Content-Length: 2\r\nContent-Length:\r\n 3\r\n\r\nhi!');
    expect(bad.framingError).toBe(true);
  });

  it('slices values on first read and keeps edits, clones and re-serialization consistent', () => {
    const m = parseMessage(OPTIONS + 'Subject: first\r\nContent-Length: 0\r\n\r\n');
    const c = m.clone();
    m.set('Subject', 'changed');
    expect(m.get('subject')).toBe('changed');
    expect(c.get('subject')).toBe('first');
    expect(c.toString()).toContain('\r\nSubject: first\r\n');
    expect(m.toString()).toContain('\r\nSubject: changed\r\n');
    m.prepend('Via', 'SIP/2.0/UDP p;branch=z9hG4bKp');
    expect(m.via.map((v) => v.host)).toEqual(['p', 'h']);
    expect(parseMessage(m.toBytes()).get('to')).toBe('<sip:a@example.com>');
  });

  it.each<[string, string, SipParseErrorCode]>([
    ['empty input', '\r\n\r\n', 'EMPTY'],
    ['garbage start line', 'HELLO\r\n\r\n', 'BAD_START_LINE'],
    ['status above 699', 'SIP/2.0 700 Nope\r\n\r\n', 'BAD_START_LINE'],
    ['two-digit status', 'SIP/2.0 20 OK\r\n\r\n', 'BAD_START_LINE'],
    ['bad version', 'OPTIONS sip:a SIP/2\r\n\r\n', 'BAD_START_LINE'],
    ['header without colon', 'OPTIONS sip:a SIP/2.0\r\nBogus\r\n\r\n', 'BAD_HEADER'],
    ['bad header name', 'OPTIONS sip:a SIP/2.0\r\nBad Name: x\r\n\r\n', 'BAD_HEADER'],
    ['continuation first', 'OPTIONS sip:a SIP/2.0\r\n folded: x\r\n\r\n', 'BAD_HEADER'],
    ['negative Content-Length', 'OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n', 'BAD_CONTENT_LENGTH'],
    ['short body', 'OPTIONS sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc', 'CONTENT_LENGTH_MISMATCH'],
  ])('rejects %s', (_l, input, code) => {
    expect(codeOf(() => parseMessage(input))).toBe(code);
  });

  it('enforces limits as SipParseErrors', () => {
    const many = 'OPTIONS sip:a SIP/2.0\r\n' + 'X: 1\r\n'.repeat(20) + '\r\n';
    expect(codeOf(() => parseMessage(many, { limits: { maxHeaders: 10 } }))).toBe('TOO_MANY_HEADERS');
    const long = 'OPTIONS sip:a SIP/2.0\r\nX: ' + 'a'.repeat(200) + '\r\n\r\n';
    expect(codeOf(() => parseMessage(long, { limits: { maxLineLength: 100 } }))).toBe('LINE_TOO_LONG');
    // Counted in bytes: 63 characters, 60 of them two-byte, make a 123-byte line.
    const wide = 'OPTIONS sip:a SIP/2.0\r\nX: ' + 'é'.repeat(60) + '\r\n\r\n';
    expect(codeOf(() => parseMessage(wide, { limits: { maxLineLength: 100 } }))).toBe('LINE_TOO_LONG');
    expect(codeOf(() => parseMessage(wide, { limits: { maxLineLength: 130 } }))).toBeUndefined();
    expect(codeOf(() => parseMessage(Buffer.alloc(70_000, 65)))).toBe('TOO_LARGE');
  });

  it('requires Content-Length in stream mode', () => {
    expect(codeOf(() => parseMessage(OPTIONS + '\r\n', { stream: true }))).toBe('MISSING_CONTENT_LENGTH');
  });

  it('serializes with long header names and the real Content-Length', () => {
    const m = parseMessage(OPTIONS.replace('Call-ID', 'i') + 'l: 5\r\n\r\nhello');
    m.body = Buffer.from('hi');
    const out = m.toString();
    expect(out).toContain('\r\nCall-ID: c1\r\n');
    expect(out).toContain('\r\nContent-Length: 2\r\n');
    expect(out.endsWith('\r\n\r\nhi')).toBe(true);
    expect(out.match(/Content-Length/g)).toHaveLength(1);
  });

  it('writes a head beyond ASCII as UTF-8 before a body (Latin-1, BMP and astral characters alike)', () => {
    // Each would come out wrong written a byte per character: é (0xE9), Ł (U+0141 → 0x41 'A'), 😀 (a surrogate pair).
    for (const name of ['José', 'Łukasz', 'Smile 😀']) {
      const m = createRequest({ method: 'MESSAGE', uri: 'sip:a@example.com', from: `"${name}" <sip:b@example.com>`, to: '<sip:a@example.com>', body: 'hello', contentType: 'text/plain' });
      const bytes = m.toBytes();
      expect(bytes.equals(Buffer.concat([Buffer.from(m.head(), 'utf8'), Buffer.from('hello')]))).toBe(true);
      expect(bytes.includes(Buffer.from(`"${name}"`, 'utf8'))).toBe(true);
      expect((parseMessage(bytes) as SipRequest).from.displayName).toBe(name);
    }
  });
});

describe('builders', () => {
  it('createRequest fills the mandatory headers and a From tag', () => {
    const r = createRequest({
      method: 'INVITE',
      uri: 'sip:bob@example.com',
      from: '"Alice" <sip:alice@example.com>',
      to: '<sip:bob@example.com>',
      via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport',
      body: 'v=0\r\n',
      contentType: 'application/sdp',
      headers: { Supported: '100rel', Allow: ['INVITE', 'ACK'] },
    });
    expect(r.from.tag).toMatch(/^[0-9a-f]{16}$/);
    expect(r.cseq).toEqual({ seq: 1, method: 'INVITE' });
    expect(r.maxForwards).toBe(70);
    expect(r.callId.length).toBeGreaterThan(10);
    expect(r.getAll('allow')).toEqual(['INVITE', 'ACK']);
    const back = parseMessage(r.toBytes()) as SipRequest;
    expect(back.contentLength).toBe(5);
    expect(validate(back)).toBeNull();
  });

  it('createResponse copies Via/From/To/Call-ID/CSeq and adds a To tag (§8.2.6)', () => {
    const req = parseMessage(OPTIONS + 'Timestamp: 54\r\nRecord-Route: <sip:p;lr>\r\nContent-Length: 0\r\n\r\n') as SipRequest;
    const trying = createResponse(req, 100);
    expect(trying.to.tag).toBeUndefined();
    expect(trying.get('timestamp')).toBe('54');
    const ok = createResponse(req, 200, { toTag: 'abc' });
    expect(ok.reason).toBe('OK');
    expect(ok.to.tag).toBe('abc');
    expect(ok.get('to')).toBe('<sip:a@example.com>;tag=abc');
    expect(ok.via.map(String)).toEqual(req.via.map(String));
    expect(ok.callId).toBe('c1');
    expect(ok.cseq).toEqual(req.cseq);
    expect(ok.has('record-route')).toBe(false); // OPTIONS creates no dialog
    expect(ok.has('timestamp')).toBe(false);
    expect(ok).toBeInstanceOf(SipResponse);
  });

  it('createResponse keeps an existing To tag', () => {
    const req = parseMessage(OPTIONS.replace('To: <sip:a@example.com>', 'To: <sip:a@example.com>;tag=zz') + '\r\n') as SipRequest;
    expect(createResponse(req, 486).to.tag).toBe('zz');
  });
});

describe('serialization reuses unchanged received lines', () => {
  // The fast path must produce exactly what writing every header out would.
  function rebuilt(m: SipRequest | SipResponse): string {
    const lines = m.headerLines();
    const names = lines.map(([n]) => n);
    const keys = names.map((n) => n.toLowerCase());
    const values = lines.map(([, v]) => v);
    const copy = m.type === 'request' ? new SipRequest(m.method, m.uri, names, keys, values, m.body, m.version) : new SipResponse(m.status, m.reason, names, keys, values, m.body, m.version);
    return copy.toString();
  }

  const samples = [
    OPTIONS + 'Content-Length: 0\r\n\r\n',
    OPTIONS.replace('Call-ID', 'i') + 'X-Folded: a\r\n b\r\nContent-Length:  3\r\n\r\nabc',
    'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 8\r\n\r\nv=0\r\nabc',
    OPTIONS.replace(/\r\n/g, '\n') + 'l: 0\n\n',
    OPTIONS + 'Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi',
  ];

  it.each(samples.map((s, i) => [i, s] as const))('sample %i serializes as if rebuilt', (_i, text) => {
    const m = parseMessage(text);
    expect(m.toString()).toBe(rebuilt(m));
    // and after every kind of change
    const c = m.clone();
    c.prepend('Via', 'SIP/2.0/UDP proxy;branch=z9hG4bKp');
    expect(c.toString()).toBe(rebuilt(c));
    c.set('To', '<sip:z@z>;tag=9');
    expect(c.toString()).toBe(rebuilt(c));
    c.removeFirst('Via');
    c.remove('cseq');
    c.append('CSeq', '7 OPTIONS');
    c.body = Buffer.from('changed body');
    expect(c.toString()).toBe(rebuilt(c));
    expect(c.toString()).toContain('Content-Length: 12\r\n');
    expect(m.toString()).toBe(rebuilt(m));
  });

  it.each(samples.filter((s) => !s.startsWith('SIP/')).map((s, i) => [i, s] as const))(
    'a response built from request sample %i shares its lines and still serializes as if rebuilt',
    (_i, text) => {
      const req = parseMessage(text) as SipRequest;
      for (const status of [100, 180, 200, 486]) {
        const res = createResponse(req, status, { toTag: 't1', headers: { Contact: '<sip:me@h>' } });
        expect(res.toString()).toBe(rebuilt(res));
        expect(res.via.map((v) => v.branch)).toEqual(req.via.map((v) => v.branch));
        expect(res.get('call-id')).toBe(req.callId);
        expect(res.to.tag).toBe(status > 100 ? 't1' : undefined);
        const again = parseMessage(res.toBytes()) as SipResponse;
        expect(again.headerLines().filter(([n]) => n !== 'Content-Length')).toEqual(res.headerLines());
      }
    },
  );
});

describe('serialization copies the received bytes of an unchanged canonical message', () => {
  const CANONICAL = OPTIONS + 'Content-Length: 3\r\n\r\nabc';
  const wireOf = (m: SipRequest | SipResponse) => Buffer.concat([Buffer.from(m.head()), m.body]);

  it('sends back exactly the received bytes, as a copy', () => {
    const input = Buffer.from('\r\n' + CANONICAL + 'trailing bytes past Content-Length');
    const m = parseMessage(input);
    const out = m.toBytes();
    expect(out.toString()).toBe(CANONICAL);
    expect(m.toString()).toBe(CANONICAL);
    out[0] = 0x58; // writing into the result must not reach the message
    expect(m.toBytes().toString()).toBe(CANONICAL);
  });

  const changes: Array<[string, (m: SipRequest) => void, string]> = [
    ['set', (m) => m.set('Max-Forwards', 69), 'Max-Forwards: 69\r\n'],
    ['append', (m) => m.append('Subject', 'hi'), 'Subject: hi\r\n'],
    ['prepend', (m) => m.prepend('Via', 'SIP/2.0/UDP p;branch=z9hG4bKp'), 'Via: SIP/2.0/UDP p;branch=z9hG4bKp\r\nVia: SIP/2.0/UDP h'],
    ['remove', (m) => m.remove('Max-Forwards'), 'CSeq: 1 OPTIONS\r\nContent-Length'],
    ['removeFirst', (m) => m.removeFirst('Via'), 'OPTIONS sip:a@example.com SIP/2.0\r\nFrom'],
    ['body', (m) => (m.body = Buffer.from('hello')), 'Content-Length: 5\r\n\r\nhello'],
    ['method', (m) => (m.method = 'INFO'), 'INFO sip:a@example.com SIP/2.0\r\n'],
    ['uri', (m) => (m.uri = 'sip:z@example.com'), 'OPTIONS sip:z@example.com SIP/2.0\r\n'],
    ['version', (m) => (m.version = 'SIP/3.0'), 'OPTIONS sip:a@example.com SIP/3.0\r\n'],
  ];
  it.each(changes)('a change through %s is serialized', (_name, change, expected) => {
    const m = parseMessage(CANONICAL) as SipRequest;
    m.toBytes();
    change(m);
    expect(m.toBytes().toString()).toContain(expected);
    expect(m.toBytes().equals(wireOf(m))).toBe(true);
    expect(m.toString()).toBe(wireOf(m).toString());
  });

  it('a response whose status or reason changes is serialized', () => {
    const r = parseMessage('SIP/2.0 180 Ringing\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n') as SipResponse;
    r.status = 183;
    expect(r.toString()).toBe('SIP/2.0 183 Ringing\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n');
    r.reason = 'Session Progress';
    expect(r.toString()).toMatch(/^SIP\/2\.0 183 Session Progress\r\n/);
  });

  // Each of these is written differently from how the serializer writes it, so a copy would be wrong.
  it.each([
    ['compact name', OPTIONS.replace('Call-ID', 'i') + 'Content-Length: 0\r\n\r\n'],
    ['no space after the colon', OPTIONS.replace('CSeq: ', 'CSeq:') + 'Content-Length: 0\r\n\r\n'],
    ['bare LF empty line', OPTIONS + 'Content-Length: 0\r\n\n'],
    ['a CR ending the datagram instead of the empty line', OPTIONS + 'Content-Length: 0\r\n\r'],
    ['LF line ends', OPTIONS.replace(/\r\n/g, '\n') + 'Content-Length: 0\n\n'],
    ['leading zero Content-Length', OPTIONS + 'Content-Length: 03\r\n\r\nabc'],
    ['no Content-Length', OPTIONS + '\r\nabc'],
    ['repeated Content-Length', OPTIONS + 'Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc'],
    ['folded value', OPTIONS + 'Subject: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
    ['status line without the SP before an empty reason', 'SIP/2.0 200\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n'],
    ['non-ASCII byte', OPTIONS + 'Subject: \xff\r\nContent-Length: 0\r\n\r\n'],
  ])('%s: serialized from its parts', (_name, text) => {
    const input = Buffer.from(text, 'latin1');
    const m = parseMessage(input);
    expect(m.toBytes().equals(wireOf(m))).toBe(true);
    expect(m.toBytes().equals(input)).toBe(false);
  });
});

describe('validate never throws', () => {
  it('a huge Max-Forwards is a 400 for a proxy, not an exception (found by the mutation property)', () => {
    const m = parseMessage(OPTIONS.replace('Max-Forwards: 70', 'Max-Forwards: 99999999999') + 'Content-Length: 0\r\n\r\n');
    expect(validate(m, { role: 'proxy' })).toMatchObject({ status: 400, reason: 'Bad Max-Forwards' });
    const big = parseMessage(OPTIONS.replace('Max-Forwards: 70', 'Max-Forwards: 300') + 'Content-Length: 0\r\n\r\n');
    // Above 255 is unusual, not malformed (1*DIGIT): RFC 4475 §3.1.2.4 lets an element carry on.
    expect(validate(big, { role: 'proxy' })).toBeNull();
    expect(big.maxForwards).toBe(300);
  });
});

describe('validate reads Max-Forwards, Date and Require only as far as they are there', () => {
  const req = (extra: string) => parseMessage(OPTIONS.replace('Max-Forwards: 70\r\n', '') + extra + 'Content-Length: 0\r\n\r\n');
  it.each<[string, boolean]>([
    ['70', true],
    ['0000000070', true],
    ['2147483647', true],
    ['2147483648', false],
    ['00000000070', false],
    ['7a', false],
    ['-1', false],
    ['\f70', true],
  ])('Max-Forwards %j (valid: %s)', (value, ok) => {
    const r = validate(req(`Max-Forwards: ${value}\r\n`), { role: 'uas' });
    if (ok) expect(r).toBeNull();
    else expect(r).toMatchObject({ status: 400, reason: 'Bad Max-Forwards' });
  });

  it('without Max-Forwards, Date or Require a request passes; a bad Date does not', () => {
    expect(validate(req(''))).toBeNull();
    expect(validate(req('Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n'))).toBeNull();
    expect(validate(req('Date: yesterday\r\n'))).toMatchObject({ status: 400, reason: 'Bad Date' });
  });

  it('checks Require as a UAS or B2BUA and Proxy-Require as a proxy', () => {
    for (const role of ['uas', 'b2bua'] as const) {
      expect(validate(req('Require: foo, 100rel\r\n'), { role, supported: ['100REL'] })).toMatchObject({ status: 420, headers: [['Unsupported', 'foo']] });
      expect(validate(req('Proxy-Require: foo\r\n'), { role })).toBeNull();
    }
    expect(validate(req('Require: foo\r\n'), { role: 'proxy' })).toBeNull();
    expect(validate(req('Proxy-Require: foo\r\n'), { role: 'proxy' })).toMatchObject({ status: 420, headers: [['Unsupported', 'foo']] });
    // Never on ACK (§8.2.2.3).
    const ack = parseMessage(OPTIONS.replace(/OPTIONS/g, 'ACK') + 'Require: foo\r\nContent-Length: 0\r\n\r\n');
    expect(validate(ack)).toBeNull();
  });
});

describe('validate checks the URIs later layers route on', () => {
  it('a Record-Route whose URI does not parse is refused (a response would be dropped)', () => {
    const res = parseMessage('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nRecord-Route: <sip:@@>\r\nContent-Length: 0\r\n\r\n');
    expect(validate(res)).toMatchObject({ status: 400 });
    const req = parseMessage(OPTIONS + 'Route: <sip:proxy.example.com:99999;lr>\r\nContent-Length: 0\r\n\r\n');
    expect(validate(req)).toMatchObject({ status: 400 });
  });
});

describe('validate names missing and repeated headers', () => {
  it.each<[string, string, string, string]>([
    ['missing To and Call-ID', OPTIONS.replace('To: <sip:a@example.com>\r\n', '').replace('Call-ID: c1\r\n', ''), 'Missing To, Call-ID', 'MISSING_HEADER'],
    ['missing Via', OPTIONS.replace('Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n', ''), 'Missing Via', 'MISSING_HEADER'],
    ['CSeq twice', OPTIONS + 'CSeq: 1 OPTIONS\r\n', 'Multiple CSeq headers', 'DUPLICATE_HEADER'],
    ['Call-ID long and compact', OPTIONS + 'i: c1\r\n', 'Multiple Call-ID headers', 'DUPLICATE_HEADER'],
    ['Content-Type twice', OPTIONS + 'c: text/plain\r\nContent-Type: text/plain\r\n', 'Multiple Content-Type headers', 'DUPLICATE_HEADER'],
  ])('%s', (_label, head, reason, code) => {
    const r = validate(parseMessage(head + 'Content-Length: 0\r\n\r\n'));
    expect(r).toMatchObject({ status: 400, reason, code });
  });

  it('accepts two Via lines and one of everything else', () => {
    expect(validate(parseMessage(OPTIONS + 'v: SIP/2.0/UDP p;branch=z9hG4bKp\r\nContent-Length: 0\r\n\r\n'))).toBeNull();
  });
});

describe('compact', () => {
  it('keeps content and bytes, drops cached views (parsed again on the next read)', () => {
    const m = parseMessage(OPTIONS + 'Subject: s\r\nContent-Length: 2\r\n\r\nhi') as SipRequest;
    const before = m.toString();
    const from = m.from;
    const via = m.via;
    const uri = m.requestUri;
    expect(m.compact()).toBe(m);
    expect(m.toString()).toBe(before);
    expect(m.from).not.toBe(from);
    expect(m.from.tag).toBe(from.tag);
    expect(m.via).not.toBe(via);
    expect(m.via.map((v) => v.branch)).toEqual(via.map((v) => v.branch));
    expect(m.requestUri).not.toBe(uri);
    expect(m.get('subject')).toBe('s');
    m.append('X-After', '1');
    expect(parseMessage(m.toBytes()).get('x-after')).toBe('1');
    const built = createRequest({ method: 'BYE', uri: 'sip:b@h', from: '<sip:a@h>;tag=1', to: '<sip:b@h>;tag=2', callId: 'c', cseq: 2 });
    const text = built.toString();
    expect(built.compact().toString()).toBe(text);
  });
});
