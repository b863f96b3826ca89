import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { placeCall, run, SDP_CALLER, SDP_DEST, trunk, type Trunk } from '../support/b2bua-harness.js';


async function answered(t: Trunk, options: Parameters<typeof placeCall>[1] = {}) {
  const call = placeCall(t, options);
  await run(t);
  const b = t.atDest[0]!;
  await b.answer({ body: SDP_DEST });
  await run(t);
  return { call, b };
}

describe('early media with reliable provisionals', () => {
  it('B requires 100rel: the B leg PRACKs; A supports it: the 183 to A is reliable and the 200 waits for A\'s PRACK', async () => {
    const t = trunk();
    const order: string[] = [];
    const call = placeCall(t, { reliableProvisionals: 'supported', on: { earlyMedia: () => order.push('183'), answer: () => order.push('200') } });
    await run(t);
    const b = t.atDest[0]!;
    const rel = b.provisional(183, { body: SDP_DEST, reliable: true })!;
    expect(rel).toBeDefined();
    await run(t);
    await rel.acked; // the trunk PRACKed B's 183
    expect(t.seen('B')).toContain('<- PRACK');
    expect(t.seen('A')).toEqual(expect.arrayContaining(['<- 183 Session Progress', '-> PRACK', '<- 200 OK']));
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(order).toEqual(['183', '200']);
    expect(call.state).toBe('answered');
    const aLeg = t.seen('A');
    expect(aLeg.indexOf('-> PRACK')).toBeLessThan(aLeg.lastIndexOf('<- 200 OK'));
  });
});

describe('media hooks', () => {
  it('an async media hook slower than B\'s 200 cannot reorder: 183 first, and the 200 carries its SDP', async () => {
    let n = 0;
    const t = trunk({
      b2bua: {
        media: {
          onAnswer: (sdp, ctx) =>
            new Promise((resolve) => {
              const delay = ctx.phase === 'early' ? 400 : 1; // the early answer's rewrite is slow
              t.clock.setTimer(delay, () => resolve(Buffer.from(Buffer.from(sdp).toString().replaceAll('10.0.0.2', '203.0.113.5') + `a=x-rewritten:${++n}\r\n`)));
            }),
        },
      },
    });
    const seen: Array<[number, string]> = [];
    placeCall(t, { on: { provisional: (r) => r.status > 100 && seen.push([r.status, r.bodyText]), answer: (r) => seen.push([r.status, r.bodyText]) } });
    await run(t);
    const b = t.atDest[0]!;
    b.provisional(183, { body: SDP_DEST });
    // B answers 50 ms later — long before the early rewrite finishes.
    await run(t, 50);
    await b.answer(); // a 200 without SDP: the answer already went in the (unreliable) 183
    await run(t, 1000);
    expect(seen.map((s) => s[0])).toEqual([183, 200]);
    expect(seen[0]![1]).toContain('c=IN IP4 203.0.113.5');
    // The 200 to A repeats the SDP A saw in the 183: a 200 is never sent without the SDP it must carry.
    expect(seen[1]![1]).toBe(seen[0]![1]);
  });

  it('the offer is rewritten A→B and the answer B→A', async () => {
    const t = trunk({
      b2bua: {
        media: {
          onOffer: (sdp) => Buffer.from(sdp).toString().replaceAll('10.0.0.1', '198.51.100.1'),
          onAnswer: (sdp) => Buffer.from(sdp).toString().replaceAll('10.0.0.2', '198.51.100.2'),
        },
      },
    });
    const { call, b } = await answered(t);
    expect(b.invite.bodyText).toContain('c=IN IP4 198.51.100.1');
    expect(Buffer.from(call.remoteSdp!).toString()).toContain('c=IN IP4 198.51.100.2');
  });

  it('late offer: an INVITE without SDP; B\'s offer goes to A in the 200, A\'s answer to B in the ACK', async () => {
    const t = trunk();
    const call = placeCall(t, { body: undefined, onLateOffer: () => SDP_CALLER });
    await run(t);
    const b = t.atDest[0]!;
    expect(b.invite.body.length).toBe(0);
    const acks: string[] = [];
    b.on('ack', (a) => acks.push(a.bodyText));
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(call.state).toBe('answered');
    expect(Buffer.from(call.remoteSdp!).toString()).toBe(SDP_DEST);
    expect(acks).toEqual([SDP_CALLER]);
  });
});

describe('after answer', () => {
  it('re-INVITE from the caller crosses to B and B\'s answer comes back', async () => {
    const t = trunk();
    const { call, b } = await answered(t);
    const newOffer = SDP_CALLER.replace('4000', '4010');
    const p = call.reinvite({ body: newOffer });
    await run(t);
    const res = await p;
    expect(res.status).toBe(200);
    expect(Buffer.from(b.remoteSdp!).toString()).toBe(newOffer);
    expect(res.bodyText).toBe(SDP_DEST);
  });

  it('late-offer re-INVITE from the caller: B\'s offer comes back in the 200, the caller\'s answer reaches B in its ACK', async () => {
    const t = trunk();
    const newAnswer = SDP_CALLER.replace('4000', '4020');
    const { call, b } = await answered(t, { onLateOffer: () => newAnswer });
    const acks: string[] = [];
    b.on('ack', (a) => acks.push(a.bodyText));
    const p = call.reinvite();
    await run(t);
    const res = await p;
    expect(res.status).toBe(200);
    expect(res.bodyText).toBe(SDP_DEST);
    await run(t);
    expect(acks).toEqual([newAnswer]);
  });

  it('re-INVITE from B crosses to the caller', async () => {
    const t = trunk();
    const { call, b } = await answered(t);
    const newOffer = SDP_DEST.replace('6000', '6010');
    const p = b.reinvite({ body: newOffer });
    await run(t);
    expect((await p).status).toBe(200);
    expect(Buffer.from(call.remoteSdp!).toString()).toBe(newOffer);
  });

  it('INFO crosses both ways with its answer; REFER is refused by the default policy', async () => {
    const t = trunk();
    const { call, b } = await answered(t);
    const infos: string[] = [];
    b.on('request', (req, tx) => {
      infos.push(req.method + ':' + req.bodyText);
      tx.respond(createResponse(req, req.method === 'INFO' ? 200 : 501));
    });
    const r1 = call.request('INFO', { body: 'Signal=9\r\nDuration=160\r\n', contentType: 'application/dtmf-relay' });
    await run(t);
    expect((await r1).status).toBe(200);
    expect(infos).toEqual(['INFO:Signal=9\r\nDuration=160\r\n']);
    const r2 = call.request('REFER', { headers: { 'Refer-To': '<sip:x@example.com>' } });
    await run(t);
    expect((await r2).status).toBe(405);
  });

  it('headers cross by policy without touching the incoming request', async () => {
    const t = trunk({ b2bua: { proxyRequestHeaders: ['X-Account'] } });
    const call = placeCall(t, { headers: { 'P-Asserted-Identity': '<sip:+15550001000@demo.trunk.sipkit.test>', 'X-Account': 'acme', 'X-Secret': 'no' } });
    await run(t);
    const b = t.atDest[0]!;
    expect(b.invite.get('p-asserted-identity')).toBe('<sip:+15550001000@demo.trunk.sipkit.test>');
    expect(b.invite.get('x-account')).toBe('acme');
    expect(b.invite.has('x-secret')).toBe(false);
    expect(call.invite.get('x-secret')).toBe('no');
  });
});
