import { SipParseError } from './errors.js';
import { TOKEN, isWs, quote, trimLws } from './chars.js';
import { Params, checkParams, endOfQuoted, parseParams, unquote } from './params.js';
import { checkUri, parseUri, schemeLength, type Uri } from './uri.js';

/**
 * name-addr / addr-spec with header parameters (RFC 3261 §20.10, §25.1):
 * From, To, Contact, Route, Record-Route, Reply-To, Refer-To, …
 * The URI is parsed lazily: many messages are routed on the tag alone. So are the
 * parameters of a received one, and `tag` reads the common `;tag=value` without them.
 */
export class NameAddr {
  private dn: string | undefined;
  private ut: string;
  // A received From/To: its whole text and header name until a field other than the tag is read.
  private src: string | undefined = undefined;
  private srcHeader = '';
  private parsed: Uri | undefined;
  // Received parameters: the text they are in and where they start, until first use.
  private paramsSrc: string | undefined = undefined;
  private paramsAt = 0;
  private paramsHeader = '';
  private parsedParams: Params | undefined;

  constructor(uri: string | Uri, params: Params = new Params(), displayName?: string) {
    if (typeof uri === 'string') {
      this.ut = uri;
    } else {
      this.ut = uri.toString();
      this.parsed = uri;
    }
    this.parsedParams = params;
    this.dn = displayName;
  }

  /**
   * @internal A received name-addr parsed on first use of a field; `tag` reads a plain
   * `"display" <uri>;tag=token` without parsing the rest. Throws SipParseError then when
   * malformed (`validate()` reads From and To).
   */
  static received(s: string, header: string): NameAddr {
    const na = new NameAddr('', EMPTY_PARAMS);
    na.parsedParams = undefined;
    na.src = s;
    na.srcHeader = header;
    return na;
  }

  private load(): void {
    // Left in place when it throws, so that every later read throws too.
    parseInto(this, this.src!, this.srcHeader);
    this.src = undefined;
  }

  /** Display name, unquoted and unescaped; undefined when absent. */
  get displayName(): string | undefined {
    if (this.src !== undefined) this.load();
    return this.dn;
  }

  set displayName(d: string | undefined) {
    if (this.src !== undefined) this.load();
    this.dn = d;
  }

  /** The URI text as written, without angle brackets. */
  get uriText(): string {
    if (this.src !== undefined) this.load();
    return this.ut;
  }

  set uriText(u: string) {
    if (this.src !== undefined) this.load();
    this.ut = u;
    this.parsed = undefined;
  }

  /** @internal Set what the parser read; the parameters, s[at…] when given, are parsed on first use. */
  fill(uriText: string, displayName: string | undefined, s: string | undefined, at: number, header: string): void {
    this.ut = uriText;
    this.dn = displayName;
    if (s === undefined) {
      this.parsedParams = new Params();
    } else {
      this.parsedParams = undefined;
      this.paramsSrc = s;
      this.paramsAt = at;
      this.paramsHeader = header;
    }
  }

  /** Header parameters; throws SipParseError when the received ones are malformed (`validate()` reads them). */
  get params(): Params {
    if (this.src !== undefined) this.load();
    const src = this.paramsSrc;
    if (src !== undefined) {
      this.parsedParams = parseParams(src, this.paramsAt, this.paramsHeader);
      this.paramsSrc = undefined;
    }
    return this.parsedParams!;
  }

  /**
   * @internal Throws what reading `params` would throw, without building them when they are
   * still unparsed (validate() checks a received From and To that are then mostly read for
   * their tag alone, which is read without them).
   */
  checkParams(): void {
    if (this.src !== undefined) this.load();
    const src = this.paramsSrc;
    if (src !== undefined) checkParams(src, this.paramsAt, this.paramsHeader);
  }

  set params(p: Params) {
    if (this.src !== undefined) this.load();
    this.parsedParams = p;
    this.paramsSrc = undefined;
  }

  /** The parsed URI (throws SipParseError('BAD_URI') when it is malformed). */
  get uri(): Uri {
    return (this.parsed ??= parseUri(this.uriText));
  }

  set uri(u: Uri) {
    if (this.src !== undefined) this.load();
    this.parsed = u;
    this.ut = u.toString();
  }

