import { SipParseError } from './errors.js';
import { SINGLE_HEADERS } from './header-names.js';
import { checkNameAddr, checkNameAddrSyntax } from './name-addr.js';
import type { SipMessage, SipRequest, SipResponse } from './message.js';

export interface ValidateOptions {
  /**
   * `uas` (default) checks Require (§8.2.2.3). `proxy` checks Proxy-Require instead, and
   * answers 483 to Max-Forwards: 0 (§16.3). `b2bua` is a UAS to the caller, so it checks
   * Require like one (a proxy's Proxy-Require is not for it), and it forwards, so
   * Max-Forwards: 0 is a 483 there too (RFC 7332 §3: a B2BUA keeps the count going).
   */
  role?: 'uas' | 'proxy' | 'b2bua';
  /** Request-URI schemes accepted (default sip, sips, tel); others get 416. */
  schemes?: readonly string[];
  /** Option tags this element supports; others in Require/Proxy-Require get 420. */
  supported?: readonly string[];
  /** Body media types accepted; when set, other Content-Types get 415 (§8.2.3). */
  accept?: readonly string[];
  /** Most Via header values accepted (default `MAX_VIAS`, 71); more get 400 Too Many Via Headers. */
  maxVias?: number;
}

/**
 * The most Vias a request can carry when every element starts Max-Forwards at the 70
 * RFC 3261 recommends (§8.1.1.6): the UAC's own plus one per proxy (§16.6 item 8), and
 * the 70th proxy forwards it with Max-Forwards 0. More is a loop or an attack, and each
 * Via costs parsing here and bytes in every response (§8.2.6.2 copies them all).
 */
export const MAX_VIAS = 71;

export interface ValidationFailure {
  /** The status to answer with (for a response: drop it). */
  status: number;
  /** Reason phrase carrying the specific problem, e.g. `Missing Call-ID`. */
  reason: string;
  /** Stable code for logs and metrics. */
  code: string;
  /** Extra headers the answer needs: Unsupported for 420, Accept for 415. */
  headers?: Array<[string, string]>;
}

