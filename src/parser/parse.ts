import { SipParseError } from './errors.js';
import { TOKEN, isWs, trimLws } from './chars.js';
import { knownHeader, knownHeaderAt } from './header-names.js';
import { SipRequest, SipResponse } from './message.js';
import { schemeLength } from './uri.js';

export interface ParseLimits {
  /** Largest message accepted, in bytes (default 65 535, the UDP maximum). */
  maxMessageSize: number;
  /** Most header lines (default 256). */
  maxHeaders: number;
  /** Longest single line in the header section, in characters (default 16 384). */
  maxLineLength: number;
}

export const DEFAULT_LIMITS: Readonly<ParseLimits> = Object.freeze({
  maxMessageSize: 65_535,
  maxHeaders: 256,
  maxLineLength: 16_384,
});

export interface ParseOptions {
  limits?: Partial<ParseLimits>;
  /**
   * Stream transport framing (RFC 3261 §18.3): Content-Length is mandatory and
   * the input must be exactly one message. Default false (datagram rules:
   * a missing Content-Length means "to the end of the datagram").
   */
  stream?: boolean;
}

const EMPTY_BODY = new Uint8Array(0);
const CRLFCRLF = Buffer.from('\r\n\r\n');
const METHOD = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const CONTROL = /[\x00-\x20\x7f]/;
const SIP_VERSION = /^SIP\/[0-9]{1,3}\.[0-9]{1,3}$/i;

function toBuffer(input: Uint8Array | string): Buffer {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (Buffer.isBuffer(input)) return input;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

function resolveLimits(l: Partial<ParseLimits> | undefined): ParseLimits {
  return l === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...l };
}

/**
 * Parse one SIP message. Throws SipParseError on anything that cannot be framed
 * or read (bad start line, header line without a colon, bad Content-Length, a
 * limit exceeded). Semantic problems — a malformed From, a CSeq out of range —
 * are left to the typed accessors and `validate()`, so a proxy can still
 * forward what it does not need to understand.
 *
 * The body is a view into the input bytes, not a copy.
 */
export function parseMessage(input: Uint8Array | string, options?: ParseOptions): SipRequest | SipResponse {
  const buf = toBuffer(input);
  const limits = resolveLimits(options?.limits);
  const stream = options?.stream === true;
  const len = buf.length;
  if (len > limits.maxMessageSize) throw new SipParseError('TOO_LARGE', `message of ${len} bytes exceeds ${limits.maxMessageSize}`);

  // §7.5: empty lines before the start line are ignored.
  let start = 0;
  while (start < len && (buf[start] === 13 || buf[start] === 10)) start++;
  if (start === len) throw new SipParseError('EMPTY', 'no message');

  // Find the empty line that ends the header section. CRLF CRLF is the fast path; an
  // empty line written with bare LFs (liberally accepted) is caught by the line loop below.
  let headEnd: number;
  let bodyStart: number;
  const crlf = buf.indexOf(CRLFCRLF, start);
  if (crlf >= 0) {
    headEnd = crlf;
    bodyStart = crlf + 4;
  } else if (buf.indexOf(10, start) >= 0 && blankLineEnd(buf, start, len) >= 0) {
    bodyStart = blankLineEnd(buf, start, len);
    headEnd = buf[bodyStart - 2] === 13 ? bodyStart - 3 : bodyStart - 2;
  } else {
    if (stream) throw new SipParseError('BAD_HEADER', 'header section is not terminated by an empty line');
    // A datagram whose header section runs to its end (RFC 4475 §3.1.2.15's archive copy):
    // read the headers, and let the Content-Length check below decide about a body.
    headEnd = len;
    while (headEnd > start && (buf[headEnd - 1] === 10 || buf[headEnd - 1] === 13)) headEnd--;
    bodyStart = len;
  }

  const maxLine = limits.maxLineLength;
  let h = new HeaderSection();
  let head = buf.toString('utf8', start, headEnd);
  if (!h.read(head, maxLine, limits.maxHeaders)) {
    // A bare-LF empty line before the CRLF CRLF ends the header section there instead.
    bodyStart = blankLineEnd(buf, start, len);
    headEnd = buf[bodyStart - 2] === 13 ? bodyStart - 3 : bodyStart - 2;
    head = buf.toString('utf8', start, headEnd);
    h = new HeaderSection();
    h.read(head, maxLine, limits.maxHeaders);
  }
  const { names, keys, values, clValue, clConflict } = h;

  // Framing by Content-Length (§18.3, §20.14).
  let body: Uint8Array;
  const available = len - bodyStart;
  if (clConflict) {
    if (stream) throw new SipParseError('BAD_CONTENT_LENGTH', 'conflicting Content-Length headers', 'content-length');
    body = buf.subarray(bodyStart);
  } else if (clValue !== undefined) {
    const cl = trimLws(clValue);
    let n = 0;
    for (let k = 0; k < cl.length; k++) {
      const c = cl.charCodeAt(k);
      if (c < 48 || c > 57 || k >= 10) throw new SipParseError('BAD_CONTENT_LENGTH', `bad Content-Length: ${snippet(cl)}`, 'content-length');
      n = n * 10 + (c - 48);
    }
    if (cl.length === 0) throw new SipParseError('BAD_CONTENT_LENGTH', 'empty Content-Length', 'content-length');
    if (n > available) {
      throw new SipParseError('CONTENT_LENGTH_MISMATCH', `Content-Length ${n} exceeds the ${available} body bytes received`, 'content-length');
    }
    if (stream && n < available) throw new SipParseError('CONTENT_LENGTH_MISMATCH', 'bytes after the message body', 'content-length');
    // Datagram: octets past Content-Length are discarded (§18.3).
    body = n === 0 ? EMPTY_BODY : buf.subarray(bodyStart, bodyStart + n);
  } else {
    if (stream) throw new SipParseError('MISSING_CONTENT_LENGTH', 'Content-Length is mandatory on stream transports', 'content-length');
    body = bodyStart >= len ? EMPTY_BODY : buf.subarray(bodyStart);
  }

  const msg = parseStartLine(h.startLine, names, keys, values, body);
  msg.attachRaw(head, h.spans);
  if (clConflict) msg.framingError = true;
  return msg;
}

