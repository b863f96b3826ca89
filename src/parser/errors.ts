/**
 * Every error sipkit throws at a user is a `SipError` with a stable string `code`,
 * so callers can branch on `err.code` instead of parsing messages.
 */
export class SipError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SipError';
  }
}

export type SipParseErrorCode =
  | 'EMPTY'
  | 'BAD_START_LINE'
  | 'BAD_HEADER'
  | 'BAD_URI'
  | 'BAD_CONTENT_LENGTH'
  | 'CONTENT_LENGTH_MISMATCH'
  | 'MISSING_CONTENT_LENGTH'
  | 'TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'LINE_TOO_LONG';

/** Thrown by the parser for anything that cannot be framed or read. */
export class SipParseError extends SipError {
  declare readonly code: SipParseErrorCode;
  /** Header the problem was found in, when there is one (canonical lower-case name). */
  readonly header: string | undefined;
  constructor(code: SipParseErrorCode, message: string, header?: string) {
    super(code, message);
    this.name = 'SipParseError';
    this.header = header;
  }
}