  get tag(): string | undefined {
    const whole = this.src;
    if (whole !== undefined) {
      const t = tagOfPlain(whole);
      if (t !== undefined) return t === NO_TAG ? undefined : t;
      this.load();
    }
    const src = this.paramsSrc;
    if (src !== undefined) {
      const t = leadingTag(src, this.paramsAt);
      if (t !== undefined) return t;
    }
    const t = this.params.get('tag');
    return t == null ? undefined : t;
  }

  set tag(t: string | undefined) {
    if (t === undefined) this.params.delete('tag');
    else this.params.set('tag', t);
  }

  get expires(): number | undefined {
    const e = this.params.get('expires');
    if (e == null || !EXPIRES.test(e)) return undefined;
    return Number(e);
  }

  get q(): number | undefined {
    const q = this.params.get('q');
    return q == null ? undefined : Number(q);
  }

  clone(): NameAddr {
    return new NameAddr(this.uriText, this.params.clone(), this.displayName);
  }

  /** Always the name-addr form: `<…>` keeps URI parameters apart from header parameters. */
  toString(): string {
    if (this.src !== undefined) this.load();
    const dn = this.dn;
    let p: string;
    try {
      p = this.params.toString();
    } catch {
      p = this.paramsSrc!.slice(this.paramsAt); // malformed: re-sent as received
    }
    return (dn !== undefined && dn !== '' ? quote(dn) + ' ' : '') + '<' + this.ut + '>' + p;
  }

  /** The header value as a string (as received when it does not parse: JSON.stringify never throws on it). */
  toJSON(): string {
    try {
      return this.toString();
    } catch {
      return this.src ?? this.ut;
    }
  }
}

const EMPTY_PARAMS = new Params();
// Made once: a regular expression literal in a function body is a new object per call.
const EXPIRES = /^\d{1,10}$/;
const LWS_RUN = /[ \t]+/g;
const NO_TAG = '';

/**
 * The tag of a name-addr written plainly — an optional quoted display name not ending
 * in an escape, or a token one, then `<uri>` — found by native searches: NO_TAG when nothing
 * follows the '>', the value of a leading `;tag=token`, or undefined for "parse it all".
 */
function tagOfPlain(s: string): string | undefined {
  let from = 0;
  if (s.charCodeAt(0) === 34) {
    const q = s.indexOf('"', 1);
    // The first quote after the opening one closes it unless escaped (then parse it all).
    if (q < 0 || s.charCodeAt(q - 1) === 92) return undefined;
    from = q + 1;
  }
  // '<' comes first, or after the display name and one space, nearly always.
  const lt = s.charCodeAt(from) === 60 ? from : s.charCodeAt(from + 1) === 60 ? from + 1 : s.indexOf('<', from);
  if (lt < 0) return undefined;
  const gt = s.indexOf('>', lt + 1);
  if (gt < 0) return undefined;
  if (gt + 1 === s.length) return NO_TAG;
  return leadingTag(s, gt + 1);
}

/**
 * The value of a `;tag=` written first and tight (how nearly every stack writes it),
 * read without parsing the other parameters; undefined means "parse them all".
 */
function leadingTag(s: string, at: number): string | undefined {
  if (
    s.charCodeAt(at) !== 59 ||
    s.charCodeAt(at + 1) !== 116 ||
    s.charCodeAt(at + 2) !== 97 ||
    s.charCodeAt(at + 3) !== 103 ||
    s.charCodeAt(at + 4) !== 61
  ) {
    return undefined;
  }
  const vs = at + 5;
  let e = s.indexOf(';', vs);
  if (e < 0) e = s.length;
  // Where the grammar accepts the value, it runs to the ';' or the end, unless it is quoted
  // or padded with LWS: then the full grammar decides. (An invalid one is validate()'s to refuse.)
  if (e === vs) return undefined;
  const c = s.charCodeAt(vs);
  if (c === 34 || isWs(c) || isWs(s.charCodeAt(e - 1))) return undefined;
  return s.slice(vs, e);
}

/** @internal `NameAddr.received(s, header).tag`, without the NameAddr when the tag is written plainly. */
export function receivedTag(s: string, header: string): string | undefined {
  const t = tagOfPlain(s);
  if (t !== undefined) return t === NO_TAG ? undefined : t;
  return NameAddr.received(s, header).tag;
}