/** The header section split into lines: the start line and parallel name/key/value arrays. */
class HeaderSection {
  startLine = '';
  names: string[] = [];
  keys: string[] = [];
  values: string[] = [];
  clValue: string | undefined = undefined;
  clConflict = false;
  /**
   * Per header, [start, end) of its line in `head` when the line is exactly how the
   * serializer would write it ("Name: value" + CRLF, long name, no folding), else -1:
   * unchanged runs of such lines are re-sent as one slice.
   */
  spans: number[] = [];

  /** False when an empty line occurs inside `head` (the section really ends there). */
  read(head: string, maxLine: number, maxHeaders: number): boolean {
    const { names, keys, values } = this;
    const hl = head.length;
    let pos = 0;
    let first = true;
    while (pos < hl) {
      // Native indexOf beats a charCodeAt loop by an order of magnitude here.
      let eol = head.indexOf('\n', pos);
      if (eol < 0) eol = hl;
      const lineEnd = eol > pos && head.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
      if (lineEnd - pos > maxLine) throw new SipParseError('LINE_TOO_LONG', first ? 'start line too long' : 'header line too long');
      if (first) {
        this.startLine = head.slice(0, lineEnd);
        first = false;
        pos = eol + 1;
        continue;
      }
      if (lineEnd === pos) return false;
      const c0 = head.charCodeAt(pos);
      if (c0 === 32 || c0 === 9) {
        // Folded continuation (§7.3.1): joined with a single SP.
        const last = values.length - 1;
        if (last < 0) throw new SipParseError('BAD_HEADER', 'continuation line before the first header');
        const more = trimLws(head.slice(pos, lineEnd));
        if (more.length > 0) values[last] = values[last]!.length > 0 ? values[last] + ' ' + more : more;
        if (values[last]!.length > maxLine) throw new SipParseError('LINE_TOO_LONG', 'folded header too long');
        if (keys[last] === 'content-length') this.noteContentLength(values[last]!, true);
        this.spans[2 * last] = -1;
        pos = eol + 1;
        continue;
      }
      const colon = head.indexOf(':', pos);
      if (colon < 0 || colon >= lineEnd) throw new SipParseError('BAD_HEADER', `header line without a colon: ${snippet(head.slice(pos, lineEnd))}`);
      let ne = colon;
      while (ne > pos && isWs(head.charCodeAt(ne - 1))) ne--;
      if (ne === pos) throw new SipParseError('BAD_HEADER', 'empty header name');
      if (keys.length >= maxHeaders) throw new SipParseError('TOO_MANY_HEADERS', `more than ${maxHeaders} header lines`);
      let name: string;
      let key: string;
      // The line's name is already the wire name (no compact form, canonical case).
      let asWritten = true;
      const exact = knownHeaderAt(head, pos, ne);
      if (exact !== undefined) {
        name = exact[0];
        key = exact[1];
      } else {
        const raw = head.slice(pos, ne);
        const known = knownHeader(raw);
        if (known === undefined) {
          for (let k = pos; k < ne; k++) {
            const c = head.charCodeAt(k);
            if (c > 127 || TOKEN[c] === 0) throw new SipParseError('BAD_HEADER', `bad header name: ${snippet(raw)}`);
          }
          name = raw;
          key = raw.toLowerCase();
        } else {
          // Registered headers are kept under their long wire name (compact forms are not re-sent).
          name = known[0];
          key = known[1];
          asWritten = false;
        }
      }
      let vs = colon + 1;
      let ve = lineEnd;
      while (vs < ve && isWs(head.charCodeAt(vs))) vs++;
      while (ve > vs && isWs(head.charCodeAt(ve - 1))) ve--;
      const value = head.slice(vs, ve);
      const canonical = asWritten && ne === colon && vs === colon + 2 && ve === lineEnd && lineEnd === eol - 1 && head.charCodeAt(colon + 1) === 32;
      if (canonical) this.spans.push(pos, lineEnd);
      else this.spans.push(-1, -1);
      names.push(name);
      keys.push(key);
      values.push(value);
      if (key === 'content-length') this.noteContentLength(value, false);
      pos = eol + 1;
    }
    if (first) this.startLine = '';
    return true;
  }

