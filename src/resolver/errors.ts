import { SipError } from '../parser/index.js';
// The codes of every layer are listed with SipError, whose `code` is their union.
import type { ResolverErrorCode } from '../parser/errors.js';

export type { ResolverErrorCode };

/** The DNS record type a lookup asked for. */
export type DnsRecordType = 'NAPTR' | 'SRV' | 'A' | 'AAAA';

/**
 * A failed server location (RFC 3263): the name and record type that failed, so a caller
 * can log what DNS said. `DNS_NOT_FOUND` covers NXDOMAIN and NODATA alike — for SIP both
 * mean "try the next step" (SRV after NAPTR, A/AAAA after SRV).
 */
export class ResolverError extends SipError {
  declare readonly code: ResolverErrorCode;
  /** The name looked up (a URI host, an SRV owner or target); undefined when no lookup was made. */
  readonly hostname: string | undefined;
  readonly rrtype: DnsRecordType | undefined;
  constructor(code: ResolverErrorCode, message: string, hostname?: string, rrtype?: DnsRecordType, cause?: unknown) {
    super(code, message, { cause });
    this.name = 'ResolverError';
    this.hostname = hostname;
    this.rrtype = rrtype;
  }

  static {
    this.brand(Symbol.for('sipkit.error.ResolverError'));
  }
}