/** `Contact: *` (RFC 3261 §10.2.2): remove all bindings. */
export const CONTACT_WILDCARD = '*' as const;

/** Parse one name-addr or addr-spec (one list element) with its parameters. */
export function parseNameAddr(s: string, header = 'name-addr'): NameAddr {
  const na = new NameAddr('', EMPTY_PARAMS);
  parseInto(na, s, header);
  return na;
}

/**
 * @internal Throws what parseNameAddr(s, header) and then reading its `uri` and `params`
 * would throw, without building any of them: for values only checked before they are sent.
 */
export function checkNameAddr(s: string, header: string): void {
  parseInto(undefined, s, header, true);
}

/** @internal Throws what parseNameAddr(s, header) alone would throw (not reading `uri` or `params`). */
export function checkNameAddrSyntax(s: string, header: string): void {
  parseInto(undefined, s, header, false);
}

/**
 * Parse into `na`; with no `na`, check only, nothing kept: with `whole`, the URI and the
 * parameters too (what reading `uri`, then `params`, would throw).
 */
function parseInto(na: NameAddr | undefined, s: string, header: string, whole = false): void {
  const n = s.length;
  let i = 0;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i >= n) throw new SipParseError('BAD_HEADER', `empty ${header}`, header);
  let display: string | undefined;
  let lt: number;
  if (s.charCodeAt(i) === 34) {
    const e = endOfQuoted(s, i);
    if (e < 0) throw new SipParseError('BAD_HEADER', `unterminated quoted display name in ${header}`, header);
    if (na !== undefined) display = unquote(s.slice(i, e + 1));
    i = e + 1;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) !== 60) throw new SipParseError('BAD_HEADER', `expected '<' after display name in ${header}`, header);
    lt = i;
  } else {
    lt = s.indexOf('<', i);
    if (lt >= 0) {
      // display-name = *(token LWS): anything else must be quoted (RFC 4475 §3.1.2.15).
      for (let k = i; k < lt; k++) {
        const c = s.charCodeAt(k);
        if (!(c >= 128 || TOKEN[c] === 1 || isWs(c))) {
          throw new SipParseError('BAD_HEADER', `unquoted display name with special characters in ${header}`, header);
        }
      }
      if (na !== undefined) {
        const d = trimLws(s.slice(i, lt));
        // Runs of LWS between tokens read as one space; most names have none to fold.
        display = d.length === 0 ? undefined : d.indexOf('  ') < 0 && d.indexOf('\t') < 0 ? d : d.replace(LWS_RUN, ' ');
      }
    }
  }
  let uriText: string;
  let rest: number;
  if (lt >= 0) {
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) throw new SipParseError('BAD_HEADER', `missing '>' in ${header}`, header);
    uriText = s.slice(lt + 1, gt);
    // No LWS inside the brackets (RFC 4475 §3.1.2.14).
    if (uriText.length === 0 || isWs(uriText.charCodeAt(0)) || isWs(uriText.charCodeAt(uriText.length - 1))) {
      throw new SipParseError('BAD_HEADER', `whitespace inside <> in ${header}`, header);
    }
    if (schemeLength(uriText) === 0) throw new SipParseError('BAD_HEADER', `URI without scheme in ${header}`, header);
    rest = gt + 1;
  } else {
    // addr-spec: the URI ends at the first ';' — those are header parameters (§20.10).
    let e = i;
    while (e < n) {
      const c = s.charCodeAt(e);
      if (c === 59 || isWs(c)) break;
      e++;
    }
    uriText = s.slice(i, e);
    if (schemeLength(uriText) === 0) throw new SipParseError('BAD_HEADER', `malformed URI in ${header}`, header);
    // Unbracketed URIs must not contain '?' or ',' (§20): they need name-addr form.
    if (uriText.indexOf('?') >= 0 || uriText.indexOf(',') >= 0) {
      throw new SipParseError('BAD_HEADER', `URI with headers must be enclosed in <> in ${header}`, header);
    }
    rest = e;
  }
  if (na === undefined) {
    if (whole) {
      checkUri(uriText);
      if (rest < n) checkParams(s, rest, header);
    }
    return;
  }
  // Nothing after the URI: no parameters to parse later.
  na.fill(uriText, display, rest >= n ? undefined : s, rest, header);
}
