import { SipParseError } from './errors.js';
import { isWs, tokenEnd } from './chars.js';

/**
 * An ordered `;name=value` parameter list. Names keep the case they were written
 * in and are matched case-insensitively (RFC 3261 §7.3.1); values are kept as
 * written (quoted strings keep their quotes) so re-serialization is faithful.
 */
export class Params {
  /** Flat [name, value, name, value, …]; value null means a flag parameter. */
  private readonly list: Array<string | null>;

  constructor(list: Array<string | null> = []) {
    this.list = list;
  }

  get size(): number {
    return this.list.length >> 1;
  }

  private indexOf(name: string): number {
    const l = this.list;
    for (let i = 0; i < l.length; i += 2) {
      const n = l[i] as string;
      if (n === name || (n.length === name.length && n.toLowerCase() === name.toLowerCase())) return i;
    }
    return -1;
  }

  has(name: string): boolean {
    return this.indexOf(name) >= 0;
  }

  /** The raw value; `null` for a flag parameter, `undefined` when absent. */
  getRaw(name: string): string | null | undefined {
    const i = this.indexOf(name);
    return i < 0 ? undefined : this.list[i + 1]!;
  }

  /** The value with quoted-string quoting removed. */
  get(name: string): string | null | undefined {
    const v = this.getRaw(name);
    if (v == null || v.charCodeAt(0) !== 34) return v;
    return unquote(v);
  }

  /** Set a parameter (raw value as it should be written; null for a flag). */
  set(name: string, value: string | null = null): this {
    const i = this.indexOf(name);
    if (i >= 0) this.list[i + 1] = value;
    else this.list.push(name, value);
    return this;
  }

  delete(name: string): boolean {
    const i = this.indexOf(name);
    if (i < 0) return false;
    this.list.splice(i, 2);
    return true;
  }

  *entries(): IterableIterator<[string, string | null]> {
    const l = this.list;
    for (let i = 0; i < l.length; i += 2) yield [l[i] as string, l[i + 1]!];
  }

  clone(): Params {
    return new Params(this.list.slice());
  }

  /**
   * Plain data for JSON.stringify: name → value (unquoted, as `get` reads it; null for a
   * flag), the first of a repeated name. No prototype, so a `__proto__` parameter is data.
   */
  toJSON(): Record<string, string | null> {
    const out: Record<string, string | null> = Object.create(null);
    const l = this.list;
    for (let i = 0; i < l.length; i += 2) {
      const n = l[i] as string;
      if (!(n in out)) out[n] = this.get(n)!;
    }
    return out;
  }

  toString(): string {
    const l = this.list;
    let out = '';
    for (let i = 0; i < l.length; i += 2) {
      out += ';' + l[i];
      const v = l[i + 1];
      if (v != null) out += '=' + v;
    }
    return out;
  }
}

const ESCAPED = /\\([\s\S])/g;

/** Remove the quotes and backslash escapes of a quoted-string. */
export function unquote(v: string): string {
  if (v.length < 2 || v.charCodeAt(0) !== 34) return v;
  const inner = v.slice(1, -1);
  return inner.indexOf('\\') < 0 ? inner : inner.replace(ESCAPED, '$1');
}

/**
 * Index of the closing quote of the quoted-string opening at `s[i]` (a `"`),
 * honouring backslash escapes; -1 when unbalanced.
 */
export function endOfQuoted(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 92) j++;
    else if (c === 34) return j;
  }
  return -1;
}

/**
 * Parse `*( SEMI generic-param )` starting at `s[i]`, which must be `;` or the end.
 * Values may be tokens, quoted strings, IPv6 references or (liberally, for
 * Via `received` with a bare IPv6 address, RFC 5118 §4.5) any run up to `;`.
 */
export function parseParams(s: string, i: number, header: string): Params {
  return readParams(s, i, header, true)!;
}

/** @internal Throws what parseParams() throws, without building the list (nothing sliced). */
export function checkParams(s: string, i: number, header: string): void {
  readParams(s, i, header, false);
}

function readParams(s: string, i: number, header: string, build: boolean): Params | undefined {
  // Sized up front from the semicolons ahead (one per parameter, more if some are quoted):
  // an array grown by push reserves 16 spare slots on its first push, for lists of one or two.
  let semis = 0;
  if (build) for (let j = s.indexOf(';', i); j >= 0; j = s.indexOf(';', j + 1)) semis++;
  const list = build ? new Array<string | null>(2 * semis) : undefined;
  let w = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n) break;
    if (s.charCodeAt(i) !== 59 /* ; */) throw new SipParseError('BAD_HEADER', `unexpected character in parameters of ${header}`, header);
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const ns = i;
    i = tokenEnd(s, i);
    if (i === ns) throw new SipParseError('BAD_HEADER', `empty parameter name in ${header}`, header);
    const ne = i;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) === 61 /* = */) {
      i++;
      while (i < n && isWs(s.charCodeAt(i))) i++;
      const vs = i;
      if (i < n && s.charCodeAt(i) === 34) {
        const e = endOfQuoted(s, i);
        if (e < 0) throw new SipParseError('BAD_HEADER', `unterminated quoted string in ${header}`, header);
        i = e + 1;
      } else {
        while (i < n) {
          const c = s.charCodeAt(i);
          if (c === 59 || c === 32 || c === 9 || c === 34 || c === 44) break;
          i++;
        }
        if (i === vs) throw new SipParseError('BAD_HEADER', `empty parameter value in ${header}`, header);
      }
      if (list !== undefined) {
        list[w++] = s.slice(ns, ne);
        list[w++] = s.slice(vs, i);
      }
    } else if (list !== undefined) {
      list[w++] = s.slice(ns, ne);
      list[w++] = null;
    }
  }
  if (list === undefined) return undefined;
  // A semicolon inside a quoted value left slots unused: no holes may remain.
  if (w !== list.length) list.length = w;
  return new Params(list);
}
