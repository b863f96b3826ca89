import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { trunk } from './provisioning-harness.js';

// The provisioning endpoints' JSON bodies, fuzzed over real HTTP: every answer is a 2xx or a
// 4xx with a JSON error, never a 500, and the trunk keeps answering.

const ENDPOINTS: Array<[string, string]> = [
  ['POST', '/v1.0/trunks'],
  ['PUT', '/v1.0/trunks/acme/auth'],
  ['PUT', '/v1.0/trunks/acme/routes'],
  ['POST', '/v1.0/trunks/acme/extensions'],
  ['PUT', '/v1.0/trunks/acme/extensions/1000'],
];

/** Bodies near the valid ones (each field valid more often than not, so validation is passed and the store changed), and anything JSON. */
const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('', '__proto__', 'constructor', 'a'.repeat(300)));
const or = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: junk, weight: 1 });
// Few names, so that duplicates (409) happen too.
const label = fc.oneof(fc.constantFrom('acme', 'ACME', 'b', 'c-1', 'demo'), fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9-]{0,8}[a-zA-Z0-9]$/));
const cidr = fc.constantFrom('127.0.0.1', '10.0.0.0/8', '2001:db8::/32', '::ffff:192.0.2.0/120', '0.0.0.0/0', '10.0.0.1/8', '::1/129');
const allow = or(fc.array(or(cidr), { maxLength: 3 }));
const auth = fc.record({ mode: or(fc.constantFrom('digest', 'ip', 'ip+digest', 'ip-or-digest', 'IP')), allow }, { requiredKeys: [] });
const target = or(fc.constantFrom('sip:127.0.0.1:5080', 'sip:gw@127.0.0.1', 'sips:[::1]:5061', 'tel:+1', 'http://x'));
const ha1 = fc.dictionary(fc.constantFrom('MD5', 'SHA-256', 'SHA-512-256', 'x'), or(fc.stringMatching(/^[0-9a-f]{32}$|^[0-9a-f]{64}$/)), { maxKeys: 3 });
const trunkBody = fc.record({ name: or(label), auth: or(auth) }, { requiredKeys: ['name'] });
const routesBody = fc.array(
  fc.record({ prefix: or(fc.stringMatching(/^\+?[0-9]{0,4}$/)), targets: or(fc.array(target, { maxLength: 3 })), rates: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: ['prefix', 'targets'] }),
  { maxLength: 3 },
);
const extensionBody = fc.record(
  { username: or(fc.oneof(fc.constantFrom('1000', '1001'), fc.stringMatching(/^[0-9]{1,5}$/))), password: or(fc.string({ minLength: 1, maxLength: 20 })), ha1: or(ha1), algorithms: or(fc.array(fc.constantFrom('MD5', 'SHA-256', 'SHA-512-256-sess', 'MD4'), { maxLength: 3 })) },
  { requiredKeys: [] },
);
const anything = fc.oneof(
  fc.oneof(trunkBody, auth, routesBody, extensionBody).map((v) => JSON.stringify(v)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }), // mostly not JSON
);
const json = (a: fc.Arbitrary<unknown>) => a.map((v) => JSON.stringify(v));
/** An endpoint with a body shaped for it, or with any body at all. */
const request = fc.oneof(
  { arbitrary: fc.tuple(fc.constant(ENDPOINTS[0]!), json(trunkBody)), weight: 2 },
  { arbitrary: fc.tuple(fc.constant(ENDPOINTS[1]!), json(auth)), weight: 2 },
  { arbitrary: fc.tuple(fc.constant(ENDPOINTS[2]!), json(routesBody)), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom(ENDPOINTS[3]!, ENDPOINTS[4]!), json(extensionBody)), weight: 3 },
  { arbitrary: fc.tuple(fc.constantFrom(...ENDPOINTS), anything), weight: 3 },
);

describe('provisioning API fuzz', () => {
  it('random JSON bodies on every writing endpoint: never a 500, always a JSON answer, and the trunk still answers', async () => {
    const t = await trunk();
    expect((await t.api('POST', '/v1.0/trunks', { name: 'acme' })).status).toBe(201);
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(request, async ([[method, path], raw]) => {
        const r = await t.api(method, path, undefined, { raw });
        seen.add(r.status);
        expect(r.status, `${method} ${path} ${raw}`).toBeLessThan(500);
        if (r.status >= 400) expect(r.body?.error?.code, raw).toEqual(expect.any(String));
        if (r.status === 400 && r.body.error.code === 'invalid') expect(r.body.error.field, raw).toEqual(expect.any(String));
        // The fuzz never deletes acme, so its own path stays served.
        if (path === '/v1.0/trunks' && r.status === 201) expect(r.body.domain).toMatch(/^[a-z0-9-]+\.trunk\.sipkit\.test$/);
      }),
      { numRuns: 400 },
    );
    expect([...seen]).toEqual(expect.arrayContaining([200, 201, 400, 409]));
    expect((await t.api('GET', '/v1.0/trunks/acme')).status).toBe(200);
    expect((await t.api('GET', '/v1.0/calls')).status).toBe(200);
  });
});
