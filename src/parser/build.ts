import { isToken } from './chars.js';
import { SipError, type SipBuildErrorCode } from './errors.js';
import { SipRequest, SipResponse, type HeaderValue } from './message.js';
import { CONTACT_WILDCARD, checkNameAddr as checkNameAddrText, receivedTag } from './name-addr.js';
import { reasonPhrase } from './reason-phrases.js';
import { generateBranch, generateCallId, generateTag } from './ids.js';
import { MAX_CSEQ, parseContentType } from './scalars.js';
import { checkUri } from './uri.js';
import { parseVia } from './via.js';

export type HeaderInit = Array<[string, HeaderValue]> | Record<string, HeaderValue | HeaderValue[]>;

function toBody(body: Uint8Array | string | undefined): Uint8Array | undefined {
  if (body === undefined) return undefined;
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function invalid(code: SipBuildErrorCode, message: string, cause?: unknown): SipError {
  return new SipError(code, message, cause === undefined ? undefined : { cause });
}

function shown(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v);
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + '…' : s);
}

// Regular expressions made once: a literal in a function body is a new RegExp object per call.
const CR_LF_NUL = /[\r\n\0]/;
/** A tag parameter, searched for from lastIndex (after the URI's closing '>'). */
const TAG_PARAM = /;\s*tag=/gi;

/** A header line that can be written: a token name (§7.3), a value without CR, LF or NUL (no header injection). */
function checkedValue(name: string, value: HeaderValue): string {
  if (typeof name !== 'string' || !isToken(name)) throw invalid('BAD_HEADER', `header name is not a token: ${shown(name)}`);
  const v = typeof value === 'string' ? value : String(value);
  if (CR_LF_NUL.test(v)) throw invalid('BAD_HEADER', `${name} value contains CR, LF or NUL: ${shown(v)}`);
  return v;
}

/** Run a parser over a value the caller gave; its SipParseError becomes the builder's error, with it as the cause. */
function checkedBy<T>(code: SipBuildErrorCode, what: string, value: string, parse: (s: string) => T): T {
  try {
    return parse(value);
  } catch (err) {
    if (!(err instanceof SipError)) throw err;
    throw invalid(code, `${what} is malformed: ${shown(value)} (${err.message})`, err);
  }
}

/** name-addr / addr-spec (§20.10) whose URI and parameters read. */
function checkNameAddr(header: string, key: string, value: string): void {
  checkedValue(header, value);
  // As checkedBy, written out: a closure over `header` per call was garbage.
  try {
    checkNameAddrText(value, key);
  } catch (err) {
    if (!(err instanceof SipError)) throw err;
    throw invalid('BAD_HEADER', `${header} is malformed: ${shown(value)} (${err.message})`, err);
  }
}

/** Content-Type (§20.15) that reads; the value itself. */
function contentTypeValue(s: string): string {
  parseContentType(s);
  return s;
}

const MAX_UNSIGNED = 0x7fffffff;

