import { parseNameAddr, SipUri, type SipRequest } from '../parser/index.js';
import type { TargetList } from '../resolver/index.js';
import type { Target, TransactionLayer } from '../transaction/index.js';
import type { Dialog } from './dialog.js';

/**
 * The URI RFC 3263 locates for a request (§4, RFC 3261 §8.1.2): its top Route when it has
 * one, else its Request-URI. Undefined when that is not a sip:/sips: URI.
 */
export function nextHopUri(req: SipRequest, requestUri?: SipUri): SipUri | undefined {
  const route = req.has('route') ? req.getAll('route')[0] : undefined;
  const u = route !== undefined ? parseNameAddr(route, 'route').uri : (requestUri ?? req.requestUri);
  return u instanceof SipUri ? u : undefined;
}

/** `sips:` in any case at the start of `s`, without allocating. */
function startsWithSips(s: string): boolean {
  return s.length > 4 && s.charCodeAt(4) === 58 && (s.charCodeAt(0) | 32) === 115 && (s.charCodeAt(1) | 32) === 105 && (s.charCodeAt(2) | 32) === 112 && (s.charCodeAt(3) | 32) === 115;
}

/**
 * RFC 3261 §8.1.1.8 / §12.1.1 (RFC 5630 §3.1.3): a request whose Request-URI or top Route is a
 * sips: URI carries a sips: Contact.
 */
export function wantsSipsContact(req: SipRequest): boolean {
  if (startsWithSips(req.uri)) return true;
  if (!req.has('route')) return false;
  try {
    return nextHopUri(req)?.scheme === 'sips';
  } catch {
    return false;
  }
}

/** Where a request goes: one target known now (explicit, or an IP literal), or a list to locate with fail-over. */
export type Placement = { target: Target; list: undefined } | { target: Target; list: TargetList };

/**
 * Where to send `req`: `explicit` when given; else its next hop's IP-literal target,
 * synchronously (no resolver promise on the hot path); else the resolver's targets, with a
 * stand-in target (the URI's own host and transport) until one is chosen. Throws
 * `NO_TRANSPORT` for a URI asking for a transport the layer lacks, `NO_DESTINATION` for a
 * next hop that is not a SIP URI.
 */
export function place(layer: TransactionLayer, req: SipRequest, explicit: Target | undefined, fallback: () => Target, requestUri?: SipUri): Placement {
  if (explicit !== undefined) return { target: explicit, list: undefined };
  const uri = nextHopUri(req, requestUri);
  if (uri === undefined) return { target: fallback(), list: undefined };
  const literal = layer.literalTarget(uri);
  if (literal !== undefined) return { target: literal, list: undefined };
  return { target: fallback(), list: layer.resolver.targets(uri) };
}

/**
 * The targets in-dialog requests reached, per dialog and next-hop host: a dialog keeps using
 * the first target that worked for a host (RFC 3263 §4.3 leaves the choice to the client;
 * staying put keeps a dialog on one server of a cluster), and locates again after it fails.
 */
export class DialogTargets {
  private readonly byDialog = new WeakMap<Dialog, Map<string, Target>>();

  get(dialog: Dialog, host: string): Target | undefined {
    return this.byDialog.get(dialog)?.get(host);
  }

  worked(dialog: Dialog, host: string, target: Target): void {
    let m = this.byDialog.get(dialog);
    if (m === undefined) this.byDialog.set(dialog, (m = new Map()));
    // Bounded: a dialog has one remote target and one route set; a refresh may add a host or two.
    if (m.size >= 8 && !m.has(host)) m.clear();
    m.set(host, target);
  }

  failed(dialog: Dialog, host: string): void {
    this.byDialog.get(dialog)?.delete(host);
  }
}

/**
 * RFC 3261 §12.1.1: the UAS's Contact is a sips: URI when the dialog-creating request had one
 * as its Request-URI, its top Record-Route, or (without Record-Route) its Contact.
 */
export function sipsDialog(req: SipRequest): boolean {
  if (startsWithSips(req.uri)) return true;
  const top = req.get('record-route') ?? req.get('contact');
  // Most dialogs are not sips: look for the scheme before parsing anything.
  if (top === undefined || !/sips:/i.test(top)) return false;
  try {
    return parseNameAddr(top, 'contact').uri.scheme === 'sips';
  } catch {
    return false;
  }
}
