import { describe, expect, it } from 'vitest';
import { UserAgent, type HangupCause, type InviteOptions } from '../../src/dialog/index.js';
import { createResponse, SipMessage, type SipRequest, type SipResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { TransactionLayer, type InviteServerTransaction, type ServerTransaction } from '../../src/transaction/index.js';
import { BOB, SDP_A, SDP_B, settle, uaPair } from '../support/ua-harness.js';

const T1 = 500;

/** A peer at 10.0.0.2 scripted at the transaction level: it can fork. */
function forkingPeer() {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock });
  const alice = new UserAgent({ transports: [net.transport('10.0.0.1', 5060)], clock });
  const requests: Array<{ req: SipRequest; tx: ServerTransaction }> = [];
  const acks: SipRequest[] = [];
  const peer = new TransactionLayer({
    transports: [net.transport('10.0.0.2', 5060)],
    clock,
    user: {
      onRequest: (req, tx) => {
        requests.push({ req, tx });
        if (req.method === 'BYE') tx.respond(createResponse(req, 200));
      },
      onAck: (a) => acks.push(a),
    },
  });
  return { clock, net, alice, peer, requests, acks };
}

// The INVITE each transaction carries, kept here: a transaction lets go of it once it sent a final.
const invites = new WeakMap<ServerTransaction, SipRequest>();

function answer(tx: ServerTransaction, status: number, tag: string, body?: string): SipResponse {
  let req = tx.request;
  if (req) invites.set(tx, req);
  else req = invites.get(tx)!;
  const res = createResponse(req, status, { toTag: tag, body, contentType: body ? 'application/sdp' : undefined });
  res.set('Contact', `<sip:${tag}@10.0.0.2:5060>`);
  tx.respond(res);
  return res;
}

/** A call from alice answered by fork-a, then hung up: its INVITE transaction and user read before set-up lets go of them. */
async function answeredThenHungUp(f: ReturnType<typeof forkingPeer>, options: InviteOptions) {
  const call = f.alice.invite(BOB, { body: SDP_A, ...options });
  const tx = (call as unknown as { tx: { state: string; user: unknown } }).tx;
  const inviteUser = (call as unknown as { inviteUser: unknown }).inviteUser;
  f.clock.advance(10);
  const inv = f.requests[0]!.tx as InviteServerTransaction;
  const ok = await answerThenHangUp(f, call, inv);
  expect(tx.state).toBe('accepted');
  return { call, tx, inviteUser, inv, ok };
}

/** fork-a answers `inv`, then the caller hangs up; the 200 fork-a sent. */
async function answerThenHangUp(f: ReturnType<typeof forkingPeer>, call: ReturnType<UserAgent['invite']>, inv: InviteServerTransaction): Promise<SipResponse> {
  const ok = answer(inv, 200, 'fork-a', SDP_B);
  f.clock.advance(10);
  expect(call.state).toBe('answered');
  const hungUp = call.hangup();
  f.clock.advance(10);
  await hungUp;
  expect(call.state).toBe('ended');
  return ok;
}

describe('forking (§13.2.2.4)', () => {
  it('two early dialogs, one answer; a later 2xx from the other fork is ACKed and BYEd', () => {
    const f = forkingPeer();
    const provisional: string[] = [];
    const call = f.alice.invite(BOB, { body: SDP_A, on: { provisional: (r) => provisional.push(r.to.tag!) } });
    f.clock.advance(10);
    const inv = f.requests[0]!.tx as InviteServerTransaction;
    answer(inv, 180, 'fork-a');
    answer(inv, 183, 'fork-b', SDP_B);
    f.clock.advance(10);
    expect(provisional).toEqual(['fork-a', 'fork-b']);
    expect(call.early.size).toBe(2);
    expect(f.alice.stats.dialogs).toBe(2);
    answer(inv, 200, 'fork-b', SDP_B);
    f.clock.advance(10);
    expect(call.state).toBe('answered');
    expect(call.dialog!.remoteTag).toBe('fork-b');
    expect(f.alice.stats.dialogs).toBe(1);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-b']);
    // The other fork answers too (RFC 6026: the INVITE client transaction is in Accepted).
    answer(inv, 200, 'fork-a', SDP_B);
    f.clock.advance(10);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-b', 'fork-a']);
    const byes = f.requests.filter((r) => r.req.method === 'BYE');
    expect(byes.map((b) => b.req.to.tag)).toEqual(['fork-a']);
    expect(call.state).toBe('answered');
  });

  it('a 2xx retransmitted after Timer M is re-ACKed through the stray path', () => {
    const f = forkingPeer();
    f.alice.invite(BOB, { body: SDP_A });
    f.clock.advance(10);
    const inv = f.requests[0]!.tx as InviteServerTransaction;
    // The 2xx as sent: an INVITE server transaction keeps no copy of it (RFC 6026 §7.1, the TU retransmits).
    const ok = answer(inv, 200, 'x', SDP_B);
    f.clock.advance(64 * T1 + 10); // the client transaction is gone
    expect(f.alice.stats.transactions).toBe(0);
    void f.peer.sendStateless(ok, { address: '10.0.0.1', port: 5060 });
    f.clock.advance(10);
    expect(f.acks).toHaveLength(2);
  });
});

