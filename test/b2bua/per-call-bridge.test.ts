import { describe, expect, it } from 'vitest';
import { B2bua, BridgeError, type BridgedCall, type B2buaOptions, type CallContext } from '../../src/b2bua/index.js';
import type { IncomingCall, OutgoingCall } from '../../src/dialog/index.js';
import { createResponse, SipError, type SipResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { DEST, DEST2, placeCall, run, SDP_CALLER, SDP_DEST, TRUNK, trunk, type Trunk } from '../support/b2bua-harness.js';

const TARGET = [{ uri: `sip:+15551234567@${DEST}:5060` }];
const TARGET2 = [{ uri: `sip:+15551234567@${DEST2}:5060` }];
const SDP_ANCHOR_A = 'v=0\r\no=anchor 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=sendrecv\r\n';
const SDP_ANCHOR_B = 'v=0\r\no=anchor 2 2 IN IP4 203.0.113.2\r\ns=-\r\nc=IN IP4 203.0.113.2\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0 8\r\na=sendrecv\r\n';

type Handler = (t: Trunk, call: IncomingCall, ctx: CallContext) => void | Promise<void>;

/** A trunk whose application bridges call by call (onInvite instead of route). */
function perCall(handler: Handler, options: Parameters<typeof trunk>[0] = {}): Trunk {
  const box: { t?: Trunk } = {};
  box.t = trunk({ ...options, b2bua: { route: undefined, onInvite: (call, ctx) => handler(box.t!, call, ctx), ...options.b2bua } });
  return box.t;
}

/** The outcome of a bridge() promise, readable synchronously once settled. */
function outcome(p: Promise<BridgedCall>) {
  const o: { value?: BridgedCall; error?: unknown } = {};
  p.then((v) => (o.value = v), (e: unknown) => (o.error = e));
  return o;
}

/** What the caller receives: statuses and each response's text. */
function callerLog(): { responses: SipResponse[]; on: NonNullable<Parameters<typeof placeCall>[1]>['on'] } {
  const responses: SipResponse[] = [];
  return {
    responses,
    on: { provisional: (r) => void (r.status > 100 && responses.push(r)), answer: (r) => responses.push(r), failure: (r) => responses.push(r) },
  };
}

describe('b2bua.bridge(): the per-call bridge', () => {
  it('resolves with both legs and the record once B answered and A got its 200; call/update/end events as for routed calls', async () => {
    let result: ReturnType<typeof outcome> | undefined;
    const t = perCall((t, call) => void (result = outcome(t.b2bua.bridge(call, TARGET))));
    const events: string[] = [];
    t.b2bua.on('call', () => events.push('call'));
    t.b2bua.on('end', () => events.push('end'));
    const a = placeCall(t);
    await run(t);
    expect(events).toEqual(['call']);
    expect(result!.value).toBeUndefined();
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(a.state).toBe('answered');
    const v = result!.value!;
    expect(v.a.state).toBe('answered');
    expect(v.b.state).toBe('answered');
    expect(v.record).toMatchObject({ state: 'answered', identity: '1000', bLeg: { attempts: 1 } });
    expect(t.b2bua.get(v.record.id)).toBe(v.record);
    void a.hangup();
    await run(t);
    expect(events).toEqual(['call', 'end']);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'caller' });
  });

  it('nothing unauthenticated reaches onInvite', async () => {
    const seen: IncomingCall[] = [];
    const t = perCall((_t, call) => void seen.push(call));
    placeCall(t, { auth: { username: '1000', password: 'wrong' } });
    await run(t);
    expect(seen).toEqual([]);
    expect(t.seen('A').filter((l) => l.startsWith('<- 407'))).toHaveLength(2);
  });

  it('rejects with a typed BridgeError carrying the final status, phrase and Reason, relayed to A (passFailure default)', async () => {
    let result: ReturnType<typeof outcome> | undefined;
    const t = perCall((t, call) => void (result = outcome(t.b2bua.bridge(call, TARGET))));
    const log = callerLog();
    placeCall(t, { on: log.on });
    await run(t);
    const b = t.atDest[0]!;
    const res = createResponse(b.invite, 486, { toTag: b.localTag, reason: 'Busy Right Now' });
    res.append('Reason', 'Q.850;cause=17;text="User busy"');
    b.rejectWith(res);
    await run(t);
    const err = result!.error as BridgeError;
    expect(err).toBeInstanceOf(BridgeError);
    expect(err).toBeInstanceOf(SipError);
    expect(err).toMatchObject({ code: 'BRIDGE_FAILED', status: 486, phrase: 'Busy Right Now', by: 'callee', relayed: true, reason: { protocol: 'Q.850', cause: 17 } });
    expect(log.responses.map((r) => r.status)).toEqual([486]);
    expect(log.responses[0]!.get('reason')).toBe('Q.850;cause=17;text="User busy"');
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'callee', status: 486, q850: 17 });
  });

  it('passFailure: false leaves A unanswered so the application can bridge it elsewhere', async () => {
    const errors: unknown[] = [];
    let final: ReturnType<typeof outcome> | undefined;
    const t = perCall(async (t, call) => {
      try {
        await t.b2bua.bridge(call, TARGET, { passFailure: false });
      } catch (err) {
        errors.push(err);
        final = outcome(t.b2bua.bridge(call, TARGET2));
      }
    });
    const log = callerLog();
    const a = placeCall(t, { on: log.on });
    await run(t);
    t.atDest[0]!.provisional(180);
    await run(t);
    void t.atDest[0]!.reject(486);
    await run(t);
    expect(errors).toEqual([expect.objectContaining({ code: 'BRIDGE_FAILED', status: 486, relayed: false })]);
    // A heard the 180, never the 486.
    expect(log.responses.map((r) => r.status)).toEqual([180]);
    expect(t.seen('A')).not.toContain('<- 486 Busy Here');
    expect(t.atDest2).toHaveLength(1);
    await t.atDest2[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(a.state).toBe('answered');
    expect(final!.value!.record.bLeg).toMatchObject({ attempts: 2, target: TARGET2[0]!.uri });
    expect(t.ended).toHaveLength(0);
  });

  it('passFailure: false with no answer in noAnswerTimeoutMs: B cancelled, A still waiting; a handler that then gives up leaves A a 500', async () => {
    const errors: unknown[] = [];
    const t = perCall(async (t, call) => {
      await t.b2bua.bridge(call, TARGET, { passFailure: false, noAnswerTimeoutMs: 2000 }).catch((e: unknown) => void errors.push(e));
    });
    const log = callerLog();
    placeCall(t, { on: log.on });
    await run(t);
    t.atDest[0]!.provisional(180);
    await run(t, 2500);
    expect(errors).toEqual([expect.objectContaining({ code: 'BRIDGE_FAILED', status: 408, by: 'system', relayed: false })]);
    expect(t.seen('B')).toContain('<- CANCEL');
    // The handler returned without answering, rejecting or bridging again: A is not left hanging.
    expect(log.responses.map((r) => r.status)).toEqual([180, 500]);
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 500 });
  });

  it('passFailure: true (default) relays the no-answer 408 and the caller\'s CANCEL rejects the bridge with 487 by the caller', async () => {
    const results: Array<ReturnType<typeof outcome>> = [];
    const t = perCall((t, call) => void results.push(outcome(t.b2bua.bridge(call, TARGET, { noAnswerTimeoutMs: 1000 }))));
    const log = callerLog();
    placeCall(t, { on: log.on });
    await run(t);
    t.atDest[0]!.provisional(180);
    await run(t, 1500);
    expect(log.responses.map((r) => r.status)).toEqual([180, 408]);
    expect(results[0]!.error).toMatchObject({ status: 408, relayed: true, by: 'system' });

    const call = placeCall(t);
    await run(t);
    t.atDest[1]!.provisional(180);
    await run(t);
    call.cancel();
    await run(t);
    expect(results[1]!.error).toMatchObject({ code: 'BRIDGE_FAILED', status: 487, by: 'caller', relayed: true });
    expect(t.seen('B')).toContain('<- CANCEL');
  });

  it('fails over across the given targets (503 → next), per call', async () => {
    let result: ReturnType<typeof outcome> | undefined;
    const t = perCall((t, call) => void (result = outcome(t.b2bua.bridge(call, [...TARGET, ...TARGET2]))));
    const a = placeCall(t);
    await run(t);
    void t.atDest[0]!.reject(503);
    await run(t);
    await t.atDest2[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(a.state).toBe('answered');
    expect(result!.value!.record.bLeg.attempts).toBe(2);
  });

  it('passProvisionalResponses: false → A gets only 100 Trying until the final, and the 200 carries B\'s early answer', async () => {
    const t = perCall((t, call) => void t.b2bua.bridge(call, TARGET, { passProvisionalResponses: false }).catch(() => undefined));
    const log = callerLog();
    const a = placeCall(t, { on: log.on });
    await run(t);
    const b = t.atDest[0]!;
    b.provisional(180);
    b.provisional(183, { body: SDP_DEST });
    await run(t);
    expect(t.seen('A').filter((l) => l.startsWith('<- 1'))).toEqual(['<- 100 Trying']);
    expect(log.responses).toEqual([]);
    await b.answer();
    await run(t);
    expect(a.state).toBe('answered');
    expect(t.seen('A').filter((l) => l.startsWith('<- 1') || l.startsWith('<- 2'))).toEqual(['<- 100 Trying', '<- 200 OK']);
    expect(log.responses[0]!.bodyText).toBe(SDP_DEST);
  });

  it('headers go on B\'s INVITE; responseHeaders (object or function of B\'s response) on A\'s responses; proxy*Headers cross', async () => {
    for (const responseHeaders of [{ 'X-Trunk': 'east' }, (r: SipResponse) => ({ 'X-Trunk': 'east', 'X-B-Status': String(r.status) })]) {
      const t = perCall((t, call) =>
        void t.b2bua
          .bridge(call, TARGET, {
            headers: { 'X-Billing-Id': 'abc-123' },
            responseHeaders,
            proxyRequestHeaders: ['X-Account'],
            proxyResponseHeaders: ['X-Carrier'],
          })
          .catch(() => undefined),
      );
      const log = callerLog();
      placeCall(t, { headers: { 'X-Account': '42', 'X-Not-Crossed': 'no' }, on: log.on });
      await run(t);
      const b = t.atDest[0]!;
      expect(b.invite.get('x-billing-id')).toBe('abc-123');
      expect(b.invite.get('x-account')).toBe('42');
      expect(b.invite.get('x-not-crossed')).toBeUndefined();
      b.provisional(180, { headers: { 'X-Carrier': 'acme', 'X-Private': 'hidden' } });
      await run(t);
      await b.answer({ body: SDP_DEST, headers: { 'X-Carrier': 'acme' } });
      await run(t);
      expect(log.responses.map((r) => r.status)).toEqual([180, 200]);
      for (const r of log.responses) {
        expect(r.get('x-trunk')).toBe('east');
        expect(r.get('x-carrier')).toBe('acme');
        expect(r.get('x-private')).toBeUndefined();
        if (typeof responseHeaders === 'function') expect(r.get('x-b-status')).toBe(String(r.status));
      }
    }
  });

  it('a header the bridge owns in `headers` is BAD_OPTION, and nothing is sent to B', async () => {
    let result: ReturnType<typeof outcome> | undefined;
    const t = perCall(async (t, call) => {
      result = outcome(t.b2bua.bridge(call, TARGET, { headers: { Via: 'SIP/2.0/UDP evil;branch=z9hG4bKx' } }));
      await new Promise((r) => setImmediate(r));
      await call.reject(500);
    });
    placeCall(t);
    await run(t);
    expect(result!.error).toMatchObject({ code: 'BAD_OPTION' });
    expect(t.seen('B')).toEqual([]);
  });

  it('localSdpA / localSdpB as strings replace the SDP each side gets, overriding the media hooks', async () => {
    const hooks: string[] = [];
    const t = perCall((t, call) => void t.b2bua.bridge(call, TARGET, { localSdpA: SDP_ANCHOR_A, localSdpB: SDP_ANCHOR_B }).catch(() => undefined), {
      b2bua: { media: { onOffer: (s) => (hooks.push('offer'), s), onAnswer: (s) => (hooks.push('answer'), s) } },
    });
    const a = placeCall(t);
    await run(t);
    const b = t.atDest[0]!;
    expect(b.invite.bodyText).toBe(SDP_ANCHOR_B);
    expect(b.invite.get('content-type')).toBe('application/sdp');
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(Buffer.from(a.remoteSdp!).toString()).toBe(SDP_ANCHOR_A);
    expect(hooks).toEqual([]);
  });

  it('localSdpA / localSdpB as async functions: B gets f(A\'s offer), A gets f(B\'s SDP, response), once per distinct SDP', async () => {
    const calls: string[] = [];
    const t = perCall(
      (t, call) =>
        void t.b2bua
          .bridge(call, TARGET, {
            localSdpB: async (offer) => {
              calls.push('B');
              await Promise.resolve();
              return Buffer.from(offer!).toString().replaceAll('10.0.0.1', '198.51.100.1');
            },
            localSdpA: async (sdp, res) => {
              calls.push(`A:${res.status}`);
              await new Promise((r) => setImmediate(r));
              return Buffer.from(sdp).toString().replaceAll('10.0.0.2', '198.51.100.2');
            },
          })
          .catch(() => undefined),
    );
    const log = callerLog();
    const a = placeCall(t, { on: log.on });
    await run(t);
    const b = t.atDest[0]!;
    expect(b.invite.bodyText).toBe(SDP_CALLER.replaceAll('10.0.0.1', '198.51.100.1'));
    b.provisional(183, { body: SDP_DEST });
    await run(t);
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(a.state).toBe('answered');
    const rewritten = SDP_DEST.replaceAll('10.0.0.2', '198.51.100.2');
    expect(log.responses.map((r) => [r.status, r.bodyText])).toEqual([
      [183, rewritten],
      [200, rewritten],
    ]);
    // The 200's SDP equals the 183's: the function ran once for it.
    expect(calls).toEqual(['B', 'A:183']);
  });

  it('bridge() on a call being bridged, or on a call that is not this B2BUA\'s, is NOT_BRIDGEABLE', async () => {
    const second: unknown[] = [];
    const t = perCall((t, call) => {
      void t.b2bua.bridge(call, TARGET).catch(() => undefined);
      t.b2bua.bridge(call, TARGET2).catch((e: unknown) => second.push(e));
    });
    placeCall(t);
    await run(t);
    expect(second).toEqual([expect.objectContaining({ code: 'NOT_BRIDGEABLE' })]);
    expect(t.atDest2).toHaveLength(0);
    await expect(t.b2bua.bridge(t.atDest[0]!, TARGET2)).rejects.toMatchObject({ code: 'NOT_BRIDGEABLE' });
  });

  it('the application may refuse a call itself: the record ends (by system) and B is cancelled', async () => {
    let incoming: IncomingCall | undefined;
    const t = perCall((t, call) => {
      incoming = call;
      void t.b2bua.bridge(call, TARGET).catch(() => undefined);
    });
    const log = callerLog();
    placeCall(t, { on: log.on });
    await run(t);
    t.atDest[0]!.provisional(180);
    await run(t);
    await incoming!.reject(403, { reason: { protocol: 'Q.850', cause: 21 } });
    await run(t);
    expect(log.responses.map((r) => r.status)).toEqual([180, 403]);
    expect(t.seen('B')).toContain('<- CANCEL');
    expect(t.ended[0]!.hangup).toMatchObject({ by: 'system', status: 403, q850: 21 });
  });

  it('route and onInvite: exactly one, or BAD_OPTION', () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const base: B2buaOptions = { transports: [net.transport(TRUNK, 5070)], clock };
    expect(() => new B2bua(base)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new B2bua({ ...base, route: () => [], onInvite: () => undefined })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});

describe('drachtio-srf traps, avoided', () => {
  it('#121: B\'s SDP came only in an unreliable 183 and its 200 has none → the 200 to A carries that SDP (per-call, with localSdpA)', async () => {
    const t = perCall((t, call) => void t.b2bua.bridge(call, TARGET, { localSdpA: async (sdp) => Buffer.from(sdp).toString().replace('o=dest', 'o=anchored') }).catch(() => undefined));
    const log = callerLog();
    // The caller does not support 100rel: the 183 to it is unreliable too (RFC 3262 not in play).
    const a = placeCall(t, { reliableProvisionals: 'none', on: log.on });
    await run(t);
    const b = t.atDest[0]!;
    b.provisional(183, { body: SDP_DEST });
    await run(t);
    await b.answer(); // no SDP in B's 200
    await run(t);
    expect(a.state).toBe('answered');
    const expected = SDP_DEST.replace('o=dest', 'o=anchored');
    expect(log.responses.map((r) => [r.status, r.bodyText])).toEqual([
      [183, expected],
      [200, expected],
    ]);
  });

  it('#121 on the server-wide path too (the same bridge): an unreliable 183\'s SDP is repeated in the 200', async () => {
    const t = trunk();
    const log = callerLog();
    placeCall(t, { reliableProvisionals: 'none', on: log.on });
    await run(t);
    t.atDest[0]!.provisional(183, { body: SDP_DEST });
    await run(t);
    await t.atDest[0]!.answer();
    await run(t);
    expect(log.responses.map((r) => [r.status, r.bodyText])).toEqual([
      [183, SDP_DEST],
      [200, SDP_DEST],
    ]);
  });

  for (const side of ['caller', 'callee'] as const) {
    it(`a BYE from the ${side} crosses with its Reason (per-call bridge)`, async () => {
      const t = perCall((t, call) => void t.b2bua.bridge(call, TARGET).catch(() => undefined));
      const a = placeCall(t);
      await run(t);
      const b = t.atDest[0]!;
      await b.answer({ body: SDP_DEST });
      await run(t);
      const [from, to]: [IncomingCall | OutgoingCall, IncomingCall | OutgoingCall] = side === 'caller' ? [a, b] : [b, a];
      const causes: unknown[] = [];
      to.on('hangup', (c) => causes.push(c));
      void from.hangup({ reason: { protocol: 'Q.850', cause: 31, text: 'Gone' } });
      await run(t);
      expect(causes).toEqual([expect.objectContaining({ by: 'remote', method: 'BYE', reason: expect.objectContaining({ protocol: 'Q.850', cause: 31, text: 'Gone' }) })]);
      expect(t.ended[0]!.hangup).toMatchObject({ by: side, q850: 31 });
    });
  }

  it('a BYE from B after its 200 but before A\'s 200 left: A gets 480 with B\'s Reason, the bridge rejects', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let result: ReturnType<typeof outcome> | undefined;
    const t = perCall((t, call) => void (result = outcome(t.b2bua.bridge(call, TARGET, { localSdpA: async (s) => (await gate, s) }))));
    const log = callerLog();
    const a = placeCall(t, { on: log.on });
    await run(t);
    const b = t.atDest[0]!;
    await b.answer({ body: SDP_DEST });
    await run(t);
    void b.hangup({ reason: { protocol: 'Q.850', cause: 16 } });
    await run(t);
    release();
    await run(t);
    expect(log.responses.map((r) => r.status)).toEqual([480]);
    expect(log.responses[0]!.get('reason')).toMatch(/Q\.850;cause=16/);
    expect(a.state).toBe('ended');
    expect(result!.error).toMatchObject({ code: 'BRIDGE_FAILED', status: 480, relayed: true, by: 'callee' });
  });

  // #62: a re-INVITE that comes before the B2BUA's promise settles must not be lost.
  for (const path of ['per-call', 'server-wide'] as const) {
    it(`#62 (${path}): B's re-INVITE after its 200 but before A's 200 is held until A's ACK, then relayed`, async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const slow = async (s: Uint8Array) => (await gate, s);
      const t =
        path === 'per-call'
          ? perCall((t, call) => void t.b2bua.bridge(call, TARGET, { localSdpA: slow }).catch(() => undefined))
          : trunk({ b2bua: { media: { onAnswer: (s, ctx) => (ctx.phase === 'answer' ? slow(s) : s) } } });
      const a = placeCall(t);
      await run(t);
      const b = t.atDest[0]!;
      await b.answer({ body: SDP_DEST });
      await run(t);
      expect(a.state).toBe('calling');
      const reinvite = b.reinvite({ body: SDP_DEST.replace('6000', '6002'), retryOn491: false });
      let res: SipResponse | undefined;
      void reinvite.then((r) => (res = r));
      await run(t);
      expect(res).toBeUndefined();
      release();
      await run(t);
      expect(a.state).toBe('answered');
      expect(res?.status).toBe(200);
      // The caller got the new offer after its ACK.
      expect(Buffer.from(a.remoteSdp!).toString()).toContain('m=audio 6002');
      expect(t.seen('A').filter((l) => l === '<- INVITE')).toHaveLength(1);
    });
  }

  it('#62: A\'s re-INVITE right after its ACK, before the application saw the promise settle, is relayed to B', async () => {
    const order: string[] = [];
    const t = perCall((t, call) => void t.b2bua.bridge(call, TARGET).then(() => order.push('bridged'), () => undefined));
    const a = placeCall(t, { on: { answer: () => void a.reinvite({ body: SDP_CALLER.replace('4000', '4002') }).then((r) => order.push(`reinvite ${r.status}`)) } });
    await run(t);
    await t.atDest[0]!.answer({ body: SDP_DEST });
    await run(t);
    expect(order).toEqual(['bridged', 'reinvite 200']);
    expect(Buffer.from(t.atDest[0]!.remoteSdp!).toString()).toContain('m=audio 4002');
  });

  it('an UPDATE with an offer from B in the early dialog while our offer is unanswered gets 491 (RFC 3311 §5.2), and the call goes on', async () => {
    const t = perCall((t, call) => void t.b2bua.bridge(call, TARGET).catch(() => undefined));
    const a = placeCall(t);
    await run(t);
    const b = t.atDest[0]!;
    b.provisional(180);
    await run(t);
    let status: number | undefined;
    void b.update({ body: SDP_DEST }).then((r) => (status = r.status));
    await run(t);
    expect(status).toBe(491);
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(a.state).toBe('answered');
  });

  it('A\'s INVITE is not mutated by bridging: its bytes are the same before and after', async () => {
    let before: Buffer | undefined;
    let incoming: IncomingCall | undefined;
    const t = perCall((t, call) => {
      incoming = call;
      before = Buffer.from(call.invite.toBytes());
      void t.b2bua
        .bridge(call, TARGET, { proxyRequestHeaders: ['X-Account'], headers: { 'X-Extra': '1' }, responseHeaders: { 'X-R': '1' }, localSdpB: SDP_ANCHOR_B })
        .catch(() => undefined);
    });
    placeCall(t, { headers: { 'X-Account': '42', 'P-Asserted-Identity': '<sip:1000@demo.trunk.sipkit.test>' } });
    await run(t);
    const b = t.atDest[0]!;
    b.provisional(183, { body: SDP_DEST });
    await run(t);
    await b.answer({ body: SDP_DEST });
    await run(t);
    expect(incoming!.state).toBe('answered');
    expect(Buffer.from(incoming!.invite.toBytes()).equals(before!)).toBe(true);
  });
});
