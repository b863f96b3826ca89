import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { viewOf } from '../../examples/trunk-server/call-view.js';
import { createCharging, rateOfCall } from '../../examples/trunk-server/charges.js';
import { ConfigError, validateConfig } from '../../examples/trunk-server/config.js';
import { billedSeconds, chargeFor, formatMicro, parsePrice, rateFor, RateError, validateRates, type Rate } from '../../examples/trunk-server/rates.js';
import { dial, GATEWAY, run, setup } from './parts-harness.js';

/** The reference: the billing rule written again, independently, over bigints and whole milliseconds. */
function reference(perMinuteMicro: bigint, feeMicro: bigint, first: bigint, next: bigint, durationMs: bigint | undefined): { amount: bigint; billed: bigint } {
  if (durationMs === undefined) return { amount: 0n, billed: 0n };
  let billed = 0n;
  if (durationMs > 0n) {
    billed = first;
    // Add whole next increments while the billed time is short of the duration.
    const over = durationMs - first * 1000n;
    if (over > 0n) billed += ((over + next * 1000n - 1n) / (next * 1000n)) * next;
  }
  const exact = perMinuteMicro * billed; // in micro-units × 60
  const usage = exact / 60n + (exact % 60n === 0n ? 0n : 1n);
  return { amount: feeMicro + usage, billed };
}

const priceArb = fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999_999 })).map(([i, f]) => `${i}.${String(f).padStart(6, '0')}`);
const rateArb = fc.record({
  perMinute: priceArb,
  first: fc.integer({ min: 1, max: 120 }),
  next: fc.integer({ min: 1, max: 120 }),
  fee: fc.option(priceArb, { nil: undefined }),
});
const durationArb = fc.integer({ min: 0, max: 3 * 3600 * 1000 });

function rateOf(r: { perMinute: string; first: number; next: number; fee?: string }): Rate {
  return rateFor('4930', validateRates([{ prefix: '49', perMinute: r.perMinute, increments: `${r.first}/${r.next}`, currency: 'EUR', ...(r.fee ? { connectionFee: r.fee } : {}) }], 'rates'))!;
}

