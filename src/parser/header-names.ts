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

const cache = new Map<string, string>();
const CACHE_LIMIT = 512;

/** Canonical key of a header name: lower-case long form. */
export function headerKey(name: string): string {
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const lower = name.toLowerCase();
  const key = lower.length === 1 ? (COMPACT[lower] ?? lower) : lower;
  // Bounded: attacker-chosen header names must not grow this map without limit.
  if (cache.size < CACHE_LIMIT) cache.set(name, key);
  return key;
}

/** The name to write for a header key, or undefined for an unknown extension header. */
export function displayName(key: string): string | undefined {
  return DISPLAY[key];
}

export function isListHeader(key: string): boolean {
  return LIST_HEADERS.has(key);
}