/** callid = word [ "@" word ] (§25.1). */
const CALL_ID = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+(@[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+)?$/;

/**
 * Append headers given as [name, value] pairs or a record (arrays repeat the header).
 * Throws SipError('BAD_HEADER') for a name that is not a token or a value holding CR, LF or NUL.
 */
export function appendHeaders(m: SipRequest | SipResponse, headers: HeaderInit | undefined): void {
  if (!headers) return;
  const entries: Array<[string, HeaderValue | HeaderValue[]]> = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of entries) {
    if (Array.isArray(value)) for (const v of value) m.append(name, checkedValue(name, v));
    else m.append(name, checkedValue(name, value));
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
 *
 * Strict in what it sends: what it is given is checked against RFC 3261 §25.1 and a
 * `SipError` is thrown rather than a malformed request built — `BAD_METHOD` (method not
 * a token), `BAD_URI` (Request-URI not a SIP, SIPS, tel or other absolute URI),
 * `BAD_HEADER` (From, To, Contact, Via, Call-ID, CSeq, Max-Forwards, Content-Type or an
 * extra header that does not read as its grammar says).
 */
export function createRequest(init: RequestInit): SipRequest {
  const method = init.method;
  if (typeof method !== 'string' || !isToken(method)) throw invalid('BAD_METHOD', `method is not a token: ${shown(method)}`);
  const uri = String(init.uri);
  checkedBy('BAD_URI', 'Request-URI (a SIP, SIPS, tel or absolute URI)', uri, checkUri);
  const req = new SipRequest(method, uri);
  const via = init.via;
  if (Array.isArray(via)) {
    for (const v of via) req.append('Via', checkedBy('BAD_HEADER', 'Via', checkedValue('Via', v), parseVia));
  } else if (via !== undefined) {
    req.append('Via', checkedBy('BAD_HEADER', 'Via', checkedValue('Via', via), parseVia));
  }
  const maxForwards = init.maxForwards ?? 70;
  // 1*DIGIT (§20.22); bounded as the parser bounds what it reads.
  if (!Number.isInteger(maxForwards) || maxForwards < 0 || maxForwards > MAX_UNSIGNED) {
    throw invalid('BAD_HEADER', `Max-Forwards must be a whole number from 0 to ${MAX_UNSIGNED} (got ${shown(maxForwards)})`);
  }
  req.append('Max-Forwards', maxForwards);
  let from = String(init.from);
  checkNameAddr('From', 'from', from);
  TAG_PARAM.lastIndex = from.lastIndexOf('>') + 1;
  if (!TAG_PARAM.test(from)) from += ';tag=' + generateTag();
  req.append('From', from);
  const to = String(init.to);
  checkNameAddr('To', 'to', to);
  req.append('To', to);
  const callId = init.callId ?? generateCallId();
  if (typeof callId !== 'string' || !CALL_ID.test(callId)) throw invalid('BAD_HEADER', `Call-ID is not word["@"word]: ${shown(callId)}`);
  req.append('Call-ID', callId);
  const cseq = init.cseq ?? 1;
  // §8.1.1.5: the sequence number is below 2**31.
  if (!Number.isInteger(cseq) || cseq < 0 || cseq > MAX_CSEQ) throw invalid('BAD_HEADER', `CSeq must be a whole number from 0 to ${MAX_CSEQ} (got ${shown(cseq)})`);
  req.append('CSeq', `${cseq} ${method}`);
  if (init.contact !== undefined) {
    const contact = String(init.contact);
    if (contact.trim() !== CONTACT_WILDCARD) checkNameAddr('Contact', 'contact', contact);
    req.append('Contact', checkedValue('Contact', contact));
  }
  appendHeaders(req, init.headers);
  const body = toBody(init.body);
  if (body) {
    req.body = body;
    if (init.contentType) req.set('Content-Type', checkedBy('BAD_HEADER', 'Content-Type', checkedValue('Content-Type', init.contentType), contentTypeValue));
  }
  return req;
}

/** createResponse()'s options when none are given: one object, not an empty one per call. */
const NO_INIT: ResponseInit = Object.freeze({});

export interface ResponseInit {
  reason?: string;
  /** To tag to add when the request's To has none (status > 100). Generated when omitted. */
  toTag?: string;
  headers?: HeaderInit;
  body?: Uint8Array | string;
  contentType?: string;
}

/**
 * Build a response to `req` (RFC 3261 §8.2.6): Via (all, in order), From, To,
 * Call-ID and CSeq copied; a To tag added for anything above 100 when the
 * request had none; Timestamp echoed on 100 (§8.2.6.1); Record-Route copied on
 * 101–299 to dialog-creating requests (§12.1.1).
 */
export function createResponse(req: SipRequest, status: number, init?: ResponseInit): SipResponse {
  const o = init ?? NO_INIT;
  if (!Number.isInteger(status) || status < 100 || status > 699) throw invalid('BAD_STATUS', `status out of range: ${shown(status)}`);
  const phrase = o.reason ?? reasonPhrase(status);
  // Reason-Phrase (§25.1) holds no CR or LF: they would end the status line.
  if (typeof phrase !== 'string' || CR_LF_NUL.test(phrase)) throw invalid('BAD_STATUS', `reason phrase contains CR, LF or NUL: ${shown(phrase)}`);
  if (o.toTag !== undefined && !isToken(o.toTag)) throw invalid('BAD_HEADER', `To tag is not a token: ${shown(o.toTag)}`);
  const res = new SipResponse(status, phrase);
  const rr = status > 100 && status < 300 && (req.method === 'INVITE' || req.method === 'SUBSCRIBE' || req.method === 'REFER' || req.method === 'NOTIFY');
  req.copyLinesInto(res, rr, status === 100);
  if (status > 100) {
    // Appending keeps the To as the requester wrote it (addr-spec params are header params too).
    // A missing or malformed To (a 400 answering exactly that) is copied as it is.
    // (The tag read as res.to.tag reads it, without a NameAddr that the set below would drop.)
    const to = res.get('to');
    let tagless = false;
    try {
      tagless = to !== undefined && receivedTag(to, 'to') === undefined;
    } catch {
      tagless = false;
    }
    if (tagless) res.set('To', to + ';tag=' + (o.toTag ?? generateTag()));
  }
  appendHeaders(res, o.headers);
  const body = toBody(o.body);
  if (body) {
    res.body = body;
    if (o.contentType) res.set('Content-Type', checkedBy('BAD_HEADER', 'Content-Type', checkedValue('Content-Type', o.contentType), contentTypeValue));
  }
  return res;
}

export { generateBranch, generateCallId, generateTag };
