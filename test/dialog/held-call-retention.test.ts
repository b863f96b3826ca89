import { describe, expect, it } from 'vitest';
import type { Call, Dialog } from '../../src/dialog/index.js';
import { createResponse, SipMessage, type SipRequest } from '../../src/parser/index.js';
import type { InviteServerTransaction } from '../../src/transaction/index.js';
import { BOB, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

// Issue #16 target 3: a held call keeps what in-dialog requests need (Call-ID, tags, CSeq, route
// set, remote target, the SDPs), not parsed INVITEs, responses or ACKs.

/** The parsed messages among an object's own fields (a TypeScript `private` is one of them). */
function parsedMessages(o: object): string[] {
  return Object.entries(o)
    .filter(([, v]) => v instanceof SipMessage)
    .map(([k]) => k);
}

/** A buffer in an ArrayBuffer of its own and of its size: not a view of a datagram or of Node's 8 KB slab. */
function ownsItsBytes(b: Uint8Array | undefined): boolean {
  return b !== undefined && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

async function heldCall() {
  const p = uaPair();
  const call = p.alice.invite(BOB, { body: SDP_A, headers: { 'X-Account': '42' } });
  settle(p);
  const inc = p.incoming[0]!;
  await inc.answer({ body: SDP_B });
  settle(p);
  expect(call.state).toBe('answered');
  expect(inc.state).toBe('answered');
  return { p, call, inc };
}

describe('a held call keeps no parsed message', () => {
  it('neither leg, nor its dialog, holds a parsed INVITE, response or ACK once set up', async () => {
    const { call, inc } = await heldCall();
    for (const c of [call, inc] as Call[]) {
      expect(parsedMessages(c)).toEqual([]);
      expect(parsedMessages(c.dialog!)).toEqual([]);
    }
  });

  it('`invite` still reads as the INVITE after set-up: a fresh parse of its text', async () => {
    const { call, inc } = await heldCall();
    for (const inv of [call.invite, inc.invite]) {
      expect(inv.method).toBe('INVITE');
      expect(inv.callId).toBe(call.callId);
      expect(inv.get('x-account')).toBe('42');
      expect(inv.bodyText).toBe(SDP_A);
    }
    // Each read parses a copy: nothing read is kept by the call.
    expect(inc.invite).not.toBe(inc.invite);
    expect(parsedMessages(inc)).toEqual([]);
  });

  it('keeps its SDPs in buffers of their own, not views of the datagrams they came in', async () => {
    const { call, inc } = await heldCall();
    for (const b of [call.localSdp, call.remoteSdp, inc.localSdp, inc.remoteSdp]) expect(ownsItsBytes(b)).toBe(true);
    expect(Buffer.from(inc.remoteSdp!).toString()).toBe(SDP_A);
    expect(Buffer.from(call.remoteSdp!).toString()).toBe(SDP_B);
  });

  it('lets go of its INVITE client transaction, which answers 2xx retransmissions and other forks from the dialog alone', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    const tx = (call as unknown as { tx: { state: string; user: unknown } }).tx;
    const inviteUser = (call as unknown as { inviteUser: unknown }).inviteUser;
    expect(inviteUser).toBeDefined();
    settle(p);
    const inc = p.incoming[0]!;
    await inc.answer({ body: SDP_B });
    settle(p);
    expect(call.state).toBe('answered');
    expect((call as unknown as { tx: unknown }).tx).toBeUndefined();
    expect(tx.state).toBe('accepted');
    const user = tx.user as object;
    expect(user).not.toBe(inviteUser);
    // Nor does the call keep what the transaction reported to before: no INVITE is sent again.
    expect((call as unknown as { inviteUser: unknown }).inviteUser).toBeUndefined();
    // It knows the call only to tell it when Timer M ends the transaction (the call then lets go of it).
    expect(Object.entries(user).filter(([, v]) => v === call).map(([k]) => k)).toEqual(['owner']);
    // Our ACK was lost: Bob's 2xx comes again and is ACKed again, with the same CSeq (§13.2.2.4).
    const ist = inc.tx as InviteServerTransaction;
    const ok = ist.lastResponse ?? createResponse(inc.invite, 200, { toTag: inc.localTag });
    const acks = () => p.net.packets('ACK');
    const before = acks().length;
    ist.respond(ok);
    settle(p);
    expect(acks().length).toBe(before + 1);
    // Another fork answers: it gets an ACK and a BYE in its own dialog.
    const fork = createResponse(call.invite, 200, { toTag: 'other-fork' });
    fork.set('Contact', '<sip:fork@10.0.0.2:5060>');
    ist.respond(fork);
    settle(p);
    const byes = p.net.packets('BYE');
    expect(byes.map((b) => Buffer.from(b.bytes).toString())).toEqual([expect.stringContaining("tag=other-fork")]);
    expect(call.state).toBe('answered');
  });

  it('a held call lets go of its INVITE transaction once Timer M ends it, and hangs up as before', async () => {
    const { call, p } = await heldCall();
    const slot = () => (call as unknown as { accepted: { state: string } | undefined }).accepted;
    expect(slot()?.state).toBe('accepted');
    p.clock.advance(64 * 500 + 10);
    // Timer M ended it: the call keeps no terminated transaction for as long as it is held.
    expect(slot()).toBeUndefined();
    const hungUp = call.hangup();
    settle(p);
    await hungUp;
    expect(call.state).toBe('ended');
    expect(p.alice.stats.calls).toBe(0);
  });

  it("the dialog's last ACK is rebuilt from its CSeq and body, as sent", async () => {
    const { call, p } = await heldCall();
    const d = call.dialog as Dialog;
    const sent = p.net.packets('ACK')[0]!;
    const ack = d.lastAck as SipRequest;
    expect(ack.method).toBe('ACK');
    expect(d.lastAckSeq).toBe(call.invite.cseq.seq);
    expect(ack.cseq.seq).toBe(d.lastAckSeq);
    expect(Buffer.from(sent.bytes).toString()).toContain(`CSeq: ${d.lastAckSeq} ACK`);
    expect(ack.body.length).toBe(0);
  });

  it('neither dialog keeps a key joining Call-ID and tags: the user agent indexes them by our tag', async () => {
    const { call, inc } = await heldCall();
    for (const d of [call.dialog!, inc.dialog!]) {
      expect(Object.values(d).filter((v) => typeof v === 'string' && v.includes('\u0000'))).toEqual([]);
      // The key is still there to read, made on demand.
      expect(d.key).toBe(`${d.callId}\u0000${d.localTag}\u0000${d.remoteTag}`);
    }
  });

  it('dialogs without a route set share one empty route set, not an array each', async () => {
    const { call, inc } = await heldCall();
    expect(call.dialog!.routeSet).toEqual([]);
    expect(call.dialog!.routeSet).toBe(inc.dialog!.routeSet);
    // Requests built in the dialog are as before.
    expect(call.dialog!.createRequest('INFO').getAll('route')).toEqual([]);
  });

  it('calls sharing a From tag (set by the application) are told apart by Call-ID: each gets its own BYE', async () => {
    const p = uaPair();
    const from = '<sip:alice@10.0.0.1>;tag=same-tag';
    const calls = [p.alice.invite(BOB, { body: SDP_A, from }), p.alice.invite(BOB, { body: SDP_A, from })];
    settle(p);
    expect(calls.map((c) => c.localTag)).toEqual(['same-tag', 'same-tag']);
    for (const inc of p.incoming) await inc.answer({ body: SDP_B });
    settle(p);
    expect(calls.map((c) => c.state)).toEqual(['answered', 'answered']);
    expect(p.alice.stats.dialogs).toBe(2);
    // Bob hangs up the second: only the second ends.
    const second = p.incoming.find((i) => i.callId === calls[1]!.callId)!;
    const byeSecond = second.hangup();
    settle(p);
    await byeSecond;
    expect(calls.map((c) => c.state)).toEqual(['answered', 'ended']);
    expect(p.alice.stats.dialogs).toBe(1);
    const first = p.incoming.find((i) => i.callId === calls[0]!.callId)!;
    const byeFirst = first.hangup();
    settle(p);
    await byeFirst;
    expect(calls.map((c) => c.state)).toEqual(['ended', 'ended']);
    expect(p.alice.stats).toMatchObject({ calls: 0, dialogs: 0 });
  });

  it('an emitter nobody listens to has no listener table', async () => {
    const { inc } = await heldCall();
    expect((inc as unknown as { listeners: unknown }).listeners).toBeUndefined();
  });
});
