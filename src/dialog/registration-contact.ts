import { parseNameAddr, SipError, type NameAddr, type SipResponse, type SipUri } from '../parser/index.js';

/**
 * RFC 5626 §4.1: the instance ID is a URN (a `urn:uuid:` one in practice). A bare UUID is
 * taken as `urn:uuid:<it>`. Anything else is refused: it is written in a quoted Contact
 * parameter, between angle brackets, so it must not carry `"`, `<`, `>` or white space.
 */
export function instanceUrn(id: string): string {
  const urn = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? `urn:uuid:${id}` : id;
  if (!/^urn:[a-z0-9][a-z0-9-]{0,31}:[!-~]+$/i.test(urn) || /["<>\\]/.test(urn)) {
    throw new SipError('BAD_OPTION', `outbound.instanceId must be a URN or a UUID (got ${JSON.stringify(id.slice(0, 64))})`);
  }
  return urn;
}

/** RFC 5626 §4.2.1 Contact parameters, or none. */
export interface OutboundParams {
  instance: string;
  regId: number;
}

/** The Contact of a REGISTER: our binding, with the outbound parameters and, when given, `expires`. */
export function formatContact(contact: NameAddr, outbound: OutboundParams | undefined, expires?: number): string {
  const c = contact.clone();
  if (outbound) {
    c.params.set('reg-id', String(outbound.regId));
    c.params.set('+sip.instance', `"<${outbound.instance}>"`);
  }
  if (expires !== undefined) c.params.set('expires', String(expires));
  return c.toString();
}

function defaultPort(u: SipUri): number {
  return u.port ?? (u.scheme === 'sips' || u.transport === 'tls' ? 5061 : 5060);
}

/**
 * Whether a Contact the registrar listed is ours. RFC 5626 §4.2.1: with outbound, the
 * instance and reg-id name the binding (a registrar may rewrite the URI). Otherwise the URIs
 * are compared (§19.1.4) — liberally: an absent port equals the default one, host and scheme
 * case are folded, and URI parameters a registrar adds (a NAT helper's `received`…) are
 * ignored except `transport`, `user`, `maddr`, which change where the binding leads.
 */
export function isOurContact(listed: NameAddr, ours: NameAddr, outbound: OutboundParams | undefined): boolean {
  if (outbound) {
    const inst = listed.params.get('+sip.instance');
    if (inst != null) {
      const regId = listed.params.get('reg-id');
      return inst.replace(/^<|>$/g, '').toLowerCase() === outbound.instance.toLowerCase() && (regId == null || regId === String(outbound.regId));
    }
  }
  const a = listed.uri;
  const b = ours.uri;
  if (a.kind !== 'sip' || b.kind !== 'sip') return listed.uriText === ours.uriText;
  if (a.scheme !== b.scheme || a.userRaw !== b.userRaw || a.host.toLowerCase() !== b.host.toLowerCase() || defaultPort(a) !== defaultPort(b)) return false;
  for (const p of ['transport', 'user', 'maddr']) {
    if ((a.params.get(p) ?? '').toLowerCase() !== (b.params.get(p) ?? '').toLowerCase()) return false;
  }
  return true;
}

/** A delta-seconds value (§25.1: 1*DIGIT), or undefined. Values past 2^32−1 read as that (§20.19). */
function deltaSeconds(v: string | null | undefined): number | undefined {
  if (v == null) return undefined;
  const s = v.trim();
  if (!/^\d{1,20}$/.test(s)) return undefined;
  return Math.min(Number(s), 0xffffffff);
}

export interface GrantedBinding {
  /** Seconds the registrar granted our binding; undefined when the 2xx says nothing we can read. */
  expires: number | undefined;
  /** Whether our Contact was among those listed. */
  listed: boolean;
  /** Every binding the registrar listed for the AOR, as written. */
  contacts: string[];
}

/**
 * What a 2xx to REGISTER granted (§10.2.4): the `expires` parameter of the Contact that is
 * ours, else the Expires header. A Contact that does not parse is skipped (liberal in what we
 * accept), and so is an Expires that is not delta-seconds.
 */
export function grantedBinding(res: SipResponse, ours: NameAddr, outbound: OutboundParams | undefined): GrantedBinding {
  const contacts: string[] = [];
  let expires: number | undefined;
  let listed = false;
  // getAll splits comma-separated lists (§7.3.1): one element per binding.
  for (const raw of res.getAll('contact')) {
    let c: NameAddr;
    let mine = false;
    try {
      c = parseNameAddr(raw, 'contact');
      mine = isOurContact(c, ours, outbound);
    } catch {
      continue;
    }
    contacts.push(raw);
    if (mine && !listed) {
      listed = true;
      expires = deltaSeconds(c.params.get('expires'));
    }
  }
  if (expires === undefined) expires = deltaSeconds(res.get('expires'));
  return { expires, listed, contacts };
}
