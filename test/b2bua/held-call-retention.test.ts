import { describe, expect, it } from 'vitest';
import type { Bridge } from '../../src/b2bua/bridge.js';
import type { IncomingCall, OutgoingCall } from '../../src/dialog/index.js';
import { SipMessage } from '../../src/parser/index.js';
import { placeCall, run, SDP_CALLER, SDP_DEST, trunk, type Trunk } from '../support/b2bua-harness.js';

// Issue #16 target 3: what a B2BUA keeps per held bridged call, and that an ended call leaves
// none of its indexes at once.

const T1 = 500;

function internals(t: Trunk) {
  return t.b2bua as unknown as {
    bridges: Map<IncomingCall, Bridge>;
    perSource: Map<string, number>;
    journaled: Set<Bridge>;
  };
}

async function bridged(t: Trunk, n: number): Promise<OutgoingCall[]> {
  const callers: OutgoingCall[] = [];
  for (let i = 0; i < n; i++) callers.push(placeCall(t));
  await run(t, 400);
  for (const c of t.atDest) void c.answer({ body: SDP_DEST });
  await run(t, 400);
  for (const c of callers) expect(c.state).toBe('answered');
  return callers;
}

describe('a held bridged call', () => {
  it('shares one buffer per SDP between its legs, and keeps no parsed message in either leg or the bridge', async () => {
    const t = trunk();
    await bridged(t, 1);
    const bridge = [...internals(t).bridges.values()][0]!;
    const a = bridge.a;
    const b = bridge.b!;
    expect(Buffer.from(a.remoteSdp!).toString()).toBe(SDP_CALLER);
    expect(Buffer.from(a.localSdp!).toString()).toBe(SDP_DEST);
    // Without media hooks the SDP crosses untouched: one copy for both legs.
    expect(b.localSdp).toBe(a.remoteSdp);
    expect(b.remoteSdp).toBe(a.localSdp);
    for (const o of [a, b, a.dialog!, b.dialog!, bridge]) expect(Object.values(o).filter((v) => v instanceof SipMessage)).toEqual([]);
  });

  it('lets go of what only setting it up needed: targets, the offer, the no-answer timer', async () => {
    const t = trunk();
    await bridged(t, 1);
    const bridge = [...internals(t).bridges.values()][0]! as unknown as { targets: unknown[]; offerToB: unknown; noAnswer: unknown; ackWaiters: unknown };
    expect(bridge.targets).toHaveLength(0);
    expect(bridge.offerToB).toBeUndefined();
    expect(bridge.noAnswer).toBeUndefined();
    expect(bridge.ackWaiters).toBeUndefined();
  });

  it('follows each leg through one observer object: no listener and no closure per event or hook', async () => {
    const t = trunk();
    await bridged(t, 1);
    const bridge = [...internals(t).bridges.values()][0]!;
    const a = bridge.a as unknown as { listeners: unknown; observer: object };
    const b = bridge.b! as unknown as { listeners: unknown; observer: object; handlers: object };
    expect(a.listeners).toBeUndefined();
    expect(b.listeners).toBeUndefined();
    expect(a.observer.constructor.name).toBe('ALeg');
    expect(b.observer.constructor.name).toBe('BLeg');
    // B's hooks are that same object, not the options its INVITE was made with (body, headers…).
    expect(b.handlers).toBe(b.observer);
  });
});

describe("a call's record", () => {
  it("keeps copies of the authenticate hook's tags and identity, not the hook's own object", async () => {
    const hookTags = { domain: 'demo.trunk.sipkit.test', auth: 'digest' };
    const t = trunk({ b2bua: { authenticate: () => ({ ok: true, identity: '1000', tags: hookTags }) } });
    await bridged(t, 1);
    const record = t.b2bua.list()[0]!;
    expect(record.tags).toEqual(hookTags);
    expect(record.tags).not.toBe(hookTags);
    expect(record.identity).toBe('1000');
  });
});

describe('an ended bridged call', () => {
  it('is out of every index as soon as its BYE is answered, and nothing is left once the wait timers fire', async () => {
    const t = trunk();
    const n = 20;
    const callers = await bridged(t, n);
    expect(internals(t).bridges.size).toBe(n);
    expect(t.b2bua.ua.stats).toMatchObject({ calls: 2 * n, dialogs: 2 * n });
    for (const c of callers) void c.hangup();
    await run(t, 400);
    expect(t.ended).toHaveLength(n);
    const i = internals(t);
    expect([i.bridges.size, i.perSource.size, i.journaled.size]).toEqual([0, 0, 0]);
    expect(t.b2bua.ua.stats).toMatchObject({ calls: 0, dialogs: 0 });
    expect(t.b2bua.stats.bridges).toBe(0);
    // Only transactions waiting out Timers J/K/L/M are left; then nothing.
    await run(t, 64 * T1 + 5_000, 500);
    expect(t.b2bua.ua.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
  });
});