describe('CANCEL (§9)', () => {
  it('before any provisional: held until the 180, then sent; the callee sees cancel, the caller 487', () => {
    const p = uaPair();
    const failures: HangupCause[] = [];
    const call = p.alice.invite(BOB, { body: SDP_A, on: { failure: (_r, c) => failures.push(c) } });
    call.cancel({ protocol: 'SIP', cause: 200, text: 'Call completed elsewhere' });
    p.clock.advance(1);
    expect(p.net.packets('CANCEL')).toHaveLength(0);
    settle(p);
    const inc = p.incoming[0]!;
    const cancels: string[] = [];
    inc.on('cancel', (c) => cancels.push(c.get('reason') ?? ''));
    inc.provisional(180);
    settle(p);
    expect(p.net.packets('CANCEL')).toHaveLength(1);
    expect(cancels).toEqual(['SIP;cause=200;text="Call completed elsewhere"']);
    expect(failures).toEqual([expect.objectContaining({ by: 'local', status: 487, method: 'CANCEL' })]);
    expect(inc.cause).toMatchObject({ by: 'remote', method: 'CANCEL', status: 487 });
  });

  it('after a provisional: sent at once', () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    p.incoming[0]!.provisional(183, { body: SDP_B });
    settle(p);
    call.cancel();
    settle(p);
    expect(p.net.packets('CANCEL')).toHaveLength(1);
    expect(call.cause).toMatchObject({ status: 487, method: 'CANCEL' });
    p.clock.advance(64 * T1 + 40_000);
    expect(p.alice.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
    expect(p.bob.stats).toMatchObject({ calls: 0, dialogs: 0, transactions: 0, timers: 0 });
  });

  it('CANCEL crossing the 200: the 200 wins — ACK, then BYE', async () => {
    const p = uaPair();
    const call = p.alice.invite(BOB, { body: SDP_A });
    settle(p);
    const inc = p.incoming[0]!;
    inc.provisional(180);
    settle(p);
    // Both leave at the same instant: they cross on the wire.
    call.cancel();
    await inc.answer({ body: SDP_B });
    settle(p);
    expect(p.net.packets('CANCEL')).toHaveLength(1);
    expect(p.net.packets('ACK')).toHaveLength(1);
    expect(p.net.packets('BYE')).toHaveLength(1);
    expect(inc.cause).toMatchObject({ by: 'remote', method: 'BYE' });
    expect(call.state).toBe('ended');
  });

  it('an ended call leaves its INVITE transaction (Accepted, Timer M) a small user, not itself: late 2xx still ACKed, other forks ACKed and BYEd', async () => {
    const f = forkingPeer();
    const { tx, inviteUser, inv, ok } = await answeredThenHungUp(f, {});
    // Issue #16: what the transaction keeps for 64·T1 does not reach the call (nor, in a B2BUA, the bridge).
    expect(tx.user).not.toBe(inviteUser);
    // Our ACK was lost, the callee retransmits its 2xx: it is ACKed again (§13.2.2.4) …
    inv.respond(ok);
    f.clock.advance(10);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-a', 'fork-a']);
    // … and another fork answering now gets an ACK and a BYE.
    answer(inv, 200, 'fork-b', SDP_B);
    f.clock.advance(10);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-a', 'fork-a', 'fork-b']);
    expect(f.requests.filter((r) => r.req.method === 'BYE').map((b) => b.req.to.tag)).toEqual(['fork-a', 'fork-b']);
  });

  it('an ended call without a route set leaves Timer M neither its dialog nor its ACK: a late 2xx gets that very ACK again, another fork an ACK and a BYE', async () => {
    const f = forkingPeer();
    // A display name and a parameter on From: the dialog rebuilt from the 2xx must write them as the original did.
    const { tx, inv, ok } = await answeredThenHungUp(f, { from: '"Alice Smith" <sip:alice@10.0.0.1>;x-param=1' });
    // Issue #16: no Dialog among what the transaction's user keeps for 64·T1.
    expect(Object.values(tx.user as object).some((v) => v !== null && typeof v === 'object' && v.constructor?.name?.includes('Dialog'))).toBe(false);
    expect((tx.user as object).constructor.name).toBe('RebuiltAnswers');
    const wire = () => f.net.packets('ACK').map((p) => Buffer.from(p.bytes).toString('latin1').replace(/^Via: .*\r\n/m, ''));
    inv.respond(ok);
    f.clock.advance(10);
    const acks = wire();
    expect(acks).toHaveLength(2);
    // The same ACK, but for its Via (a new branch each time, §17.1.1.3).
    expect(acks[1]).toBe(acks[0]);
    answer(inv, 200, 'fork-b', SDP_B);
    f.clock.advance(10);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-a', 'fork-a', 'fork-b']);
    const byes = f.requests.filter((r) => r.req.method === 'BYE').map((b) => b.req);
    expect(byes.map((b) => b.to.tag)).toEqual(['fork-a', 'fork-b']);
    // The fork's BYE is written as the call's own: same From, Call-ID.
    expect(byes[1]!.get('from')).toBe(byes[0]!.get('from'));
    expect(byes[1]!.callId).toBe(byes[0]!.callId);
  });
});

