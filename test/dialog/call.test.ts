import { describe, expect, it } from 'vitest';
import type { HangupCause } from '../../src/dialog/index.js';
import { createResponse } from '../../src/parser/index.js';
import { BOB, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

const T1 = 500;

describe('calls between two user agents (test network)', () => {
  it('set-up and tear-down, caller hangs up', async () => {
    const p = uaPair();
    const events: string[] = [];
    const call = p.alice.invite(BOB, { body: SDP_A, from: '<sip:alice@10.0.0.1>', on: { provisional: (r) => events.push('prov ' + r.status), answer: () => events.push('answer') } });
    settle(p);
    const inc = p.incoming[0]!;
    expect(inc.invite.bodyText).toBe(SDP_A);
    inc.provisional(180);
    settle(p);
    await inc.answer({ body: SDP_B });
    settle(p);
    expect(events).toEqual(['prov 180', 'answer']);
    expect(call.state).toBe('answered');
    expect(inc.state).toBe('answered');
    expect(call.remoteSdp && Buffer.from(call.remoteSdp).toString()).toBe(SDP_B);
    expect(p.net.packets('ACK')).toHaveLength(1);
    // Dialog identity agrees on both sides.
    expect(call.dialog!.localTag).toBe(inc.dialog!.remoteTag);
    expect(call.dialog!.remoteTag).toBe(inc.dialog!.localTag);
    const hung: HangupCause[] = [];
    inc.on('hangup', (c) => hung.push(c));
    const h = call.hangup({ reason: { protocol: 'Q.850', cause: 16, text: 'Normal call clearing' } });
    settle(p);
    await h;
    expect(hung).toEqual([expect.objectContaining({ by: 'remote', method: 'BYE', reason: expect.objectContaining({ protocol: 'Q.850', cause: 16 }) })]);
    expect(call.cause).toMatchObject({ by: 'local', method: 'BYE' });
    expect(p.net.packets('SIP/2.0 200').length).toBeGreaterThanOrEqual(2);
    p.clock.advance(64 * T1 + 40_000);
    expect(p.alice.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    expect(p.bob.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
  });

  it('callee hangs up with a Reason', async () => {
    const p = uaPair();
    const ended: HangupCause[] = [];
    p.alice.invite(BOB, { body: SDP_A, on: { ended: (c) => ended.push(c) } });
    settle(p);
    await p.incoming[0]!.answer({ body: SDP_B });
    settle(p);
    const h = p.incoming[0]!.hangup({ reason: { protocol: 'Q.850', cause: 16 } });
    settle(p);
    await h;
    expect(ended).toEqual([expect.objectContaining({ by: 'remote', method: 'BYE', reason: expect.objectContaining({ cause: 16 }) })]);
  });

  it('rejection reaches the caller with status, phrase and Reason', () => {
    const p = uaPair();
    const failures: Array<[number, HangupCause]> = [];
    p.alice.invite(BOB, { on: { failure: (r, c) => failures.push([r.status, c]) } });
    settle(p);
    void p.incoming[0]!.reject(486, { reason: { protocol: 'Q.850', cause: 17, text: 'User busy' } });
    settle(p);
    expect(failures).toHaveLength(1);
    expect(failures[0]![0]).toBe(486);
    expect(failures[0]![1]).toMatchObject({ by: 'remote', status: 486, phrase: 'Busy Here', reason: { protocol: 'Q.850', cause: 17, text: 'User busy' } });
  });

  it('a call nobody answers fails with a synthesized 408 from the system', () => {
    const p = uaPair();
    const failures: HangupCause[] = [];
    p.alice.invite('sip:nobody@10.0.0.99', { on: { failure: (_r, c) => failures.push(c) } });
    p.clock.advance(64 * T1 + 1);
    expect(failures).toEqual([expect.objectContaining({ by: 'system', status: 408 })]);
  });

  it('ACK lost: the UAS retransmits its 2xx and the UAC re-ACKs each one', async () => {
    const p = uaPair();
    let acks = 0;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('ACK') && ++acks <= 2 ? 'drop' : undefined);
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    const got: string[] = [];
    inc.on('ack', () => got.push('ack'));
    await inc.answer({ body: SDP_B });
    p.clock.advance(10 * T1);
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(3); // first + 2 retransmissions (T1, 2T1)
    expect(p.net.packets('ACK')).toHaveLength(3);
    expect(got).toEqual(['ack']);
    expect(call.state).toBe('answered');
    p.clock.advance(64 * T1);
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(3);
  });

  it('no ACK at all: the UAS gives up after 64·T1 and sends BYE (§13.3.1.4)', async () => {
    const p = uaPair();
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('ACK') ? 'drop' : undefined);
    p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    p.clock.advance(64 * T1 + 100);
    expect(p.net.packets('BYE')).toHaveLength(1);
    expect(inc.cause).toMatchObject({ by: 'system', method: 'BYE' });
  });

  it('requests for unknown or ended dialogs get 481', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    await p.incoming[0]!.answer({ body: SDP_B });
    settle(p);
    const d = call.dialog!;
    const h = call.hangup();
    settle(p);
    await h;
    // A BYE again in the same (now ended) dialog.
    const late = d.createRequest('INFO');
    const res = p.alice.sendInDialog(d, late);
    settle(p);
    expect((await res).status).toBe(481);
    const bye = p.alice.request('BYE', BOB);
    settle(p);
    expect((await bye).status).toBe(481);
  });

  it('late offer: INVITE without SDP, offer in the 2xx, answer in the ACK', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { onLateOffer: () => SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    expect(inc.invite.body.length).toBe(0);
    const acks: string[] = [];
    inc.on('ack', (a) => acks.push(a.bodyText));
    await inc.answer({ body: SDP_B });
    settle(p);
    expect(acks).toEqual([SDP_A]);
    expect(Buffer.from(inc.remoteSdp!).toString()).toBe(SDP_A);
    expect(call.state).toBe('answered');
  });

  it('in-dialog INFO both ways: a listener answers, without one it is 200', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    settle(p);
    const seen: string[] = [];
    inc.on('request', (r, tx) => {
      seen.push(r.method + ' ' + r.bodyText);
      tx.respond(createResponse(r, 200));
    });
    const r1 = call.request('INFO', { body: 'Signal=5\r\n', contentType: 'application/dtmf-relay' });
    settle(p);
    expect((await r1).status).toBe(200);
    expect(seen).toEqual(['INFO Signal=5\r\n']);
    const r2 = inc.request('INFO', { body: 'x', contentType: 'text/plain' });
    settle(p);
    expect((await r2).status).toBe(200);
  });
});
