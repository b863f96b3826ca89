/**
 * Every error sipkit throws at a user, or rejects a user's promise with, is a `SipError`
 * with a stable string `code`, so callers can branch on `err.code` instead of parsing
 * messages. The codes of every layer are listed here, in one place, so that `SipError`'s
 * `code` is their union; each subclass narrows it to its own.
 */

/** Codes of `SipParseError`: a message, header or URI that cannot be framed or read. */
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

/**
 * Codes of the `SipError`s thrown by `createRequest`/`createResponse` for what they are
 * given: a method that is not a token, a Request-URI that is not a URI, a header name
 * or value that cannot be written (§25.1), a status out of range.
 */
export type SipBuildErrorCode = 'BAD_METHOD' | 'BAD_URI' | 'BAD_HEADER' | 'BAD_STATUS';

/** Codes of `DigestError` (sipkit/digest). */
export type DigestErrorCode =
  | 'BAD_HEADER'
  | 'UNSUPPORTED_ALGORITHM'
  | 'NO_USABLE_CHALLENGE'
  | 'MISSING_CREDENTIALS'
  | 'AUTH_REJECTED'
  | 'BAD_PARAMS'
  | 'BAD_OPTION';

/** Codes of `TransportError` (sipkit/transport). */
export type TransportErrorCode =
  | 'SEND_FAILED'
  | 'CONNECT_FAILED'
  | 'CONNECTION_LIMIT'
  | 'CLOSED'
  | 'MESSAGE_TOO_LARGE'
  | 'FRAMING'
  | 'SOCKET'
  /** A stream connection sent no whole message in time (RFC 3261 §18.3 sets no bound; TcpTransport does). */
  | 'MESSAGE_TIMEOUT'
  /** An RFC 5626 §4.4.1 keep-alive ping got no answer in time: the flow has failed. */
  | 'KEEPALIVE_TIMEOUT'
  /** The peer's certificate is valid but not for the SIP domain asked for (RFC 5922 §7). */
  | 'TLS_IDENTITY'
  /** The peer's certificate chain did not verify (unknown CA, expired, self-signed, none given). */
  | 'TLS_UNTRUSTED'
  /** A TLS handshake failed for another reason (no common protocol version or cipher, a bad record). */
  | 'TLS_HANDSHAKE';

/** Codes of the `SipError`s the transaction layer throws (sipkit/transaction). */
export type TransactionErrorCode =
  | 'NO_TRANSPORT'
  | 'ACK_NOT_A_TRANSACTION'
  | 'NO_BRANCH'
  | 'TRANSPORT_IN_USE'
  /** Every target RFC 3263 located for a request failed (timeout, 503, transport error): §4.3. */
  | 'TARGETS_EXHAUSTED'
  /** A transaction armed a timer its machine cannot hold (a bug in a state table, never a peer's doing). */
  | 'TIMER_INVARIANT';

/** Codes of the `SipError`s calls and user agents throw or reject with (sipkit/dialog). */
export type DialogErrorCode =
  | 'NO_DIALOG'
  | 'INVITE_PENDING'
  | 'PRACK_TIMEOUT'
  | 'NO_DESTINATION'
  | 'BAD_STATUS'
  | 'CLOSED'
  | 'BAD_DIALOG_SNAPSHOT'
  /** A Registration option that cannot be used (a malformed registrar, AOR or Contact, an instance ID that is no URN). */
  | 'BAD_OPTION'
  /** A REGISTER attempt failed (register() rejects with it; the registration keeps retrying). */
  | 'REGISTRATION_FAILED'
  /** The AbortSignal given to `UserAgent.accept()` fired before a call arrived. */
  | 'ABORTED';

/**
 * Codes of `CallFailedError` (sipkit/dialog): why the promise of `UserAgent.call()` rejected.
 * `CALL_REJECTED`: a final non-2xx from the network; `RING_TIMEOUT`: no final response within
 * the call's ring timeout (we CANCELled); `CALL_CANCELLED`: the application aborted it (its
 * AbortSignal; we CANCELled); `TIMEOUT`: no response at all (Timer B, a synthesized 408);
 * `TRANSPORT_FAILED`: the INVITE could not be sent (a synthesized 503); `CLOSED`: the user
 * agent closed before the call was answered.
 */
