import { SipError } from '../parser/index.js';

export type DigestErrorCode =
  | 'BAD_HEADER'
  | 'UNSUPPORTED_ALGORITHM'
  | 'NO_USABLE_CHALLENGE'
  | 'MISSING_CREDENTIALS'
  | 'AUTH_REJECTED'
  | 'BAD_PARAMS';

/** Typed error of the digest layer (client failures, malformed headers). */
export class DigestError extends SipError {
  declare readonly code: DigestErrorCode;
  constructor(code: DigestErrorCode, message: string) {
    super(code, message);
    this.name = 'DigestError';
  }
}
