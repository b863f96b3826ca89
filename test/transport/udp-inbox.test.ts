import { describe, expect, it } from 'vitest';
import { isNewWork } from '../../src/transport/udp-inbox.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('UDP inbox lane of a datagram, from its first bytes', () => {
  it('puts INVITE and CANCEL requests (new work) in the low lane, after any leading CRLF', () => {
    expect(isNewWork(b('INVITE sip:a@b SIP/2.0\r\n'))).toBe(true);
    expect(isNewWork(b('CANCEL sip:a@b SIP/2.0\r\n'))).toBe(true);
    expect(isNewWork(b('\r\n\r\nINVITE sip:a@b SIP/2.0\r\n'))).toBe(true);
  });

  it('puts responses, other requests, keep-alives and garbage in the high lane', () => {
    for (const s of ['SIP/2.0 200 OK\r\n', 'SIP/2.0 180 Ringing\r\n', 'ACK sip:a@b SIP/2.0', 'BYE sip:a@b SIP/2.0', 'PRACK sip:a SIP/2.0', 'OPTIONS sip:a SIP/2.0', 'UPDATE sip:a SIP/2.0', 'INVITEX sip:a SIP/2.0', 'INVITE', 'invite sip:a SIP/2.0', 'CANCELED x', '\r\n\r\n', '']) {
      expect(isNewWork(b(s)), s).toBe(false);
    }
  });
});
