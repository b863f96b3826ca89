import { createRequire } from 'node:module';
import { parseMessage } from '../dist/parser/index.js';
import { measureRounds, median, pairedRatio, table } from './harness.js';

const require = createRequire(import.meta.url);

const SDP =
  'v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\ns=-\r\nc=IN IP4 192.0.2.101\r\nt=0 0\r\n' +
  'm=audio 49172 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n';

function msg(head: string[], body = ''): Buffer {
  return Buffer.from(head.join('\r\n') + `\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` + body);
}

/** A realistic mix: INVITE with SDP, 3 Vias, Record-Route and Proxy-Authorization; 180; 200 with SDP; BYE; REGISTER. */
export const CORPUS: Buffer[] = [
  msg(
    [
      'INVITE sip:+15551234567@gw.carrier.example.net SIP/2.0',
      'Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---d8754z-;rport',
      'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK4b43c2ff8.1;received=198.51.100.7',
      'Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK776asdhds;rport=5060',
      'Max-Forwards: 68',
      'Record-Route: <sip:203.0.113.10;lr;ftag=1928301774>',
      'Record-Route: <sip:198.51.100.7;lr>',
      'To: <sip:+15551234567@demo.trunk.sipkit.test>',
      'From: "Alice Smith" <sip:1000@demo.trunk.sipkit.test>;tag=1928301774',
      'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
      'CSeq: 314160 INVITE',
      'Contact: <sip:1000@192.0.2.101:5060;transport=udp>',
      'Proxy-Authorization: Digest username="1000", realm="demo.trunk.sipkit.test", nonce="ZmFrZS1ub25jZS0xNzAwMDAwMDAw", uri="sip:+15551234567@demo.trunk.sipkit.test", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001',
      'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK',
      'Supported: 100rel, timer, replaces',
      'User-Agent: sipkit-bench/1.0',
      'Content-Type: application/sdp',
    ],
    SDP,
  ),
  msg([
    'SIP/2.0 180 Ringing',
    'Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---d8754z-;rport=5060;received=203.0.113.10',
    'Record-Route: <sip:203.0.113.10;lr;ftag=1928301774>',
    'To: <sip:+15551234567@demo.trunk.sipkit.test>;tag=a6c85cf',
    'From: "Alice Smith" <sip:1000@demo.trunk.sipkit.test>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314160 INVITE',
    'Contact: <sip:+15551234567@gw.carrier.example.net:5060>',
  ]),
  msg(
    [
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---d8754z-;rport=5060;received=203.0.113.10',
      'Record-Route: <sip:203.0.113.10;lr;ftag=1928301774>',
      'To: <sip:+15551234567@demo.trunk.sipkit.test>;tag=a6c85cf',
      'From: "Alice Smith" <sip:1000@demo.trunk.sipkit.test>;tag=1928301774',
      'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
      'CSeq: 314160 INVITE',
      'Contact: <sip:+15551234567@gw.carrier.example.net:5060>',
      'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS',
      'Content-Type: application/sdp',
    ],
    SDP,
  ),
  msg([
    'BYE sip:+15551234567@gw.carrier.example.net:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds7;rport',
    'Max-Forwards: 70',
    'Route: <sip:203.0.113.10;lr;ftag=1928301774>',
    'From: "Alice Smith" <sip:1000@demo.trunk.sipkit.test>;tag=1928301774',
    'To: <sip:+15551234567@demo.trunk.sipkit.test>;tag=a6c85cf',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314161 BYE',
  ]),
  msg([
    'REGISTER sip:registrar.example.com SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds7;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@example.com>',
    'From: Bob <sip:bob@example.com>;tag=456248',
    'Call-ID: 843817637684230@998sdasdh09',
    'CSeq: 1826 REGISTER',
    'Contact: <sip:bob@192.0.2.4>;expires=7200',
    'Expires: 7200',
  ]),
];

