import { afterEach, describe, expect, it } from 'vitest';
import { dial, http, trunkWithGateway, until, type TrunkSetup } from './page-harness.js';

const setups: TrunkSetup[] = [];
afterEach(async () => {
  await Promise.all(setups.splice(0).map((s) => s.stop()));
});

describe('GET /v1.0/calls/{id}/messages', () => {
  it("serves a real call's captured messages, both legs, with the token only", async () => {
    const s = await trunkWithGateway({ capture: { enabled: true, maxMessagesPerCall: 200 } });
    setups.push(s);
    const c = dial(s, '+4930123');
    await c.answered;
    await c.call.hangup();
    const { json: list } = await until(async () => {
      const r = await http(s, '/v1.0/calls?page_size=1');
      return r.json.result[0]?.status === 'hangup' ? r : undefined;
    }, 'the call to end');
    const id = list.result[0].id as string;
    const messages = await until(async () => {
      const r = await http(s, `/v1.0/calls/${encodeURIComponent(id)}/messages`);
      // The last one: the destination's 200 to the relayed BYE.
      return r.json.at(-1)?.first_line === 'SIP/2.0 200 OK' && r.json.some((m: any) => m.peer === 'destination' && m.first_line.startsWith('BYE ')) ? r.json : undefined;
    }, 'the BYE exchange on both legs');
    const firstLines = messages.map((m: any) => `${m.peer} ${m.direction} ${m.first_line.split(' ')[0]}`);
    expect(firstLines.slice(0, 4)).toEqual(['caller in INVITE', 'caller out SIP/2.0', 'caller in ACK', 'caller in INVITE']);
    expect(messages[1].first_line).toBe('SIP/2.0 407 Proxy Authentication Required');
    expect(firstLines).toContain('destination out INVITE');
    expect(firstLines).toContain('destination in SIP/2.0');
    for (const m of messages) {
      expect(Object.keys(m).sort()).toEqual(['at', 'bytes', 'direction', 'first_line', 'peer', 'remote', 'text']);
      expect(Number.isNaN(Date.parse(m.at))).toBe(false);
    }
    // Times never go backwards.
    expect(messages.map((m: any) => Date.parse(m.at))).toEqual([...messages.map((m: any) => Date.parse(m.at))].sort((a, b) => a - b));
    expect((await http(s, `/v1.0/calls/${id}/messages`, null)).status).toBe(401);
    expect(await http(s, '/v1.0/calls/nope/messages')).toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
  });

  it('answers 404 capture_disabled when capture is off (the default in a config file)', async () => {
    const s = await trunkWithGateway();
    setups.push(s);
    const c = dial(s, '+4930123');
    await c.answered;
    const id = (await http(s, '/v1.0/calls')).json.result[0].id;
    expect(await http(s, `/v1.0/calls/${id}/messages`)).toMatchObject({ status: 404, json: { error: { code: 'capture_disabled' } } });
    await c.call.hangup();
  });
});
