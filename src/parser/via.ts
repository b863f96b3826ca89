import { SipParseError } from './errors.js';
import { isWs, tokenEnd } from './chars.js';
import { Params, parseParams } from './params.js';
import { parseHostPort, type HostPort } from './uri.js';

/** RFC 3261 §17.1.3: branches starting with this cookie are RFC 3261-unique. */
export const MAGIC_COOKIE = 'z9hG4bK';

/**
 * One via-parm (RFC 3261 §20.42). A Via read from a message is parsed on first use of
 * any field: a proxy or UA reads the top Via, rarely the ones below it.
 */
export class Via {
  // The via-parm as received, until a field is first read (then undefined).
  private src: string | undefined = undefined;
  private pName = 'SIP';
  private pVersion = '2.0';
  private pTransport = '';
  private pHost = '';
  private pPort: number | undefined = undefined;
  // Parameters are parsed on first use too: a proxy reads the top Via's branch, not every Via's.
  private paramsText: string | undefined = undefined;
  private parsedParams: Params | undefined = undefined;

  constructor(init: {
    transport: string;
    host: string;
    port?: number | undefined;
    params?: Params;
    protocolName?: string;
    protocolVersion?: string;
  }) {
    this.pName = init.protocolName ?? 'SIP';
    this.pVersion = init.protocolVersion ?? '2.0';
    this.pTransport = init.transport;
    this.pHost = init.host;
    this.pPort = init.port;
    this.parsedParams = init.params;
  }

  /**
   * @internal A Via over received text, parsed when a field is first read: a malformed one
   * throws SipParseError then (`validate()` reads every Via).
   */
  static fromText(s: string): Via {
    const v = new Via(UNPARSED);
    v.src = s;
    return v;
  }

  /** This Via with its received text parsed into the fields; throws (and stays unparsed) when it is malformed. */
  private loaded(): this {
    const s = this.src;
    if (s !== undefined) {
      if (!parseViaFast(s, this)) parseViaSlow(s, this);
      this.src = undefined;
    }
    return this;
  }

  /** @internal Set by the parser. */
  fill(name: string, version: string, transport: string, host: string, port: number | undefined, paramsText: string | undefined, params: Params | undefined): void {
    this.pName = name;
    this.pVersion = version;
    this.pTransport = transport;
    this.pHost = host;
    this.pPort = port;
    this.paramsText = paramsText;
    this.parsedParams = params;
  }

  get protocolName(): string {
    return this.loaded().pName;
  }
  set protocolName(v: string) {
    this.loaded().pName = v;
  }

  get protocolVersion(): string {
    return this.loaded().pVersion;
  }
  set protocolVersion(v: string) {
    this.loaded().pVersion = v;
  }

  /** Upper-case transport name as written (UDP, TCP, TLS, SCTP, WS, …). */
  get transport(): string {
    return this.loaded().pTransport;
  }
  set transport(v: string) {
    this.loaded().pTransport = v;
  }

  /** sent-by host; IPv6 references keep their brackets. */
  get host(): string {
    return this.loaded().pHost;
  }
  set host(v: string) {
    this.loaded().pHost = v;
  }

  get port(): number | undefined {
    return this.loaded().pPort;
  }
  set port(v: number | undefined) {
    this.loaded().pPort = v;
  }

  get params(): Params {
    this.loaded();
    if (this.parsedParams === undefined) {
      const t = this.paramsText;
      this.parsedParams = t === undefined ? new Params() : parseParams(t, 0, 'via');
      this.paramsText = undefined;
    }
    return this.parsedParams;
  }

  set params(p: Params) {
    this.loaded().parsedParams = p;
    this.paramsText = undefined;
  }

  get protocol(): string {
    return this.protocolName + '/' + this.protocolVersion;
  }

  get branch(): string | undefined {
    const b = this.params.get('branch');
    return b == null ? undefined : b;
  }

  get received(): string | undefined {
    const r = this.params.get('received');
    return r == null ? undefined : r;
  }

  /** rport (RFC 3581): a number when filled in, `true` when requested empty, undefined when absent. */
  get rport(): number | true | undefined {
    const r = this.params.getRaw('rport');
    if (r === undefined) return undefined;
    if (r === null) return true;
    const n = Number(r);
    return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : true;
  }

  get maddr(): string | undefined {
    const m = this.params.get('maddr');
    return m == null ? undefined : m;
  }

  get ttl(): number | undefined {
    const t = this.params.get('ttl');
    return t == null ? undefined : Number(t);
  }

  /** sent-by as written: host[:port]. */
  get sentBy(): string {
    return this.port === undefined ? this.host : this.host + ':' + this.port;
  }

