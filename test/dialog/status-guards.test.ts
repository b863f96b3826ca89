import { describe, expect, it } from 'vitest';
import { SipError } from '../../src/parser/index.js';
import { BOB, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

/** A call from Alice ringing at Bob (no automatic 100 Trying, so every packet Bob sends is ours). */
function ringing() {
  const p = uaPair({ bob: { tryingAfterMs: -1 } });
  const events: string[] = [];
  const call = p.alice.invite(BOB, { body: SDP_A, on: { answer: () => events.push('answer'), failure: (r) => events.push('failure ' + r.status), ended: () => events.push('ended') } });
  settle(p);
  const inc = p.incoming[0]!;
  const fromBob = () => p.net.log.filter((x) => x.from.address === '10.0.0.2').length;
  return { p, call, inc, events, fromBob };
}

function expectBadStatus(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(SipError);
  expect((thrown as SipError).code).toBe('BAD_STATUS');
}

describe('IncomingCall status guards', () => {
  for (const status of [100, 101, 180, 199, 200, 202, 299, 700, 0, 486.5]) {
    it(`reject(${status}) throws BAD_STATUS, sends nothing and changes nothing`, async () => {
      const { p, call, inc, events, fromBob } = ringing();
      const before = fromBob();
      expectBadStatus(() => inc.reject(status));
      expect(fromBob()).toBe(before);
      expect(inc.state).toBe('calling');
      expect(inc.ended).toBe(false);
      expect(inc.tx.lastStatus).toBe(0);
      // The call is still usable: answering it works end to end.
      await inc.answer({ body: SDP_B });
      settle(p);
      expect(call.state).toBe('answered');
      expect(inc.state).toBe('answered');
      expect(events).toEqual(['answer']);
    });
  }

  it('reject(300) and reject(699) are accepted bounds', () => {
    for (const status of [300, 699]) {
      const { p, inc, events } = ringing();
      void inc.reject(status);
      settle(p);
      expect(inc.ended).toBe(true);
      expect(events).toEqual([`failure ${status}`, 'ended']);
    }
  });

  it('hangup({ status }) before answer is held to the same range', () => {
    const { inc, fromBob } = ringing();
    const before = fromBob();
    expectBadStatus(() => inc.hangup({ status: 200 }));
    expect(fromBob()).toBe(before);
    expect(inc.ended).toBe(false);
  });

  for (const status of [99, 100, 200, 302, 1000, 180.5]) {
    it(`provisional(${status}) throws BAD_STATUS and sends nothing`, () => {
      const { inc, fromBob } = ringing();
      const before = fromBob();
      expectBadStatus(() => inc.provisional(status));
      expect(fromBob()).toBe(before);
      expect(inc.state).toBe('calling');
      expect(inc.tx.lastStatus).toBe(0);
    });
  }

  it('provisional(101) and provisional(199) are accepted bounds', () => {
    const { p, inc } = ringing();
    inc.provisional(101);
    inc.provisional(199);
    settle(p);
    expect(p.net.packets(/^SIP\/2\.0 1/).map((x) => Number(x.firstLine.split(' ')[1]))).toEqual([101, 199]);
    expect(inc.state).toBe('early');
  });

  it('rejectWith() a response outside 300–699 throws BAD_STATUS and sends nothing', async () => {
    const { inc, fromBob } = ringing();
    const { createResponse } = await import('../../src/parser/index.js');
    const before = fromBob();
    expectBadStatus(() => inc.rejectWith(createResponse(inc.invite, 200, { toTag: inc.localTag })));
    expect(fromBob()).toBe(before);
    expect(inc.ended).toBe(false);
  });
});
