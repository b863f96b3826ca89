/** Compact forms (RFC 3261 §7.3.3 and the extensions that registered one). */
const COMPACT: Record<string, string> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** How each known header is written on the wire (strict in what we send: long forms). */
const DISPLAY: Record<string, string> = {};
for (const name of [
  'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow', 'Allow-Events',
  'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact', 'Content-Disposition',
  'Content-Encoding', 'Content-Language', 'Content-Length', 'Content-Type', 'CSeq', 'Date', 'Error-Info',
  'Event', 'Expires', 'From', 'Identity', 'Identity-Info', 'In-Reply-To', 'Max-Forwards', 'MIME-Version',
  'Min-Expires', 'Min-SE', 'Organization', 'P-Asserted-Identity', 'P-Preferred-Identity', 'Path', 'Priority',
  'Privacy', 'Proxy-Authenticate', 'Proxy-Authorization', 'Proxy-Require', 'RAck', 'Reason', 'Record-Route',
  'Refer-To', 'Referred-By', 'Reject-Contact', 'Reply-To', 'Request-Disposition', 'Require', 'Retry-After',
  'Route', 'RSeq', 'Server', 'Service-Route', 'Session-Expires', 'SIP-ETag', 'SIP-If-Match', 'Subject',
  'Subscription-State', 'Supported', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via', 'Warning',
  'WWW-Authenticate',
]) {
  DISPLAY[name.toLowerCase()] = name;
}

/**
 * Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), so that
 * `getAll` may split them. Anything else — auth headers, Date, Call-ID, unknown
 * extension headers — is never split: a comma there is part of the value.
 */
const LIST_HEADERS = new Set([
  'accept', 'accept-contact', 'accept-encoding', 'accept-language', 'alert-info', 'allow', 'allow-events',
  'call-info', 'contact', 'content-encoding', 'content-language', 'error-info', 'in-reply-to', 'p-asserted-identity',
  'p-preferred-identity', 'path', 'privacy', 'proxy-require', 'reason', 'record-route', 'reject-contact',
  'request-disposition', 'require', 'route', 'service-route', 'supported', 'unsupported', 'via', 'warning',
]);

/** Headers that RFC 3261 allows at most once (§20, and Table 2's "c"/"m" rows). */
export const SINGLE_HEADERS = ['call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length', 'content-type'];

// Known names bucketed by length: a received name is matched by comparing a few
// short strings, without hashing a freshly sliced string into a Map on every header.
// Bucketed by length and lower-cased first letter, so one comparison usually decides.
const BUCKETS: Array<Array<[display: string, key: string]>> = [];
function bucketIndex(len: number, c0: number): number {
  return len * 32 + ((c0 | 0x20) & 31);
}
for (const key of Object.keys(DISPLAY)) {
  (BUCKETS[bucketIndex(key.length, key.charCodeAt(0))] ??= []).push([DISPLAY[key]!, key]);
}

function sameIgnoringCase(a: string, lowerB: string): boolean {
  for (let i = 0; i < a.length; i++) {
    let c = a.charCodeAt(i);
    if (c >= 65 && c <= 90) c |= 0x20;
    if (c !== lowerB.charCodeAt(i)) return false;
  }
  return true;
}

/** Canonical key of a header name: lower-case long form. */
export function headerKey(name: string): string {
  const e = knownHeader(name);
  return e === undefined ? name.toLowerCase() : e[1];
}

/** [wire name, key] of any header name: the registered entry, or the name as given and lower-cased. */
export function headerNameAndKey(name: string): [display: string, key: string] {
  return knownHeader(name) ?? [name, name.toLowerCase()];
}

const COMPACT_ENTRY: Record<string, [string, string]> = {};
for (const [c, key] of Object.entries(COMPACT)) {
  if (DISPLAY[key]) COMPACT_ENTRY[c] = [DISPLAY[key]!, key];
}

/** [wire name, key] of a registered header name (long or compact, any case), else undefined. */
export function knownHeader(name: string): [display: string, key: string] | undefined {
  const n = name.length;
  if (n === 1) return COMPACT_ENTRY[name.toLowerCase()];
  if (n > 31) return undefined;
  const bucket = BUCKETS[bucketIndex(n, name.charCodeAt(0))];
  if (bucket !== undefined) {
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i]!;
      if (e[0] === name || e[1] === name) return e;
    }
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i]!;
      if (sameIgnoringCase(name, e[1])) return e;
    }
  }
  return undefined;
}

// Wire names by first character, the most frequent first: a received line that starts
// with one of them followed directly by ':' is recognised without finding the colon or
// slicing the name.
const HOT_ORDER = [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Content-Length', 'Content-Type', 'Max-Forwards', 'Route',
  'Record-Route', 'Allow', 'Supported', 'User-Agent', 'Proxy-Authorization', 'Authorization', 'Expires', 'Require',
  'Reason', 'Server', 'Session-Expires', 'RSeq', 'RAck', 'Proxy-Authenticate', 'WWW-Authenticate', 'Event',
];
// Each entry carries its wire name's character codes: comparing against an array of numbers
// reads one string per character instead of two.
const BY_FIRST: Array<Array<[display: string, key: string, codes: number[]]> | undefined> = [];
for (const name of [...HOT_ORDER, ...Object.values(DISPLAY).filter((n) => !HOT_ORDER.includes(n))]) {
  // The same strings knownHeader() returns, so keys stay the interned strings compared everywhere.
  const [display, key] = knownHeader(name)!;
  const codes = Array.from(display, (c) => c.charCodeAt(0));
  (BY_FIRST[name.charCodeAt(0)] ??= []).push([display, key, codes]);
}

/**
 * The registered header whose wire name (exact case) starts the line at `pos` — whose first
 * character is `c0` — and is followed directly by ':'. Undefined means "look closer"
 * (compact form, other case, space before the colon, extension header).
 */
export function knownLineName(text: Uint8Array, pos: number, c0: number): [display: string, key: string, codes: number[]] | undefined {
  const list = BY_FIRST[c0];
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    const w = e[2];
    const n = w.length;
    if (text[pos + n] !== 58) continue;
    let k = 1;
    while (k < n && text[pos + k] === w[k]) k++;
    if (k === n) return e;
  }
  return undefined;
}

const WIRE_NAMES = new Map(Object.entries(DISPLAY));

/** How a header is written, by key: the registered long name, else the key itself. */
export function wireName(key: string): string {
  return WIRE_NAMES.get(key) ?? key;
}

/** CRLF, the wire name and ': ' of each registered header, by key: what the serializer writes before a value. */
const LINE_PREFIXES = new Map([...WIRE_NAMES].map(([key, name]) => [key, '\r\n' + name + ': ']));

/** CRLF + `name` + ': ' for a line of header `key` written under `name` (one string made once for a registered header). */
export function linePrefix(key: string, name: string | undefined): string {
  const p = LINE_PREFIXES.get(key);
  if (p !== undefined && (name === undefined || name === WIRE_NAMES.get(key))) return p;
  return '\r\n' + (name ?? key) + ': ';
}

export function isListHeader(key: string): boolean {
  return LIST_HEADERS.has(key);
}
