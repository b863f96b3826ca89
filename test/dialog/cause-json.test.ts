import { describe, expect, it } from 'vitest';
import type { HangupCause } from '../../src/dialog/index.js';
import { BOB, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

describe('hangup causes serialize as plain data', () => {
  it('JSON.stringify(call.cause) after a BYE with a Reason: the Reason\'s params are name → value', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A, from: '<sip:alice@10.0.0.1>' });
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    settle(p);
    const h = inc.hangup({ reason: { protocol: 'Q.850', cause: 16, text: 'Normal call clearing' } });
    settle(p);
    await h;
    const reason = '{"protocol":"Q.850","cause":16,"text":"Normal call clearing","params":{"cause":"16","text":"Normal call clearing"}}';
    expect(JSON.stringify(call.cause)).toBe(`{"by":"remote","method":"BYE","reason":${reason}}`);
    expect(JSON.stringify(inc.cause)).toBe(`{"by":"local","method":"BYE","reason":${reason}}`);
  });

  it('JSON.stringify of a failure\'s cause', () => {
    const p = uaPair();
    const failures: HangupCause[] = [];
    const call = p.alice.invite(BOB, { on: { failure: (_r, c) => failures.push(c) } });
    settle(p);
    void p.incoming[0]!.reject(486, { reason: { protocol: 'Q.850', cause: 17, text: 'User "busy"' } });
    settle(p);
    const json = '{"by":"remote","status":486,"phrase":"Busy Here","reason":{"protocol":"Q.850","cause":17,"text":"User \\"busy\\"","params":{"cause":"17","text":"User \\"busy\\""}}}';
    expect(JSON.stringify(call.cause)).toBe(json);
    expect(JSON.stringify(failures[0])).toBe(json);
  });
});