describe('an ended call in Timer M answers a late 2xx (§13.2.2.4, RFC 6026 §7.2; issue #16)', () => {
  const wire = (f: ReturnType<typeof forkingPeer>) => f.net.packets('ACK').map((p) => ({ to: p.to, text: Buffer.from(p.bytes).toString('latin1').replace(/^Via: .*\r\n/m, '') }));

  it('keeps no ACK text when the ACK is the bodiless one of the INVITE: the late 2xx rebuilds it', async () => {
    const f = forkingPeer();
    const { call, tx } = await answeredThenHungUp(f, {});
    const user = tx.user as Record<string, unknown>;
    const fields = Object.values(user);
    expect(fields).not.toContain(call);
    // No ACK as text or bytes, no parsed message, no dialog: of strings, only the confirmed dialog's remote tag.
    expect(fields.filter((v) => typeof v === 'string')).toEqual(['fork-a']);
    expect(fields.some((v) => v instanceof Uint8Array || v instanceof SipMessage)).toBe(false);
    expect(fields.some((v) => v !== null && typeof v === 'object' && v.constructor?.name?.includes('Dialog'))).toBe(false);
  });

  it('a late retransmission of the 2xx gets the ACK the call sent (Request-URI, From, To, Call-ID, CSeq, no body), to the same peer', async () => {
    const f = forkingPeer();
    const { inv, ok } = await answeredThenHungUp(f, {});
    inv.respond(ok);
    f.clock.advance(10);
    expect(f.acks).toHaveLength(2);
    const [first, again] = f.acks as [SipRequest, SipRequest];
    expect(again.uri).toBe(first.uri);
    expect(again.uri).toBe('sip:fork-a@10.0.0.2:5060');
    expect(again.get('from')).toBe(first.get('from'));
    expect(again.get('to')).toBe(first.get('to'));
    expect(again.callId).toBe(first.callId);
    expect(again.get('cseq')).toBe(first.get('cseq'));
    expect(again.body.length).toBe(0);
    const sent = wire(f);
    expect(sent[1]!.to).toEqual(sent[0]!.to);
    expect(sent[1]!.text).toBe(sent[0]!.text);
    // A retransmission of the call's own 2xx: no BYE besides the call's.
    expect(f.requests.filter((r) => r.req.method === 'BYE')).toHaveLength(1);
  });

  it('a late 2xx with another To tag gets an ACK and a BYE in its own dialog', async () => {
    const f = forkingPeer();
    const { inv } = await answeredThenHungUp(f, {});
    answer(inv, 200, 'fork-c', SDP_B);
    f.clock.advance(10);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-a', 'fork-c']);
    const fork = f.acks[1]!;
    expect(fork.uri).toBe('sip:fork-c@10.0.0.2:5060');
    expect(fork.cseq).toMatchObject({ seq: f.acks[0]!.cseq.seq, method: 'ACK' });
    const byes = f.requests.filter((r) => r.req.method === 'BYE').map((b) => b.req);
    expect(byes.map((b) => b.to.tag)).toEqual(['fork-a', 'fork-c']);
    expect(byes[1]!.uri).toBe('sip:fork-c@10.0.0.2:5060');
    expect(byes[1]!.get('from')).toBe(byes[0]!.get('from'));
  });

  it('a late 2xx whose From has lost its tag (malformed) is dropped: nothing sent, nothing thrown out of the receive path', async () => {
    const f = forkingPeer();
    const { inv, ok } = await answeredThenHungUp(f, {});
    for (const tag of ['fork-a', 'fork-c']) {
      const bad = createResponse(invites.get(inv)!, 200, { toTag: tag, body: SDP_B, contentType: 'application/sdp' });
      bad.set('Contact', `<sip:${tag}@10.0.0.2:5060>`);
      bad.set('From', (ok.get('from') ?? '').replace(/;tag=[^;]*/, ''));
      expect(bad.from.tag).toBeUndefined();
      inv.respond(bad);
      expect(() => f.clock.advance(10)).not.toThrow();
    }
    expect(f.acks).toHaveLength(1);
    expect(f.requests.filter((r) => r.req.method === 'BYE')).toHaveLength(1);
  });

  it('an ACK with a body (a late-offer answer) is kept as text and sent again exactly', async () => {
    const f = forkingPeer();
    // No offer in the INVITE: the 2xx offers, the ACK answers (§13.2.1).
    const { tx, inv, ok } = await answeredThenHungUp(f, { body: undefined, onLateOffer: () => SDP_A });
    expect((tx.user as object).constructor.name).toBe('EndedAnswers');
    expect(f.acks[0]!.bodyText).toBe(SDP_A);
    inv.respond(ok);
    f.clock.advance(10);
    const sent = wire(f);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.to).toEqual(sent[0]!.to);
    expect(sent[1]!.text).toBe(sent[0]!.text);
    expect(f.acks[1]!.bodyText).toBe(SDP_A);
  });
});

