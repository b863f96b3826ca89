import { decodeUtf8, encodeLatin1 } from './bytes.js';
import { SipParseError } from './errors.js';
import { trimLws } from './chars.js';
import { headerKey, headerNameAndKey, isListHeader, linePrefix, wireName } from './header-names.js';
import { firstOfList, splitList } from './list.js';
import { CONTACT_WILDCARD, NameAddr, parseNameAddr } from './name-addr.js';
import { parseCSeq, parseCSeqIn, parseContentType, parseReason, parseUnsigned, type CSeq, type ContentType, type Reason } from './scalars.js';
import { parseUri, type Uri } from './uri.js';
import { Via, parseVia } from './via.js';

/** Anything whose `toString()` is a header value: a string, a Via, a NameAddr, … */
export type HeaderValue = string | number | { toString(): string };

const EMPTY = new Uint8Array(0);

const CONTENT_LENGTH = '\r\nContent-Length: ';

/** Header lines a message being built usually gains after its arrays are made (a response: To, Contact, Content-Type, …). */
const ROOM = 4;

/** `a.splice(at, 0, v)` without the array of removed elements splice allocates. */
function insertAt<T>(a: T[], at: number, v: T): void {
  for (let k = a.length; k > at; k--) a[k] = a[k - 1]!;
  a[at] = v;
}

/** `a.splice(at, n)` without the array of removed elements splice allocates. */
function removeAt<T>(a: T[], at: number, n: number): void {
  const len = a.length;
  if (at + n > len) n = len - at;
  for (let k = at + n; k < len; k++) a[k - n] = a[k]!;
  a.length = len - n;
}

/**
 * An array of length `n` (holes) with room for ROOM more lines of `per` slots each: lines
 * appended then fill the room instead of regrowing the array (to 1.5 times its length
 * plus 16). A length set below an array's capacity keeps the capacity unless it would
 * leave more than half unused.
 */
function withRoom<T>(n: number, per: number): T[] {
  const a = new Array<T>(n + ROOM * per);
  a.length = n;
  return a;
}

/** Each of `list` parsed, in place (getAll() made the array: no second one, no closure). */
function nameAddrs(list: string[], header: string): NameAddr[] {
  const out = list as unknown as NameAddr[];
  for (let i = 0; i < list.length; i++) out[i] = parseNameAddr(list[i]!, header);
  return out;
}

/** A line a response copies from its request (RFC 3261 §8.2.6, §12.1.1). */
function copied(key: string, recordRoute: boolean, timestamp: boolean): boolean {
  switch (key) {
    case 'via':
    case 'from':
    case 'to':
    case 'call-id':
    case 'cseq':
      return true;
    case 'record-route':
      return recordRoute;
    case 'timestamp':
      return timestamp;
    default:
      return false;
  }
}

/**
 * State shared by requests and responses: an ordered header list kept as the
 * raw (unfolded) values, with typed views parsed on first access and cached.
 * Raw values are the source of truth; typed views are snapshots, so change a
 * header with `set`/`append`/`prepend`/`remove`.
 */
export abstract class SipMessage {
  abstract readonly type: 'request' | 'response';
  private ver: string;
  // The body: either bytes, or (as parsed) a range of the received buffer cut out on first use.
  private bodyBytes: Uint8Array;
  private bodySource: Buffer | undefined = undefined;
  private bodyFrom = 0;
  private bodyTo = 0;
  /** True when the message had conflicting Content-Length headers (RFC 4475 §3.3.9). */
  framingError = false;

  // Parallel arrays rather than per-header objects: one allocation per field, not per header.
  // `names` and `values` exist only once needed, and then are as long as `keys`.
  /** Wire names; undefined while every header is a registered one, written under its long name. */
  protected names: string[] | undefined;
  protected keys: string[];
  /** Values not read from the received text (built, set, folded); undefined per line and as a whole while none. */
  protected values: Array<string | undefined> | undefined;

