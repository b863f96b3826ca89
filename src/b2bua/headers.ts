import { headerKey, SipError, type HeaderInit, type HeaderValue, type SipMessage } from '../parser/index.js';

/**
 * Headers crossed from one leg to the other by default (like drachtio's
 * proxyRequestHeaders/proxyResponseHeaders, but explicit): identity and
 * user-facing headers, never the ones that belong to a hop, a dialog or a
 * transaction, nor credentials meant for us.
 */
export const DEFAULT_REQUEST_HEADERS: readonly string[] = Object.freeze([
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
]);

export const DEFAULT_RESPONSE_HEADERS: readonly string[] = Object.freeze(['P-Asserted-Identity', 'Privacy', 'Warning', 'Retry-After', 'Call-Info', 'Alert-Info']);

/** Never crossed, whatever the user lists: they describe this hop, dialog or transaction. */
const NEVER = new Set([
  'via', 'route', 'record-route', 'contact', 'call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length',
  'content-type', 'proxy-authorization', 'authorization', 'proxy-authenticate', 'www-authenticate', 'rseq', 'rack',
  'require', 'supported', 'allow', 'reason',
  // Each leg negotiates its own session timer (RFC 4028).
  'session-expires', 'min-se',
]);

/** The canonical keys of a frozen list of names to cross (a bridge's settings: a few, long-lived). */
const wantedKeys = new WeakMap<readonly string[], Set<string>>();

/** The [name, value] lines of `from` that the policy lets through (the message itself is not touched). */
export function crossHeaders(from: SipMessage, names: readonly string[]): Array<[string, string]> {
  // Only a frozen list is cached: an application may change an array of its own between calls.
  let wanted = wantedKeys.get(names);
  if (wanted === undefined) {
    wanted = new Set(names.map(headerKey).filter((k) => !NEVER.has(k)));
    if (Object.isFrozen(names)) wantedKeys.set(names, wanted);
  }
  // Most messages carry none of them: a look-up per name, rather than every line copied out to be dropped.
  let any = false;
  for (const k of wanted) {
    if (from.has(k)) {
      any = true;
      break;
    }
  }
  if (!any) return [];
  const out: Array<[string, string]> = [];
  for (const [name, value] of from.headerLines()) if (wanted.has(headerKey(name))) out.push([name, value]);
  return out;
}

/**
 * An application's extra headers (a bridge's `headers` or `responseHeaders`) as lines, checked:
 * a header that belongs to this hop, dialog or transaction is the bridge's to write, so naming
 * one is a `SipError` `BAD_OPTION` rather than a second Via or a forged CSeq on the wire.
 */
export function extraHeaders(init: HeaderInit | undefined, what: string): Array<[string, HeaderValue]> {
  if (init === undefined) return [];
  const out: Array<[string, HeaderValue]> = [];
  const entries: Array<[string, HeaderValue | HeaderValue[]]> = Array.isArray(init) ? init : Object.entries(init);
  for (const [name, value] of entries) {
    if (typeof name !== 'string' || NEVER.has(headerKey(name))) throw new SipError('BAD_OPTION', `${what}: ${String(name)} is written by the bridge, not the application`);
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, v]);
  }
  return out;
}
