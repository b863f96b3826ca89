import type { B2bua, ProbeOptions } from 'sipkit/b2bua';
import { SipResolver, type SipTransportName } from 'sipkit/resolver';
import { ApiError, type HttpRoute } from './http-api.js';
import type { Logger } from './log.js';

/** What the network part reads of the config (a config.ts `TrunkConfig` is one). */
export interface NetworkConfig {
  sip: { listen: ReadonlyArray<{ transport: SipTransportName }> };
  dns: { servers: readonly string[] | null };
  probe: { intervalSeconds: number; failureThreshold: number; successThreshold: number; timeoutSeconds: number } | null;
  domains: Readonly<Record<string, { routes: ReadonlyArray<{ targets: readonly string[] }> }>>;
}

export interface TrunkNetwork {
  /** RFC 3263 location of route targets that name a host (`B2buaOptions.resolver`). */
  resolver: SipResolver;
  /** OPTIONS probing of the config's route targets (`B2buaOptions.probe`); undefined when `probe` is off. */
  probe: ProbeOptions | undefined;
  /** Log `target.down` / `target.up` as the B2BUA's prober sees targets change. */
  watch(b2bua: B2bua): void;
  /** `GET /v1.0/targets` (bearer token): each probed target's resolved addresses and health. */
  route(b2bua: B2bua): HttpRoute;
}

/** Every distinct route target of the domains, in the order first met. */
export function routeTargets(domains: NetworkConfig['domains']): string[] {
  const seen = new Set<string>();
  for (const d of Object.values(domains)) for (const r of d.routes) for (const t of r.targets) seen.add(t);
  return [...seen];
}

/**
 * Where the trunk's calls go by name: a resolver asking the configured DNS servers (or the
 * system's) for NAPTR → SRV → A/AAAA (RFC 3263 §4) over the transports the trunk listens on,
 * and — when `probe` asks for it — OPTIONS probes of every route target in the config file,
 * so that a call skips a gateway known to be down. Provisioned trunks' targets are resolved
 * the same way but not probed (they change at run time).
 *
 * On its own, with a plain B2BUA:
 *
 *     const network = createNetwork({ sip: { listen: [{ transport: 'udp' }] }, dns: { servers: ['192.0.2.53'] },
 *       probe: { intervalSeconds: 30, failureThreshold: 3, successThreshold: 2, timeoutSeconds: 5 },
 *       domains: { 'pbx.example.test': { routes: [{ targets: ['sip:carrier.example'] }] } } }, log);
 *     const b2bua = new B2bua({ transports, route, resolver: network.resolver, probe: network.probe });
 *     network.watch(b2bua);
 */
export function createNetwork(config: NetworkConfig, log: Logger): TrunkNetwork {
  const order: readonly SipTransportName[] = ['udp', 'tcp', 'tls'];
  const listening = new Set(config.sip.listen.map((l) => l.transport));
  const transports = order.filter((t) => listening.has(t));
  const resolver = new SipResolver({ transports, ...(config.dns.servers ? { servers: config.dns.servers } : {}) });
  const p = config.probe;
  const targets = routeTargets(config.domains);
  const probe: ProbeOptions | undefined =
    p && targets.length > 0
      ? { targets, intervalMs: p.intervalSeconds * 1000, failureThreshold: p.failureThreshold, successThreshold: p.successThreshold, timeoutMs: p.timeoutSeconds * 1000 }
      : undefined;
  return {
    resolver,
    probe,
    watch(b2bua) {
      b2bua.on('target-down', (h) => log('warn', 'target.down', { uri: h.uri, addresses: h.addresses, status: h.lastStatus }));
      b2bua.on('target-up', (h) => log('info', 'target.up', { uri: h.uri, addresses: h.addresses, status: h.lastStatus }));
    },
    route(b2bua) {
      return (req, res, { path, authorized }) => {
        if (path !== '/v1.0/targets') return false;
        if (req.method !== 'GET') throw new ApiError(405, 'method_not_allowed', 'only GET', { allow: 'GET' });
        if (!authorized) throw new ApiError(401, 'unauthorized', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
        // Each target as DNS gives it now (answers are cached for their TTL), with its probe health when probed.
        const health = new Map(b2bua.targetHealth().map((h) => [h.uri, h]));
        void Promise.all(targets.map(async (uri) => {
          const h = health.get(uri);
          let resolved: string[] = [];
          let error: string | undefined;
          try {
            resolved = (await resolver.resolve(uri)).map((t) => `${t.transport} ${t.family === 6 ? `[${t.address}]` : t.address}:${t.port}`);
          } catch (err) {
            error = (err as { code?: string }).code ?? 'DNS_ERROR';
          }
          return { uri, resolved, ...(error ? { error } : {}), state: h?.state ?? 'unknown', probedAddresses: h?.addresses ?? [], lastStatus: h?.lastStatus, lastChange: h?.lastChange, probes: h?.probes ?? 0 };
        })).then((list) => {
          const body = JSON.stringify({ probing: probe !== undefined, dnsServers: config.dns.servers ?? 'system', targets: list });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
        return true;
      };
    },
  };
}