  // The received text, one character per byte, and per header four offsets into it: the line
  // [start, end) when it is unchanged and canonical (else -1, -1), then the value [start, end).
  // When the message was not all ASCII, pieces of it are decoded from its bytes as UTF-8.
  private rawText: string | undefined;
  private rawUtf8: Buffer | undefined;
  private spans: number[] | undefined;

  // The received bytes [wireFrom, wireTo) while the message is unchanged and was received in
  // the form the serializer writes (long names, CRLF, "Name: value", one true Content-Length):
  // serializing it then is one copy of them. Any change to the message drops them.
  private wire: Buffer | undefined = undefined;
  private wireFrom = 0;
  private wireTo = 0;

  private cVia: Via[] | undefined;
  private cFrom: NameAddr | undefined;
  private cTo: NameAddr | undefined;
  private cCSeq: CSeq | undefined;

  constructor(names: string[] | undefined, keys: string[], values: Array<string | undefined> | undefined, body: Uint8Array | undefined, version: string) {
    this.names = names;
    this.keys = keys;
    this.values = values;
    this.bodyBytes = body ?? EMPTY;
    this.ver = version;
  }

  /** SIP-Version as received (e.g. `SIP/2.0`). */
  get version(): string {
    return this.ver;
  }

  set version(v: string) {
    this.ver = v;
    this.changed();
  }

  /** @internal The whole message is bytes [from, to) of `source`, exactly as toBytes() would write it. */
  attachWire(source: Buffer, from: number, to: number): void {
    this.wire = source;
    this.wireFrom = from;
    this.wireTo = to;
  }

  /** @internal The message is about to change: serialize it from its parts from now on. */
  protected changed(): void {
    this.wire = undefined;
  }

  /**
   * @internal Attach the received text (latin1: a character per byte) and, when not all
   * ASCII, the bytes to decode pieces of it from. Values left undefined are sliced from it
   * on first read, and unchanged lines serialize as slices of it. `spans` holds four
   * offsets per header.
   */
  attachRaw(text: string, spans: number[], utf8: Buffer | undefined): void {
    this.rawText = text;
    this.rawUtf8 = utf8;
    this.spans = spans;
  }

  /** Received text [from, to). */
  private rawPiece(from: number, to: number): string {
    return this.rawUtf8 === undefined ? this.rawText!.slice(from, to) : decodeUtf8(this.rawUtf8, from, to);
  }

  /** The raw value of header line `i`: set or built, else sliced from the received text. */
  protected valueAt(i: number): string {
    const o = this.values;
    if (o !== undefined) {
      const v = o[i];
      if (v !== undefined) return v;
    }
    const s = this.spans!;
    return this.rawPiece(s[4 * i + 2]!, s[4 * i + 3]!);
  }

  /**
   * Whether received line `i` (unchanged: its span is set) has the value `ascii`, compared in
   * the received text rather than sliced out of it (for an ASCII `ascii`, comparing the text's
   * bytes is comparing the UTF-8 value).
   */
  private rawValueIs(i: number, ascii: string): boolean {
    const s = this.spans!;
    const from = s[4 * i + 2]!;
    const n = ascii.length;
    if (s[4 * i + 3]! - from !== n) return false;
    const t = this.rawText!;
    for (let k = 0; k < n; k++) if (t.charCodeAt(from + k) !== ascii.charCodeAt(k)) return false;
    return true;
  }

  private nameAt(i: number): string {
    const n = this.names;
    return n !== undefined ? n[i]! : wireName(this.keys[i]!);
  }

  private setLine(i: number, wire: string, value: string): void {
    if (this.names !== undefined) this.names[i] = wire;
    else if (wire !== wireName(this.keys[i]!)) (this.names = this.keys.map(wireName))[i] = wire;
    (this.values ??= withRoom<string | undefined>(this.keys.length, 1))[i] = value;
    if (this.spans !== undefined) this.spans[4 * i] = -1;
  }

