import { DigestError } from './errors.js';

/** An auth scheme with its parameters (names lower-cased, values unquoted). */
export interface AuthParams {
  scheme: string;
  params: Map<string, string>;
}

export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque: string | undefined;
  stale: boolean;
  /** As written; absent means MD5. */
  algorithm: string | undefined;
  /** qop-options offered (empty: RFC 2069 server). */
  qop: string[];
  domain: string | undefined;
  charset: string | undefined;
  userhash: boolean;
  params: Map<string, string>;
}

export interface DigestCredentials {
  /** The username (decoded from username* when that form was used). */
  username: string;
  /** True when `username` is H(username:realm) (RFC 7616 §3.4.4). */
  userhash: boolean;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm: string | undefined;
  cnonce: string | undefined;
  nc: string | undefined;
  qop: string | undefined;
  opaque: string | undefined;
  params: Map<string, string>;
}

function isTokenChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
    c === 45 || c === 46 || c === 33 || c === 37 || c === 42 || c === 95 || c === 43 || c === 96 || c === 39 || c === 126
  );
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
  return i;
}

function readToken(s: string, i: number): number {
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Parse `Scheme auth-param *(, auth-param)`; several challenges joined in one
 * value (`Digest …, Digest …`) come back as several entries.
 */
export function parseAuthHeader(value: string): AuthParams[] {
  const out: AuthParams[] = [];
  let i = skipWs(value, 0);
  let current: AuthParams | undefined;
  while (i < value.length) {
    const ts = i;
    i = readToken(value, i);
    if (i === ts) throw new DigestError('BAD_HEADER', 'malformed authentication header');
    const tok = value.slice(ts, i);
    let j = skipWs(value, i);
    if (value.charCodeAt(j) !== 61 /* = */) {
      // A token not followed by '=' starts a new challenge / credentials.
      current = { scheme: tok, params: new Map() };
      out.push(current);
      i = j;
      continue;
    }
    if (current === undefined) throw new DigestError('BAD_HEADER', 'authentication parameter before the scheme');
    j = skipWs(value, j + 1);
    let v: string;
    if (value.charCodeAt(j) === 34) {
      let k = j + 1;
      let buf = '';
      let start = k;
      for (; k < value.length; k++) {
        const c = value.charCodeAt(k);
        if (c === 92) {
          buf += value.slice(start, k);
          k++;
          start = k;
        } else if (c === 34) break;
      }
      if (k >= value.length) throw new DigestError('BAD_HEADER', `unterminated quoted value for ${tok}`);
      v = buf + value.slice(start, k);
      i = k + 1;
    } else {
      const vs = j;
      // Token values; liberally also the '/' '@' ':' some stacks leave unquoted.
      while (j < value.length) {
        const c = value.charCodeAt(j);
        if (c === 44 || c === 32 || c === 9) break;
        j++;
      }
      v = value.slice(vs, j);
      i = j;
    }
    const name = tok.toLowerCase();
    if (current.params.has(name)) throw new DigestError('BAD_HEADER', `duplicate parameter ${name}`);
    current.params.set(name, v);
    i = skipWs(value, i);
    if (i < value.length) {
      if (value.charCodeAt(i) !== 44) throw new DigestError('BAD_HEADER', `expected ',' after ${name}`);
      i = skipWs(value, i + 1);
    }
  }
  if (out.length === 0) throw new DigestError('BAD_HEADER', 'empty authentication header');
  return out;
}

/** RFC 8187 ext-value (`UTF-8''J%C3%A4s%C3%B8n`), as used by username* (RFC 7616 §3.4). */
export function decodeExtValue(v: string): string {
  const m = /^([A-Za-z0-9!#$&+\-^_`{}~]+)'[A-Za-z0-9-]*'(.*)$/.exec(v);
  if (!m) throw new DigestError('BAD_HEADER', 'malformed ext-value');
  const charset = m[1]!.toLowerCase();
  const bytes: number[] = [];
  const s = m[2]!;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) throw new DigestError('BAD_HEADER', 'bad %-escape in ext-value');
      bytes.push(parseInt(h, 16));
      i += 2;
    } else bytes.push(s.charCodeAt(i) & 0xff);
  }
  if (charset === 'utf-8') return Buffer.from(bytes).toString('utf8');
  if (charset === 'iso-8859-1') return Buffer.from(bytes).toString('latin1');
  throw new DigestError('BAD_HEADER', `unsupported ext-value charset ${charset}`);
}