export type CallFailureCode = 'CALL_REJECTED' | 'RING_TIMEOUT' | 'CALL_CANCELLED' | 'TIMEOUT' | 'TRANSPORT_FAILED' | 'CLOSED';

/**
 * Codes of `ResolverError` (sipkit/resolver, RFC 3263 server location): the name does not
 * exist or has no usable records (NXDOMAIN/NODATA), the DNS server did not answer in time,
 * any other DNS failure (SERVFAIL, REFUSED, unreachable server, too many lookups at once),
 * a URI that asks for a transport the client does not use, and a resolver option out of range.
 */
export type ResolverErrorCode = 'DNS_NOT_FOUND' | 'DNS_TIMEOUT' | 'DNS_FAILED' | 'NO_TRANSPORT' | 'BAD_OPTION';

/** Codes of the `SipError`s the B2BUA throws or rejects with (sipkit/b2bua). */
export type B2buaErrorCode =
  /** A per-call bridge could not be set up: `BridgeError` says with what final status, and whether the caller was told. */
  | 'BRIDGE_FAILED'
  /** `bridge()` was given a call it cannot bridge: not handed to `onInvite` by this B2BUA, answered, ended, or already bridging. */
  | 'NOT_BRIDGEABLE'
  /** A B2BUA or bridge option that cannot be used (no `route` nor `onInvite`, both, a header the bridge owns). */
  | 'BAD_OPTION';

/** Every code a `SipError` can carry. */
export type SipErrorCode =
  | SipParseErrorCode
  | SipBuildErrorCode
  | DigestErrorCode
  | TransportErrorCode
  | TransactionErrorCode
  | DialogErrorCode
  | B2buaErrorCode
  | CallFailureCode
  | ResolverErrorCode;

/*
 * Brands. A package loaded twice — its CommonJS build by one dependency, its ESM build by
 * another — has two copies of every class, and plain `instanceof` fails across them. So each
 * sipkit error class marks its prototype with a registry symbol (`Symbol.for`, shared by
 * every copy in the process) and `instanceof` checks that mark instead of the prototype chain
 * (the way undici's errors do). The marks sit on prototypes, so constructing an error costs
 * nothing more; a subclass's prototype inherits its parents' marks.
 */
const SIP_ERROR_BRAND = Symbol.for('sipkit.error');
/** This copy's branded classes → their brand. A class not in it (a user's subclass) gets plain `instanceof`. */
const brands = new WeakMap<object, symbol>();

function hasBrand(value: unknown, brand: symbol): boolean {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

export class SipError extends Error {
  readonly code: SipErrorCode;
  constructor(code: SipErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SipError';
  }

  /**
   * Plain data for JSON.stringify (an Error's message is not enumerable, so it would be
   * lost): name, code, message and the subclass's own fields (`header`, `remote`).
   */
  toJSON(): { name: string; code: SipErrorCode; message: string; [field: string]: unknown } {
    const out: { name: string; code: SipErrorCode; message: string; [field: string]: unknown } = { name: this.name, code: this.code, message: this.message };
    for (const k of Object.keys(this)) if (!(k in out)) out[k] = (this as unknown as Record<string, unknown>)[k];
    return out;
  }

  static {
    this.brand(SIP_ERROR_BRAND);
  }

  /**
   * Mark this class with `brand` (a `Symbol.for` symbol naming it) so that `instanceof` it
   * holds for instances made by any copy of the class. Each sipkit error class calls it once;
   * a subclass that does not is matched by its prototype chain, as usual.
   */
  protected static brand(brand: symbol): void {
    Object.defineProperty(this.prototype, brand, { value: true });
    brands.set(this, brand);
  }

  /** `e instanceof SipError` (or a sipkit subclass) also holds for errors of another copy of sipkit. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const brand = brands.get(this);
    if (brand === undefined) return Function.prototype[Symbol.hasInstance].call(this, value);
    return hasBrand(value, brand);
  }
}

/** Whether `e` is a sipkit error, from this copy of sipkit or any other loaded in the process. */
export function isSipError(e: unknown): e is SipError {
  return hasBrand(e, SIP_ERROR_BRAND);
}

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

  static {
    this.brand(Symbol.for('sipkit.error.SipParseError'));
  }
}
