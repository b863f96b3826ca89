import { SipParseError } from './errors.js';
import { TOKEN, isWs } from './chars.js';
import { Params, parseParams } from './params.js';
import { parseHostPort, type HostPort } from './uri.js';

/** RFC 3261 §17.1.3: branches starting with this cookie are RFC 3261-unique. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** One via-parm (RFC 3261 §20.42). */
export class Via {
  protocolName: string;
  protocolVersion: string;
  /** Upper-case transport name as written (UDP, TCP, TLS, SCTP, WS, …). */
  transport: string;
  /** sent-by host; IPv6 references keep their brackets. */
  host: string;
  port: number | undefined;
  params: Params;

  constructor(init: {
    transport: string;
    host: string;
    port?: number | undefined;
    params?: Params;
    protocolName?: string;
    protocolVersion?: string;
  }) {
    this.protocolName = init.protocolName ?? 'SIP';
    this.protocolVersion = init.protocolVersion ?? '2.0';
    this.transport = init.transport;
    this.host = init.host;
    this.port = init.port;
    this.params = init.params ?? new Params();
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
    return this.protocolName + '/' + this.protocolVersion + '/' + this.transport + ' ' + this.sentBy + this.params.toString();
  }
}

function readToken(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] === 0) break;
    i++;
  }
  return i;
}

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

/** Parse a single via-parm (one element of a Via list). */
export function parseVia(s: string): Via {
  let i = skipWs(s, 0);
  let e = readToken(s, i);
  if (e === i) throw new SipParseError('BAD_HEADER', 'malformed Via protocol name', 'via');
  const protocolName = s.slice(i, e);
  i = expectSlash(s, e);
  e = readToken(s, i);
  if (e === i) throw new SipParseError('BAD_HEADER', 'malformed Via protocol version', 'via');
  const protocolVersion = s.slice(i, e);
  i = expectSlash(s, e);
  e = readToken(s, i);
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
  return new Via({ protocolName, protocolVersion, transport: transport.toUpperCase(), host: HP.host, port: HP.port, params });
}