export function encodeExtValue(s: string): string {
  let out = "UTF-8''";
  for (const b of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9!#$&+\-.^_`|~]/.test(ch) ? ch : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function digestOnly(list: AuthParams[]): AuthParams[] {
  return list.filter((a) => a.scheme.toLowerCase() === 'digest');
}

function required(p: Map<string, string>, name: string): string {
  const v = p.get(name);
  if (v === undefined) throw new DigestError('BAD_HEADER', `missing ${name}`);
  return v;
}

/** Every Digest challenge in a WWW-Authenticate / Proxy-Authenticate value (other schemes skipped). */
export function parseChallenges(value: string): DigestChallenge[] {
  return digestOnly(parseAuthHeader(value)).map(({ params: p }) => ({
    realm: required(p, 'realm'),
    nonce: required(p, 'nonce'),
    opaque: p.get('opaque'),
    stale: (p.get('stale') ?? '').toLowerCase() === 'true',
    algorithm: p.get('algorithm'),
    qop: (p.get('qop') ?? '')
      .split(',')
      .map((q) => q.trim().toLowerCase())
      .filter((q) => q.length > 0),
    domain: p.get('domain'),
    charset: p.get('charset'),
    userhash: (p.get('userhash') ?? '').toLowerCase() === 'true',
    params: p,
  }));
}

/** The Digest credentials in an Authorization / Proxy-Authorization value. */
export function parseCredentials(value: string): DigestCredentials {
  const list = digestOnly(parseAuthHeader(value));
  if (list.length !== 1) throw new DigestError('BAD_HEADER', 'expected one set of Digest credentials');
  const p = list[0]!.params;
  let username = p.get('username');
  const star = p.get('username*');
  if (username !== undefined && star !== undefined) throw new DigestError('BAD_HEADER', 'both username and username*');
  if (username === undefined) {
    if (star === undefined) throw new DigestError('BAD_HEADER', 'missing username');
    username = decodeExtValue(star);
  }
  return {
    username,
    userhash: (p.get('userhash') ?? '').toLowerCase() === 'true',
    realm: required(p, 'realm'),
    nonce: required(p, 'nonce'),
    uri: required(p, 'uri'),
    response: required(p, 'response'),
    algorithm: p.get('algorithm'),
    cnonce: p.get('cnonce'),
    nc: p.get('nc'),
    qop: p.get('qop')?.toLowerCase(),
    opaque: p.get('opaque'),
    params: p,
  };
}

function q(v: string): string {
  // Realms, nonces and opaques seldom hold a quote or backslash: the regex replace only when one does.
  return '"' + (v.indexOf('"') === -1 && v.indexOf('\\') === -1 ? v : v.replace(/["\\]/g, '\\$&')) + '"';
}

export interface ChallengeInit {
  realm: string;
  nonce: string;
  algorithm: string;
  qop?: readonly string[];
  opaque?: string;
  stale?: boolean;
  userhash?: boolean;
  charset?: boolean;
  domain?: string;
}

/** Serialize one challenge (RFC 7616 §3.3 quoting: realm, nonce, opaque, qop, domain quoted). */
export function formatChallenge(c: ChallengeInit): string {
  let s = `Digest realm=${q(c.realm)}`;
  if (c.domain !== undefined) s += `, domain=${q(c.domain)}`;
  s += `, nonce=${q(c.nonce)}`;
  if (c.opaque !== undefined) s += `, opaque=${q(c.opaque)}`;
  s += `, algorithm=${c.algorithm}`;
  if (c.qop && c.qop.length > 0) s += `, qop=${q(c.qop.join(','))}`;
  if (c.stale) s += ', stale=true';
  if (c.charset) s += ', charset=UTF-8';
  if (c.userhash) s += ', userhash=true';
  return s;
}

export interface CredentialsInit {
  username: string;
  /** Send `username` as given with userhash=true (it is already the hash). */
  userhash?: boolean;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm?: string;
  cnonce?: string;
  nc?: string;
  qop?: string;
  opaque?: string;
}

/** Serialize credentials; a username that cannot travel in a quoted-string as ASCII goes as username* (RFC 8187). */
export function formatCredentials(c: CredentialsInit): string {
  const ascii = /^[\x20-\x7e]*$/.test(c.username);
  let s = ascii || c.userhash ? `Digest username=${q(c.username)}` : `Digest username*=${encodeExtValue(c.username)}`;
  s += `, realm=${q(c.realm)}, nonce=${q(c.nonce)}, uri=${q(c.uri)}, response=${q(c.response)}`;
  if (c.algorithm !== undefined) s += `, algorithm=${c.algorithm}`;
  if (c.cnonce !== undefined) s += `, cnonce=${q(c.cnonce)}`;
  if (c.opaque !== undefined) s += `, opaque=${q(c.opaque)}`;
  if (c.qop !== undefined) s += `, qop=${c.qop}`;
  if (c.nc !== undefined) s += `, nc=${c.nc}`;
  if (c.userhash) s += ', userhash=true';
  return s;
}
