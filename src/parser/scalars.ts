import { SipParseError } from './errors.js';
import { TOKEN, isDigits, isToken, isWs, trimLws } from './chars.js';
import { Params, parseParams } from './params.js';

/** RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31. */
export const MAX_CSEQ = 0x7fffffff;

export interface CSeq {
  seq: number;
  method: string;
}

export function parseCSeq(s: string): CSeq {
  return parseCSeqIn(s, 0, s.length);
}

/** @internal CSeq from s[from, to): a received value read in place, without slicing it first. */
export function parseCSeqIn(s: string, from: number, to: number): CSeq {
  let i = from;
  const n = to;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  const ds = i;
  let seq = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
    i++;
  }
  if (i === ds) throw new SipParseError('BAD_HEADER', 'CSeq has no sequence number', 'cseq');
  if (i - ds > 10 || seq > MAX_CSEQ) throw new SipParseError('BAD_HEADER', 'CSeq number out of range', 'cseq');
  if (!isWs(s.charCodeAt(i))) throw new SipParseError('BAD_HEADER', 'CSeq needs a space before the method', 'cseq');
  while (i < n && isWs(s.charCodeAt(i))) i++;
  let e = n;
  while (e > i && isWs(s.charCodeAt(e - 1))) e--;
  const method = s.slice(i, e);
  if (!isToken(method)) throw new SipParseError('BAD_HEADER', 'CSeq method is not a token', 'cseq');
  return { seq, method };
}

/** A non-negative decimal of at most `maxDigits` digits. */
export function parseUnsigned(s: string, header: string, max: number): number {
  const t = trimLws(s);
  if (!isDigits(t)) throw new SipParseError('BAD_HEADER', `${header} is not a number`, header);
  const v = Number(t);
  if (!(v <= max)) throw new SipParseError('BAD_HEADER', `${header} out of range`, header);
  return v;
}

export interface ContentType {
  /** Lower-case `type/subtype`. */
  mediaType: string;
  type: string;
  subtype: string;
  params: Params;
}

export function parseContentType(s: string): ContentType {
  const slash = s.indexOf('/');
  if (slash < 0) throw new SipParseError('BAD_HEADER', 'Content-Type needs type/subtype', 'content-type');
  const type = trimLws(s.slice(0, slash)).toLowerCase();
  let i = slash + 1;
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  const ss = i;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) break;
    i++;
  }
  const subtype = s.slice(ss, i).toLowerCase();
  if (!isToken(type) || subtype.length === 0) throw new SipParseError('BAD_HEADER', 'malformed Content-Type', 'content-type');
  const params = parseParams(s, i, 'content-type');
  return { mediaType: type + '/' + subtype, type, subtype, params };
}

/** Reason header element (RFC 3326). */
export interface Reason {
  /** `SIP`, `Q.850`, or another protocol token. */
  protocol: string;
  cause: number | undefined;
  text: string | undefined;
  params: Params;
}

export function parseReason(s: string): Reason {
  let i = 0;
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  const ps = i;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) break;
    i++;
  }
  const protocol = s.slice(ps, i);
  if (protocol.length === 0) throw new SipParseError('BAD_HEADER', 'Reason has no protocol', 'reason');
  const params = parseParams(s, i, 'reason');
  const c = params.get('cause');
  const cause = c != null && isDigits(c) ? Number(c) : undefined;
  const t = params.get('text');
  return { protocol, cause, text: t == null ? undefined : t, params };
}

/** Serialize a Reason element, quoting the text. */
export function formatReason(r: { protocol: string; cause?: number | undefined; text?: string | undefined }): string {
  let s = r.protocol;
  if (r.cause !== undefined) s += ';cause=' + r.cause;
  if (r.text !== undefined) s += ';text="' + r.text.replace(/["\\]/g, '\\$&') + '"';
  return s;
}
