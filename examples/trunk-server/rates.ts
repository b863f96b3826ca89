/**
 * Rate tables and the money arithmetic of a call's charge. Prices are decimal strings in the
 * config ("0.0120") parsed exactly into integer micro-units (millionths of the currency unit);
 * no float ever touches an amount.
 */

/** One rate as configured (and as a provisioning API takes it): strings, so it round-trips through JSON. */
export interface RateConfig {
  /** Longest matching prefix of the dialled number wins; "" matches everything. */
  prefix: string;
  /** Price per minute, a decimal with at most 6 fraction digits: "0.0120". */
  perMinute: string;
  /** Billing increments in seconds, "first/next": "60/60", "1/1", "30/6". */
  increments: string;
  /** Charged once per answered call (default "0"). */
  connectionFee?: string;
  /** ISO 4217 code: "EUR". */
  currency: string;
}

/** A rate parsed for arithmetic. */
export interface Rate {
  prefix: string;
  /** Micro-units per minute. */
  perMinute: bigint;
  firstSeconds: number;
  nextSeconds: number;
  /** Micro-units. */
  connectionFee: bigint;
  currency: string;
}

export interface Charge {
  /** Micro-units: 1 EUR = 1 000 000. */
  amount: bigint;
  currency: string;
  billedSeconds: number;
  ratePrefix: string;
}

/** A rate table the config or a provisioning request got wrong; `field` names the bad entry. */
export class RateError extends Error {
  readonly code = 'invalid_rate';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'RateError';
  }
}

export const MICRO = 1_000_000n;
/** At most 9 integer digits: any price times a day of seconds stays far inside bigint comfort and safe JSON. */
const PRICE = /^(\d{1,9})(?:\.(\d{1,6}))?$/;
const INCREMENTS = /^([1-9]\d{0,3})\/([1-9]\d{0,3})$/;
const KEYS = new Set(['prefix', 'perMinute', 'increments', 'connectionFee', 'currency']);

/** "0.0120" → 12000n micro-units; undefined when it is not a plain non-negative decimal with ≤ 6 fraction digits. */
export function parsePrice(s: string): bigint | undefined {
  const m = PRICE.exec(s);
  if (!m) return undefined;
  return BigInt(m[1]!) * MICRO + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/** Micro-units as a decimal: at least 4 fraction digits ("0.0240"), up to 6 when they are not zero ("0.024001"). */
export function formatMicro(micro: bigint): string {
  const sign = micro < 0n ? '-' : '';
  const abs = micro < 0n ? -micro : micro;
  const f6 = (abs % MICRO).toString().padStart(6, '0');
  // Trim the two optional trailing zeros only: 4 fraction digits at least.
  const shown = f6.endsWith('00') ? f6.slice(0, 4) : f6.endsWith('0') ? f6.slice(0, 5) : f6;
  return `${sign}${abs / MICRO}.${shown}`;
}

function parseRate(v: unknown, field: string): Rate & { config: RateConfig } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RateError(field, 'must be an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new RateError(`${field}.${k}`, 'unknown key');
  if (typeof o.prefix !== 'string' || !/^[0-9+*#]{0,32}$/.test(o.prefix)) throw new RateError(`${field}.prefix`, 'must be a string of up to 32 digits (and + * #)');
  const perMinute = typeof o.perMinute === 'string' ? parsePrice(o.perMinute) : undefined;
  if (perMinute === undefined) throw new RateError(`${field}.perMinute`, 'must be a decimal string with at most 6 fraction digits, e.g. "0.0120"');
  const inc = typeof o.increments === 'string' ? INCREMENTS.exec(o.increments) : null;
  if (!inc) throw new RateError(`${field}.increments`, 'must be "first/next" in whole seconds from 1 to 9999, e.g. "60/60" or "30/6"');
  let connectionFee = 0n;
  if (o.connectionFee !== undefined) {
    const fee = typeof o.connectionFee === 'string' ? parsePrice(o.connectionFee) : undefined;
    if (fee === undefined) throw new RateError(`${field}.connectionFee`, 'must be a decimal string with at most 6 fraction digits, e.g. "0.0100"');
    connectionFee = fee;
  }
  if (typeof o.currency !== 'string' || !/^[A-Z]{3}$/.test(o.currency)) throw new RateError(`${field}.currency`, 'must be an ISO 4217 code such as "EUR"');
  const config: RateConfig = { prefix: o.prefix, perMinute: o.perMinute as string, increments: o.increments as string, currency: o.currency };
  if (o.connectionFee !== undefined) config.connectionFee = o.connectionFee as string;
  return { prefix: o.prefix, perMinute, firstSeconds: Number(inc[1]), nextSeconds: Number(inc[2]), connectionFee, currency: o.currency, config };
}

/**
 * Check a rate table (config file or provisioning request): an array of rates, no prefix twice.
 * Returns it as plain `RateConfig`s (unknown keys refused); throws `RateError` naming the field.
 */
export function validateRates(value: unknown, field: string): RateConfig[] {
  if (!Array.isArray(value)) throw new RateError(field, 'must be an array');
  const seen = new Set<string>();
  return value.map((v, i) => {
    const r = parseRate(v, `${field}[${i}]`);
    if (seen.has(r.prefix)) throw new RateError(`${field}[${i}].prefix`, `"${r.prefix}" is listed twice`);
    seen.add(r.prefix);
    return r.config;
  });
}

/** The rate for a dialled number: the longest matching prefix (undefined when none matches). */
export function rateFor(number: string, rates: readonly RateConfig[]): Rate | undefined {
  let best: RateConfig | undefined;
  for (const r of rates) if (number.startsWith(r.prefix) && (!best || r.prefix.length > best.prefix.length)) best = r;
  if (!best) return undefined;
  const { config: _, ...rate } = parseRate(best, 'rate');
  return rate;
}

/**
 * Seconds billed for an answered duration (milliseconds): nothing for 0; the first increment
 * for anything up to it; beyond, the first plus whole next increments, rounded up
 * (`first + ceil((d − first) / next) · next`).
 */
export function billedSeconds(durationMs: number, firstSeconds: number, nextSeconds: number): number {
  if (!(durationMs > 0)) return 0;
  const firstMs = firstSeconds * 1000;
  if (durationMs <= firstMs) return firstSeconds;
  return firstSeconds + Math.ceil((durationMs - firstMs) / (nextSeconds * 1000)) * nextSeconds;
}

/**
 * The charge of a call answered for `durationMs` (undefined: never answered, which costs 0):
 * the connection fee plus perMinute · billed / 60, rounded UP to the micro-unit when it does
 * not come out whole — a fraction of a micro-unit is charged as one, as carriers round.
 */
export function chargeFor(rate: Rate, durationMs: number | undefined): Charge {
  const billed = durationMs === undefined ? 0 : billedSeconds(durationMs, rate.firstSeconds, rate.nextSeconds);
  const answered = durationMs !== undefined;
  const usage = (rate.perMinute * BigInt(billed) + 59n) / 60n;
  return { amount: answered ? rate.connectionFee + usage : 0n, currency: rate.currency, billedSeconds: billed, ratePrefix: rate.prefix };
}
