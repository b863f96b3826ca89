import { describe, expect, it } from 'vitest';
import { placeCall, run, SDP_CALLER, SDP_DEST, trunk } from '../support/b2bua-harness.js';

describe('trunking.txt acceptance flows, message for message', () => {
  it('flow 1: 407 challenge → authenticated INVITE → 100 → 180 → 200 → ACK → BYE', async () => {
    const t = trunk();
    const call = placeCall(t);
    await run(t);
    expect(t.atDest).toHaveLength(1);
    const b = t.atDest[0]!;
    b.provisional(180);
    await run(t);
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(call.state).toBe('answered');
    const bye = call.hangup();
    await run(t);
    await bye;
    expect(t.seen('A')).toEqual([
      '-> INVITE',
      '<- 407 Proxy Authentication Required',
      '-> ACK',
      '-> INVITE',
      '<- 100 Trying',
      '<- 180 Ringing',
      '<- 200 OK',
      '-> ACK',
      '-> BYE',
      '<- 200 OK',
    ]);
    expect(t.seen('B')).toEqual([
      '<- INVITE',
      '-> 100 Trying',
      '-> 180 Ringing',
      '-> 200 OK',
      '<- ACK',
      '<- BYE',
      '-> 200 OK',
    ]);
    // Content: the B leg is a new dialog; SDP crosses untouched under the default media hooks.
    const aInvite = call.invite;
    expect(b.invite.callId).not.toBe(aInvite.callId);
    expect(b.invite.from.tag).not.toBe(aInvite.from.tag);
    expect(b.invite.bodyText).toBe(SDP_CALLER);
    expect(b.invite.from.displayName).toBe('Extension 1000');
    expect(b.invite.maxForwards).toBe(69);
    expect(b.invite.has('proxy-authorization')).toBe(false);
    expect(Buffer.from(call.remoteSdp!).toString()).toBe(SDP_DEST);
    expect(t.ended).toHaveLength(1);
    expect(t.ended[0]).toMatchObject({ state: 'hangup', identity: '1000', hangup: { by: 'caller' } });
  });

  it('flow 2 (early media): 183 with SDP reaches the caller byte-identical, before any answer', async () => {
    const t = trunk();
    const early: string[] = [];
    const call = placeCall(t, { on: { earlyMedia: (r) => early.push(r.bodyText) } });
    await run(t);
    t.atDest[0]!.provisional(183, { body: SDP_DEST, phrase: 'Ringing' });
    await run(t);
    expect(t.seen('A')).toEqual(['-> INVITE', '<- 407 Proxy Authentication Required', '-> ACK', '-> INVITE', '<- 100 Trying', '<- 183 Ringing']);
    expect(t.seen('B')).toEqual(['<- INVITE', '-> 100 Trying', '-> 183 Ringing']);
    expect(early).toEqual([SDP_DEST]);
    expect(call.state).toBe('early');
    const rec = t.b2bua.list()[0]!;
    expect(rec.state).toBe('progressing');
    expect(rec.timestamps.progressing).toBeDefined();
  });

  it('flow 3 (hangup cause): 404 from the destination reaches the caller as 404', async () => {
    const t = trunk();
    const failures: Array<[number, string, unknown]> = [];
    placeCall(t, { on: { failure: (r, c) => failures.push([r.status, r.reason, c.reason]) } });
    await run(t);
    void t.atDest[0]!.reject(404);
    await run(t);
    expect(t.seen('A')).toEqual(['-> INVITE', '<- 407 Proxy Authentication Required', '-> ACK', '-> INVITE', '<- 100 Trying', '<- 404 Not Found', '-> ACK']);
    expect(t.seen('B')).toEqual(['<- INVITE', '-> 100 Trying', '-> 404 Not Found', '<- ACK']);
    expect(failures).toEqual([[404, 'Not Found', expect.objectContaining({ protocol: 'Q.850', cause: 1 })]]);
    expect(t.ended[0]).toMatchObject({ hangup: { by: 'callee', status: 404, phrase: 'Not Found', q850: 1 } });
  });
});
