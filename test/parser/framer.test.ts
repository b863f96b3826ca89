import { describe, expect, it } from 'vitest';
import { StreamFramer, type SipParseError, type SipRequest, type SipResponse } from '../../src/parser/index.js';

function collect(limits?: { maxMessageSize: number }) {
  const messages: Array<SipRequest | SipResponse> = [];
  const errors: Array<[string, boolean]> = [];
  let pings = 0;
  const framer = new StreamFramer(
    {
      onMessage: (m) => messages.push(m),
      onError: (e: SipParseError, fatal) => errors.push([e.code, fatal]),
      onPing: () => pings++,
    },
    limits,
  );
  return { framer, messages, errors, pings: () => pings };
}

const msg = (n: number, body = '') =>
  `OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK${n}\r\nCall-ID: ${n}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('StreamFramer', () => {
  it('frames messages split at every byte boundary', () => {
    const stream = Buffer.from(msg(1, 'hello') + msg(2) + msg(3, 'x'));
    const { framer, messages } = collect();
    for (let i = 0; i < stream.length; i++) framer.push(stream.subarray(i, i + 1));
    expect(messages.map((m) => m.callId)).toEqual(['1', '2', '3']);
    expect(messages[0]!.bodyText).toBe('hello');
    expect(framer.buffered).toBe(0);
  });

  it('frames several messages in one chunk and tolerates leading CRLFs', () => {
    const { framer, messages } = collect();
    framer.push(Buffer.from('\r\n' + msg(1) + msg(2, 'ab')));
    expect(messages).toHaveLength(2);
  });

  it('reports RFC 5626 CRLF CRLF keep-alive pings', () => {
    const { framer, messages, pings } = collect();
    framer.push(Buffer.from('\r\n\r\n'));
    framer.push(Buffer.from(msg(1)));
    framer.push(Buffer.from('\r\n\r\n'));
    expect(pings()).toBe(2);
    expect(messages).toHaveLength(1);
  });

  it('a missing Content-Length is fatal on a stream', () => {
    const { framer, errors } = collect();
    framer.push(Buffer.from('OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\n\r\n'));
    expect(errors).toEqual([['MISSING_CONTENT_LENGTH', true]]);
    expect(framer.closed).toBe(true);
  });

  it('a negative Content-Length is fatal (RFC 4475 §3.1.2.3)', () => {
    const { framer, errors } = collect();
    framer.push(Buffer.from('OPTIONS sip:a SIP/2.0\r\nContent-Length: -999\r\n\r\n'));
    expect(errors[0]).toEqual(['BAD_CONTENT_LENGTH', true]);
  });

  it('bounds its buffer: an endless header section is cut off', () => {
    const { framer, errors } = collect({ maxMessageSize: 1000 });
    framer.push(Buffer.from('OPTIONS sip:a SIP/2.0\r\n'));
    for (let i = 0; i < 100 && !framer.closed; i++) framer.push(Buffer.from('X-Filler: ' + 'a'.repeat(50) + '\r\n'));
    expect(errors[0]).toEqual(['TOO_LARGE', true]);
    expect(framer.buffered).toBe(0);
  });

  it('refuses a huge announced body before buffering it', () => {
    const { framer, errors } = collect({ maxMessageSize: 1000 });
    framer.push(Buffer.from('OPTIONS sip:a SIP/2.0\r\nContent-Length: 999999\r\n\r\nabc'));
    expect(errors[0]).toEqual(['TOO_LARGE', true]);
  });

  it('a framed but unparseable message is skipped, and the stream goes on', () => {
    const { framer, messages, errors } = collect();
    framer.push(Buffer.from('GARBAGE\r\nContent-Length: 0\r\n\r\n' + msg(7)));
    expect(errors).toEqual([['BAD_START_LINE', false]]);
    expect(messages.map((m) => m.callId)).toEqual(['7']);
  });
});
