import { createRequest, type SipRequest } from '../../src/parser/index.js';

/** An INVITE as a caller behind the trunk would send it. */
export function invite(overrides: { uri?: string; body?: string; callId?: string } = {}): SipRequest {
  return createRequest({
    method: 'INVITE',
    uri: overrides.uri ?? 'sip:+15551234567@demo.trunk.sipkit.test',
    from: '<sip:1000@demo.trunk.sipkit.test>',
    to: '<sip:+15551234567@demo.trunk.sipkit.test>',
    via: 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfirst;rport',
    callId: overrides.callId ?? 'call-1@192.0.2.10',
    contact: '<sip:1000@192.0.2.10:5060>',
    body: overrides.body ?? 'v=0\r\n',
    contentType: 'application/sdp',
  });
}
