import { SipError } from './errors.js';
import { SipRequest, SipResponse, type HeaderValue } from './message.js';
import { reasonPhrase } from './reason-phrases.js';
import { generateBranch, generateCallId, generateTag } from './ids.js';

export type HeaderInit = Array<[string, HeaderValue]> | Record<string, HeaderValue | HeaderValue[]>;

function toBody(body: Uint8Array | string | undefined): Uint8Array | undefined {
  if (body === undefined) return undefined;
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

/** Append headers given as [name, value] pairs or a record (arrays repeat the header). */
export function appendHeaders(m: SipRequest | SipResponse, headers: HeaderInit | undefined): void {
  if (!headers) return;
  const entries: Array<[string, HeaderValue | HeaderValue[]]> = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of entries) {
    if (Array.isArray(value)) for (const v of value) m.append(name, v);
    else m.append(name, value);
  }
}

export interface RequestInit {
  method: string;
  uri: HeaderValue;
  /** From (name-addr); a tag is added when it has none. */
  from: HeaderValue;
  to: HeaderValue;
  callId?: string;
  cseq?: number;
  /** Top Via; when omitted the transport layer adds one on send. */
  via?: HeaderValue | HeaderValue[];
  maxForwards?: number;
  contact?: HeaderValue;
  /** Extra headers, in order. */
  headers?: HeaderInit;
  body?: Uint8Array | string;
  contentType?: string;
}

/**
 * Build a request (RFC 3261 §8.1.1): To, From (with a fresh tag unless given),
 * Call-ID, CSeq, Max-Forwards (70), Via when given. Content-Length is written
 * from the body on serialization, so it is never stale.
 */
export function createRequest(init: RequestInit): SipRequest {
  const method = init.method;
  if (!/^[A-Za-z0-9\-.!%*_+`'~]+$/.test(method)) throw new SipError('BAD_METHOD', `method is not a token: ${method}`);
  const req = new SipRequest(method, String(init.uri));
  if (init.via !== undefined) for (const v of Array.isArray(init.via) ? init.via : [init.via]) req.append('Via', v);
  req.append('Max-Forwards', init.maxForwards ?? 70);
  let from = String(init.from);
  if (!/;\s*tag=/i.test(from.slice(from.lastIndexOf('>') + 1))) from += ';tag=' + generateTag();
  req.append('From', from);
  req.append('To', init.to);
  req.append('Call-ID', init.callId ?? generateCallId());
  req.append('CSeq', `${init.cseq ?? 1} ${method}`);
  if (init.contact !== undefined) req.append('Contact', init.contact);
  appendHeaders(req, init.headers);
  const body = toBody(init.body);
  if (body) {
    req.body = body;
    if (init.contentType) req.set('Content-Type', init.contentType);
  }
  return req;
}

export interface ResponseInit {
  reason?: string;
  /** To tag to add when the request's To has none (status > 100). Generated when omitted. */
  toTag?: string;
  headers?: HeaderInit;
  body?: Uint8Array | string;
  contentType?: string;
}

const COPIED = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

/**
 * Build a response to `req` (RFC 3261 §8.2.6): Via (all, in order), From, To,
 * Call-ID and CSeq copied; a To tag added for anything above 100 when the
 * request had none; Timestamp echoed on 100 (§8.2.6.1); Record-Route copied on
 * 101–299 to dialog-creating requests (§12.1.1).
 */
export function createResponse(req: SipRequest, status: number, init: ResponseInit = {}): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new SipError('BAD_STATUS', `status out of range: ${status}`);
  const res = new SipResponse(status, init.reason ?? reasonPhrase(status));
  const rr = status > 100 && status < 300 && (req.method === 'INVITE' || req.method === 'SUBSCRIBE' || req.method === 'REFER' || req.method === 'NOTIFY');
  req.copyLinesInto(res, (key) => COPIED.has(key) || (rr && key === 'record-route') || (status === 100 && key === 'timestamp'));
  if (status > 100) {
    // Appending keeps the To as the requester wrote it (addr-spec params are header params too).
    // A missing or malformed To (a 400 answering exactly that) is copied as it is.
    let tagless = false;
    try {
      tagless = res.has('to') && res.to.tag === undefined;
    } catch {
      tagless = false;
    }
    if (tagless) res.set('To', res.get('to') + ';tag=' + (init.toTag ?? generateTag()));
  }
  appendHeaders(res, init.headers);
  const body = toBody(init.body);
  if (body) {
    res.body = body;
    if (init.contentType) res.set('Content-Type', init.contentType);
  }
  return res;
}

export { generateBranch, generateCallId, generateTag };