  clone(): Via {
    return new Via({
      protocolName: this.protocolName,
      protocolVersion: this.protocolVersion,
      transport: this.transport,
      host: this.host,
      port: this.port,
      params: this.params.clone(),
    });
  }

  toString(): string {
    if (this.src !== undefined) return this.src;
    const p = this.parsedParams === undefined ? (this.paramsText ?? '') : this.parsedParams.toString();
    return this.pName + '/' + this.pVersion + '/' + this.pTransport + ' ' + this.sentBy + p;
  }

  /** The via-parm as a string. */
  toJSON(): string {
    return this.toString();
  }
}

const UNPARSED = { transport: '', host: '' };

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

function expectSlash(s: string, i: number): number {
  i = skipWs(s, i);
  if (s.charCodeAt(i) !== 47) throw new SipParseError('BAD_HEADER', 'malformed Via sent-protocol', 'via');
  return skipWs(s, i + 1);
}

const HP: HostPort = { host: '', port: undefined };

/** Parse a single via-parm (one element of a Via list); throws SipParseError when malformed. */
export function parseVia(s: string): Via {
  const v = Via.fromText(s);
  void v.transport; // parses now, so a malformed Via throws here
  return v;
}

/**
 * The form nearly every stack sends, "SIP/2.0/UDP host:port;params", with the parameters
 * kept as text. False means "use the full grammar". Checked by character: startsWith is
 * a builtin call that costs more than this here.
 */
function parseViaFast(s: string, into: Via): boolean {
  if (
    s.charCodeAt(0) !== 83 ||
    s.charCodeAt(1) !== 73 ||
    s.charCodeAt(2) !== 80 ||
    s.charCodeAt(3) !== 47 ||
    s.charCodeAt(4) !== 50 ||
    s.charCodeAt(5) !== 46 ||
    s.charCodeAt(6) !== 48 ||
    s.charCodeAt(7) !== 47
  ) {
    return false;
  }
  const sp = s.indexOf(' ', 8);
  if (sp <= 8) return false;
  const t = tokenEnd(s, 8);
  const semi = s.indexOf(';', sp + 1);
  const end = semi < 0 ? s.length : semi;
  if (t !== sp || s.charCodeAt(sp + 1) === 32 || s.charCodeAt(end - 1) === 32) return false;
  let k: number;
  try {
    k = parseHostPort(s, sp + 1, end, 'Via', HP);
  } catch {
    return false; // the full grammar gives the error
  }
  if (k !== end) return false;
  const tr = s.slice(8, sp);
  into.fill('SIP', '2.0', isUpper(tr) ? tr : tr.toUpperCase(), HP.host, HP.port, semi < 0 ? undefined : s.slice(semi), undefined);
  return true;
}

function isUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 97 && c <= 122) return false;
  }
  return true;
}


function parseViaSlow(s: string, into: Via): void {
  let i = skipWs(s, 0);
  let e = tokenEnd(s, i);
  if (e === i) throw new SipParseError('BAD_HEADER', 'malformed Via protocol name', 'via');
  const protocolName = s.slice(i, e);
  i = expectSlash(s, e);
  e = tokenEnd(s, i);
  if (e === i) throw new SipParseError('BAD_HEADER', 'malformed Via protocol version', 'via');
  const protocolVersion = s.slice(i, e);
  i = expectSlash(s, e);
  e = tokenEnd(s, i);
  if (e === i) throw new SipParseError('BAD_HEADER', 'malformed Via transport', 'via');
  const transport = s.slice(i, e);
  if (!isWs(s.charCodeAt(e))) throw new SipParseError('BAD_HEADER', 'missing space before Via sent-by', 'via');
  i = skipWs(s, e);
  let end = s.indexOf(';', i);
  if (end < 0) end = s.length;
  // Trailing LWS before ';' is allowed (SEMI = SWS ";" SWS).
  let hostEnd = end;
  while (hostEnd > i && isWs(s.charCodeAt(hostEnd - 1))) hostEnd--;
  try {
    const k = parseHostPort(s, i, hostEnd, 'Via', HP);
    if (k !== hostEnd) throw new SipParseError('BAD_HEADER', 'malformed Via sent-by', 'via');
  } catch (err) {
    if (err instanceof SipParseError && err.code === 'BAD_URI') throw new SipParseError('BAD_HEADER', err.message, 'via');
    throw err;
  }
  const params = parseParams(s, end, 'Via');
  into.fill(protocolName, protocolVersion, transport.toUpperCase(), HP.host, HP.port, undefined, params);
}
