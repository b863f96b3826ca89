import { formatReason, parseReason, SipError, type HeaderInit, type Reason, type SipRequest, type SipResponse } from '../parser/index.js';
import type { ReasonInit } from './call-types.js';

/** The RFC 3326 Reason of a message: Q.850 preferred (what a PSTN hangup cause is), then SIP. */
export function reasonOf(m: SipRequest | SipResponse): Reason | undefined {
  try {
    const r = m.reasons;
    return r.find((x) => x.protocol.toUpperCase() === 'Q.850') ?? r[0];
  } catch {
    return undefined;
  }
}

/** A Reason we send, as it reads back once on the wire (for the HangupCause we report). */
export function sentReason(reason: ReasonInit | undefined): Reason | undefined {
  return reason ? parseReason(formatReason(reason)) : undefined;
}

/** The Reason header to send, or none. */
export function reasonHeaders(reason: ReasonInit | undefined): HeaderInit {
  return reason ? [['Reason', formatReason(reason)]] : [];
}

/** A status a method may send, or `SipError` `BAD_STATUS` before anything is sent or changed. */
export function checkStatus(status: number, min: number, max: number, method: string): void {
  if (!Number.isInteger(status) || status < min || status > max) {
    throw new SipError('BAD_STATUS', `${method}: status ${status} is outside ${min}–${max}`);
  }
}
