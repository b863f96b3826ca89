import { describe, expect, it } from 'vitest';
import { parseContentType, parseMessage, parseNameAddr, parseReason, parseUri, parseVia, Params, SipRequest } from '../../src/parser/index.js';

describe('parsed values serialize as plain data', () => {
  it('Params → name → value (unquoted; null for a flag; the first of a repeated name)', () => {
    const p = new Params(['transport', 'tcp', 'lr', null, 'text', '"a \\"b\\""', 'transport', 'udp', '__proto__', 'x']);
    expect(JSON.stringify(p)).toBe('{"transport":"tcp","lr":null,"text":"a \\"b\\"","__proto__":"x"}');
    expect(JSON.stringify(new Params())).toBe('{}');
  });

  it('URIs → their string form', () => {
    for (const s of ['sip:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?Subject=x', 'sips:example.com', 'tel:+1-555-0100;phone-context=example.com', 'urn:service:sos']) {
      expect(JSON.stringify({ uri: parseUri(s) })).toBe(JSON.stringify({ uri: s }));
    }
  });

  it('NameAddr and Via → their header text; a malformed received one as received, without throwing', () => {
    expect(JSON.stringify(parseNameAddr('"Alice" <sip:alice@example.com;lr>;tag=1', 'from'))).toBe(JSON.stringify('"Alice" <sip:alice@example.com;lr>;tag=1'));
    expect(JSON.stringify(parseVia('SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport'))).toBe(JSON.stringify('SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport'));
    const m = parseMessage('INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: "unterminated <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n') as SipRequest;
    expect(JSON.stringify({ from: m.from, to: m.to, via: m.via[0] })).toBe(
      JSON.stringify({ from: '<sip:a@x>;tag=1', to: '"unterminated <sip:b@x>', via: 'SIP/2.0/UDP h;branch=z9hG4bK1' }),
    );
  });

  it('Reason and Content-Type views', () => {
    expect(JSON.parse(JSON.stringify(parseReason('SIP;cause=480;text="Gone"')))).toEqual({ protocol: 'SIP', cause: 480, text: 'Gone', params: { cause: '480', text: 'Gone' } });
    expect(JSON.stringify(parseContentType('application/sdp;charset=utf-8'))).toContain('"params":{"charset":"utf-8"}');
  });
});
