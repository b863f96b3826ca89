// Public face of sipkit/parser: RFC 3261 message parsing, serialization and building.
export {
  SipError,
  SipParseError,
  isSipError,
  type SipErrorCode,
  type SipParseErrorCode,
  type SipBuildErrorCode,
  type TransactionErrorCode,
  type DialogErrorCode,
  type B2buaErrorCode,
} from './errors.js';
// DigestErrorCode and TransportErrorCode are listed in ./errors.ts too (SipErrorCode is their
// union with the rest) but exported by their own layers.
export { parseMessage, DEFAULT_LIMITS, type ParseLimits, type ParseOptions } from './parse.js';
export { SipMessage, SipRequest, SipResponse, isRequest, isResponse, type HeaderValue } from './message.js';
export { parseUri, parseHostPort, SipUri, TelUri, OpaqueUri, type Uri, type HostPort } from './uri.js';
export { Params, parseParams, unquote } from './params.js';
export { Via, parseVia, MAGIC_COOKIE } from './via.js';
export { NameAddr, parseNameAddr, CONTACT_WILDCARD } from './name-addr.js';
export {
  parseCSeq,
  parseContentType,
  parseReason,
  formatReason,
  MAX_CSEQ,
  type CSeq,
  type ContentType,
  type Reason,
} from './scalars.js';
export { splitList } from './list.js';
export { headerKey, isListHeader } from './header-names.js';
export { StreamFramer, type StreamFramerHandlers, type FramerWork } from './framer.js';
export { validate, validateRequest, validateResponse, MAX_VIAS, type ValidateOptions, type ValidationFailure } from './validate.js';
export {
  createRequest,
  createResponse,
  appendHeaders,
  generateBranch,
  generateCallId,
  generateTag,
  type RequestInit,
  type ResponseInit,
  type HeaderInit,
} from './build.js';
export { randomToken } from './ids.js';
export { reasonPhrase, REASON_PHRASES } from './reason-phrases.js';
