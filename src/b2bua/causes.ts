/**
 * SIP status → Q.850 cause, after RFC 3398 §8.2.6.1 (RFC 6432 carries the result in
 * a Reason header on responses). Entries RFC 3398 leaves unmapped use the nearest
 * general cause: 487 → 31 (normal, unspecified), 488/606 → 127 (interworking).
 */
export const SIP_TO_Q850: Readonly<Record<number, number>> = {
  400: 41, 401: 21, 402: 21, 403: 21, 404: 1, 405: 63, 406: 79, 407: 21, 408: 102, 410: 22,
  413: 127, 414: 127, 415: 79, 416: 127, 420: 127, 421: 127, 423: 127, 480: 18, 481: 41,
  482: 25, 483: 25, 484: 28, 485: 1, 486: 17, 487: 31, 488: 127, 500: 41, 501: 79, 502: 38,
  503: 41, 504: 102, 505: 127, 513: 127, 600: 17, 603: 21, 604: 1, 606: 127,
};

/** Q.850 cause for a final status: the user's table first, then RFC 3398, then by class. */
export function q850For(status: number, overrides?: Readonly<Record<number, number>>): number {
  const o = overrides?.[status];
  if (o !== undefined) return o;
  const m = SIP_TO_Q850[status];
  if (m !== undefined) return m;
  if (status >= 600) return 31;
  if (status >= 500) return 41;
  if (status >= 400) return 21;
  return 31;
}
