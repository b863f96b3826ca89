import fc from 'fast-check';
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

/** Everything a framer reports, in order, for comparing two ways of feeding one stream. */
function record(limits?: { maxMessageSize: number }) {
  const events: string[] = [];
  const framer = new StreamFramer(
    {
      onFrame: (b) => events.push('frame:' + b.toString('latin1')),
      onError: (e: SipParseError, fatal) => events.push(`error:${e.code}:${fatal}`),
      onPing: () => events.push('ping'),
    },
    limits,
  );
  return { framer, events };
}

/** Cut `stream` at the given offsets (sorted, deduplicated, inside the stream). */
function cut(stream: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.filter((p) => p > 0 && p < stream.length))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, stream.length]) {
    out.push(stream.subarray(prev, p));
    prev = p;
  }
  return out;
}

describe('StreamFramer chunking', () => {
  // Pieces a stream is made of: good messages (CRLF or bare-LF line ends), keep-alives,
  // stray line ends, and the damaged cases that end a stream.
  const piece = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.nat(9999), fc.string({ maxLength: 40 })).map(([n, body]) => msg(n, body)) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(9999), fc.string({ maxLength: 10 })).map(([n, body]) => msg(n, body).replaceAll('\r\n', '\n')) },
    { weight: 2, arbitrary: fc.constantFrom('\r\n\r\n', '\r\n', '\n', '\r', '\r\n\r', '\n\r\n\r\n') },
    { weight: 1, arbitrary: fc.constantFrom('GARBAGE\r\nContent-Length: 0\r\n\r\n', 'OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n', 'OPTIONS sip:a SIP/2.0\r\n\r\n') },
    { weight: 1, arbitrary: fc.nat(600).map((n) => `OPTIONS sip:a SIP/2.0\r\nX: ${'y'.repeat(n)}\r\nContent-Length: 0\r\n\r\n`) },
    { weight: 1, arbitrary: fc.nat(700).map((n) => `OPTIONS sip:a SIP/2.0\r\nContent-Length: ${n}\r\n\r\n${'z'.repeat(n)}`) },
  );
  const streamOf = fc.array(piece, { maxLength: 8 }).map((ps) => Buffer.from(ps.join(''), 'utf8'));
  const limits = { maxMessageSize: 512 };

  function whole(stream: Buffer): string[] {
    const { framer, events } = record(limits);
    framer.push(stream);
    return events;
  }

  it('frames a stream fed one byte at a time exactly as fed whole', () => {
    fc.assert(
      fc.property(streamOf, (stream) => {
        const { framer, events } = record(limits);
        for (let i = 0; i < stream.length; i++) framer.push(stream.subarray(i, i + 1));
        expect(events).toEqual(whole(stream));
      }),
      { numRuns: 300 },
    );
  });

  it('frames a stream cut anywhere exactly as fed whole', () => {
    fc.assert(
      fc.property(streamOf, fc.array(fc.nat(4000), { maxLength: 20 }), (stream, at) => {
        const { framer, events } = record(limits);
        for (const c of cut(stream, at)) framer.push(c);
        expect(events).toEqual(whole(stream));
      }),
      { numRuns: 500 },
    );
  });

  it('answers a CRLF CRLF ping that arrives one byte at a time', () => {
    const { framer, events } = record();
    for (const b of Buffer.from('\r\n\r\n')) framer.push(Buffer.from([b]));
    expect(events).toEqual(['ping']);
    expect(framer.messageInProgress).toBe(false);
  });

  it('copies and scans each byte a bounded number of times when 64 KB is dripped byte by byte', () => {
    const body = 'b'.repeat(60_000);
    const head = `INVITE sip:a SIP/2.0\r\n${'X-Pad: 0123456789abcdef\r\n'.repeat(160)}Content-Length: ${body.length}\r\n\r\n`;
    const stream = Buffer.from(head + body);
    const { framer, events } = record({ maxMessageSize: 70_000 });
    for (let i = 0; i < stream.length; i++) framer.push(stream.subarray(i, i + 1));
    expect(events).toHaveLength(1);
    expect(events[0]).toBe('frame:' + stream.toString('latin1'));
    // Amortised doubling copies each byte at most about three times; the header
    // search looks at each header byte once. Re-concatenating per chunk would copy
    // about n²/2 = 2·10⁹ bytes, rescanning the header about 10⁷.
    const { bytesCopied, bytesScanned } = framer.work;
    expect(bytesCopied).toBeLessThanOrEqual(3 * stream.length);
    expect(bytesScanned).toBeLessThanOrEqual(head.length);
    expect(framer.buffered).toBe(0);
  });

  it('frames a whole message in place without buffering it', () => {
    const { framer, events } = record();
    framer.push(Buffer.from(msg(1) + msg(2, 'body')));
    expect(events).toHaveLength(2);
    expect(framer.work.bytesCopied).toBe(0);
  });

  it('says when part of a message is buffered, not for keep-alive CRLFs', () => {
    const { framer } = record();
    framer.push(Buffer.from('\r\n\r'));
    expect(framer.messageInProgress).toBe(false);
    framer.push(Buffer.from('\nO'));
    expect(framer.messageInProgress).toBe(true);
    framer.push(Buffer.from(msg(1).slice(1)));
    expect(framer.messageInProgress).toBe(false);
    expect(framer.buffered).toBe(0);
  });
});
