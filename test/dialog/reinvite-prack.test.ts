import { describe, expect, it } from 'vitest';
import { BOB, drive, SDP_A, SDP_B, settle, uaPair, type UaPair } from '../support/ua-harness.js';

const T1 = 500;
const SDP_A2 = SDP_A.replace('4000', '4002');
const SDP_B2 = SDP_B.replace('5000', '5002');

async function established(p: UaPair) {
  const call = p.alice.invite(BOB, { body: SDP_A, onUpdate: () => ({ body: SDP_A2 }) });
  settle(p);
  const inc = p.incoming[0]!;
  await inc.answer({ body: SDP_B });
  settle(p);
  return { call, inc };
}

describe('re-INVITE and UPDATE', () => {
  it('re-INVITE from the caller: the offer reaches the callee, the answer comes back, ACKed', async () => {
    const p = uaPair({ bob: { incomingCallHandlers: { onUpdate: (req) => ({ body: req.bodyText.includes('4002') ? SDP_B2 : SDP_B }) } } });
    const { call, inc } = await established(p);
    const updated: string[] = [];
    inc.on('updated', (req) => updated.push(req.method));
    const res = await drive(p, call.reinvite({ body: SDP_A2 }));
    settle(p);
    expect(res.status).toBe(200);
    expect(res.bodyText).toBe(SDP_B2);
    expect(Buffer.from(call.remoteSdp!).toString()).toBe(SDP_B2);
    expect(Buffer.from(inc.remoteSdp!).toString()).toBe(SDP_A2);
    expect(p.net.packets('ACK')).toHaveLength(2);
    expect(updated).toEqual(['INVITE']);
  });

  it('re-INVITE from the callee, answered by the caller\'s policy', async () => {
    const p = uaPair();
    const { call, inc } = await established(p);
    expect((await drive(p, inc.reinvite({ body: SDP_B2 }))).bodyText).toBe(SDP_A2);
    expect(Buffer.from(call.remoteSdp!).toString()).toBe(SDP_B2);
  });

  it('glare: both re-INVITE at once, both get 491, both retry after the §14.1 back-off and succeed', async () => {
    const p = uaPair();
    const { call, inc } = await established(p);
    const a = call.reinvite({ body: SDP_A2 });
    const b = inc.reinvite({ body: SDP_B2 });
    settle(p, 50);
    expect(p.net.packets('SIP/2.0 491')).toHaveLength(2);
    const [ra, rb] = await drive(p, Promise.all([a, b]));
    expect(ra.status).toBe(200);
    expect(rb.status).toBe(200);
  });

  it('late-offer re-INVITE: no SDP in the INVITE, the offer in the 200, our answer in the ACK', async () => {
    const p = uaPair({ bob: { incomingCallHandlers: { onUpdate: () => ({ body: SDP_B2 }) } } });
    const call = p.alice.invite(BOB, { body: SDP_A, onLateOffer: () => SDP_A2 });
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    settle(p);
    const acks: string[] = [];
    inc.on('ack', (a) => acks.push(a.bodyText));
    const res = await drive(p, call.reinvite());
    settle(p);
    expect(res.bodyText).toBe(SDP_B2);
    expect(acks).toEqual([SDP_A2]);
    expect(Buffer.from(inc.remoteSdp!).toString()).toBe(SDP_A2);
  });

  it('UPDATE in an early dialog (RFC 3311), before the answer', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    inc.provisional(183, { body: SDP_B });
    settle(p);
    const r = call.update({ body: SDP_A2 });
    settle(p);
    expect((await r).status).toBe(200);
    expect(Buffer.from(inc.remoteSdp!).toString()).toBe(SDP_A2);
    expect(call.state).toBe('early');
  });

  it('UPDATE in a confirmed dialog', async () => {
    const p = uaPair();
    const { call } = await established(p);
    const r = call.update({ body: SDP_A2 });
    settle(p);
    expect((await r).status).toBe(200);
  });
});