  private noteContentLength(value: string, continuation: boolean): void {
    if (!continuation && this.clValue !== undefined && trimLws(this.clValue) !== value) this.clConflict = true;
    this.clValue = value;
  }
}

/** Index just past the first empty line (LF LF or LF CR LF) at or after `from`, or -1. */
function blankLineEnd(buf: Buffer, from: number, len: number): number {
  for (let i = buf.indexOf(10, from); i >= 0 && i + 1 < len; i = buf.indexOf(10, i + 1)) {
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}

function parseStartLine(line: string, names: string[], keys: string[], values: string[], body: Uint8Array): SipRequest | SipResponse {
  if (line.length > 4 && line.charCodeAt(0) === 83 && line.startsWith('SIP/')) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    const sp = line.indexOf(' ');
    if (sp < 0) throw new SipParseError('BAD_START_LINE', 'status line without status code');
    const version = line.slice(0, sp);
    if (!SIP_VERSION.test(version)) throw new SipParseError('BAD_START_LINE', 'bad SIP version in status line');
    const c1 = line.charCodeAt(sp + 1) - 48;
    const c2 = line.charCodeAt(sp + 2) - 48;
    const c3 = line.charCodeAt(sp + 3) - 48;
    const after = line.charCodeAt(sp + 4);
    if (!(c1 >= 1 && c1 <= 6 && c2 >= 0 && c2 <= 9 && c3 >= 0 && c3 <= 9) || !(Number.isNaN(after) || after === 32)) {
      throw new SipParseError('BAD_START_LINE', `bad status code: ${snippet(line.slice(sp + 1))}`);
    }
    const status = c1 * 100 + c2 * 10 + c3;
    const reason = sp + 5 <= line.length ? line.slice(sp + 5) : '';
    return new SipResponse(status, reason, names, keys, values, body, version);
  }
  // Request-Line = Method SP Request-URI SP SIP-Version (exactly single SPs: RFC 4475 §3.1.2.9/10)
  const sp1 = line.indexOf(' ');
  if (sp1 <= 0) throw new SipParseError('BAD_START_LINE', `not a SIP start line: ${snippet(line)}`);
  const method = line.slice(0, sp1);
  // Native regex tests: a per-character loop costs more than the whole test here.
  if (!METHOD.test(method)) throw new SipParseError('BAD_START_LINE', `method is not a token: ${snippet(method)}`);
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp2 < 0) throw new SipParseError('BAD_START_LINE', 'request line needs Method SP Request-URI SP SIP-Version');
  const uri = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (uri.length === 0) throw new SipParseError('BAD_START_LINE', 'extra whitespace in request line');
  if (schemeLength(uri) === 0) throw new SipParseError('BAD_START_LINE', `Request-URI is not a URI: ${snippet(uri)}`);
  if (!SIP_VERSION.test(version)) {
    throw new SipParseError('BAD_START_LINE', `bad SIP version or whitespace in request line: ${snippet(version)}`);
  }
  if (CONTROL.test(uri)) throw new SipParseError('BAD_START_LINE', 'control character in Request-URI');
  return new SipRequest(method, uri, names, keys, values, body, version);
}

function snippet(s: string): string {
  const t = s.length > 40 ? s.slice(0, 40) + '…' : s;
  return JSON.stringify(t);
}
