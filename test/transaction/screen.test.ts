import { describe, expect, it } from 'vitest';
import { createRequest, createResponse, type SipRequest } from '../../src/parser/index.js';
import { pair, request, send, T1 } from '../support/tx-harness.js';

// TransactionUser.screen: a new request outside a dialog answered before any transaction exists.

function screened(screen: (req: SipRequest) => number | undefined) {
  const p = pair();
  const seen: string[] = [];
  (p.bUser as { screen?: unknown }).screen = (req: SipRequest) => {
    seen.push(req.method);
    const status = screen(req);
    return status === undefined ? undefined : createResponse(req, status, { headers: { 'Proxy-Authenticate': 'Digest realm="x", nonce="n"' } });
  };
  p.bUser.answer = () => 200;
  return { p, seen };
}

describe('TransactionUser.screen', () => {
  it('answers statelessly: one final per request sent, no transaction, no timer, the TU never sees it', () => {
    const { p } = screened((req) => (req.method === 'INVITE' ? 407 : undefined));
    const { rec } = send(p, 'INVITE');
    p.clock.advance(10);
    expect(rec.statuses).toEqual([407]);
    expect(p.b.stats).toMatchObject({ transactions: 0, timers: 0, statelessResponses: 1, statelessAcksAbsorbed: 1, statelessByStatus: { 407: 1 } });
    expect(p.bUser.requests).toHaveLength(0);
    // The client's ACK (same branch, the 407's To tag) matched nothing and reached no TU.
    expect(p.bUser.acks).toHaveLength(0);
    p.clock.advance(64 * T1 + 1000);
    expect(p.net.packets(/^SIP\/2\.0 407/)).toHaveLength(1);
    expect(p.b.stats.statelessResponses).toBe(1);
  });

  it('a retransmitted request is answered again with the same To tag; the answer carries received/rport', () => {
    const { p } = screened(() => 407);
    let first = true;
    p.net.filter = (pk) => (pk.firstLine.startsWith('SIP/2.0 407') && first ? ((first = false), 'drop') : undefined);
    const { rec } = send(p, 'INVITE');
    p.clock.advance(T1 + 10);
    expect(rec.statuses).toEqual([407]);
    const answers = p.net.packets(/^SIP\/2\.0 407/).map((pk) => Buffer.from(pk.bytes).toString('latin1'));
    expect(answers).toHaveLength(2);
    const tag = (s: string) => /\r\nTo: [^\r]*;tag=([^;\r]+)/i.exec(s)?.[1];
    expect(tag(answers[0]!)).toBeDefined();
    expect(tag(answers[1]!)).toBe(tag(answers[0]!));
    expect(answers[0]).toMatch(/\r\nVia: [^\r]*;received=10\.0\.0\.1/i);
    expect(p.b.stats.transactions).toBe(0);
  });

  it("the stateless To tag is the layer's prefix and FNV-1a of Call-ID, NUL, From tag, NUL, branch", () => {
    const { p } = screened(() => 407);
    const { req } = send(p, 'INVITE');
    p.clock.advance(10);
    const answer = Buffer.from(p.net.packets(/^SIP\/2\.0 407/)[0]!.bytes).toString('latin1');
    const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/i.exec(answer)![1]!;
    let h = 0x811c9dc5;
    const s = req.callId + '\0' + (req.from.tag ?? '') + '\0' + req.topVia!.branch!;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    expect(tag).toMatch(/^[0-9a-f]{8}\./);
    expect(tag.slice(9)).toBe((h >>> 0).toString(16));
  });

  it('an ACK whose To tag is not a stateless one still goes to the TU (the ACK for a 2xx)', () => {
    const { p } = screened(() => undefined);
    const { req: invite, rec } = send(p, 'INVITE');
    p.clock.advance(10);
    const ok = rec.finals[0]!;
    expect(ok.status).toBe(200);
    const ack = createRequest({ method: 'ACK', uri: invite.uri, from: invite.get('from')!, to: ok.get('to')!, callId: invite.callId, cseq: 1 });
    p.a.sendStateless(ack.prepend('Via', p.a.createVia(p.aT)), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.bUser.acks).toHaveLength(1);
    expect(p.b.stats.statelessAcksAbsorbed).toBe(0);
  });

  it('is asked only about new requests outside a dialog: not CANCEL, not in-dialog requests, not retransmissions of a transaction', () => {
    const { p, seen } = screened(() => undefined);
    send(p, 'OPTIONS');
    p.clock.advance(10);
    const bye = request('BYE');
    bye.set('To', bye.get('to') + ';tag=abc');
    p.a.sendRequest(bye, { address: '10.0.0.2', port: 5060 }, { onResponse: () => undefined });
    p.clock.advance(10);
    // OPTIONS was asked about (and went on to the TU); the BYE with a To tag was not.
    expect(seen).toEqual(['OPTIONS']);
    expect(p.bUser.requests.map((r) => r.req.method)).toEqual(['OPTIONS', 'BYE']);
  });
});
