import { SipRequest, type SipResponse } from '../parser/index.js';

function copyRoute(from: SipRequest, to: SipRequest): void {
  for (const r of from.getAll('route')) to.append('Route', r);
}

/**
 * ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI,
 * Call-ID, From and CSeq number as the INVITE, To from the response (its tag),
 * only the INVITE's top Via (same branch), and the INVITE's Route set.
 */
export function createNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  const ack = new SipRequest('ACK', invite.uri);
  ack.append('Via', invite.get('via')!);
  ack.append('Max-Forwards', 70);
  ack.append('From', invite.get('from')!);
  ack.append('To', response.get('to')!);
  ack.append('Call-ID', invite.get('call-id')!);
  ack.append('CSeq', `${invite.cseq.seq} ACK`);
  copyRoute(invite, ack);
  return ack;
}

/**
 * CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, To,
 * From and CSeq number; a single Via equal to the INVITE's top Via, so the
 * next hop matches it to the INVITE; the INVITE's Route set.
 */
export function createCancel(invite: SipRequest, reason?: string): SipRequest {
  const cancel = new SipRequest('CANCEL', invite.uri);
  cancel.append('Via', invite.get('via')!);
  cancel.append('Max-Forwards', 70);
  cancel.append('From', invite.get('from')!);
  cancel.append('To', invite.get('to')!);
  cancel.append('Call-ID', invite.get('call-id')!);
  cancel.append('CSeq', `${invite.cseq.seq} CANCEL`);
  copyRoute(invite, cancel);
  // RFC 3326: say why (e.g. "SIP;cause=200;text=\"Call completed elsewhere\"").
  if (reason) cancel.append('Reason', reason);
  return cancel;
}
