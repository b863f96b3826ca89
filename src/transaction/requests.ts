import { SipRequest, type SipResponse } from '../parser/index.js';

/**
 * A request that belongs with the INVITE's transaction at the next hop: same
 * Request-URI, top Via (same branch), From, Call-ID, CSeq number and Route set.
 */
function alongside(method: 'ACK' | 'CANCEL', invite: SipRequest, to: string): SipRequest {
  const req = new SipRequest(method, invite.uri);
  req.append('Via', invite.get('via')!);
  req.append('Max-Forwards', 70);
  req.append('From', invite.get('from')!);
  req.append('To', to);
  req.append('Call-ID', invite.get('call-id')!);
  req.append('CSeq', `${invite.cseq.seq} ${method}`);
  for (const r of invite.getAll('route')) req.append('Route', r);
  return req;
}

/**
 * ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI,
 * Call-ID, From and CSeq number as the INVITE, To from the response (its tag),
 * only the INVITE's top Via (same branch), and the INVITE's Route set.
 */
export function createNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  return alongside('ACK', invite, response.get('to')!);
}

/**
 * CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, To,
 * From and CSeq number; a single Via equal to the INVITE's top Via, so the
 * next hop matches it to the INVITE; the INVITE's Route set.
 */
export function createCancel(invite: SipRequest, reason?: string): SipRequest {
  const cancel = alongside('CANCEL', invite, invite.get('to')!);
  // RFC 3326: say why (e.g. "SIP;cause=200;text=\"Call completed elsewhere\"").
  if (reason) cancel.append('Reason', reason);
  return cancel;
}
