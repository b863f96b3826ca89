import { SipParseError } from './errors.js';
import { HOSTNAME, SCHEME, percentDecode } from './chars.js';
import { Params } from './params.js';

/** A parsed host and optional port. `host` keeps IPv6 references in brackets. */
export interface HostPort {
  host: string;
  port: number | undefined;
}

/**
 * Parse `host [":" port]` from s[i..end). Hostnames and IPv4 follow §25.1; IPv6
 * references are read liberally (RFC 5118 §4.10: accept the 3-colon form).
 * Returns the index after the port.
 */
export function parseHostPort(s: string, i: number, end: number, what: string, out: HostPort): number {
  return hostPort(s, i, end, what, out);
}

/** parseHostPort(), or with no `out` only checked (nothing sliced). */
function hostPort(s: string, i: number, end: number, what: string, out: HostPort | undefined): number {
  const hs = i;
  if (i < end && s.charCodeAt(i) === 91 /* [ */) {
    const close = s.indexOf(']', i);
    if (close < 0 || close >= end) throw new SipParseError('BAD_URI', `unterminated IPv6 reference in ${what}`);
    for (let j = i + 1; j < close; j++) {
      const c = s.charCodeAt(j);
      const ok = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
      if (!ok) throw new SipParseError('BAD_URI', `bad IPv6 reference in ${what}`);
    }
    if (close === i + 1) throw new SipParseError('BAD_URI', `empty IPv6 reference in ${what}`);
    i = close + 1;
  } else {
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c > 127 || HOSTNAME[c] === 0) break;
      i++;
    }
    if (i === hs) throw new SipParseError('BAD_URI', `missing host in ${what}`);
  }
  if (out !== undefined) {
    out.host = s.slice(hs, i);
    out.port = undefined;
  }
  if (i < end && s.charCodeAt(i) === 58 /* : */) {
    i++;
    const ps = i;
    let port = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      port = port * 10 + (c - 48);
      i++;
    }
    if (i === ps || i - ps > 5 || port > 65535) throw new SipParseError('BAD_URI', `bad port in ${what}`);
    if (out !== undefined) out.port = port;
  }
  return i;
}

/** sip: / sips: URI (RFC 3261 §19.1). Escapes are kept as written; accessors decode. */
export class SipUri {
  readonly kind = 'sip' as const;
  scheme: 'sip' | 'sips';
  /** user part as written (escaped), undefined when there is no userinfo. */
  userRaw: string | undefined;
  passwordRaw: string | undefined;
  host: string;
  port: number | undefined;
  params: Params;
  /** The `?h=v&…` part as written, without the '?'. */
  headersRaw: string | undefined;

  constructor(init: {
    scheme?: 'sip' | 'sips';
    user?: string | undefined;
    password?: string | undefined;
    host: string;
    port?: number | undefined;
    params?: Params;
    headers?: string | undefined;
  }) {
    this.scheme = init.scheme ?? 'sip';
    this.userRaw = init.user;
    this.passwordRaw = init.password;
    this.host = init.host;
    this.port = init.port;
    this.params = init.params ?? new Params();
    this.headersRaw = init.headers;
  }

  /** The user part with %-escapes decoded. */
  get user(): string | undefined {
    return this.userRaw === undefined ? undefined : percentDecode(this.userRaw);
  }

  get password(): string | undefined {
    return this.passwordRaw === undefined ? undefined : percentDecode(this.passwordRaw);
  }

  /** Host without IPv6 brackets, e.g. for socket APIs. */
  get hostname(): string {
    const h = this.host;
    return h.charCodeAt(0) === 91 ? h.slice(1, -1) : h;
  }

  param(name: string): string | null | undefined {
    const v = this.params.get(name);
    return v == null ? v : percentDecode(v);
  }

  get transport(): string | undefined {
    const t = this.params.get('transport');
    return t == null ? undefined : t.toLowerCase();
  }

  get lr(): boolean {
    return this.params.has('lr');
  }

  /** URI headers decoded, in order (`?Route=%3Csip:x%3E` → [['Route', '<sip:x>']]). */
  get headers(): Array<[string, string]> {
    if (!this.headersRaw) return [];
    return this.headersRaw.split('&').map((h) => {
      const eq = h.indexOf('=');
      return eq < 0 ? [percentDecode(h), ''] : [percentDecode(h.slice(0, eq)), percentDecode(h.slice(eq + 1))];
    });
  }

