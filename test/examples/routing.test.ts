import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMessage, type SipRequest } from 'sipkit/parser';
import { createRouter, routeFor, type Route } from '../../examples/trunk-server/routing.js';
import { dial, GATEWAY, run, setup } from './parts-harness.js';

/** The reference: of the routes whose prefix starts the number, the longest prefix (the first of equals). */
function reference(number: string, routes: readonly Route[]): readonly string[] {
  const matching = routes.filter((r) => number.slice(0, r.prefix.length) === r.prefix);
  const longest = Math.max(-1, ...matching.map((r) => r.prefix.length));
  return matching.find((r) => r.prefix.length === longest)?.targets ?? [];
}

function invite(uri: string): SipRequest {
  const text = `INVITE ${uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <${uri}>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
  return parseMessage(Buffer.from(text)) as SipRequest;
}

describe('routing: longest number prefix', () => {
  it('routeFor agrees with the reference on random tables and numbers', () => {
    const digits = fc.string({ unit: fc.constantFrom('1', '2', '3', '+'), maxLength: 6 });
    const route = fc.record({ prefix: digits, targets: fc.array(fc.integer({ min: 1, max: 99 }).map((n) => `sip:10.0.0.${n}`), { minLength: 1, maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(route, { maxLength: 8 }), digits, (routes, number) => {
        expect(routeFor(number, { routes })).toEqual(reference(number, routes));
      }),
      { numRuns: 500, seed: 15 },
    );
  });

  it('the router picks the domain by the Request-URI host and gives a target without a user the dialled number', () => {
    const router = createRouter({
      'pbx.example.test': {
        routes: [
          { prefix: '', targets: ['sip:10.0.0.2:5060'] },
          { prefix: '+49', targets: ['sip:de@10.0.0.3', 'sip:10.0.0.4;transport=tcp'] },
        ],
      },
    });
    expect(router.route(invite('sip:+4930123@PBX.Example.test'))).toEqual([{ uri: 'sip:de@10.0.0.3' }, { uri: 'sip:+4930123@10.0.0.4;transport=tcp' }]);
    expect(router.route(invite('sip:+1555@pbx.example.test'))).toEqual([{ uri: 'sip:+1555@10.0.0.2:5060' }]);
    // A domain it does not know (nor one of Object.prototype's names) is not routed.
    expect(router.route(invite('sip:+4930123@other.example.test'))).toEqual({ reject: 404 });
    expect(router.route(invite('sip:+4930123@constructor'))).toEqual({ reject: 404 });
    expect(router.route(invite('tel:+4930123'))).toEqual({ reject: 404 });
  });

  it('routes calls of a plain B2bua (no authentication), and a number with no route gets 404', async () => {
    const router = createRouter({ 'pbx.example.test': { routes: [{ prefix: '+49', targets: [`sip:${GATEWAY}:5060`] }] } });
    const s = setup({ route: router.route });
    const routed = dial(s, 'sip:+4930123@pbx.example.test');
    const unrouted = dial(s, 'sip:+1555@pbx.example.test');
    await run(s);
    expect(routed.answered).toBe(true);
    expect(s.atGateway.map((c) => c.invite.uri)).toEqual(['sip:+4930123@10.0.0.2:5060']);
    expect(unrouted.failures).toEqual([404]);
  });
});
