// Lookup tables for RFC 3261 §25.1 character classes: a table index beats a regex
// on the hot path and can never backtrack.

function table(chars: string, alnum: boolean): Uint8Array {
  const t = new Uint8Array(256);
  if (alnum) {
    for (let c = 48; c <= 57; c++) t[c] = 1;
    for (let c = 65; c <= 90; c++) t[c] = 1;
    for (let c = 97; c <= 122; c++) t[c] = 1;
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", true);
/** Characters allowed in a URI scheme after the first letter. */
export const SCHEME = table('+-.', true);
/** Characters of a hostname, IPv4 address (and '_' tolerated, seen in the wild). */
export const HOSTNAME = table('-._', true);

/** Index just past the run of token characters starting at `s[i]` (i itself when there is none). */
export function tokenEnd(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) break;
    i++;
  }
  return i;
}

export function isToken(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) return false;
  }
  return true;
}

export function isDigits(s: string): boolean {
  const n = s.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

export function isWs(c: number): boolean {
  return c === 32 || c === 9;
}

/** Trim SP / HTAB (and CR/LF left over from folding) from both ends. */
export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b) {
    const c = s.charCodeAt(a);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
    a++;
  }
  while (b > a) {
    const c = s.charCodeAt(b - 1);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
    b--;
  }
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Decode %HH escapes as UTF-8 (lossy on invalid sequences, never throws). */
export function percentDecode(s: string): string {
  if (s.indexOf('%') < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 && i + 2 < s.length && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      bytes.push(parseInt(s.substr(i + 1, 2), 16));
      i += 2;
    } else if (c < 128) {
      bytes.push(c);
    } else {
      // Keep surrogate pairs together so astral characters survive.
      const wide = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length;
      for (const b of Buffer.from(wide ? s.slice(i, i + 2) : s[i]!, 'utf8')) bytes.push(b);
      if (wide) i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** Quote a string as a SIP quoted-string, escaping `"` and `\`. */
export function quote(s: string): string {
  let needs = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92) {
      needs = true;
      break;
    }
  }
  return needs ? '"' + s.replace(/["\\]/g, '\\$&') + '"' : '"' + s + '"';
}
