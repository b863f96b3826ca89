import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  NameAddr,
  parseMessage,
  parseNameAddr,
  parseParams,
  SipParseError,
  validate,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from '../../src/parser/index.js';
import { CONFORMANCE_DIR } from '../support/conformance.js';

const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`\'~'.split(''));
const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
const alnum = fc.stringMatching(/^[a-z0-9]{1,10}$/);
const host = fc.oneof(
  fc.tuple(alnum, alnum).map(([a, b]) => `${a}.${b}.example`),
  fc.ipV4(),
  fc.ipV6().map((ip) => `[${ip}]`),
);
const sipUri = fc
  .record({
    user: fc.option(fc.stringMatching(/^[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,12}$/), { nil: undefined }),
    host,
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    params: fc.array(fc.tuple(alnum, fc.option(alnum, { nil: undefined })), { maxLength: 3 }),
  })
  .map(
    ({ user, host, port, params }) =>
      'sip:' + (user ? user + '@' : '') + host + (port ? ':' + port : '') + params.map(([k, v]) => ';' + k + (v ? '=' + v : '')).join(''),
  );
// Any text without line breaks: header values are UTF-8 and may hold anything but CR/LF.
const word = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).filter((s) => !/[\r\n\t ,]/.test(s) && !s.includes('\u0000'));
const displayName = fc.string({ unit: 'grapheme', maxLength: 16 }).filter((s) => !/[\r\n]/.test(s) && s.trim() === s && s.length > 0);

function escapeQuoted(s: string): string {
  return s.replace(/["\\]/g, '\\$&');
}

/** A header as the model sees it, and a choice of how to write it on the wire. */
const header = fc.oneof(
  fc.record({
    key: fc.constant('subject'),
    name: fc.constantFrom('Subject', 's', 'SUBJECT'),
    words: fc.array(word, { minLength: 1, maxLength: 5 }),
  }),
  fc.record({
    key: fc.constant('x-ext'),
    name: fc.constantFrom('X-Ext', 'x-ext'),
    words: fc.array(word, { minLength: 1, maxLength: 5 }),
  }),
  fc.record({ key: fc.constant('supported'), name: fc.constantFrom('Supported', 'k'), words: fc.array(token, { minLength: 1, maxLength: 1 }) }),
  fc.record({ key: fc.constant('route'), name: fc.constant('Route'), words: sipUri.map((u) => [`<${u};lr>`]) }),
);

const message = fc.record({
  request: fc.boolean(),
  method: token,
  uri: sipUri,
  status: fc.integer({ min: 100, max: 699 }),
  reason: fc.array(word, { maxLength: 4 }).map((w) => w.join(' ')),
  display: displayName,
  fromUri: sipUri,
  tag: alnum,
  headers: fc.array(fc.tuple(header, fc.array(fc.constantFrom(' ', '\r\n ', '\r\n\t', '   '), { minLength: 5, maxLength: 5 })), {
    maxLength: 8,
  }),
  joinLists: fc.boolean(),
  body: fc.uint8Array({ maxLength: 256 }),
});

type Model = {
  start: string;
  headers: Array<[string, string[]]>;
  body: number[];
};

function modelOf(m: SipMessage): Model {
  const keys: string[] = [];
  for (const k of ['via', 'from', 'to', 'call-id', 'cseq', 'subject', 'x-ext', 'supported', 'route']) if (m.has(k)) keys.push(k);
  return {
    start: m.startLine(),
    headers: keys.map((k) => [k, m.getAll(k)]),
    body: Array.from(m.body),
  };
}

describe('parser properties', () => {
  it('round trip: generated wire text → parse → model, and → bytes → parse → same model', () => {
    fc.assert(
      fc.property(message, (g) => {
        const lines: string[] = [];
        lines.push(g.request ? `${g.method} ${g.uri} SIP/2.0` : `SIP/2.0 ${g.status} ${g.reason}`);
        lines.push('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc');
        lines.push(`f: "${escapeQuoted(g.display)}" <${g.fromUri}>;tag=${g.tag}`);
        lines.push('To: <sip:x@example.com>');
        lines.push('i: call-1@example.com');
        lines.push(`CSeq: 1 ${g.request ? g.method : 'INVITE'}`);
        const expected = new Map<string, string[]>();
        let lastList: { key: string; index: number } | undefined;
        for (const [h, gaps] of g.headers) {
          const value = h.words.join(' ');
          const list = expected.get(h.key) ?? [];
          list.push(value);
          expected.set(h.key, list);
          const isList = h.key === 'supported' || h.key === 'route';
          if (isList && g.joinLists && lastList?.key === h.key) {
            lines[lastList.index] += ', ' + value;
            continue;
          }
          const folded = h.words.map((w, i) => (i === 0 ? w : gaps[i % gaps.length]!.replace('   ', ' ') + w)).join('');
          lines.push(`${h.name}: ${folded}`);
          lastList = isList ? { key: h.key, index: lines.length - 1 } : undefined;
        }
        lines.push(`Content-Length: ${g.body.length}`);
        const wire = Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), g.body]);

        const m = parseMessage(wire);
        expect(m.type).toBe(g.request ? 'request' : 'response');
        if (g.request) {
          expect((m as SipRequest).method).toBe(g.method);
          expect((m as SipRequest).uri).toBe(g.uri);
        } else {
          expect((m as SipResponse).status).toBe(g.status);
          expect((m as SipResponse).reason).toBe(g.reason);
        }
        expect(m.from.displayName).toBe(g.display);
        expect(m.from.tag).toBe(g.tag);
        expect(m.from.uriText).toBe(g.fromUri);
        for (const [k, values] of expected) expect(m.getAll(k)).toEqual(values);
        expect(Array.from(m.body)).toEqual(Array.from(g.body));
        expect(validate(m)).toBeNull();

        // Canonical (long names, no folds) or not, the bytes equal what writing the parts gives.
        expect(m.toBytes().equals(Buffer.concat([Buffer.from(m.head()), m.body]))).toBe(true);
        const again = parseMessage(m.toBytes());
        expect(modelOf(again)).toEqual(modelOf(m));
        expect(again.toBytes().equals(m.toBytes())).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('name-addr round trip keeps any display name, URI and params', () => {
    fc.assert(
      fc.property(displayName, sipUri, fc.array(fc.tuple(alnum, fc.option(alnum, { nil: null })), { maxLength: 3 }), (dn, uri, params) => {
        const na = new NameAddr(uri, undefined, dn);
        for (const [k, v] of params) na.params.set(k, v);
        const back = parseNameAddr(na.toString());
        expect(back.displayName).toBe(dn);
        expect(back.uriText).toBe(uri);
        expect(back.toString()).toBe(na.toString());
      }),
      { numRuns: 300 },
    );
  });
});

/** Touch every typed view: only SipParseError may come out. */
function exercise(bytes: Uint8Array): void {
  let m: SipRequest | SipResponse;
  try {
    m = parseMessage(bytes);
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
    return;
  }
  // A received message serialized by copying its bytes must equal one written from its parts.
  expect(m.toBytes().equals(Buffer.concat([Buffer.from(m.head()), m.body]))).toBe(true);
  validate(m, { role: 'proxy' });
  validate(m);
  const views: Array<() => unknown> = [
    () => m.via,
    () => m.from.uri,
    () => m.to.uri,
    () => m.cseq,
    () => m.callId,
    () => m.contact,
    () => m.route,
    () => m.recordRoute,
    () => m.reasons,
    () => m.contentType,
    () => m.maxForwards,
    () => (m.type === 'request' ? m.requestUri : m.reason),
    () => m.toBytes(),
  ];
  for (const v of views) {
    try {
      v();
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
    }
  }
}

const corpus = readdirSync(join(CONFORMANCE_DIR, 'rfc4475'))
  .filter((f) => f.endsWith('.dat'))
  .map((f) => readFileSync(join(CONFORMANCE_DIR, 'rfc4475', f)));

describe('parser robustness', () => {
  it('random bytes never throw anything but SipParseError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => exercise(b)), { numRuns: 2000 });
  });

  it('random SIP-looking text never throws anything but SipParseError', () => {
    const piece = fc.constantFrom('INVITE ', 'SIP/2.0', ' 200 ', 'sip:', '@', ':', ';', ',', '"', '\\', '<', '>', '\r\n', '\n', ' ', 'Via: ', 'v:', 'To:', 'Content-Length: ', '9', 'z9hG4bK', '[', ']', '=', 'tag', '%', '\u0000', 'é');
    fc.assert(fc.property(fc.array(piece, { maxLength: 200 }), (parts) => exercise(Buffer.from(parts.join('')))), { numRuns: 2000 });
  });

  it('RFC 4475 messages with random mutations never throw anything but SipParseError', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('dupline' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: corpus.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), (i, muts) => {
        let b = Buffer.from(corpus[i]!);
        for (const mu of muts) {
          if (b.length === 0) break;
          const at = mu.at % b.length;
          if (mu.kind === 'flip') b[at] = mu.byte;
          else if (mu.kind === 'truncate') b = b.subarray(0, at);
          else {
            const s = b.lastIndexOf(10, at);
            const e = b.indexOf(10, at);
            if (e > s) b = Buffer.concat([b.subarray(0, e + 1), b.subarray(s + 1, e + 1), b.subarray(e + 1)]);
          }
        }
        exercise(b);
      }),
      { numRuns: 3000 },
    );
  });

  // Guards against super-linear scans: quadratic work on ~60 KB inputs would blow the test timeout.
  it.each([
    ['many params', 'OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h' + ';a'.repeat(30_000) + '\r\n\r\n'],
    ['many commas', 'OPTIONS sip:a SIP/2.0\r\nRoute: ' + '<sip:a>,'.repeat(7_000) + '\r\n\r\n'],
    ['unbalanced quotes', 'OPTIONS sip:a SIP/2.0\r\nContact: ' + '"a\\'.repeat(15_000) + '\r\n\r\n'],
    ['many folds', 'OPTIONS sip:a SIP/2.0\r\nSubject: x' + '\r\n y'.repeat(5_000) + '\r\n\r\n'],
    ['many headers', 'OPTIONS sip:a SIP/2.0\r\n' + 'a:b\r\n'.repeat(250) + '\r\n'],
  ])('pathological input: %s', (_l, s) => {
    exercise(Buffer.from(s));
  });
});

describe('parameter lists', () => {
  // Token-ish values, and quoted ones with a space inside.
  const simpleValue = fc.string({ unit: fc.constantFrom(...'abcXYZ019-.!%*_+`\'~:[]@/?&'.split('')), minLength: 1, maxLength: 10 });
  const param = fc.tuple(token, fc.option(fc.oneof(simpleValue, simpleValue.map((v) => `"${v} x"`)), { nil: null }));

  it('read the same whether written tightly or with spaces around ; and =', () => {
    fc.assert(
      fc.property(fc.array(param, { maxLength: 6 }), fc.constantFrom(' ', '\t', '  '), (list, ws) => {
        const tight = list.map(([k, v]) => ';' + k + (v === null ? '' : '=' + v)).join('');
        const loose = list.map(([k, v]) => ws + ';' + ws + k + (v === null ? '' : ws + '=' + ws + v)).join('');
        const expected = list.map(([k, v]) => [k, v] as [string, string | null]);
        expect([...parseParams(tight, 0, 'x').entries()]).toEqual(expected);
        expect([...parseParams(loose, 0, 'x').entries()]).toEqual(expected);
        expect([...parseParams('<sip:a@b>' + tight, 9, 'x').entries()]).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('refuse the same malformed lists on both paths', () => {
    for (const bad of [';', ';tag=', ';=x', ';a=b;', ';a b', ';a="x', 'x;a=b']) {
      expect(() => parseParams(bad, 0, 'x'), bad).toThrow(SipParseError);
    }
  });

  it('a tag read on its own equals the tag of the fully parsed list', () => {
    const tagParam = fc.tuple(fc.constantFrom('tag', 'TAG', 'Tag'), fc.option(fc.oneof(simpleValue, token), { nil: null }));
    const lists = fc.array(fc.oneof(param, tagParam), { maxLength: 5 });
    fc.assert(
      fc.property(lists, fc.constantFrom('', ' '), (list, ws) => {
        const text = '"A" <sip:a@example.com>' + list.map(([k, v]) => ws + ';' + k + (v === null ? '' : '=' + v)).join('');
        let full: string | null | undefined;
        try {
          full = parseNameAddr(text, 'to').params.get('tag');
        } catch (err) {
          expect(err).toBeInstanceOf(SipParseError);
          return; // a malformed list: nothing to compare
        }
        expect(parseNameAddr(text, 'to').tag).toBe(full ?? undefined);
      }),
      { numRuns: 1000 },
    );
  });

  it("a received From's tag, read before anything else, equals the tag of the fully parsed From", () => {
    const display = fc.oneof(
      fc.constant(''),
      fc.constantFrom('Alice ', 'Alice  Smith ', '"Alice" ', '"A <b> c" ', '"a \\" <x>" ', '"unterminated <sip:x@y>', 'a@b '),
      displayName.map((d) => `"${escapeQuoted(d)}" `),
    );
    const uri = fc.constantFrom('<sip:a@example.com>', '<sip:a@example.com;tag=u>', 'sip:a@example.com', '<sip:a@example.com', '<>', '< sip:a@b>');
    const tagParam = fc.tuple(fc.constantFrom('tag', 'TAG'), fc.option(fc.oneof(simpleValue, token), { nil: null }));
    const lists = fc.array(fc.oneof(param, tagParam), { maxLength: 4 });
    fc.assert(
      fc.property(display, uri, lists, fc.constantFrom('', ' '), (dn, u, list, ws) => {
        const value = dn + u + list.map(([k, v]) => ws + ';' + k + (v === null ? '' : '=' + v)).join('');
        const head =
          'OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nTo: <sip:b@example.com>\r\n' +
          'Call-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n';
        const m = parseMessage(head + 'From: ' + value + '\r\nContent-Length: 0\r\n\r\n');
        let full: string | null | undefined;
        try {
          full = parseNameAddr(value, 'from').params.get('tag');
        } catch (err) {
          expect(err).toBeInstanceOf(SipParseError);
          // Malformed: reading any other field throws, every time, and validate() refuses it.
          expect(() => m.from.uriText).toThrow(SipParseError);
          expect(() => m.from.displayName).toThrow(SipParseError);
          expect(validate(m)).toMatchObject({ status: 400, reason: 'Bad From' });
          return;
        }
        expect(m.from.tag).toBe(full ?? undefined);
        const eager = parseNameAddr(value, 'from');
        expect([m.from.displayName, m.from.uriText, String(m.from)]).toEqual([eager.displayName, eager.uriText, String(eager)]);
      }),
      { numRuns: 1000 },
    );
  });

  it('a tag read on its own does not excuse the rest: validate() still refuses the message', () => {
    const m = parseMessage(
      'OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n' +
        'From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2;=x\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n' +
        'Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    );
    expect(m.to.tag).toBe('2');
    expect(() => m.to.params).toThrow(SipParseError);
    expect(String(m.to)).toBe('<sip:b@example.com>;tag=2;=x');
    expect(validate(m)).toMatchObject({ status: 400 });
  });
});

describe('check-only readers (what createRequest() checks and then throws away)', () => {
  // Text near the grammars: URIs and name-addrs with their characters mutated, so that both
  // well-formed values and every kind of malformed one come up.
  const uriChar = fc.constantFrom(...'sipSIPtel:+;=@?&[]<>"., \t%_-01239abcABC'.split(''));
  const mutated = (base: fc.Arbitrary<string>) =>
    fc.tuple(base, fc.array(fc.tuple(fc.nat(), uriChar, fc.boolean()), { maxLength: 3 })).map(([s, edits]) => {
      let t = s;
      for (const [at, c, insert] of edits) {
        const k = t.length === 0 ? 0 : at % t.length;
        t = t.slice(0, k) + c + t.slice(insert ? k : k + 1);
      }
      return t;
    });
  const anyUri = fc.oneof(sipUri, sipUri.map((u) => 'SIPS' + u.slice(3)), fc.constant('tel:+1-555;phone-context=x'), fc.constant('urn:x:y'));
  const anyNameAddr = fc.oneof(
    anyUri.map((u) => `<${u}>;tag=a1;lr`),
    anyUri.map((u) => `"Alice B" <${u}> ; q=0.5`),
    anyUri.map((u) => `Bob <${u}>`),
    anyUri,
  );
  const thrown = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return e instanceof SipParseError ? `${e.code} ${e.message}` : `other: ${String(e)}`;
    }
  };

  it('checkUri() throws exactly what parseUri() throws', async () => {
    const { checkUri, parseUri } = await import('../../src/parser/uri.js');
    fc.assert(
      fc.property(mutated(anyUri), (s) => {
        expect(thrown(() => checkUri(s))).toBe(thrown(() => parseUri(s)));
      }),
      { numRuns: 3000 },
    );
  });

  it('checkNameAddr() throws exactly what parsing a name-addr and reading its URI and params throws', async () => {
    const { checkNameAddr } = await import('../../src/parser/name-addr.js');
    fc.assert(
      fc.property(mutated(anyNameAddr), (s) => {
        const full = () => {
          const na = parseNameAddr(s, 'from');
          void na.uri;
          void na.params;
        };
        expect(thrown(() => checkNameAddr(s, 'from'))).toBe(thrown(full));
      }),
      { numRuns: 3000 },
    );
  });
});