  clone(): SipUri {
    return new SipUri({
      scheme: this.scheme,
      user: this.userRaw,
      password: this.passwordRaw,
      host: this.host,
      port: this.port,
      params: this.params.clone(),
      headers: this.headersRaw,
    });
  }

  toString(): string {
    let s = this.scheme + ':';
    if (this.userRaw !== undefined) {
      s += this.userRaw;
      if (this.passwordRaw !== undefined) s += ':' + this.passwordRaw;
      s += '@';
    }
    s += this.host;
    if (this.port !== undefined) s += ':' + this.port;
    s += this.params.toString();
    if (this.headersRaw !== undefined) s += '?' + this.headersRaw;
    return s;
  }

  /** A URI goes into JSON as the string it is written as. */
  toJSON(): string {
    return this.toString();
  }
}

/** tel: URI (RFC 3966). */
export class TelUri {
  readonly kind = 'tel' as const;
  readonly scheme = 'tel' as const;
  /** The telephone-subscriber number as written (visual separators kept). */
  number: string;
  params: Params;

  constructor(number: string, params: Params = new Params()) {
    this.number = number;
    this.params = params;
  }

  /** Global numbers start with '+' (RFC 3966 §5.1.4). */
  get global(): boolean {
    return this.number.charCodeAt(0) === 43;
  }

  /** Digits only, visual separators (- . ( )) removed, for comparison (§4). */
  get digits(): string {
    return this.number.replace(VISUAL_SEPARATORS, '');
  }

  toString(): string {
    return 'tel:' + this.number + this.params.toString();
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Any other scheme: kept opaque, as RFC 3261 §19 requires of unknown schemes. */
export class OpaqueUri {
  readonly kind = 'opaque' as const;
  scheme: string;
  value: string;
  constructor(scheme: string, value: string) {
    this.scheme = scheme;
    this.value = value;
  }
  toString(): string {
    return this.scheme + ':' + this.value;
  }

  toJSON(): string {
    return this.toString();
  }
}

export type Uri = SipUri | TelUri | OpaqueUri;

// Made once: a regular expression literal in a function body is a new object per call.
const VISUAL_SEPARATORS = /[-.()]/g;
const TEL_NUMBER = /^[0-9A-Fa-f*#+\-.()pPwW]+$/;

/** Length of the scheme at the start of `s` (0 when `s` does not start with `scheme ":"`). */
export function schemeLength(s: string): number {
  const c0 = s.charCodeAt(0) | 0x20;
  if (!(c0 >= 97 && c0 <= 122)) return 0;
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) return i;
    if (c > 127 || SCHEME[c] === 0) return 0;
  }
  return 0;
}

/** URI parameters s[i..end), i at a ';'; with `build` false only checked (undefined returned, nothing sliced). */
function parseUriParams(s: string, i: number, end: number, what: string, build: boolean): Params | undefined {
  // One ';' per parameter: the list is sized up front, and names and values are sliced from `s` directly.
  let count = 0;
  if (build) for (let j = i; j < end; j++) if (s.charCodeAt(j) === 59) count++;
  const list = build ? new Array<string | null>(2 * count) : undefined;
  let w = 0;
  while (i < end) {
    // i points at ';'
    i++;
    let j = i;
    let eq = -1;
    let bad = false;
    for (; j < end; j++) {
      const c = s.charCodeAt(j);
      if (c === 59) break;
      if (c === 61 && eq < 0) eq = j;
      else if (c <= 32 || c === 127 || c === 34 || c === 60 || c === 62) bad = true;
    }
    if (j === i) throw new SipParseError('BAD_URI', `empty parameter in ${what}`);
    if (eq === i) throw new SipParseError('BAD_URI', `empty parameter name in ${what}`);
    if (bad) throw new SipParseError('BAD_URI', `bad character in parameter of ${what}`);
    if (list !== undefined) {
      if (eq < 0) {
        list[w++] = s.slice(i, j);
        list[w++] = null;
      } else {
        list[w++] = s.slice(i, eq);
        list[w++] = s.slice(eq + 1, j);
      }
    }
    i = j;
  }
  return list === undefined ? undefined : new Params(list);
}

/**
 * Parse a URI. sip/sips and tel are structured; any other well-formed scheme is
 * kept opaque. Throws SipParseError('BAD_URI').
 */
export function parseUri(s: string): Uri {
  return readUri(s, true)!;
}

/**
 * @internal Throws what parseUri() throws on `s`, without building the URI: for values
 * only checked before they are sent (a built request's Request-URI, From, To, Contact).
 */
export function checkUri(s: string): void {
  readUri(s, false);
}

/** `s` at `at` is `lower` (a lower-case ASCII word) in any case. */
function isWordAt(s: string, at: number, lower: string): boolean {
  for (let k = 0; k < lower.length; k++) if ((s.charCodeAt(at + k) | 0x20) !== lower.charCodeAt(k)) return false;
  return true;
}

function readUri(s: string, build: boolean): Uri | undefined {
  const what = 'URI';
  const sl = schemeLength(s);
  if (sl === 0) throw new SipParseError('BAD_URI', `URI has no scheme: ${truncate(s)}`);
  for (let k = sl + 1; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c <= 32 || c === 127) throw new SipParseError('BAD_URI', 'whitespace or control character in URI');
  }
  // The scheme compared in place (it is letters, digits, '+', '-', '.'), not sliced and lower-cased.
  if (sl === 3 && isWordAt(s, 0, 'sip')) return parseSipUri(s, sl + 1, 'sip', what, build);
  if (sl === 4 && isWordAt(s, 0, 'sips')) return parseSipUri(s, sl + 1, 'sips', what, build);
  if (sl === 3 && isWordAt(s, 0, 'tel')) {
    const semi = s.indexOf(';', 4);
    const num = semi < 0 ? s.slice(4) : s.slice(4, semi);
    if (num.length === 0 || !TEL_NUMBER.test(num)) throw new SipParseError('BAD_URI', 'bad tel number');
    const params = semi < 0 ? undefined : parseUriParams(s, semi, s.length, 'tel URI', build);
    return build ? new TelUri(num, params ?? new Params()) : undefined;
  }
  if (sl + 1 === s.length) throw new SipParseError('BAD_URI', 'empty URI after scheme');
  return build ? new OpaqueUri(s.slice(0, sl), s.slice(sl + 1)) : undefined;
}

