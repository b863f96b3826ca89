import type { AuthDecision, CallRecord, RouteDecision } from 'sipkit/b2bua';
import { Registration, type UserAgent } from 'sipkit/dialog';
import { createResponse, parseUri, type SipRequest, type SipUri } from 'sipkit/parser';
import { targetFromUri, type MessageSource } from 'sipkit/transaction';
import { formatHost } from 'sipkit/transport';
import { AddressMatcher } from './cidr.js';
import { registrarAddresses, type RegistrationConfig } from './config.js';
import type { Logger } from './log.js';
import { routeFor, targetUri, type RoutingDomain } from './routing.js';
import { ownEntry, requestedHost } from './trunk-domain.js';

/** How a call let in by a registration is marked in `record.tags.auth`. */
export const REGISTRATION_AUTH = 'registration';

export interface TrunkRegistrations {
  /**
   * In front of the trunk's own authentication: an INVITE to a registration's Contact (its user
   * part, at a host that is no trunk domain) from one of that registration's `inbound.allow`
   * addresses is a call from the carrier — let in unchallenged into `inbound.domain`, with the
   * called number (the To URI's user part) as `tags.number`; refused with 403 when the
   * registration takes no inbound calls. Undefined for every other request (from any other
   * address too: those are challenged as usual, so knowing the Contact lets nobody in).
   */
  authenticate(request: SipRequest, source: MessageSource): AuthDecision | undefined;
  /** The route of a call `authenticate` let in: its domain's targets for the number. Undefined for other calls. */
  route(record: CallRecord): RouteDecision | undefined;
  /** Register with every registrar now, through `ua` (the B2BUA's: the Contact is one of its listeners). */
  start(ua: UserAgent): void;
  /** The registrations, in config order, once started. */
  readonly registrations: readonly Registration[];
  /** Unregister everywhere (Expires: 0); resolves when each registrar answered or gave up. */
  close(): Promise<void>;
}

/** The called number of a carrier's call: the To URI's user part (the Request-URI is our Contact). */
function calledNumber(req: SipRequest): string {
  try {
    const u = req.to.uri;
    return u.kind === 'sip' ? ((u as SipUri).user ?? '') : '';
  } catch {
    return '';
  }
}

/** An address as a socket reports it: IPv4-mapped IPv6 (`::ffff:192.0.2.1`) as the IPv4 address. */
function plainAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * The trunk's own registrations with carriers (RFC 3261 §10.2, via `Registration`): each binds
 * `sip:<contactUser>@<the listener for the registrar's transport>` (sips: for a sips: registrar,
 * RFC 3261 §8.1.1.8) to its AOR, refreshes it, logs `registration.registered` and
 * `registration.failed`, and removes it on close.
 *
 * A call the carrier sends to that Contact is an inbound call, but carries no credentials the
 * trunk could check: it is trusted by where it comes from (the registrar's address unless
 * `inbound.allow` says otherwise — for a registrar named by host, the addresses the trunk's
 * resolver finds for it, looked up again at each registration), and routed by the number the carrier put in To, through the
 * routes of the trunk domain `inbound.domain` — as if dialled as <number>@<domain>.
 *
 * On its own, with a plain B2BUA:
 *
 *     const regs = createRegistrations([{ registrar: 'sip:192.0.2.1', username: 'acme', password: 's3cret', expires: 600,
 *       aor: 'sip:acme@192.0.2.1', contactUser: 'acme', inbound: { domain: 'pbx.example.test', allow: ['192.0.2.1'] } }], { domains });
 *     const b2bua = new B2bua({
 *       transports,
 *       authenticate: (req, src) => regs.authenticate(req, src) ?? auth.authenticate(req, src),
 *       route: (req, { record }) => regs.route(record) ?? router.route(req),
 *     });
 *     regs.start(b2bua.ua);
 *     // on shutdown, before b2bua.close(): await regs.close();
 */
