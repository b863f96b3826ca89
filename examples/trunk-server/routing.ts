import type { RouteDecision } from 'sipkit/b2bua';
import { parseUri, type SipRequest, type SipUri } from 'sipkit/parser';
import { ownEntry, requestedHost } from './trunk-domain.js';

/** One route: numbers starting with `prefix` go to `targets`. */
export interface Route {
  /** Longest matching prefix of the dialled number wins; "" matches everything. */
  prefix: string;
  /** sip: URIs of gateways in fail-over order. A target without a user part gets the dialled number. */
  targets: readonly string[];
}

/** What the router needs of a trunk domain (a config.ts `DomainConfig` is one). */
export interface RoutingDomain {
  routes: readonly Route[];
}

export interface Router {
  /** The B2BUA's `route` hook: gateways for the number dialled in the Request-URI's domain. */
  route(request: SipRequest): RouteDecision;
}

/** Longest number-prefix match → targets in fail-over order (none: the B2BUA answers 404). */
export function routeFor(number: string, domain: RoutingDomain): readonly string[] {
  let best: Route | undefined;
  for (const r of domain.routes) {
    if (number.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best?.targets ?? [];
}

/** A gateway URI without a user part gets the dialled number. */
export function targetUri(target: string, number: string): string {
  const u = parseUri(target) as SipUri;
  if (u.userRaw !== undefined) return target;
  const c = u.clone();
  c.userRaw = number;
  return c.toString();
}

/**
 * Routing per trunk domain: the Request-URI's host picks the domain, its user part is the
 * number, the domain's longest matching prefix picks the gateways (tried in order: the B2BUA
 * fails over on 408 and 5xx). A domain the router does not know is refused with 404. The
 * domains are read on every call, never copied.
 *
 * On its own, with a plain B2BUA (and whatever authentication you like):
 *
 *     const router = createRouter({
 *       'pbx.example.test': {
 *         routes: [
 *           { prefix: '', targets: ['sip:192.0.2.10:5060'] },
 *           { prefix: '+49', targets: ['sip:192.0.2.20:5060', 'sip:192.0.2.21:5060'] },
 *         ],
 *       },
 *     });
 *     const b2bua = new B2bua({ transports, route: router.route });
 */
export function createRouter(domains: Readonly<Record<string, RoutingDomain>>): Router {
  return {
    route(req) {
      const host = requestedHost(req);
      const domain = host === undefined ? undefined : ownEntry(domains, host);
      if (!domain) return { reject: 404 };
      const number = (req.requestUri as SipUri).user ?? '';
      return routeFor(number, domain).map((t) => ({ uri: targetUri(t, number) }));
    },
  };
}