const HP: HostPort = { host: '', port: undefined };

function parseSipUri(s: string, i: number, scheme: 'sip' | 'sips', what: string, build: boolean): SipUri | undefined {
  const n = s.length;
  // '@' may only appear unescaped as the end of userinfo: params and headers cannot hold it.
  const at = s.indexOf('@', i);
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const colon = s.indexOf(':', i);
    const userEnd = colon >= 0 && colon < at ? colon : at;
    if (userEnd === i) throw new SipParseError('BAD_URI', 'empty user part in URI');
    if (build) {
      user = s.slice(i, userEnd);
      if (userEnd !== at) password = s.slice(colon + 1, at);
    }
    i = at + 1;
  }
  const q = s.indexOf('?', i);
  const end = q < 0 ? n : q;
  i = hostPort(s, i, end, what, build ? HP : undefined);
  if (i < end && s.charCodeAt(i) !== 59) throw new SipParseError('BAD_URI', `unexpected character after host in ${truncate(s)}`);
  const params = i < end ? parseUriParams(s, i, end, what, build) : undefined;
  if (!build) return undefined;
  const init = URI_INIT;
  init.scheme = scheme;
  init.user = user;
  init.password = password;
  init.host = HP.host;
  init.port = HP.port;
  init.params = params;
  init.headers = q < 0 ? undefined : s.slice(q + 1);
  const uri = new SipUri(init);
  init.user = init.password = init.headers = init.params = undefined;
  init.host = '';
  return uri;
}

/** SipUri's constructor argument, reused: an object literal per parsed URI was garbage. */
const URI_INIT: {
  scheme: 'sip' | 'sips';
  user: string | undefined;
  password: string | undefined;
  host: string;
  port: number | undefined;
  params: Params | undefined;
  headers: string | undefined;
} = { scheme: 'sip', user: undefined, password: undefined, host: '', port: undefined, params: undefined, headers: undefined };

function truncate(s: string): string {
  return s.length > 64 ? s.slice(0, 64) + '…' : s;
}
