import { MAGIC_COOKIE, type SipRequest, type Via } from '../parser/index.js';

/** Client transactions match on branch and CSeq method (RFC 3261 §17.1.3). */
export function clientKey(branch: string, method: string): string {
  return branch + '|' + method;
}

/**
 * @internal The key of a client transaction in the layer's table: the branch alone for an INVITE
 * (the most matched: its provisionals, the final and 2xx retransmissions), looked up as the
 * received branch is, with no key string built and hashed afresh per response; branch `;`
 * method for any other (a CANCEL has its INVITE's branch, §9.1). The two cannot meet: a
 * branch has no `;` unless quoted, and then it ends with the quote, where a method (a token)
 * cannot. Matches still check the transaction's kind (receiveResponse).
 */
export function clientTableKey(branch: string, method: string): string {
  return method === 'INVITE' ? branch : branch + ';' + method;
}

/** True for an RFC 3261 branch: the cookie and something after it. */
export function isRfc3261Branch(branch: string | undefined): branch is string {
  return branch !== undefined && branch.length > MAGIC_COOKIE.length && branch.startsWith(MAGIC_COOKIE);
}

/**
 * Server transaction key (RFC 3261 §17.2.3): branch + sent-by + method, with
 * ACK folded into INVITE. Requests from RFC 2543 elements (no cookie) fall back
 * to Request-URI, From tag, Call-ID, CSeq number and the top Via.
 * `asMethod` lets CANCEL look up the INVITE it targets.
 */
export function serverKey(req: SipRequest, top: Via, asMethod?: string): string {
  const method = asMethod ?? (req.method === 'ACK' ? 'INVITE' : req.method);
  const branch = top.branch;
  // sent-by lower-cased as host, then port: the port's digits need no folding, and the host alone is not copied to fold it.
  if (isRfc3261Branch(branch)) return branch + '|' + top.host.toLowerCase() + (top.port === undefined ? '|' : ':' + top.port + '|') + method;
  return ['2543', method, req.uri, req.from.tag ?? '', req.callId, req.cseq.seq, top.sentBy.toLowerCase(), branch ?? ''].join('|');
}