describe('rates: exact prices and billing increments', () => {
  it('parses prices exactly into micro-units and formats them back', () => {
    expect(parsePrice('0.0120')).toBe(12_000n);
    expect(parsePrice('1')).toBe(1_000_000n);
    expect(parsePrice('0.000001')).toBe(1n);
    expect(parsePrice('123456789.999999')).toBe(123_456_789_999_999n);
    for (const bad of ['', '.5', '1.', '-1', '1e3', '0.0000001', ' 1', '1,5', '0x10', '1234567890']) expect(parsePrice(bad), bad).toBeUndefined();
    expect(formatMicro(24_000n)).toBe('0.0240');
    expect(formatMicro(24_010n)).toBe('0.02401');
    expect(formatMicro(24_001n)).toBe('0.024001');
    expect(formatMicro(12_000_000n)).toBe('12.0000');
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), (m) => parsePrice(formatMicro(m)) === m));
  });

  it('bills the first increment for anything up to it, then whole next increments', () => {
    expect(billedSeconds(0, 30, 6)).toBe(0);
    expect(billedSeconds(1, 30, 6)).toBe(30);
    expect(billedSeconds(30_000, 30, 6)).toBe(30);
    expect(billedSeconds(30_001, 30, 6)).toBe(36);
    expect(billedSeconds(36_000, 30, 6)).toBe(36);
    expect(billedSeconds(61_000, 60, 60)).toBe(120);
    expect(billedSeconds(1_500, 1, 1)).toBe(2);
  });

  it('charges 0.0120/min at 30/6 for 100 s as 102 s = 0.0204, plus the connection fee', () => {
    const rate = rateOf({ perMinute: '0.0120', first: 30, next: 6, fee: '0.0100' });
    expect(chargeFor(rate, 100_000)).toEqual({ amount: 30_400n, currency: 'EUR', billedSeconds: 102, ratePrefix: '49' });
    expect(chargeFor(rate, undefined)).toEqual({ amount: 0n, currency: 'EUR', billedSeconds: 0, ratePrefix: '49' });
  });

  it('rounds a fraction of a micro-unit up', () => {
    // 0.000001/min for 1 s is 1/60 of a micro-unit: charged as one.
    expect(chargeFor(rateOf({ perMinute: '0.000001', first: 1, next: 1 }), 1000).amount).toBe(1n);
    // 0.000007/min for 6 s is 0.7 micro-units: one.
    expect(chargeFor(rateOf({ perMinute: '0.000007', first: 6, next: 6 }), 6000).amount).toBe(1n);
  });

  it('property: equals the reference calculation', () => {
    fc.assert(
      fc.property(rateArb, fc.option(durationArb, { nil: undefined }), (r, d) => {
        const c = chargeFor(rateOf(r), d);
        const ref = reference(parsePrice(r.perMinute)!, r.fee ? parsePrice(r.fee)! : 0n, BigInt(r.first), BigInt(r.next), d === undefined ? undefined : BigInt(d));
        expect(c.amount).toBe(ref.amount);
        expect(BigInt(c.billedSeconds)).toBe(ref.billed);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: never decreases with the duration', () => {
    fc.assert(
      fc.property(rateArb, durationArb, durationArb, (r, a, b) => {
        const rate = rateOf(r);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(chargeFor(rate, lo).amount <= chargeFor(rate, hi).amount).toBe(true);
        expect(chargeFor(rate, lo).billedSeconds <= chargeFor(rate, hi).billedSeconds).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: billed seconds are first + k·next; without a fee the amount is perMinute·billed/60, exact when whole, else rounded up by less than one micro-unit', () => {
    fc.assert(
      fc.property(rateArb, fc.integer({ min: 1, max: 3 * 3600 * 1000 }), (r, d) => {
        const rate = rateOf({ ...r, fee: undefined });
        const c = chargeFor(rate, d);
        expect((c.billedSeconds - r.first) % r.next).toBe(0);
        expect(c.billedSeconds).toBeGreaterThanOrEqual(r.first);
        expect(c.billedSeconds * 1000).toBeGreaterThanOrEqual(d);
        // The billed time is the least such: one increment less would not cover the call.
        if (c.billedSeconds > r.first) expect((c.billedSeconds - r.next) * 1000).toBeLessThan(d);
        const times60 = rate.perMinute * BigInt(c.billedSeconds);
        if (times60 % 60n === 0n) expect(c.amount * 60n).toBe(times60);
        else {
          expect(c.amount * 60n > times60).toBe(true);
          expect((c.amount - 1n) * 60n < times60).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('the longest destination prefix wins', () => {
    const rates = validateRates(
      [
        { prefix: '', perMinute: '0.5', increments: '60/60', currency: 'EUR' },
        { prefix: '49', perMinute: '0.02', increments: '60/60', currency: 'EUR' },
        { prefix: '4915', perMinute: '0.10', increments: '1/1', currency: 'EUR' },
      ],
      'rates',
    );
    expect(rateFor('4915123', rates)?.prefix).toBe('4915');
    expect(rateFor('4930123', rates)?.prefix).toBe('49');
    expect(rateFor('33123', rates)?.prefix).toBe('');
    expect(rateFor('33', rates.slice(1))).toBeUndefined();
  });

  it('validateRates names the bad field', () => {
    const ok = { prefix: '49', perMinute: '0.0120', increments: '30/6', currency: 'EUR' };
    const cases: Array<[unknown, string]> = [
      [{}, 'r'],
      [[{ ...ok, perMinute: 0.012 }], 'r[0].perMinute'],
      [[{ ...ok, perMinute: '0.0000001' }], 'r[0].perMinute'],
      [[{ ...ok, increments: '0/6' }], 'r[0].increments'],
      [[{ ...ok, increments: '30' }], 'r[0].increments'],
      [[{ ...ok, connectionFee: '-1' }], 'r[0].connectionFee'],
      [[{ ...ok, currency: 'euro' }], 'r[0].currency'],
      [[{ ...ok, prefix: 'abc' }], 'r[0].prefix'],
      [[{ ...ok, extra: 1 }], 'r[0].extra'],
      [[ok, ok], 'r[1].prefix'],
    ];
    for (const [value, field] of cases) {
      let err: unknown;
      try {
        validateRates(value, 'r');
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(value)).toBeInstanceOf(RateError);
      expect((err as RateError).field).toBe(field);
    }
    expect(validateRates([{ ...ok, connectionFee: '0.01' }], 'r')).toEqual([{ ...ok, connectionFee: '0.01' }]);
  });

  it('the config takes rates per route and refuses bad ones with a ConfigError naming the field', () => {
    const domain = (rates: unknown) => ({ domains: { 'd.test': { extensions: { '1': { password: 'p' } }, routes: [{ prefix: '', targets: ['sip:127.0.0.1:5080'], rates }] } } });
    const c = validateConfig(domain([{ prefix: '49', perMinute: '0.0120', increments: '30/6', currency: 'EUR' }]));
    expect(c.domains['d.test']!.routes[0]!.rates).toEqual([{ prefix: '49', perMinute: '0.0120', increments: '30/6', currency: 'EUR' }]);
    expect(() => validateConfig(domain([{ prefix: '49', perMinute: '0.0120', increments: '30/6', currency: 'eur' }]))).toThrow(
      new ConfigError('domains.d.test.routes[0].rates[0].currency', 'must be an ISO 4217 code such as "EUR"'),
    );
  });

  it('picks the route as routing does, then the rate inside it', () => {
    const domains = {
      'd.test': {
        routes: [
          { prefix: '', rates: [{ prefix: '', perMinute: '1', increments: '60/60', currency: 'USD' }] },
          { prefix: '49', rates: [{ prefix: '4930', perMinute: '0.01', increments: '1/1', currency: 'EUR' }] },
        ],
      },
    };
    expect(rateOfCall(domains, 'd.test', 'sip:4930111@d.test')?.currency).toBe('EUR');
    expect(rateOfCall(domains, 'd.test', 'sip:33111@d.test')?.currency).toBe('USD');
    // The "49" route has no rate for 4940: no charge, not the other route's.
    expect(rateOfCall(domains, 'd.test', 'sip:4940111@d.test')).toBeUndefined();
    expect(rateOfCall(domains, 'other.test', 'sip:4930111@d.test')).toBeUndefined();
    expect(rateOfCall(domains, 'constructor', 'sip:4930111@d.test')).toBeUndefined();
    // A carrier's call to the trunk's registered Contact: the number comes from tags.number, not the Request-URI.
    expect(rateOfCall(domains, 'd.test', 'sip:trunk@127.0.0.1:5060', '4930111')?.currency).toBe('EUR');
  });
});

describe('charges on a plain B2bua', () => {
  const domains = { 'pbx.example.test': { routes: [{ prefix: '', rates: [{ prefix: '+49', perMinute: '0.0120', increments: '30/6', connectionFee: '0.0100', currency: 'EUR' }] }] } };

  it('bills the answered time at hangup into the record, the call view and so the CDR', async () => {
    const s = setup({ authenticate: () => ({ ok: true, tags: { domain: 'pbx.example.test' } }), route: () => [{ uri: `sip:+4930@${GATEWAY}:5060` }] });
    const charging = createCharging(s.b2bua, domains);
    const views: unknown[] = [];
    s.b2bua.on('end', (r) => views.push(viewOf(r)));
    const d = dial(s, 'sip:+4930123@pbx.example.test');
    await run(s);
    expect(d.answered).toBe(true);
    expect(viewOf(s.b2bua.list()[0]!).charge).toBeNull(); // not before hangup
    s.clock.advance(100_000);
    void d.call.hangup();
    await run(s);
    const r = s.ended[0]!;
    const seconds = (r.timestamps.hangup! - r.timestamps.answered!) / 1000;
    expect(seconds).toBeGreaterThan(100);
    expect(seconds).toBeLessThan(102);
    // 102 s at 0.0120/min = 0.0204, plus 0.0100.
    expect(charging.chargeOf(r)).toEqual({ amount: 30_400n, currency: 'EUR', billedSeconds: 102, ratePrefix: '+49' });
    expect(views[0]).toMatchObject({ charge: { amount: '0.0304', currency: 'EUR', billed_seconds: 102, rate_prefix: '+49' } });
  });

  it('an unanswered call costs 0; a number without a rate gets no charge', async () => {
    const s = setup({ authenticate: () => ({ ok: true, tags: { domain: 'pbx.example.test' } }), route: () => [{ uri: `sip:+4930@${GATEWAY}:5060` }] }, { answer: false });
    createCharging(s.b2bua, domains);
    const rated = dial(s, 'sip:+4930123@pbx.example.test');
    const unrated = dial(s, 'sip:+33123@pbx.example.test');
    await run(s);
    s.clock.advance(10_000);
    void rated.call.cancel();
    void unrated.call.cancel();
    await run(s);
    const byTo = new Map(s.ended.map((r) => [r.to, viewOf(r)]));
    expect(byTo.get('sip:+4930123@pbx.example.test')?.charge).toEqual({ amount: '0.0000', currency: 'EUR', billed_seconds: 0, rate_prefix: '+49' });
    expect(byTo.get('sip:+33123@pbx.example.test')?.charge).toBeNull();
  });
});
