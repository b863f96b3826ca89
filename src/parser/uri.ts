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
  out.host = s.slice(hs, i);
  out.port = undefined;
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
    out.port = port;
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
    return this.number.replace(/[-.()]/g, '');
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

function parseUriParams(s: string, i: number, end: number, what: string): Params {
  const list: Array<string | null> = [];
  while (i < end) {
    // i points at ';'
    i++;
    let j = i;
    while (j < end && s.charCodeAt(j) !== 59) j++;
    const part = s.slice(i, j);
    if (part.length === 0) throw new SipParseError('BAD_URI', `empty parameter in ${what}`);
    const eq = part.indexOf('=');
    if (eq === 0) throw new SipParseError('BAD_URI', `empty parameter name in ${what}`);
    for (let k = 0; k < part.length; k++) {
      const c = part.charCodeAt(k);
      if (c <= 32 || c === 127 || c === 34 || c === 60 || c === 62) throw new SipParseError('BAD_URI', `bad character in parameter of ${what}`);
    }
    if (eq < 0) list.push(part, null);
    else list.push(part.slice(0, eq), part.slice(eq + 1));
    i = j;
  }
  return new Params(list);
}

/**
 * Parse a URI. sip/sips and tel are structured; any other well-formed scheme is
 * kept opaque. Throws SipParseError('BAD_URI').
 */
export function parseUri(s: string): Uri {
  const what = 'URI';
  const sl = schemeLength(s);
  if (sl === 0) throw new SipParseError('BAD_URI', `URI has no scheme: ${truncate(s)}`);
  for (let k = sl + 1; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c <= 32 || c === 127) throw new SipParseError('BAD_URI', 'whitespace or control character in URI');
  }
  const scheme = s.slice(0, sl).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(s, sl + 1, scheme, what);
  if (scheme === 'tel') {
    const semi = s.indexOf(';', 4);
    const num = semi < 0 ? s.slice(4) : s.slice(4, semi);
    if (num.length === 0 || !/^[0-9A-Fa-f*#+\-.()pPwW]+$/.test(num)) throw new SipParseError('BAD_URI', 'bad tel number');
    return new TelUri(num, semi < 0 ? new Params() : parseUriParams(s, semi, s.length, 'tel URI'));
  }
  if (sl + 1 === s.length) throw new SipParseError('BAD_URI', 'empty URI after scheme');
  return new OpaqueUri(s.slice(0, sl), s.slice(sl + 1));
}

const HP: HostPort = { host: '', port: undefined };

function parseSipUri(s: string, i: number, scheme: 'sip' | 'sips', what: string): SipUri {
  const n = s.length;
  // '@' may only appear unescaped as the end of userinfo: params and headers cannot hold it.
  const at = s.indexOf('@', i);
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const colon = s.indexOf(':', i);
    if (colon >= 0 && colon < at) {
      user = s.slice(i, colon);
      password = s.slice(colon + 1, at);
    } else {
      user = s.slice(i, at);
    }
    if (user.length === 0) throw new SipParseError('BAD_URI', 'empty user part in URI');
    i = at + 1;
  }
  const q = s.indexOf('?', i);
  const end = q < 0 ? n : q;
  i = parseHostPort(s, i, end, what, HP);
  const host = HP.host;
  const port = HP.port;
  if (i < end && s.charCodeAt(i) !== 59) throw new SipParseError('BAD_URI', `unexpected character after host in ${truncate(s)}`);
  const params = i < end ? parseUriParams(s, i, end, what) : new Params();
  const headers = q < 0 ? undefined : s.slice(q + 1);
  return new SipUri({ scheme, user, password, host, port, params, headers });
}

function truncate(s: string): string {
  return s.length > 64 ? s.slice(0, 64) + '…' : s;
}
