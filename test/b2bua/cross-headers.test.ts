import { describe, expect, it } from 'vitest';
import { crossHeaders, DEFAULT_REQUEST_HEADERS } from '../../src/b2bua/index.js';
import { parseMessage } from '../../src/parser/index.js';

const invite = (extra: string) =>
  parseMessage(
    `INVITE sip:1@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:1@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n${extra}Content-Length: 0\r\n\r\n`,
  );

describe('crossHeaders', () => {
  it('crosses the listed headers in order, under their wire names, and nothing when the message has none of them', () => {
    const m = invite('Subject: hello\r\nPrivacy: id\r\nX-Other: 1\r\nSubject: again\r\n');
    expect(crossHeaders(m, DEFAULT_REQUEST_HEADERS)).toEqual([
      ['Subject', 'hello'],
      ['Privacy', 'id'],
      ['Subject', 'again'],
    ]);
    expect(crossHeaders(invite('X-Other: 1\r\n'), DEFAULT_REQUEST_HEADERS)).toEqual([]);
    // Compact form on the wire (s: Subject) is found under its canonical key.
    expect(crossHeaders(invite('s: compact\r\n'), ['Subject'])).toEqual([['Subject', 'compact']]);
    // Never crossed, even when listed: they belong to this hop.
    expect(crossHeaders(invite(''), ['Via', 'Call-ID'])).toEqual([]);
  });

  it("follows an application's own (unfrozen) list when it changes between calls", () => {
    const names = ['X-A'];
    const m = invite('X-A: 1\r\nX-B: 2\r\n');
    expect(crossHeaders(m, names)).toEqual([['X-A', '1']]);
    names.push('X-B');
    expect(crossHeaders(m, names)).toEqual([
      ['X-A', '1'],
      ['X-B', '2'],
    ]);
  });
});