export function createRegistrations(
  configs: readonly RegistrationConfig[],
  options: { domains: Readonly<Record<string, RoutingDomain>>; log?: Logger; userAgent?: string },
): TrunkRegistrations {
  const { domains, log } = options;
  const byContactUser = new Map(
    configs.map((c) => [c.contactUser, { config: c, allow: new AddressMatcher(c.inbound?.allow ?? registrarAddresses(c.registrar)), resolved: new Set<string>() }]),
  );
  const registrations: Registration[] = [];

  const authenticate = (req: SipRequest, source: MessageSource): AuthDecision | undefined => {
    const host = requestedHost(req);
    if (host === undefined || ownEntry(domains, host) !== undefined) return undefined;
    const user = (req.requestUri as SipUri).user;
    const entry = user === undefined ? undefined : byContactUser.get(user);
    if (!entry) return undefined;
    const { config, allow, resolved } = entry;
    const from = source.address.address;
    if (!allow.matches(from) && !resolved.has(plainAddress(from))) return undefined;
    if (!config.inbound) {
      log?.('warn', 'registration.inbound_refused', { registrar: config.registrar, reason: 'no inbound domain configured', from: `${from}:${source.address.port}` });
      return { ok: false, response: createResponse(req, 403, { reason: 'No Inbound Calls Here' }) };
    }
    return { ok: true, tags: { domain: config.inbound.domain, auth: REGISTRATION_AUTH, registrar: config.registrar, number: calledNumber(req) } };
  };

  const route = (record: CallRecord): RouteDecision | undefined => {
    if (record.tags.auth !== REGISTRATION_AUTH) return undefined;
    const domain = ownEntry(domains, record.tags.domain ?? '');
    if (!domain) return { reject: 404 };
    const number = record.tags.number ?? '';
    return routeFor(number, domain).map((t) => ({ uri: targetUri(t, number) }));
  };

  const start = (ua: UserAgent): void => {
    for (const c of configs) {
      const uri = parseUri(c.registrar) as SipUri;
      const destination = targetFromUri(uri);
      const local = ua.transportFor(destination).local;
      const secure = uri.scheme === 'sips';
      const tp = destination.transport === 'udp' || secure ? '' : `;transport=${destination.transport}`;
      const contact = `<${secure ? 'sips' : 'sip'}:${c.contactUser}@${formatHost(local.address)}:${local.port}${tp}>`;
      const reg = new Registration(ua, {
        registrar: c.registrar,
        aor: c.aor,
        expires: c.expires,
        contact,
        auth: { username: c.username, password: c.password },
        outbound: c.outbound,
        userAgent: options.userAgent,
      });
      const fields = { registrar: c.registrar, aor: c.aor };
      const entry = byContactUser.get(c.contactUser)!;
      // A registrar named by host: trust its calls from where DNS says it is, now and after each registration.
      const follow = () => {
        if (!c.inbound?.registrarByName) return;
        ua.layer.resolver.resolve(c.registrar).then(
          (targets) => {
            entry.resolved.clear();
            for (const t of targets) entry.resolved.add(plainAddress(t.address));
          },
          (err: unknown) => log?.('warn', 'registration.registrar_unresolved', { ...fields, code: (err as { code?: string }).code, error: (err as Error).message }),
        );
      };
      follow();
      reg.on('registered', (info) => {
        follow();
        log?.('info', 'registration.registered', { ...fields, expires: info.expires });
      });
      reg.on('failed', (f) =>
        log?.('warn', 'registration.failed', { ...fields, cause: f.cause, status: f.status, retryInSeconds: f.retryInMs === undefined ? undefined : Math.round(f.retryInMs / 1000) }),
      );
      reg.on('unregistered', () => log?.('info', 'registration.unregistered', fields));
      registrations.push(reg);
      // The outcome is logged by the events; a failed attempt is retried after its back-off.
      reg.register().catch(() => undefined);
    }
  };

  return {
    authenticate,
    route,
    start,
    registrations,
    close: async () => {
      await Promise.allSettled(registrations.map((r) => r.close()));
    },
  };
}
