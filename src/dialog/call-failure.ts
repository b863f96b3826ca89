import { SipError, type Reason, type SipResponse } from '../parser/index.js';
// The codes of every layer are listed with SipError, whose `code` is their union.
import type { CallFailureCode } from '../parser/errors.js';
import type { HangupCause } from './call-types.js';

export type { CallFailureCode };

/**
 * Why `UserAgent.call()` rejected: the code says what happened (see `CallFailureCode`), the
 * fields say what the network said — the final status and phrase when one came, the RFC 3326
 * Reason (Q.850 preferred) that came with it or that we sent in our CANCEL, and who ended the
 * attempt: `remote` (the callee or a proxy answered non-2xx), `local` (this application: its
 * ring timeout or AbortSignal), `system` (no response, or the INVITE could not be sent).
 */
export class CallFailedError extends SipError {
  declare readonly code: CallFailureCode;
  /** Final status of the INVITE; undefined when the attempt ended before one (ring timeout, abort, close). */
  readonly status: number | undefined;
  /** Reason phrase of that status. */
  readonly phrase: string | undefined;
  /** The Reason header (RFC 3326) of the final response, or of the CANCEL we sent. */
  readonly reason: Reason | undefined;
  readonly by: HangupCause['by'];
  /**
   * The final response, when there was one (synthesized ones too: see `isSynthesized`).
   * Not enumerable, so `JSON.stringify(err)` stays the plain fields above.
   */
  declare readonly response: SipResponse | undefined;

  constructor(code: CallFailureCode, message: string, cause: HangupCause, response?: SipResponse) {
    super(code, message);
    this.name = 'CallFailedError';
    this.status = cause.status;
    this.phrase = cause.phrase;
    this.reason = cause.reason;
    this.by = cause.by;
    Object.defineProperty(this, 'response', { value: response, enumerable: false });
  }

  static {
    this.brand(Symbol.for('sipkit.error.CallFailedError'));
  }
}