describe('reliable provisionals (RFC 3262)', () => {
  it('183 with SDP sent reliably is PRACKed; the 200 waits for the PRACK', async () => {
    const p = uaPair();
    const early: string[] = [];
    p.alice.invite(BOB, { body: SDP_A, on: { earlyMedia: (r) => early.push(r.get('rseq')!) } });
    settle(p);
    const inc = p.incoming[0]!;
    expect(inc.peerSupports100rel).toBe(true);
    const rel = inc.provisional(183, { body: SDP_B, reliable: true })!;
    expect(rel).toBeDefined();
    const answered = inc.answer({ body: SDP_B });
    // The 200 is held until the PRACK arrives.
    expect(p.net.packets('SIP/2.0 200')).toHaveLength(0);
    settle(p);
    await rel.acked;
    await answered;
    settle(p);
    expect(early).toEqual([String(rel.rseq)]);
    expect(p.net.packets('PRACK')).toHaveLength(1);
    const oks = p.net.packets('SIP/2.0 200').map((x) => Buffer.from(x.bytes).toString());
    expect(oks.some((o) => o.includes('CSeq: 2 PRACK'))).toBe(true);
    expect(oks.some((o) => o.includes('CSeq: 1 INVITE'))).toBe(true);
  });

  it('a lost reliable 183 is retransmitted; its retransmissions are PRACKed once and reported once', async () => {
    const p = uaPair();
    let n = 0;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('SIP/2.0 183') && ++n === 1 ? 'drop' : undefined);
    const early: number[] = [];
    p.alice.invite(BOB, { body: SDP_A, on: { earlyMedia: (r) => early.push(r.status) } });
    settle(p);
    const rel = p.incoming[0]!.provisional(183, { body: SDP_B, reliable: true })!;
    p.clock.advance(T1 + 50);
    await rel.acked;
    expect(p.net.packets('SIP/2.0 183')).toHaveLength(2);
    expect(p.net.packets('PRACK')).toHaveLength(1);
    expect(early).toEqual([183]);
  });

  it('a lost PRACK is retransmitted by its transaction until the UAS has it', async () => {
    const p = uaPair();
    let n = 0;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('PRACK') && ++n === 1 ? 'drop' : undefined);
    const early: number[] = [];
    p.alice.invite(BOB, { body: SDP_A, on: { earlyMedia: (r) => early.push(r.status) } });
    settle(p);
    const rel = p.incoming[0]!.provisional(183, { body: SDP_B, reliable: true })!;
    p.clock.advance(2 * T1);
    await rel.acked;
    expect(p.net.packets('PRACK').length).toBeGreaterThanOrEqual(2);
    expect(early).toEqual([183]);
  });

  it('without a PRACK for 64·T1 the INVITE is rejected with a 5xx (§3)', async () => {
    const p = uaPair();
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('PRACK') ? 'drop' : undefined);
    const failures: number[] = [];
    p.alice.invite(BOB, { body: SDP_A, on: { failure: (r) => failures.push(r.status) } });
    settle(p);
    const rel = p.incoming[0]!.provisional(183, { body: SDP_B, reliable: true })!;
    p.clock.advance(64 * T1 + 100);
    await expect(rel.acked).rejects.toMatchObject({ code: 'PRACK_TIMEOUT' });
    expect(failures).toEqual([504]);
  });

  it('a caller without 100rel gets an ordinary provisional', () => {
    const p = uaPair();
    p.alice.invite(BOB, { body: SDP_A, reliableProvisionals: 'none' });
    settle(p);
    expect(p.incoming[0]!.provisional(183, { body: SDP_B, reliable: true })).toBeUndefined();
    settle(p);
    expect(Buffer.from(p.net.packets('SIP/2.0 183')[0]!.bytes).toString()).not.toContain('RSeq');
  });
});
