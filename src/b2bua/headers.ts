import { headerKey, type SipMessage } from '../parser/index.js';

/**
 * Headers crossed from one leg to the other by default (like drachtio's
 * proxyRequestHeaders/proxyResponseHeaders, but explicit): identity and
 * user-facing headers, never the ones that belong to a hop, a dialog or a
 * transaction, nor credentials meant for us.
 */
export const DEFAULT_REQUEST_HEADERS: readonly string[] = [
  'P-Asserted-Identity',
  'P-Preferred-Identity',
  'Privacy',
  'Diversion',
  'History-Info',
  'User-to-User',
  'Subject',
  'Priority',
  'Call-Info',
  'Alert-Info',
];

export const DEFAULT_RESPONSE_HEADERS: readonly string[] = ['P-Asserted-Identity', 'Privacy', 'Warning', 'Retry-After', 'Call-Info', 'Alert-Info'];

/** Never crossed, whatever the user lists: they describe this hop, dialog or transaction. */
const NEVER = new Set([
  'via', 'route', 'record-route', 'contact', 'call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length',
  'content-type', 'proxy-authorization', 'authorization', 'proxy-authenticate', 'www-authenticate', 'rseq', 'rack',
  'require', 'supported', 'allow', 'reason',
  // Each leg negotiates its own session timer (RFC 4028).
  'session-expires', 'min-se',
]);

/** The [name, value] lines of `from` that the policy lets through (the message itself is not touched). */
export function crossHeaders(from: SipMessage, names: readonly string[]): Array<[string, string]> {
  const wanted = new Set(names.map(headerKey).filter((k) => !NEVER.has(k)));
  const out: Array<[string, string]> = [];
  for (const [name, value] of from.headerLines()) if (wanted.has(headerKey(name))) out.push([name, value]);
  return out;
}