export function benchParser(): string {
  const corpus = CORPUS;
  const n = corpus.length;
  const strings = corpus.map((b) => b.toString('utf8'));
  const sip = require('./node_modules/sip/sip.js') as { parse(s: Buffer): any; stringify(m: any): string };
  const jssip = require('./node_modules/jssip/lib/Parser.js') as { parseMessage(s: string, ua: unknown): any };
  const fakeUa = {};

  const rounds = measureRounds([
    {
      name: 'floor: decode + split lines',
      run: (i) => corpus[i % n]!.toString('utf8').split('\r\n'),
    },
    {
      name: 'sipkit: parse + read + serialize',
      run: (i) => {
        const m = parseMessage(corpus[i % n]!);
        const v = m.via;
        const f = m.from.tag;
        const t = m.to.tag;
        const c = m.cseq.seq;
        const id = m.callId;
        const out = m.toBytes();
        return v.length + (f?.length ?? 0) + (t?.length ?? 0) + c + id.length + out.length;
      },
    },
    {
      name: 'sipkit: parse + read',
      run: (i) => {
        const m = parseMessage(corpus[i % n]!);
        return m.via.length + (m.from.tag?.length ?? 0) + (m.to.tag?.length ?? 0) + m.cseq.seq + m.callId.length;
      },
    },
    {
      name: 'sip@0.0.6: parse + read + serialize',
      run: (i) => {
        const m = sip.parse(corpus[i % n]!);
        const h = m.headers;
        const out = sip.stringify(m);
        return h.via.length + (h.from.params.tag?.length ?? 0) + (h.to.params.tag?.length ?? 0) + h.cseq.seq + h['call-id'].length + out.length;
      },
    },
    {
      name: 'sip@0.0.6: parse + read',
      run: (i) => {
        const h = sip.parse(corpus[i % n]!).headers;
        return h.via.length + (h.from.params.tag?.length ?? 0) + (h.to.params.tag?.length ?? 0) + h.cseq.seq + h['call-id'].length;
      },
    },
    {
      name: 'jssip@3.13.8: parse + read',
      run: (i) => {
        const m = jssip.parseMessage(strings[i % n]!, fakeUa);
        return (m.via_branch?.length ?? 0) + (m.from_tag?.length ?? 0) + (m.to_tag?.length ?? 0) + m.cseq + m.call_id.length;
      },
    },
  ], { rounds: 9 });

  const results = new Map([...rounds].map(([name, r]) => [name, median(r)]));
  const R = (name: string) => rounds.get(name)!;
  const FLOOR = 'floor: decode + split lines';
  const SIP_FULL = 'sip@0.0.6: parse + read + serialize';
  const SIP_READ = 'sip@0.0.6: parse + read';
  const JSSIP = 'jssip@3.13.8: parse + read';
  // Like for like: a "+ serialize" case against sip's "+ serialize", a read-only case against sip's read-only.
  // Each ratio is the median of per-round ratios (see pairedRatio).
  const rows: Array<[string, number, string]> = [...results].map(([name, r]) => {
    const sipBase = name.includes('serialize') ? SIP_FULL : SIP_READ;
    return [
      name,
      r,
      `${pairedRatio(R(name), R(sipBase)).toFixed(2)}x sip (same work), ${pairedRatio(R(name), R(JSSIP)).toFixed(1)}x jssip, ${(pairedRatio(R(name), R(FLOOR)) * 100).toFixed(0)}% of floor`,
    ];
  });
  const read = pairedRatio(R('sipkit: parse + read'), R(SIP_READ));
  const full = pairedRatio(R('sipkit: parse + read + serialize'), R(SIP_FULL));
  return (
    table('parser (mixed corpus of 5 messages; rates: median of 9 rounds; ratios: median of per-round ratios)', rows) +
    `\n  => parse-and-access: sipkit ${read.toFixed(2)}x the sip package; with serialization ${full.toFixed(2)}x (target >= 5x)`
  );
}
