import { parseUri, type SipUri } from '../dist/parser/index.js';
import { SipResolver } from '../dist/resolver/index.js';
import { TransactionLayer, targetFromUri } from '../dist/transaction/index.js';
import { FakeClock, TestNetwork } from '../dist/transport/index.js';
import { measureRounds, median, pairedRatio, table } from './harness.js';

/**
 * The resolver's IP-literal fast path (`literalTarget`, synchronous, no DNS) against what a
 * request to an IP-literal URI costs today: `targetFromUri` (transaction layer), and a bare
 * object literal as the floor. URIs are parsed beforehand; only the target is measured.
 */
export function benchResolver(): string {
  const uris = ['sip:bob@192.0.2.7:5060', 'sip:+15551234567@198.51.100.7;transport=tcp', 'sip:alice@[2001:db8::1]:5070', 'sip:carol@203.0.113.9;user=phone'].map((s) => parseUri(s) as SipUri);
  const n = uris.length;
  const resolver = new SipResolver({ lookup: { naptr: fail, srv: fail, a: fail, aaaa: fail } });
  const FLOOR = 'floor: { address, port, transport } literal';
  const TODAY = 'targetFromUri (the request path before #17)';
  const FAST = 'SipResolver.literalTarget';
  const PATH = 'TransactionLayer.literalTarget (request path now)';
  // What a request to an IP-literal URI goes through now: the resolver's literal test, then the layer's Target.
  const clock = new FakeClock(1);
  const layer = new TransactionLayer({ transports: [new TestNetwork({ clock, record: false }).transport('10.0.0.1')], clock, resolver, user: { onRequest: () => undefined } });
  const rounds = measureRounds(
    [
      { name: FLOOR, run: (i) => ({ address: uris[i % n]!.host, port: uris[i % n]!.port ?? 5060, transport: 'udp' }) },
      { name: TODAY, run: (i) => targetFromUri(uris[i % n]!) },
      { name: FAST, run: (i) => resolver.literalTarget(uris[i % n]!) },
      { name: PATH, run: (i) => layer.literalTarget(uris[i % n]!) },
    ],
    { rounds: 7, roundMs: 200 },
  );
  const R = (name: string) => rounds.get(name)!;
  const rows: Array<[string, number, string]> = [...rounds].map(([name, r]) => [name, median(r), `${pairedRatio(r, R(TODAY)).toFixed(2)}x targetFromUri, ${pairedRatio(r, R(FLOOR)).toFixed(2)}x floor`]);
  void layer.close();
  return table('resolver: IP-literal URI → target (4 URIs; rates: median of 7 rounds; ratios: median of per-round ratios)', rows);
}

function fail(): Promise<never> {
  return Promise.reject(new Error('an IP literal must not reach DNS'));
}
