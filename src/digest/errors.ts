import { SipError } from '../parser/index.js';
// The codes of every layer are listed with SipError, whose `code` is their union.
import type { DigestErrorCode } from '../parser/errors.js';

export type { DigestErrorCode };

/** Typed error of the digest layer (client failures, malformed headers, bad options). */
export class DigestError extends SipError {
  declare readonly code: DigestErrorCode;
  constructor(code: DigestErrorCode, message: string) {
    super(code, message);
    this.name = 'DigestError';
  }

  static {
    this.brand(Symbol.for('sipkit.error.DigestError'));
  }
}
