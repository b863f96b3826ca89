import { describe, expect, it } from 'vitest';
import { certificateMatchesDomain, sipDomainIdentities } from '../../src/transport/index.js';
import { subjectAltNames } from '../../src/transport/tls-identity.js';

// RFC 5922 §7.1 (which names in a certificate are SIP domains) and §7.2 (how they are compared).

describe('sipDomainIdentities (RFC 5922 §7.1)', () => {
  it('takes the hosts of sip: URIs, and then ignores the DNS names', () => {
    expect(sipDomainIdentities({ subjectaltname: 'DNS:sip.test, URI:sip:sip.test' })).toEqual(['sip.test']);
    // DNS names count only when no sip URI names a domain.
    expect(sipDomainIdentities({ subjectaltname: 'DNS:sip.test, URI:sip:other.test' })).toEqual(['other.test']);
  });

  it('ignores sip URIs with a user part, other schemes, and URI parameters or ports', () => {
    expect(sipDomainIdentities({ subjectaltname: 'URI:sip:alice@sip.test, URI:sips:x.test, URI:https://y.test, DNS:sip.test' })).toEqual(['sip.test']);
    expect(sipDomainIdentities({ subjectaltname: 'URI:SIP:Sip.Test:5061;transport=tls' })).toEqual(['sip.test']);
  });

  it('reads the CN only when the certificate has no subjectAltName at all', () => {
    expect(sipDomainIdentities({ subject: { CN: 'sip.test' } })).toEqual(['sip.test']);
    expect(sipDomainIdentities({ subjectaltname: 'DNS:other.test', subject: { CN: 'sip.test' } })).toEqual(['other.test']);
    expect(sipDomainIdentities({ subjectaltname: 'IP Address:127.0.0.1', subject: { CN: 'sip.test' } })).toEqual([]);
    expect(sipDomainIdentities({ subject: { CN: 'Not A Host Name' } })).toEqual([]);
  });

  it('splits Node’s quoted subjectAltName values correctly', () => {
    expect(subjectAltNames('DNS:"a, b.test", URI:sip:sip.test')).toEqual([
      { type: 'DNS', value: 'a, b.test' },
      { type: 'URI', value: 'sip:sip.test' },
    ]);
    expect(sipDomainIdentities({ subjectaltname: 'DNS:"evil.test, DNS:sip.test"' })).toEqual(['evil.test, dns:sip.test']);
    expect(certificateMatchesDomain('sip.test', { subjectaltname: 'DNS:"evil.test, DNS:sip.test"' })).toBe(false);
  });
});

describe('certificateMatchesDomain (RFC 5922 §7.2)', () => {
  const cert = { subjectaltname: 'DNS:sip.test, DNS:*.wild.test, DNS:.dot.test' };
  it('matches whole names, case-insensitively, a trailing dot ignored', () => {
    expect(certificateMatchesDomain('sip.test', cert)).toBe(true);
    expect(certificateMatchesDomain('SIP.Test', cert)).toBe(true);
    expect(certificateMatchesDomain('sip.test.', cert)).toBe(true);
  });

  it('matches no suffix and no wildcard', () => {
    expect(certificateMatchesDomain('a.sip.test', cert)).toBe(false);
    expect(certificateMatchesDomain('test', cert)).toBe(false);
    expect(certificateMatchesDomain('foo.wild.test', cert)).toBe(false);
    expect(certificateMatchesDomain('*.wild.test', cert)).toBe(true);
    expect(certificateMatchesDomain('foo.dot.test', cert)).toBe(false);
  });
});