  /** Insert a line at `at`; an undefined value is read from `spans` (the caller sets them). */
  private insertLine(at: number, wire: string, key: string, value: string | undefined, spans = true): void {
    // Appending is the common case (building a message, copying lines into a response): push,
    // as splice allocates an array of the removed elements on every call.
    if (at === this.keys.length) {
      if (this.names !== undefined) this.names.push(wire);
      else if (wire !== wireName(key)) (this.names = this.keys.map(wireName)).push(wire);
      if (this.values !== undefined) this.values.push(value);
      else if (value !== undefined) (this.values = withRoom<string | undefined>(at, 1)).push(value);
      this.keys.push(key);
      if (spans) this.spans?.push(-1, -1, -1, -1);
      return;
    }
    // Inserting (a Via or Record-Route on top) moves the lines after it by hand, for the same reason.
    if (this.names !== undefined) insertAt(this.names, at, wire);
    else if (wire !== wireName(key)) insertAt((this.names = this.keys.map(wireName)), at, wire);
    if (this.values !== undefined) insertAt(this.values, at, value);
    else if (value !== undefined) insertAt((this.values = new Array<string | undefined>(this.keys.length)), at, value);
    insertAt(this.keys, at, key);
    const sp = spans ? this.spans : undefined;
    if (sp !== undefined) {
      const n = sp.length;
      sp.push(-1, -1, -1, -1);
      for (let k = n - 1; k >= 4 * at; k--) sp[k + 4] = sp[k]!;
      sp[4 * at] = sp[4 * at + 1] = sp[4 * at + 2] = sp[4 * at + 3] = -1;
    }
  }

  /** @internal The parser's body: bytes [from, to) of the received buffer, not cut out until read. */
  attachBody(source: Buffer, from: number, to: number): void {
    this.bodySource = source;
    this.bodyFrom = from;
    this.bodyTo = to;
  }

  /** The body bytes, exact. Content-Length is computed from this on serialization. */
  get body(): Uint8Array {
    const src = this.bodySource;
    if (src !== undefined) {
      this.bodyBytes = src.subarray(this.bodyFrom, this.bodyTo);
      this.bodySource = undefined;
    }
    return this.bodyBytes;
  }

  set body(b: Uint8Array) {
    this.bodyBytes = b;
    this.bodySource = undefined;
    this.changed();
  }

  /** Body size in bytes, without cutting the body out of the received buffer. */
  get bodyLength(): number {
    return this.bodySource !== undefined ? this.bodyTo - this.bodyFrom : this.bodyBytes.length;
  }

  abstract startLine(): string;
  abstract clone(): SipMessage;

  /**
   * Trim a message kept for long (a call's INVITE while the call lasts): header storage
   * cut to size — arrays filled by push keep spare capacity — and cached typed views
   * dropped; they are parsed again if read again. Content and serialization are unchanged.
   */
  compact(): this {
    this.names = this.names?.slice();
    this.keys = this.keys.slice();
    this.values = this.values?.slice();
    if (this.spans !== undefined) this.spans = this.spans.slice();
    // Kept for long, the received datagram would double what the message holds.
    this.wire = undefined;
    this.cVia = this.cFrom = this.cTo = undefined;
    this.cCSeq = undefined;
    return this;
  }

  // ---- generic header access -------------------------------------------------

  /** Number of header lines. */
  get headerCount(): number {
    return this.keys.length;
  }

