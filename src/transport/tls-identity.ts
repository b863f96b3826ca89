import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';

/** The parts of a certificate the SIP identity rules read (a `PeerCertificate` has them). */
export interface CertificateNames {
  /** Node's rendering: `DNS:a.example, URI:sip:a.example, IP Address:192.0.2.1`. */
  subjectaltname?: string | undefined;
  subject?: Partial<Record<string, string | string[]>> | undefined;
}

/** The entries of a subjectAltName, by type (`DNS`, `URI`, `IP Address`, …), values as written. */
export function subjectAltNames(subjectaltname: string | undefined): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  if (!subjectaltname) return out;
  // Node writes `type:value` entries joined by ", "; a value with a comma, quote or
  // control character is written as a JSON string (CVE-2021-44533), so split with that in mind.
  let i = 0;
  const s = subjectaltname;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const type = s.slice(i, colon).trim();
    let value: string;
    let end: number;
    if (s[colon + 1] === '"') {
      end = colon + 2;
      while (end < s.length && s[end] !== '"') end += s[end] === '\\' ? 2 : 1;
      end++;
      try {
        value = JSON.parse(s.slice(colon + 1, end)) as string;
      } catch {
        return out;
      }
      const next = s.indexOf(', ', end);
      end = next < 0 ? s.length : next;
    } else {
      const next = s.indexOf(', ', colon + 1);
      end = next < 0 ? s.length : next;
      value = s.slice(colon + 1, end);
    }
    out.push({ type, value });
    i = end + 2;
  }
  return out;
}

function firstCn(subject: CertificateNames['subject']): string | undefined {
  const cn = subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/**
 * The SIP domain identities a certificate holds (RFC 5922 §7.1): the host of each
 * subjectAltName URI of the `sip` scheme without a user part; only when there is no
 * such URI, the subjectAltName DNS names; only when there is no subjectAltName at
 * all, a DNS name in the CN (allowed "for backward compatibility"). Lower case.
 */
export function sipDomainIdentities(cert: CertificateNames): string[] {
  const sans = subjectAltNames(cert.subjectaltname);
  const fromUris: string[] = [];
  for (const { type, value } of sans) {
    if (type !== 'URI') continue;
    const m = /^sip:([^;?]*)/i.exec(value);
    // A URI with a user part names a user, not a domain (§7.1).
    if (!m || m[1]!.includes('@')) continue;
    const host = m[1]!.replace(/:\d+$/, '');
    if (host) fromUris.push(host.toLowerCase());
  }
  if (fromUris.length > 0) return fromUris;
  const dns = sans.filter((e) => e.type === 'DNS').map((e) => e.value.toLowerCase());
  if (dns.length > 0 || sans.length > 0) return dns;
  const cn = firstCn(cert.subject);
  return cn && /^[a-z0-9.-]+$/i.test(cn) ? [cn.toLowerCase()] : [];
}

/**
 * Whether `domain` is one of the certificate's SIP domain identities, compared as
 * RFC 5922 §7.2 says: whole DNS names, case-insensitively, no suffix and no wildcard
 * matching (`*.example.com` matches only itself). A trailing dot is ignored.
 */
export function certificateMatchesDomain(domain: string, cert: CertificateNames): boolean {
  const want = domain.toLowerCase().replace(/\.$/, '');
  return sipDomainIdentities(cert).some((id) => id.replace(/\.$/, '') === want);
}

/**
 * A `checkServerIdentity` for node:tls: RFC 5922 for a SIP domain; for an IP
 * address (no domain to check), Node's own check against the certificate's IP entries.
 */
export function checkSipServerIdentity(host: string, cert: PeerCertificate): Error | undefined {
  if (isIP(host) !== 0) return checkServerIdentity(host, cert);
  if (certificateMatchesDomain(host, cert)) return undefined;
  const ids = sipDomainIdentities(cert);
  const err = new Error(`certificate is not for SIP domain ${host} (RFC 5922 §7: it is for ${ids.length ? ids.join(', ') : 'no SIP domain'})`) as Error & { code: string; host: string };
  err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  err.host = host;
  return err;
}
