import type { CallRecord } from 'sipkit/b2bua';
import { parseUri, type SipUri } from 'sipkit/parser';
import { chargeFor, formatMicro, rateFor, type Charge, type Rate, type RateConfig } from './rates.js';
import { ownEntry } from './trunk-domain.js';

/** What charging needs of a trunk domain (a config.ts `DomainConfig` is one). */
export interface ChargingDomain {
  routes: ReadonlyArray<{ prefix: string; rates?: readonly RateConfig[] }>;
}

/** The B2BUA events charging follows (a `B2bua` has them). */
export interface ChargeEvents {
  on(event: 'call' | 'end', fn: (record: CallRecord) => void): unknown;
}

/** Where a call's charge is written in `record.tags` at hangup (the call view reads it back). */
export const CHARGE_TAGS = {
  amount: 'charge_amount',
  currency: 'charge_currency',
  billedSeconds: 'charge_billed_seconds',
  ratePrefix: 'charge_rate_prefix',
} as const;

/** The dialled number: the user part of the A leg's Request-URI ("" when it has none). */
function dialledNumber(to: string): string {
  try {
    const u = parseUri(to);
    return u.kind === 'sip' ? ((u as SipUri).user ?? '') : '';
  } catch {
    return '';
  }
}

/** The rate of a call: its domain's route for the number (longest prefix, as routing.ts picks it), then that route's longest rate prefix. */
export function rateOfCall(domains: Readonly<Record<string, ChargingDomain>>, domainName: string | undefined, to: string, dialled?: string): Rate | undefined {
  const domain = domainName === undefined ? undefined : ownEntry(domains, domainName);
  if (!domain) return undefined;
  // A carrier's call to a registered Contact names the trunk in its Request-URI: the number is in tags.number.
  const number = dialled ?? dialledNumber(to);
  let route: ChargingDomain['routes'][number] | undefined;
  for (const r of domain.routes) if (number.startsWith(r.prefix) && (!route || r.prefix.length > route.prefix.length)) route = r;
  return route?.rates ? rateFor(number, route.rates) : undefined;
}

/**
 * Per-call charges. The rate is fixed when the call is set up (a rate table changed during a
 * call does not reprice it); at hangup the answered duration (answered → hangup) is billed in
 * the rate's increments and the charge written into `record.tags` (`CHARGE_TAGS`), where the
 * call view, the HTTP API and the CDR line read it. A call never answered costs 0; a call
 * whose route has no rate for the number gets no charge tags at all.
 *
 * Register it before anything else that listens for `end` (the CDR writer), so they see the
 * charge:
 *
 *     const charges = createCharging(b2bua, domains);
 *     b2bua.on('end', cdr.write);
 */
export function createCharging(b2bua: ChargeEvents, domains: Readonly<Record<string, ChargingDomain>>): { chargeOf(record: CallRecord): Charge | undefined } {
  const rates = new WeakMap<CallRecord, Rate>();
  const charges = new WeakMap<CallRecord, Charge>();
  b2bua.on('call', (r) => {
    const rate = rateOfCall(domains, r.tags.domain, r.to, r.tags.number);
    if (rate) rates.set(r, rate);
  });
  b2bua.on('end', (r) => {
    const rate = rates.get(r);
    if (!rate) return;
    const { answered, hangup } = r.timestamps;
    const charge = chargeFor(rate, answered === undefined ? undefined : Math.max(0, (hangup ?? answered) - answered));
    charges.set(r, charge);
    r.tags[CHARGE_TAGS.amount] = formatMicro(charge.amount);
    r.tags[CHARGE_TAGS.currency] = charge.currency;
    r.tags[CHARGE_TAGS.billedSeconds] = String(charge.billedSeconds);
    r.tags[CHARGE_TAGS.ratePrefix] = charge.ratePrefix;
  });
  return { chargeOf: (r) => charges.get(r) };
}