  /** Header lines as [wire name, raw value], in order (registered headers under their long name). */
  headerLines(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 0; i < this.keys.length; i++) out.push([this.nameAt(i), this.valueAt(i)]);
    return out;
  }

  /** How many lines of `name` the message has (list elements not split). */
  lineCount(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] === key) n++;
    return n;
  }

  /**
   * @internal How many lines each of `wanted` (canonical keys) has, in one pass over the
   * headers: validation asks this of eight headers on every message.
   */
  countKeys(wanted: readonly string[], counts: number[] = new Array<number>(wanted.length)): number[] {
    counts.fill(0);
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      const k = wanted.indexOf(keys[i]!);
      if (k >= 0) counts[k]!++;
    }
    return counts;
  }

  has(name: string): boolean {
    return this.keys.indexOf(headerKey(name)) >= 0;
  }

  /** First value: the first element of a list header, else the first line's value. */
  get(name: string): string | undefined {
    const key = headerKey(name);
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === key) {
        const v = this.valueAt(i);
        if (!isListHeader(key)) return v;
        const first = firstOfList(v);
        if (first.length > 0) return first;
      }
    }
    return undefined;
  }

  /** Every value: repeated lines, and list headers split into their elements. */
  getAll(name: string): string[] {
    const key = headerKey(name);
    const list = isListHeader(key);
    const out: string[] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== key) continue;
      const v = this.valueAt(i);
      if (!list) out.push(v);
      else if (v.indexOf(',') < 0) {
        // One element (splitList's own first case, without its array).
        const t = trimLws(v);
        if (t.length > 0) out.push(t);
      } else for (const e of splitList(v)) out.push(e);
    }
    return out;
  }

  /** Replace every line of `name` with one line (at the first one's position). */
  set(name: string, value: HeaderValue): this {
    const [wire, key] = headerNameAndKey(name);
    const v = String(value);
    let first = -1;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] === key) {
        if (first >= 0) this.spliceAt(first, 1);
        first = i;
      }
    }
    if (first >= 0) this.setLine(first, wire, v);
    else this.insertLine(this.keys.length, wire, key, v);
    this.invalidate(key);
    return this;
  }

  /** Add a line after the existing ones. */
  append(name: string, value: HeaderValue): this {
    const [wire, key] = headerNameAndKey(name);
    this.insertLine(this.keys.length, wire, key, String(value));
    this.invalidate(key);
    return this;
  }

  /** Add a line before the first line of the same header (or first of all): Via, Record-Route. */
  prepend(name: string, value: HeaderValue): this {
    const [wire, key] = headerNameAndKey(name);
    let at = this.keys.indexOf(key);
    if (at < 0) at = 0;
    this.insertLine(at, wire, key, String(value));
    this.invalidate(key);
    return this;
  }

  /**
   * @internal Copy the lines a response copies from its request (§8.2.6: Via, From, To,
   * Call-ID, CSeq; Record-Route when `recordRoute`, Timestamp when `timestamp`) into `to`,
   * a message with no header lines yet. Values are shared, not re-read, and the copies keep
   * pointing into the received text, so unchanged Via, From, Call-ID and CSeq lines
   * serialize as slices of it. (Flags, not a predicate: a closure per response was garbage.)
   */
  copyLinesInto(to: SipMessage, recordRoute: boolean, timestamp: boolean): void {
    const keys = this.keys;
    const n = keys.length;
    let count = 0;
    for (let i = 0; i < n; i++) if (copied(keys[i]!, recordRoute, timestamp)) count++;
    if (count === 0) return;
    const spans = this.spans;
    const names = this.names;
    const values = this.values;
    const withRaw = this.rawText !== undefined && spans !== undefined;
    // Sized up front (the target is empty): no array grows by push here.
    const toKeys = withRoom<string>(count, 1);
    const toNames = names !== undefined ? withRoom<string>(count, 1) : undefined;
    let toValues: Array<string | undefined> | undefined;
    const toSpans = withRaw ? withRoom<number>(4 * count, 4) : undefined;
    let w = 0;
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      if (!copied(key, recordRoute, timestamp)) continue;
      toKeys[w] = key;
      if (toNames !== undefined) toNames[w] = names![i]!;
      const v = values?.[i];
      if (v !== undefined) (toValues ??= withRoom<string | undefined>(count, 1))[w] = v;
      if (toSpans !== undefined) {
        toSpans[4 * w] = spans![4 * i]!;
        toSpans[4 * w + 1] = spans![4 * i + 1]!;
        toSpans[4 * w + 2] = spans![4 * i + 2]!;
        toSpans[4 * w + 3] = spans![4 * i + 3]!;
      }
      w++;
    }
    to.keys = toKeys;
    to.names = toNames;
    to.values = toValues;
    if (toSpans !== undefined) {
      to.rawText = this.rawText;
      to.rawUtf8 = this.rawUtf8;
      to.spans = toSpans;
    } else {
      to.spans = undefined;
    }
    to.changed();
    to.cVia = to.cFrom = to.cTo = undefined;
    to.cCSeq = undefined;
  }

  /** Remove every line of `name`; returns how many were removed. */
  remove(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] === key) {
        this.spliceAt(i, 1);
        n++;
      }
    }
    if (n > 0) this.invalidate(key);
    return n;
  }

  /** Remove the first element of a list header (e.g. the top Via or Route). */
  removeFirst(name: string): string | undefined {
    const key = headerKey(name);
    const i = this.keys.indexOf(key);
    if (i < 0) return undefined;
    const elems = isListHeader(key) ? splitList(this.valueAt(i)) : [this.valueAt(i)];
    const first = elems.shift();
    if (elems.length === 0) this.spliceAt(i, 1);
    else this.setLine(i, this.nameAt(i), elems.join(', '));
    this.invalidate(key);
    return first;
  }

  private spliceAt(i: number, n: number): void {
    // By hand: splice allocates an array of what it removes.
    if (this.names !== undefined) removeAt(this.names, i, n);
    removeAt(this.keys, i, n);
    if (this.values !== undefined) removeAt(this.values, i, n);
    if (this.spans !== undefined) removeAt(this.spans, 4 * i, 4 * n);
  }

  /** A header changed: drop the received-bytes copy and the cached view of that header. */
  private invalidate(key: string): void {
    this.changed();
    switch (key) {
      case 'via':
        this.cVia = undefined;
        break;
      case 'from':
        this.cFrom = undefined;
        break;
      case 'to':
        this.cTo = undefined;
        break;
      case 'cseq':
        this.cCSeq = undefined;
        break;
    }
  }

  private firstRaw(key: string): string | undefined {
    const i = this.keys.indexOf(key);
    return i < 0 ? undefined : this.valueAt(i);
  }

  private requiredIndex(key: string, label: string): number {
    const i = this.keys.indexOf(key);
    if (i < 0) throw new SipParseError('BAD_HEADER', `missing ${label} header`, key);
    return i;
  }

  private required(key: string, label: string): string {
    return this.valueAt(this.requiredIndex(key, label));
  }

  // ---- typed views ------------------------------------------------------------

  /**
   * Every Via, top first. Each is parsed on first use of one of its fields, which throws
   * SipParseError when it is malformed (`validate()` reads them all).
   */
  get via(): Via[] {
    if (this.cVia) return this.cVia;
    const out: Via[] = [];
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== 'via') continue;
      const v = this.valueAt(i);
      if (v.indexOf(',') < 0) out.push(Via.fromText(v));
      else for (const e of splitList(v)) out.push(Via.fromText(e));
    }
    return (this.cVia = out);
  }

  get topVia(): Via | undefined {
    if (this.cVia) return this.cVia[0];
    const v = this.firstRaw('via');
    return v === undefined ? undefined : parseVia(firstOfList(v));
  }

  get from(): NameAddr {
    return (this.cFrom ??= NameAddr.received(this.required('from', 'From'), 'from'));
  }

  get to(): NameAddr {
    return (this.cTo ??= NameAddr.received(this.required('to', 'To'), 'to'));
  }

  get callId(): string {
    return trimLws(this.required('call-id', 'Call-ID'));
  }

  get cseq(): CSeq {
    const c = this.cCSeq;
    if (c !== undefined) return c;
    const i = this.requiredIndex('cseq', 'CSeq');
    // A received value is read where it is in the text (it is ASCII or the method fails anyway).
    const v = this.values?.[i];
    const s = this.spans;
    return (this.cCSeq = v === undefined && s !== undefined ? parseCSeqIn(this.rawText!, s[4 * i + 2]!, s[4 * i + 3]!) : parseCSeq(this.valueAt(i)));
  }

  get maxForwards(): number | undefined {
    const v = this.firstRaw('max-forwards');
    // 1*DIGIT (§25.1); values above 255 are unusual but not malformed.
    return v === undefined ? undefined : parseUnsigned(v, 'max-forwards', 0x7fffffff);
  }

  /** The declared Content-Length (the serializer always writes the real one). */
  get contentLength(): number | undefined {
    const v = this.firstRaw('content-length');
    return v === undefined ? undefined : parseUnsigned(v, 'content-length', 0x7fffffff);
  }

  get contentType(): ContentType | undefined {
    const v = this.firstRaw('content-type');
    return v === undefined ? undefined : parseContentType(v);
  }

  /** Contact bindings, or '*' for the REGISTER wildcard. */
  get contact(): NameAddr[] | typeof CONTACT_WILDCARD {
    const all = this.getAll('contact');
    if (all.length === 1 && all[0] === '*') return CONTACT_WILDCARD;
    return nameAddrs(all, 'contact');
  }

  get route(): NameAddr[] {
    return nameAddrs(this.getAll('route'), 'route');
  }

  get recordRoute(): NameAddr[] {
    return nameAddrs(this.getAll('record-route'), 'record-route');
  }

  /** Reason headers (RFC 3326), e.g. `Q.850;cause=16`. */
  get reasons(): Reason[] {
    return this.getAll('reason').map(parseReason);
  }

  /** Body decoded as UTF-8. */
  get bodyText(): string {
    return Buffer.from(this.body.buffer, this.body.byteOffset, this.body.byteLength).toString('utf8');
  }

  // ---- serialization ------------------------------------------------------------

  /** Start line and headers with the terminating empty line; Content-Length is the body's real length. */
  head(): string {
    const keys = this.keys;
    const names = this.names;
    // Built by `+`: V8 makes a rope of the pieces, flattened once when it is encoded, which
    // measured 20–30 % faster per message than collecting the pieces and joining them. Each line
    // is its prefix (CRLF, name, ': ', made once per registered header) and its value: two
    // rope nodes a line.
    let s = this.startLine();
    const spans = this.spans;
    const length = String(this.bodyLength);
    let wroteLength = false;
    // A run of unchanged received lines, contiguous in `raw` (joined by CRLF), goes out as one slice.
    let runStart = -1;
    let runEnd = -1;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const start = spans === undefined ? -1 : spans[4 * i]!;
      // A received line goes out as it came, except a Content-Length: the first is written with
      // the body's real length unless it already says so, a duplicate is dropped.
      let raw = start >= 0;
      let drop = false;
      if (key === 'content-length') {
        if (wroteLength) drop = true;
        else {
          wroteLength = true;
          raw &&= this.rawValueIs(i, length);
        }
      }
      if (raw && !drop) {
        if (runStart < 0 || start !== runEnd + 2) {
          if (runStart >= 0) s = s + '\r\n' + this.rawPiece(runStart, runEnd);
          runStart = start;
        }
        runEnd = spans![4 * i + 1]!;
        continue;
      }
      if (runStart >= 0) s = s + '\r\n' + this.rawPiece(runStart, runEnd);
      runStart = -1;
      if (drop) continue;
      if (key === 'content-length') s = s + CONTENT_LENGTH + length;
      else s = s + linePrefix(key, names?.[i]) + this.valueAt(i);
    }
    if (runStart >= 0) s = s + '\r\n' + this.rawPiece(runStart, runEnd);
    if (!wroteLength) s = s + CONTENT_LENGTH + length;
    return s + '\r\n\r\n';
  }

  toBytes(): Buffer {
    const wire = this.wire;
    if (wire !== undefined) {
      // A copy from Node's buffer pool: Buffer.copyBytesFrom() mallocs a new backing store and costs 4x more.
      const from = this.wireFrom;
      const to = this.wireTo;
      const out = Buffer.allocUnsafe(to - from);
      out.set(from === 0 && to === wire.length ? wire : wire.subarray(from, to));
      return out;
    }
    return this.encode();
  }

  /** toBytes() of a message serialized from its parts (kept apart: the copy above stays a small function). */
  private encode(): Buffer {
    const head = this.head();
    const body = this.body;
    if (body.length === 0) return Buffer.from(head, 'utf8');
    // Exact size: over-allocating drains Node's 8 KiB buffer pool and costs more in GC than it saves.
    const hl = Buffer.byteLength(head, 'utf8');
    const out = Buffer.allocUnsafe(hl + body.length);
    // As many bytes as characters: all ASCII (any other character takes two or more bytes per
    // UTF-16 unit), so the head is written a byte per character, a copy without UTF-8 encoding.
    if (hl === head.length) encodeLatin1(out, head, hl);
    else out.write(head, 0, 'utf8');
    out.set(body, hl);
    return out;
  }

  toString(): string {
    // Received as ASCII (the only case the parser attaches wire bytes for): text offsets are byte offsets.
    if (this.wire !== undefined) return this.rawText!.slice(this.wireFrom, this.wireTo);
    return this.head() + (this.bodyLength > 0 ? this.bodyText : '');
  }

  protected copyHeaders(): [string[] | undefined, string[], Array<string | undefined> | undefined] {
    return [this.names?.slice(), this.keys.slice(), this.values?.slice()];
  }

  protected copyRawTo(m: SipMessage): void {
    if (this.rawText !== undefined && this.spans !== undefined) m.attachRaw(this.rawText, this.spans.slice(), this.rawUtf8);
    if (this.wire !== undefined) m.attachWire(this.wire, this.wireFrom, this.wireTo);
  }
}

