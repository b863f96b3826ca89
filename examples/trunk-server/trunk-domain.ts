import type { SipRequest } from 'sipkit/parser';

/**
 * The host a Request-URI names, lower-cased: the trunk domain a call is for (configured or
 * not), and the realm it is challenged in. Undefined for a tel: or other non-SIP URI.
 */
export function requestedHost(req: SipRequest): string | undefined {
  try {
    const u = req.requestUri;
    return u.kind === 'sip' ? u.host.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** A record's own entry: a host or username such as "constructor" must not find Object.prototype's. */
export function ownEntry<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
