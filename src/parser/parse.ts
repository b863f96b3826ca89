import { isAscii } from 'node:buffer';
import { decodeLatin1, decodeUtf8 } from './bytes.js';
import { SipParseError } from './errors.js';
import { TOKEN, isWs, trimLws } from './chars.js';
import { knownHeader, knownLineName, wireName } from './header-names.js';
import { SipRequest, SipResponse } from './message.js';
import { schemeLength } from './uri.js';

export interface ParseLimits {
  /** Largest message accepted, in bytes (default 65 535, the UDP maximum). */
  maxMessageSize: number;
  /** Most header lines (default 256). */
  maxHeaders: number;
  /** Longest single line in the header section, in bytes (default 16 384). */
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

const METHOD = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const CONTROL = /[\x00-\x20\x7f]/;
const SIP_VERSION = /^SIP\/[0-9]{1,3}\.[0-9]{1,3}$/i;
/** The usual request line in one native test: token SP URI without controls or spaces SP `SIP/2.0`. */
const PLAIN_REQUEST_LINE = /^[A-Za-z0-9\-.!%*_+`'~]+ [^\x00-\x20\x7f]+ SIP\/2\.0$/;

function toBuffer(input: Uint8Array | string): Buffer {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (Buffer.isBuffer(input)) return input;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}


/**
 * Parse one SIP message. Throws SipParseError on anything that cannot be framed
 * or read (bad start line, header line without a colon, bad Content-Length, a
 * limit exceeded). Semantic problems — a malformed From, a CSeq out of range —
 * are left to the typed accessors and `validate()`, so a proxy can still
 * forward what it does not need to understand.
 *
 * The body is a view into the input bytes, not a copy. Header values are sliced
 * from the decoded text when first read.
 */
export function parseMessage(input: Uint8Array | string, options?: ParseOptions): SipRequest | SipResponse {
  const buf = toBuffer(input);
  // Read field by field: a merged limits object per message was garbage for the GC.
  const l = options?.limits;
  const maxMessageSize = l?.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize;
  const stream = options !== undefined && options.stream === true;
  const len = buf.length;
  if (len > maxMessageSize) throw new SipParseError('TOO_LARGE', `message of ${len} bytes exceeds ${maxMessageSize}`);

  // One native latin1 decode: a character per byte, so offsets into the text are byte offsets,
  // and the header section is read from the bytes themselves (a typed-array read costs half
  // a charCodeAt). Names, separators and numbers are ASCII; in a message with other bytes
  // (isAscii is a native SIMD check), values and the start line are decoded as UTF-8 when read.
  const ascii = isAscii(buf);
  const text = decodeLatin1(buf, 0, len);

  // §7.5: empty lines before the start line are ignored.
  let start = 0;
  while (start < len && (buf[start] === 13 || buf[start] === 10)) start++;
  if (start === len) throw new SipParseError('EMPTY', 'no message');

  const h = new HeaderSection(ascii ? undefined : buf);
  // The line loop finds the empty line that ends the header section (CRLF or, liberally, bare LF).
  let bodyStart = h.read(text, buf, start, len, l?.maxLineLength ?? DEFAULT_LIMITS.maxLineLength, l?.maxHeaders ?? DEFAULT_LIMITS.maxHeaders);
  if (bodyStart < 0) {
    if (stream) throw new SipParseError('BAD_HEADER', 'header section is not terminated by an empty line');
    // A datagram whose header section runs to its end (RFC 4475 §3.1.2.15's archive copy):
    // let the Content-Length check below decide about a body.
    bodyStart = len;
  }
  const keys = h.keys;
  const spans = h.spans();
  const names = h.names;
  const values = h.values;
  const clConflict = h.clConflict;

  // Framing by Content-Length (§18.3, §20.14).
  let bodyEnd: number;
  // Written as the serializer writes it: digits without a leading zero.
  let plainLength = false;
  const available = len - bodyStart;
  if (clConflict) {
    if (stream) throw new SipParseError('BAD_CONTENT_LENGTH', 'conflicting Content-Length headers', 'content-length');
    bodyEnd = len;
  } else if (h.clIndex >= 0) {
    // Read from the bytes (the value is trimmed already) unless it was folded.
    const folded = values?.[h.clIndex];
    // (UTF-8, so that a character beyond ASCII can only become bytes that are not digits.)
    const digits = folded === undefined ? buf : Buffer.from(folded, 'utf8');
    const from = folded === undefined ? spans[4 * h.clIndex + 2]! : 0;
    const to = folded === undefined ? spans[4 * h.clIndex + 3]! : digits.length;
    if (to === from) throw new SipParseError('BAD_CONTENT_LENGTH', 'empty Content-Length', 'content-length');
    let n = 0;
    for (let k = from; k < to; k++) {
      const c = digits[k]!;
      if (c < 48 || c > 57 || k - from >= 10) {
        throw new SipParseError('BAD_CONTENT_LENGTH', `bad Content-Length: ${snippet(h.contentLength(text))}`, 'content-length');
      }
      n = n * 10 + (c - 48);
    }
    plainLength = to - from === 1 || digits[from] !== 48;
    if (n > available) {
      throw new SipParseError('CONTENT_LENGTH_MISMATCH', `Content-Length ${n} exceeds the ${available} body bytes received`, 'content-length');
    }
    if (stream && n < available) throw new SipParseError('CONTENT_LENGTH_MISMATCH', 'bytes after the message body', 'content-length');
    // Datagram: octets past Content-Length are discarded (§18.3).
    bodyEnd = bodyStart + n;
  } else {
    if (stream) throw new SipParseError('MISSING_CONTENT_LENGTH', 'Content-Length is mandatory on stream transports', 'content-length');
    bodyEnd = len;
  }

  const msg = parseStartLine(h.startLine, names, keys, values);
  msg.attachRaw(text, spans, ascii ? undefined : buf);
  // Written exactly as the serializer would write it (the Content-Length too: no leading zeros,
  // the status line with its SP before an empty reason): serializing it is a copy of these bytes.
  if (ascii && h.canonical && plainLength) {
    const line = h.startLine;
    if (msg.type === 'request' || msg.reason.length > 0 || line.charCodeAt(line.length - 1) === 32) msg.attachWire(buf, start, bodyEnd);
  }
  if (bodyEnd > bodyStart) msg.attachBody(buf, bodyStart, bodyEnd);
  if (clConflict) msg.framingError = true;
  return msg;
}

// Scratch for the spans of the header section being read, copied out at the end into an array
// exactly as long: pushed four at a time, an array reallocates (17, 41, 77 … slots) on the way
// to a message's size. parseMessage() does not re-enter itself.
const SPANS: number[] = [];

/**
 * The header section split into lines: the start line, the keys and, only once
 * needed, parallel name and value arrays. Values are not sliced here: `spans` records, per header, four byte offsets —
 * the line [start, end) when it is exactly how the serializer would write it
 * ("Name: value", long name, no folding; else -1, -1), so unchanged runs of lines are
 * re-sent as one slice — then the trimmed value [start, end). A folded value is joined
 * here and stored in `values`.
 */
class HeaderSection {
  startLine = '';
  /** The keys read (pushed into an array of their own: callgrind counted more instructions for a scratch array copied out). */
  readonly keys: string[] = [];
  /** Wire names: only once a header other than a registered one in its long form is read. */
  names: string[] | undefined = undefined;
  /** Header lines read so far (their spans are in the scratch array SPANS until copied out). */
  n = 0;
  /** Folded values, joined: only once there is one. */
  values: Array<string | undefined> | undefined = undefined;
  /** Index of the first Content-Length header, or -1. */
  clIndex = -1;
  clConflict = false;
  /** Every line, the empty one included, is written as the serializer would write it, and Content-Length appears once. */
  canonical = true;

  /**
   * For one message. (A new section per parse: one object reused for every parse counted more
   * instructions under callgrind, its stores into an old object paying write barriers.)
   * `utf8`: the message's bytes when they are not all ASCII (text is then decoded from them as UTF-8).
   */
  constructor(private readonly utf8: Buffer | undefined) {}

  /** Bytes [from, to) as text: a slice of the latin1 text when the message is ASCII. */
  private piece(text: string, from: number, to: number): string {
    return this.utf8 === undefined ? text.slice(from, to) : decodeUtf8(this.utf8, from, to);
  }

  /** The spans read (four per header), in an array of their own, exactly as long. */
  spans(): number[] {
    return SPANS.slice(0, 4 * this.n);
  }

  /** Reads lines of [from, to) up to an empty line; returns the index just past it, or -1 when there is none. */
  read(text: string, b: Buffer, from: number, to: number, maxLine: number, maxHeaders: number): number {
    const keys = this.keys;
    const spans = SPANS;
    // Native indexOf beats a charCodeAt loop by an order of magnitude here.
    let eol = text.indexOf('\n', from);
    if (eol < 0 || eol > to) eol = to;
    let lineEnd = eol > from && b[eol - 1] === 13 ? eol - 1 : eol;
    if (lineEnd - from > maxLine) throw new SipParseError('LINE_TOO_LONG', 'start line too long');
    this.startLine = this.piece(text, from, lineEnd);
    if (lineEnd === eol) this.canonical = false;
    let pos = eol + 1;
    let repeatedLength = false;
    while (pos < to) {
      eol = text.indexOf('\n', pos);
      if (eol < 0 || eol > to) eol = to;
      lineEnd = eol > pos && b[eol - 1] === 13 ? eol - 1 : eol;
      if (lineEnd - pos > maxLine) throw new SipParseError('LINE_TOO_LONG', 'header line too long');
      if (lineEnd === pos) {
        // CRLF, not a bare LF, nor a CR that ends the datagram.
        if (lineEnd === eol || eol === to) this.canonical = false;
        if (repeatedLength) this.checkContentLengths(text);
        return eol < to ? eol + 1 : to;
      }
      const c0 = b[pos];
      if (c0 === 32 || c0 === 9) {
        this.fold(text, pos, lineEnd, maxLine);
        pos = eol + 1;
        continue;
      }
      const n = this.n;
      if (n >= maxHeaders) throw new SipParseError('TOO_MANY_HEADERS', `more than ${maxHeaders} header lines`);
      let name: string;
      let key: string;
      let colon: number;
      let ne: number;
      // The line's name is already the wire name (no compact form, canonical case).
      let asWritten = true;
      const exact = knownLineName(b, pos, c0);
      if (exact !== undefined) {
        name = exact[0];
        key = exact[1];
        colon = ne = pos + name.length;
      } else {
        colon = text.indexOf(':', pos);
        if (colon < 0 || colon >= lineEnd) throw new SipParseError('BAD_HEADER', `header line without a colon: ${snippet(this.piece(text, pos, lineEnd))}`);
        ne = colon;
        while (ne > pos && isWs(b[ne - 1])) ne--;
        if (ne === pos) throw new SipParseError('BAD_HEADER', 'empty header name');
        const raw = text.slice(pos, ne);
        const known = knownHeader(raw);
        if (known === undefined) {
          for (let k = pos; k < ne; k++) {
            const c = b[k];
            if (c > 127 || TOKEN[c] === 0) throw new SipParseError('BAD_HEADER', `bad header name: ${snippet(this.piece(text, pos, ne))}`);
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
      // Written as the serializer writes it: "Name: value", one SP, none trailing, CRLF.
      let tight = asWritten && ne === colon && lineEnd === eol - 1 && b[vs] === 32;
      if (tight) vs++;
      while (vs < ve && isWs(b[vs])) {
        vs++;
        tight = false;
      }
      while (ve > vs && isWs(b[ve - 1])) {
        ve--;
        tight = false;
      }
      const at = 4 * n;
      if (tight) {
        spans[at] = pos;
        spans[at + 1] = lineEnd;
      } else {
        spans[at] = -1;
        spans[at + 1] = -1;
        this.canonical = false;
      }
      spans[at + 2] = vs;
      spans[at + 3] = ve;
      if (key === 'content-length') {
        if (this.clIndex < 0) this.clIndex = n;
        else {
          repeatedLength = true;
          this.canonical = false;
        }
      }
      // Registered names are written long whatever their received form, as wireName() gives.
      if (this.names !== undefined) this.names.push(name);
      else if (exact === undefined && name !== wireName(key)) {
        const names: string[] = [];
        for (let k = 0; k < n; k++) names.push(wireName(keys[k]!));
        (this.names = names).push(name);
      }
      keys.push(key);
      this.n = n + 1;
      if (this.values !== undefined) this.values.push(undefined);
      pos = eol + 1;
    }
    this.canonical = false;
    if (repeatedLength) this.checkContentLengths(text);
    return -1;
  }

  /** Folded continuation (§7.3.1): joined to the previous value with a single SP. */
  private fold(text: string, pos: number, lineEnd: number, maxLine: number): void {
    const last = this.n - 1;
    if (last < 0) throw new SipParseError('BAD_HEADER', 'continuation line before the first header');
    const more = trimLws(this.piece(text, pos, lineEnd));
    const prev = this.rawValue(text, last);
    const joined = more.length === 0 ? prev : prev.length > 0 ? prev + ' ' + more : more;
    if (joined.length > maxLine) throw new SipParseError('LINE_TOO_LONG', 'folded header too long');
    (this.values ??= new Array<string | undefined>(this.n))[last] = joined;
    SPANS[4 * last] = -1;
    this.canonical = false;
  }

  private rawValue(text: string, i: number): string {
    return this.values?.[i] ?? this.piece(text, SPANS[4 * i + 2]!, SPANS[4 * i + 3]!);
  }

  /** The first Content-Length value (trimmed). */
  contentLength(text: string): string {
    return trimLws(this.rawValue(text, this.clIndex));
  }

  /** Repeated Content-Length headers are a framing error only when they disagree (RFC 4475 §3.3.9). */
  private checkContentLengths(text: string): void {
    const first = this.contentLength(text);
    for (let i = this.clIndex + 1; i < this.n; i++) {
      if (this.keys[i] === 'content-length' && trimLws(this.rawValue(text, i)) !== first) this.clConflict = true;
    }
  }
}


function parseStartLine(
  line: string,
  names: string[] | undefined,
  keys: string[],
  values: Array<string | undefined> | undefined,
): SipRequest | SipResponse {
  if (line.length > 4 && line.charCodeAt(0) === 83 && line.charCodeAt(1) === 73 && line.charCodeAt(2) === 80 && line.charCodeAt(3) === 47) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    const sp = line.indexOf(' ');
    if (sp < 0) throw new SipParseError('BAD_START_LINE', 'status line without status code');
    const version = sp === 7 && isSip20(line, 0) ? SIP_20 : line.slice(0, sp);
    if (version !== SIP_20 && !SIP_VERSION.test(version)) throw new SipParseError('BAD_START_LINE', 'bad SIP version in status line');
    const c1 = line.charCodeAt(sp + 1) - 48;
    const c2 = line.charCodeAt(sp + 2) - 48;
    const c3 = line.charCodeAt(sp + 3) - 48;
    const after = line.charCodeAt(sp + 4);
    if (!(c1 >= 1 && c1 <= 6 && c2 >= 0 && c2 <= 9 && c3 >= 0 && c3 <= 9) || !(Number.isNaN(after) || after === 32)) {
      throw new SipParseError('BAD_START_LINE', `bad status code: ${snippet(line.slice(sp + 1))}`);
    }
    const status = c1 * 100 + c2 * 10 + c3;
    const reason = sp + 5 <= line.length ? line.slice(sp + 5) : '';
    return new SipResponse(status, reason, names, keys, values, undefined, version);
  }
  // Request-Line = Method SP Request-URI SP SIP-Version (exactly single SPs: RFC 4475 §3.1.2.9/10)
  const sp1 = line.indexOf(' ');
  if (PLAIN_REQUEST_LINE.test(line)) {
    const uri = line.slice(sp1 + 1, line.length - 8);
    if (schemeLength(uri) === 0) throw new SipParseError('BAD_START_LINE', `Request-URI is not a URI: ${snippet(uri)}`);
    return new SipRequest(line.slice(0, sp1), uri, names, keys, values, undefined, SIP_20);
  }
  if (sp1 <= 0) throw new SipParseError('BAD_START_LINE', `not a SIP start line: ${snippet(line)}`);
  const method = line.slice(0, sp1);
  // Native regex tests: a per-character loop costs more than the whole test here.
  if (!METHOD.test(method)) throw new SipParseError('BAD_START_LINE', `method is not a token: ${snippet(method)}`);
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp2 < 0) throw new SipParseError('BAD_START_LINE', 'request line needs Method SP Request-URI SP SIP-Version');
  const uri = line.slice(sp1 + 1, sp2);
  const version = sp2 + 8 === line.length && isSip20(line, sp2 + 1) ? SIP_20 : line.slice(sp2 + 1);
  if (uri.length === 0) throw new SipParseError('BAD_START_LINE', 'extra whitespace in request line');
  if (schemeLength(uri) === 0) throw new SipParseError('BAD_START_LINE', `Request-URI is not a URI: ${snippet(uri)}`);
  if (version !== SIP_20 && !SIP_VERSION.test(version)) {
    throw new SipParseError('BAD_START_LINE', `bad SIP version or whitespace in request line: ${snippet(version)}`);
  }
  if (CONTROL.test(uri)) throw new SipParseError('BAD_START_LINE', 'control character in Request-URI');
  return new SipRequest(method, uri, names, keys, values, undefined, version);
}

const SIP_20 = 'SIP/2.0';

/** `SIP/2.0` exactly at `at`: checked by character, the version nearly every message carries. */
function isSip20(line: string, at: number): boolean {
  return (
    line.charCodeAt(at) === 83 &&
    line.charCodeAt(at + 1) === 73 &&
    line.charCodeAt(at + 2) === 80 &&
    line.charCodeAt(at + 3) === 47 &&
    line.charCodeAt(at + 4) === 50 &&
    line.charCodeAt(at + 5) === 46 &&
    line.charCodeAt(at + 6) === 48
  );
}

function snippet(s: string): string {
  const t = s.length > 40 ? s.slice(0, 40) + '…' : s;
  return JSON.stringify(t);
}