export class SipRequest extends SipMessage {
  readonly type = 'request' as const;
  private methodName: string;
  private uriText: string;
  private cUri: Uri | undefined;

  constructor(
    method: string,
    uri: string,
    names?: string[],
    keys: string[] = [],
    values?: Array<string | undefined>,
    body?: Uint8Array,
    version = 'SIP/2.0',
  ) {
    super(names, keys, values, body, version);
    this.methodName = method;
    this.uriText = uri;
  }

  get method(): string {
    return this.methodName;
  }

  set method(m: string) {
    this.methodName = m;
    this.changed();
  }

  /** The Request-URI as written. */
  get uri(): string {
    return this.uriText;
  }

  set uri(u: string) {
    this.uriText = u;
    this.cUri = undefined;
    this.changed();
  }

  /** The Request-URI parsed (throws SipParseError('BAD_URI') when malformed). */
  get requestUri(): Uri {
    return (this.cUri ??= parseUri(this.uriText));
  }

  override compact(): this {
    this.cUri = undefined;
    return super.compact();
  }

  startLine(): string {
    return this.methodName + ' ' + this.uriText + ' ' + this.version;
  }

  clone(): SipRequest {
    const [n, k, v] = this.copyHeaders();
    const c = new SipRequest(this.methodName, this.uriText, n, k, v, this.body, this.version);
    this.copyRawTo(c);
    return c;
  }
}

export class SipResponse extends SipMessage {
  readonly type = 'response' as const;
  private code: number;
  private phrase: string;

  constructor(
    status: number,
    reason: string,
    names?: string[],
    keys: string[] = [],
    values?: Array<string | undefined>,
    body?: Uint8Array,
    version = 'SIP/2.0',
  ) {
    super(names, keys, values, body, version);
    this.code = status;
    this.phrase = reason;
  }

  get status(): number {
    return this.code;
  }

  set status(s: number) {
    this.code = s;
    this.changed();
  }

  /** Reason-Phrase (UTF-8, may be empty). */
  get reason(): string {
    return this.phrase;
  }

  set reason(r: string) {
    this.phrase = r;
    this.changed();
  }

  startLine(): string {
    return this.version + ' ' + this.code + ' ' + this.phrase;
  }

  clone(): SipResponse {
    const [n, k, v] = this.copyHeaders();
    const c = new SipResponse(this.code, this.phrase, n, k, v, this.body, this.version);
    this.copyRawTo(c);
    return c;
  }
}

export function isRequest(m: SipMessage): m is SipRequest {
  return m.type === 'request';
}

export function isResponse(m: SipMessage): m is SipResponse {
  return m.type === 'response';
}
