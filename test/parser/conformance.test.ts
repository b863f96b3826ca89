import { describe, expect, it } from 'vitest';
import {
  parseMessage,
  SipParseError,
  validate,
  type SipRequest,
  type SipResponse,
  type SipUri,
} from '../../src/parser/index.js';
import { loadManifest, loadMessage, rfc5118WireForm, type ManifestEntry } from '../support/conformance.js';

type Msg = SipRequest | SipResponse;
type Ctx = { m: Msg; input: Buffer };

function sdpLines(m: Msg, prefix: string): string[] {
  return m.bodyText
    .split(/\r?\n/)
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** How each manifest fact is read off a parsed message. A new fact name fails loudly. */
const FACTS: Record<string, (c: Ctx) => unknown> = {
  type: ({ m }) => m.type,
  method: ({ m }) => (m as SipRequest).method,
  request_uri: ({ m }) => (m as SipRequest).uri,
  request_uri_user_unescaped: ({ m }) => ((m as SipRequest).requestUri as SipUri).user,
  request_uri_host: ({ m }) => ((m as SipRequest).requestUri as SipUri).host,
  request_uri_port: ({ m }) => ((m as SipRequest).requestUri as SipUri).port ?? null,
  status_code: ({ m }) => (m as SipResponse).status,
  reason_phrase: ({ m }) => (m as SipResponse).reason,
  call_id: ({ m }) => (m.has('call-id') ? m.callId : null),
  call_id_values: ({ m }) => m.getAll('call-id'),
  cseq: ({ m }) => ({ seq: String(m.cseq.seq), method: m.cseq.method }),
  cseq_values: ({ m }) => m.getAll('cseq'),
  max_forwards: ({ m }) => m.get('max-forwards') ?? null,
  max_forwards_values: ({ m }) => m.getAll('max-forwards'),
  via_count: ({ m }) => m.via.length,
  via_transports: ({ m }) => m.via.map((v) => v.transport),
  via_branch: ({ m }) => m.topVia?.branch,
  via_sent_by: ({ m }) => m.via.map((v) => v.sentBy),
  top_via_sent_by: ({ m }) => m.topVia?.sentBy,
  top_via_received: ({ m }) => m.topVia?.received,
  top_via_branch: ({ m }) => m.topVia?.branch,
  second_via_sent_by: ({ m }) => m.via[1]?.sentBy,
  third_via_received: ({ m }) => m.via[2]?.received,
  content_length: ({ m }) => m.contentLength ?? null,
  content_length_values: ({ m }) => m.getAll('content-length').map(Number),
  content_type: ({ m }) => m.get('content-type'),
  contact_count: ({ m }) => m.getAll('contact').length,
  contact: ({ m }) => m.get('contact'),
  contact_uri: ({ m }) => {
    const c = m.contact;
    return c === '*' ? '*' : c[0]!.uriText;
  },
  to_count: ({ m }) => m.getAll('to').length,
  from_count: ({ m }) => m.getAll('from').length,
  missing_headers: ({ m }) => ['Call-ID', 'From', 'To'].filter((h) => !m.has(h)),
  require: ({ m }) => m.getAll('require'),
  proxy_require: ({ m }) => m.getAll('proxy-require'),
  accept: ({ m }) => m.get('accept'),
  authorization: ({ m }) => m.get('authorization'),
  unknownparam_is: ({ m }) => {
    const c = m.contact;
    if (c === '*') return 'wildcard';
    const na = c[0]!;
    const inUri = (na.uri as SipUri).params.has('unknownparam');
    const inHeader = na.params.has('unknownparam');
    return inUri && !inHeader ? 'url-parameter' : inHeader && !inUri ? 'contact-param' : 'both';
  },
  trailing_octets_after_message: ({ m, input }) => input.length - (input.indexOf('\r\n\r\n') + 4 + m.body.length),
  body_parts: ({ m }) => {
    const boundary = m.contentType!.params.get('boundary')!;
    return m.bodyText.split('--' + boundary + '\r\n').length - 1;
  },
  sdp_connection: ({ m }) => sdpLines(m, 'c=')[0],
  sdp_origin_address: ({ m }) => sdpLines(m, 'o=')[0]!.split(' ').pop(),
  sdp_media_connections: ({ m }) => {
    const text = m.bodyText;
    const media = text.slice(text.indexOf('\nm='));
    return media
      .split(/\r?\n/)
      .filter((l) => l.startsWith('c='))
      .map((l) => l.slice(2));
  },
};

function checkFacts(entry: ManifestEntry, ctx: Ctx): void {
  for (const [fact, want] of Object.entries(entry.expected)) {
    const read = FACTS[fact];
    if (!read) throw new Error(`${entry.file}: no reader for manifest fact "${fact}"`);
    const got = read(ctx);
    if (fact === 'cseq') {
      const w = want as { seq: string; method: string };
      expect(got, `${entry.file}: cseq`).toEqual({ seq: String(Number(w.seq)), method: w.method });
    } else {
      expect(got, `${entry.file}: ${fact}`).toEqual(want);
    }
  }
}

/** An invalid message must be refused: by the parser, or by validate() with the RFC's status. */
function checkRejected(entry: ManifestEntry, input: Buffer): void {
  let m: Msg;
  try {
    m = parseMessage(input);
  } catch (err) {
    expect(err, entry.file).toBeInstanceOf(SipParseError);
    expect((err as SipParseError).code).toMatch(/^[A-Z_]+$/);
    return;
  }
  const failure = validate(m, { role: 'proxy' });
  expect(failure, `${entry.file} must be rejected by validate()`).not.toBeNull();
  const allowed = [entry.reaction?.response_code, ...(entry.reaction?.alternative_response_codes ?? [])].filter(
    (c): c is number => typeof c === 'number',
  );
  if (m.type === 'request' && allowed.length > 0) expect(allowed, entry.file).toContain(failure!.status);
}

describe('RFC 4475 torture messages', () => {
  const manifest = loadManifest('rfc4475');
  it('has the whole corpus', () => {
    expect(manifest.length).toBe(50);
  });
  for (const entry of manifest) {
    const input = loadMessage('rfc4475', entry);
    if (entry.expect === 'valid' || entry.expect === 'semantic') {
      it(`${entry.section} ${entry.file} parses (${entry.expect})`, () => {
        const m = parseMessage(input);
        checkFacts(entry, { m, input });
      });
    } else if (entry.expect === 'invalid') {
      it(`${entry.section} ${entry.file} is rejected`, () => checkRejected(entry, input));
    } else {
      it(`${entry.file} (unreferenced) does not break the parser`, () => {
        try {
          parseMessage(input);
        } catch (err) {
          expect(err).toBeInstanceOf(SipParseError);
        }
      });
    }
  }
  it('valid messages also pass validate() (except the semantic cases)', () => {
    for (const entry of manifest.filter((e) => e.expect === 'valid')) {
      const m = parseMessage(loadMessage('rfc4475', entry));
      expect(validate(m), entry.file).toBeNull();
    }
  });
});

describe('RFC 5118 IPv6 messages', () => {
  const manifest = loadManifest('rfc5118');
  for (const entry of manifest) {
    const input = rfc5118WireForm(loadMessage('rfc5118', entry));
    if (entry.expect === 'valid') {
      it(`${entry.section} ${entry.file} parses with the right hosts and ports`, () => {
        const m = parseMessage(input);
        // Where the wire form had to restate the RFC's Content-Length, the body length is the fact.
        const bodyOctets = (entry.bytes as { body_octets_if_crlf?: number | null }).body_octets_if_crlf;
        const declared = entry.expected.content_length;
        const expected =
          typeof declared === 'number' && typeof bodyOctets === 'number' && declared > bodyOctets
            ? { ...entry.expected, content_length: bodyOctets }
            : entry.expected;
        checkFacts({ ...entry, expected }, { m, input });
        expect(validate(m), entry.file).toBeNull();
      });
    } else {
      it(`${entry.section} ${entry.file} is rejected`, () => checkRejected(entry, input));
    }
  }
});