const DEFAULT_SCHEMES = ['sip', 'sips', 'tel'];
const REQUIRED = ['via', 'to', 'from', 'call-id', 'cseq'] as const;
/** Headers read only when present: counted, so that an absent one costs no lookup by name. */
const OPTIONAL = ['contact', 'route', 'record-route', 'date', 'require', 'proxy-require'] as const;
// Counted in one pass: the required headers first, then those allowed once, then the optional ones.
const COUNTED: readonly string[] = [...REQUIRED, ...SINGLE_HEADERS.filter((k) => !(REQUIRED as readonly string[]).includes(k)), ...OPTIONAL];
/** Where each of SINGLE_HEADERS is counted. */
const SINGLE_AT = SINGLE_HEADERS.map((k) => COUNTED.indexOf(k));
const MAX_FORWARDS_AT = COUNTED.indexOf('max-forwards');
const CONTACT_AT = COUNTED.indexOf('contact');
const ROUTE_AT = COUNTED.indexOf('route');
const RECORD_ROUTE_AT = COUNTED.indexOf('record-route');
const DATE_AT = COUNTED.indexOf('date');
const REQUIRE_AT = COUNTED.indexOf('require');
const PROXY_REQUIRE_AT = COUNTED.indexOf('proxy-require');
/** countKeys()'s counts, one array for every message (checkCommon fills them, checkRequest reads them right after). */
const COUNTS = new Array<number>(COUNTED.length).fill(0);
const LABEL: Record<string, string> = {
  via: 'Via', to: 'To', from: 'From', 'call-id': 'Call-ID', cseq: 'CSeq', 'max-forwards': 'Max-Forwards',
  'content-length': 'Content-Length', 'content-type': 'Content-Type',
};
const MAX_FORWARDS = /^\s*\d{1,10}\s*$/;
const CALL_ID = /^[\w\-.!%*+`'~()<>:\\"/[\]?{}@]+$/;
const RFC1123_GMT = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

function fail(status: number, reason: string, code: string, headers?: Array<[string, string]>): ValidationFailure {
  return headers ? { status, reason, code, headers } : { status, reason, code };
}

/** Syntax checks common to requests and responses; returns a 400-class failure or null. */
function checkCommon(m: SipMessage, maxVias: number): ValidationFailure | null {
  if (m.framingError) return fail(400, 'Conflicting Content-Length', 'CONTENT_LENGTH_CONFLICT');
  const counts = m.countKeys(COUNTED, COUNTS);
  for (let k = 0; k < REQUIRED.length; k++) {
    if (counts[k] === 0) {
      const missing = REQUIRED.filter((_, j) => counts[j] === 0);
      return fail(400, 'Missing ' + missing.map((key) => LABEL[key]).join(', '), 'MISSING_HEADER');
    }
  }
  // Counted before any Via is parsed: splitting the list is all it costs. RFC 3261 has no 4xx for
  // this; 400 with the reason phrase naming the problem is what §21.4.1 gives for a request refused
  // for its syntax (513 is about the length of the message, which need not be large here).
  if (counts[0]! > maxVias || m.via.length > maxVias) return fail(400, 'Too Many Via Headers', 'TOO_MANY_VIAS');
  // Headers that may appear once (RFC 4475 §3.3.8).
  for (let j = 0; j < SINGLE_AT.length; j++) {
    if (counts[SINGLE_AT[j]!]! > 1) return fail(400, `Multiple ${LABEL[SINGLE_HEADERS[j]!]} headers`, 'DUPLICATE_HEADER');
  }
  // callid = word ["@" word] (§25.1), liberally any '@'; one native regex test, not a loop per character.
  if (!CALL_ID.test(m.callId)) return fail(400, 'Bad Call-ID', 'BAD_CALL_ID');
  try {
    // Vias (and their parameters) are parsed lazily: touch them so a malformed one is refused here.
    // So are From and To, and name-addr parameters.
    for (const v of m.via) v.params;
    m.from.uriText;
    m.from.checkParams();
    m.to.uriText;
    m.to.checkParams();
    m.cseq;
    m.contentLength;
    m.contentType;
    // Contact, Route and Record-Route are checked as reading m.contact, m.route and m.recordRoute and
    // then each one's uri and params would, without building them (they are parsed again when read).
    // Route and Record-Route URIs become Request-URIs and next hops later: they must parse now.
    if (counts[CONTACT_AT]! > 0) {
      const c = m.getAll('contact');
      if (!(c.length === 1 && c[0] === '*')) checkNameAddrs(c, 'contact');
    }
    if (counts[ROUTE_AT]! > 0) checkNameAddrs(m.getAll('route'), 'route');
    if (counts[RECORD_ROUTE_AT]! > 0) checkNameAddrs(m.getAll('record-route'), 'record-route');
    if (counts[MAX_FORWARDS_AT]! > 0 && badMaxForwards(m.get('max-forwards')!)) return fail(400, 'Bad Max-Forwards', 'BAD_HEADER');
    // Date must be an RFC 1123 date in GMT (§20.17, RFC 4475 §3.1.2.12).
    if (counts[DATE_AT]! > 0 && !RFC1123_GMT.test(m.get('date')!)) return fail(400, 'Bad Date', 'BAD_HEADER');
  } catch (err) {
    if (err instanceof SipParseError) return fail(400, badHeaderPhrase(err), err.code);
    throw err;
  }
  return null;
}

/** Max-Forwards that is not 1*DIGIT (LWS around it allowed) or is beyond 2**31 − 1. */
function badMaxForwards(mf: string): boolean {
  const n = mf.length;
  // The usual value, a few digits, without the regular expression; nine digits cannot exceed the bound.
  let digits = n > 0 && n <= 10;
  for (let i = 0; digits && i < n; i++) {
    const c = mf.charCodeAt(i);
    digits = c >= 48 && c <= 57;
  }
  if (digits && n < 10) return false;
  return !(digits || MAX_FORWARDS.test(mf)) || Number(mf) > 0x7fffffff;
}

/** Throws what parsing every one of `list` (all of them first), then each one's uri and params, would. */
function checkNameAddrs(list: string[], header: string): void {
  if (list.length === 0) return;
  for (let i = 0; i < list.length; i++) checkNameAddrSyntax(list[i]!, header);
  for (let i = 0; i < list.length; i++) checkNameAddr(list[i]!, header);
}

function badHeaderPhrase(err: SipParseError): string {
  const h = err.header;
  if (!h) return 'Bad Request';
  return 'Bad ' + (LABEL[h] ?? h.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase()));
}

/**
 * Stateless checks of a received request before any transaction exists
 * (RFC 3261 §8.2, §16.3). Returns the response to send, or null when the
 * request may proceed. The RFC 4475 invalid and semantic cases are its test.
 */
export function validateRequest(req: SipRequest, options: ValidateOptions = NO_OPTIONS): ValidationFailure | null {
  // A typed view that fails where the checks did not expect it is still a 400, never an exception.
  // (Written out in both validators: a closure per message was garbage.)
  try {
    return checkRequest(req, options);
  } catch (err) {
    return unexpected(err);
  }
}

const NO_OPTIONS: ValidateOptions = Object.freeze({});

function unexpected(err: unknown): ValidationFailure {
  if (err instanceof SipParseError) return fail(400, badHeaderPhrase(err), err.code);
  throw err;
}

function checkRequest(req: SipRequest, options: ValidateOptions): ValidationFailure | null {
  if (req.version !== 'SIP/2.0' && req.version.toUpperCase() !== 'SIP/2.0') return fail(505, 'Version Not Supported', 'VERSION');
  const common = checkCommon(req, options.maxVias ?? MAX_VIAS);
  if (common) return common;
  // Read before anything else can count into COUNTS.
  const extensions = COUNTS[options.role === 'proxy' ? PROXY_REQUIRE_AT : REQUIRE_AT]! > 0;
  if (req.cseq.method !== req.method) return fail(400, 'CSeq method does not match', 'CSEQ_METHOD');
  let uri;
  try {
    // The cached view: routing and digest read the same parsed Request-URI later.
    uri = req.requestUri;
  } catch {
    return fail(400, 'Bad Request-URI', 'BAD_URI');
  }
  const schemes = options.schemes ?? DEFAULT_SCHEMES;
  if (!schemes.includes(uri.scheme.toLowerCase())) return fail(416, 'Unsupported URI Scheme', 'URI_SCHEME');
  // Headers are not allowed in a Request-URI (§19.1.1, Table 1; RFC 4475 §3.1.2.11).
  if (uri.kind === 'sip' && uri.headersRaw !== undefined) return fail(400, 'Headers in Request-URI', 'BAD_URI');
  const role = options.role ?? 'uas';
  // checkCommon vetted the digits; read them without the typed view so nothing can throw here.
  const mf = role !== 'uas' ? req.get('max-forwards') : undefined;
  if (mf !== undefined && Number(mf) === 0) return fail(483, 'Too Many Hops', 'MAX_FORWARDS');
  // §8.2.2.3: Require is never rejected on ACK or CANCEL.
  const extHeader = role === 'proxy' ? 'proxy-require' : 'require';
  if (extensions && req.method !== 'ACK' && req.method !== 'CANCEL') {
    const supported = options.supported ?? [];
    // Option tags are tokens, compared without regard to case (§7.3.1): 100REL is 100rel.
    const unsupported = req.getAll(extHeader).filter((t) => !supported.some((s) => s.toLowerCase() === t.toLowerCase()));
    if (unsupported.length > 0) return fail(420, 'Bad Extension', 'EXTENSION', [['Unsupported', unsupported.join(', ')]]);
  }
  if (options.accept && req.bodyLength > 0) {
    const ct = req.contentType;
    if (ct && !options.accept.includes(ct.mediaType)) {
      return fail(415, 'Unsupported Media Type', 'MEDIA_TYPE', [['Accept', options.accept.join(', ')]]);
    }
  }
  return null;
}

/**
 * Checks of a received response (§18.1.2): a failure means drop it (and count it).
 * Status codes above 699 never get here: the parser refuses them.
 */
export function validateResponse(res: SipResponse): ValidationFailure | null {
  if (res.version !== 'SIP/2.0' && res.version.toUpperCase() !== 'SIP/2.0') return fail(505, 'Version Not Supported', 'VERSION');
  try {
    return checkCommon(res, MAX_VIAS);
  } catch (err) {
    return unexpected(err);
  }
}

/** `validateRequest` or `validateResponse`, by message type. */
export function validate(m: SipRequest | SipResponse, options?: ValidateOptions): ValidationFailure | null {
  return m.type === 'request' ? validateRequest(m, options) : validateResponse(m);
}