describe('the ACK for a 2xx carries the INVITE credentials (§13.2.2.4)', () => {
  /** A call challenged once (407), then answered by fork-a and hung up. */
  async function challengedThenHungUp(f: ReturnType<typeof forkingPeer>) {
    const call = f.alice.invite(BOB, { body: SDP_A, auth: { username: '1000', password: 'pw' } });
    f.clock.advance(10);
    const first = f.requests[0]!.tx as InviteServerTransaction;
    const challenge = createResponse(first.request!, 407, { toTag: 'proxy' });
    challenge.set('Proxy-Authenticate', 'Digest realm="demo", nonce="n0nce", algorithm=MD5, qop="auth"');
    first.respond(challenge);
    f.clock.advance(10);
    const inv = f.requests.filter((r) => r.req.method === 'INVITE')[1]!.tx as InviteServerTransaction;
    const credentials = inv.request!.get('proxy-authorization');
    expect(credentials).toMatch(/^Digest /);
    const tx = (call as unknown as { tx: { state: string; user: unknown } }).tx;
    const ok = await answerThenHangUp(f, call, inv);
    expect(tx.state).toBe('accepted');
    return { tx, inv, ok, credentials };
  }

  it('and an ended call with such an ACK keeps it as text: a late 2xx gets exactly that ACK again, another fork an ACK with them and a BYE', async () => {
    const f = forkingPeer();
    const { tx, inv, ok, credentials } = await challengedThenHungUp(f);
    expect(f.acks[0]!.get('proxy-authorization')).toBe(credentials);
    expect((tx.user as object).constructor.name).toBe('EndedAnswers');
    inv.respond(ok);
    f.clock.advance(10);
    // (The first ACK on the wire is the 407's, the transaction's own.)
    const sent = f.net
      .packets('ACK')
      .map((p) => ({ to: p.to, text: Buffer.from(p.bytes).toString('latin1').replace(/^Via: .*\r\n/m, '') }))
      .filter((a) => a.text.includes('tag=fork-a'));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.to).toEqual(sent[0]!.to);
    expect(sent[1]!.text).toBe(sent[0]!.text);
    answer(inv, 200, 'fork-b', SDP_B);
    f.clock.advance(10);
    expect(f.acks.map((a) => a.to.tag)).toEqual(['fork-a', 'fork-a', 'fork-b']);
    expect(f.acks[2]!.get('proxy-authorization')).toBe(credentials);
    expect(f.requests.filter((r) => r.req.method === 'BYE').map((b) => b.req.to.tag)).toEqual(['fork-a', 'fork-b']);
  });
});
