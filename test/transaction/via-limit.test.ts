import { describe, expect, it } from 'vitest';
import { MAX_VIAS, parseMessage, validate, type SipResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';
import { RecordingUser } from '../support/tx-harness.js';

/** A layer on 10.0.0.2 and a raw sender on 192.0.2.5:5060 that records what comes back. */
function rawPeer() {
  const clock = new FakeClock();
  const net = new TestNetwork({ clock });
  const user = new RecordingUser();
  user.answer = () => 200;
  const layer = new TransactionLayer({ transports: [net.transport('10.0.0.2', 5060)], user, clock });
  const peer = net.transport('192.0.2.5', 5060);
  const got: SipResponse[] = [];
  peer.setReceiver({ onMessage: (b) => got.push(parseMessage(b) as SipResponse) });
  const inject = (text: string) => {
    void peer.send(Buffer.from(text), { address: '10.0.0.2', port: 5060 });
    clock.advance(5);
  };
  return { layer, user, got, inject };
}

/** The Vias of earlier hops, below the sender's own. */
function hops(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `SIP/2.0/UDP 198.51.100.${i % 250}:5060;branch=z9hG4bK-hop-${i}-${'h'.repeat(16)}`);
}

/** An OPTIONS whose Vias are `count` values, written `perLine` to a line. */
function options(count: number, perLine = 1): string {
  // A branch of its own: requests alike but for their Vias are different transactions.
  const vias = [`SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK-top-${count}-${perLine};rport`, ...hops(count - 1)];
  const lines: string[] = [];
  for (let i = 0; i < vias.length; i += perLine) lines.push('Via: ' + vias.slice(i, i + perLine).join(', '));
  return [
    'OPTIONS sip:10.0.0.2 SIP/2.0',
    ...lines,
    'Max-Forwards: 70',
    'From: <sip:a@192.0.2.5>;tag=f1',
    'To: <sip:b@10.0.0.2>',
    `Call-ID: vias-${count}-${perLine}`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function expectRefusedWithTopViaOnly(got: SipResponse[]) {
  expect(got.map((r) => `${r.status} ${r.reason}`)).toEqual(['400 Too Many Via Headers']);
  const vias = got[0]!.via;
  expect(vias).toHaveLength(1);
  expect(vias[0]!.branch).toMatch(/^z9hG4bK-top-300-/);
  // The top Via as stamped on arrival (RFC 3581): the sender learns where it was seen from.
  expect(vias[0]!.rport).toBe(5060);
  expect(got[0]!.callId).toMatch(/^vias-300-/);
}

describe('requests with too many Vias are answered, not dropped', () => {
  it(`300 Via lines (beyond the parser's header-line limit) → 400 Too Many Via Headers, with the top Via only`, () => {
    const p = rawPeer();
    p.inject(options(300));
    expectRefusedWithTopViaOnly(p.got);
    expect(p.user.requests).toHaveLength(0);
  });

  it('300 Via values in 10 lines (parses, refused by validation) → the same 400', () => {
    const p = rawPeer();
    p.inject(options(300, 30));
    expectRefusedWithTopViaOnly(p.got);
    expect(p.user.requests).toHaveLength(0);
  });

  it('300 Via values in one line longer than the line limit → 400 with the top Via', () => {
    const p = rawPeer();
    const text = options(300, 300);
    expect(text.length).toBeGreaterThan(16_384);
    p.inject(text);
    expect(p.got.map((r) => r.status)).toEqual([400]);
    expect(p.got[0]!.via.map((v) => v.branch)).toEqual(['z9hG4bK-top-300-300']);
    expect(p.user.requests).toHaveLength(0);
  });

  it(`${MAX_VIAS} Vias (the UAC's and 70 proxies') are fine, ${MAX_VIAS + 1} are not`, () => {
    const p = rawPeer();
    p.inject(options(70));
    p.inject(options(MAX_VIAS));
    p.inject(options(MAX_VIAS + 1));
    expect(p.got.map((r) => r.status)).toEqual([200, 200, 400]);
    // A request that passes keeps all its Vias in the response (§8.2.6.2).
    expect(p.got[0]!.via).toHaveLength(70);
    expect(p.got[1]!.via).toHaveLength(MAX_VIAS);
    expect(p.got[2]!.via).toHaveLength(1);
    expect(p.user.requests).toHaveLength(2);
  });
});

describe('validate: the Via limit and the B2BUA role', () => {
  const req = (extra: string, vias = 1) => parseMessage(options(vias).replace('Content-Length: 0', extra + 'Content-Length: 0'));

  it('maxVias is an option', () => {
    expect(validate(req('', 10), { maxVias: 9 })).toMatchObject({ status: 400, code: 'TOO_MANY_VIAS' });
    expect(validate(req('', 10), { maxVias: 10 })).toBeNull();
  });

  it('role b2bua checks Require (not Proxy-Require) and answers Max-Forwards 0 with 483', () => {
    expect(validate(req('Require: foo\r\n'), { role: 'b2bua', supported: ['100rel'] })).toMatchObject({
      status: 420,
      headers: [['Unsupported', 'foo']],
    });
    expect(validate(req('Proxy-Require: foo\r\n'), { role: 'b2bua' })).toBeNull();
    expect(validate(req('Require: foo\r\n'), { role: 'proxy' })).toBeNull();
    const hop0 = parseMessage(options(1).replace('Max-Forwards: 70', 'Max-Forwards: 0'));
    expect(validate(hop0, { role: 'b2bua' })).toMatchObject({ status: 483 });
    expect(validate(hop0, { role: 'uas' })).toBeNull();
  });

  it('option tags compare without regard to case (§7.3.1)', () => {
    expect(validate(req('Require: 100REL\r\n'), { supported: ['100rel'] })).toBeNull();
  });
});
