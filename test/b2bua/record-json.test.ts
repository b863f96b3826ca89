import { describe, expect, it } from 'vitest';
import { placeCall, run, SDP_DEST, TRUNK_URI, trunk } from '../support/b2bua-harness.js';

describe('B2BUA call records serialize as plain data', () => {
  it('JSON.stringify of an ended call\'s record, and of the caller\'s cause', async () => {
    const t = trunk();
    const call = placeCall(t);
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    void t.atDest[0]!.hangup({ reason: { protocol: 'Q.850', cause: 16, text: 'Normal call clearing' } });
    await run(t);
    const record = t.ended[0]!;
    const json = JSON.stringify(record);
    const { id, aLeg, bLeg, timestamps, from } = record;
    expect(typeof id).toBe('string');
    expect(typeof timestamps.answered).toBe('number');
    expect(json).toBe(
      JSON.stringify({
        id,
        state: 'hangup',
        from,
        to: TRUNK_URI,
        identity: '1000',
        source: { address: '10.0.0.1', port: 5060, transport: 'udp' },
        aLeg: { callId: aLeg.callId },
        bLeg: { callId: bLeg.callId, target: 'sip:+15551234567@10.0.0.2:5060', attempts: 1 },
        timestamps: { created: timestamps.created, answered: timestamps.answered, hangup: timestamps.hangup },
        hangup: { by: 'callee', q850: 16, relayedBye: { to: 'caller', outcome: 'answered', status: 200 } },
        tags: {},
      }),
    );
    expect(from).toMatch(/^"Extension 1000" <sip:1000@demo\.trunk\.sipkit\.test>;tag=\w+$/);
    // Everything in it is a string, number, plain object or array: nothing is lost or added on a round trip.
    expect(JSON.stringify(JSON.parse(json))).toBe(json);
    expect(JSON.stringify(call.cause)).toBe(
      '{"by":"remote","method":"BYE","reason":{"protocol":"Q.850","cause":16,"text":"Normal call clearing","params":{"cause":"16","text":"Normal call clearing"}}}',
    );
  });
});
