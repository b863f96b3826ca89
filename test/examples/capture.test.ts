import { createResponse, type SipRequest } from 'sipkit/parser';
import { describe, expect, it } from 'vitest';
import { createCallCapture, type CallCapture } from '../../examples/trunk-server/capture.js';
import { CALLER, dial, GATEWAY, run, setup, TRUNK } from './parts-harness.js';

const udp = { protocol: 'udp' };
const sip = (firstLine: string, callId: string, extra = '') => Buffer.from(`${firstLine}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\n${extra}Content-Length: 0\r\n\r\n`);

describe('per-call message capture on a plain B2bua', () => {
  it('keeps both legs of a call, the 407 exchange included, in the order they passed, each with its peer', async () => {
    let capture: CallCapture | undefined;
    const s = setup({
      // A challenge first, as the trunk's digest auth does, so that messages pass before the call has a record.
      authenticate: (req) => (req.has('Proxy-Authorization') ? { ok: true } : { ok: false, response: challenge(req) }),
      route: () => [{ uri: `sip:+1@${GATEWAY}:5060` }],
      trace: (...a) => capture?.trace(...a),
    });
    capture = createCallCapture(s.b2bua, { now: () => s.clock.now() });
    const d = dial(s, 'sip:+1@pbx.example.test', { auth: { username: '1000', password: 'x' } });
    await run(s);
    void d.call.hangup();
    await run(s);
    const r = s.ended[0]!;
    const got = capture.messages(r.id)!;
    const lines = got.messages.map((m) => `${m.peer} ${m.direction} ${m.first_line.split(' ').slice(0, 2).join(' ')}`);
    expect(lines).toEqual([
      'caller in INVITE sip:+1@pbx.example.test',
      'caller out SIP/2.0 407',
      'caller in ACK sip:+1@pbx.example.test',
      'caller in INVITE sip:+1@pbx.example.test',
      'caller out SIP/2.0 100',
      'destination out INVITE sip:+1@10.0.0.2:5060',
      'destination in SIP/2.0 200',
      'destination out ACK sip:sipkit@10.0.0.2:5060',
      'caller out SIP/2.0 200',
      'caller in ACK sip:b2bua@10.0.0.5:5060',
      'caller in BYE sip:b2bua@10.0.0.5:5060',
      'destination out BYE sip:sipkit@10.0.0.2:5060',
      'caller out SIP/2.0 200',
      'destination in SIP/2.0 200',
    ]);
    // The same messages the network carried to and from the trunk, with the first lines as sent.
    const wire = s.net.log.filter((p) => p.from.address === TRUNK || p.to.address === TRUNK);
    expect(got.messages.map((m) => m.first_line)).toEqual(wire.map((p) => p.firstLine));
    expect(got.messages.every((m) => m.text.startsWith(m.first_line + '\r\n') && m.bytes === Buffer.byteLength(m.text))).toBe(true);
    expect(got.messages.filter((m) => m.peer === 'caller').every((m) => m.remote === `udp:${CALLER}:5060`)).toBe(true);
    expect(got.messages.filter((m) => m.peer === 'destination').every((m) => m.remote === `udp:${GATEWAY}:5060`)).toBe(true);
    expect(capture.size.pending).toBe(0);
  });

  it('is bounded per call, in calls, in bytes and in unclaimed Call-IDs', () => {
    const handlers = new Map<string, (r: any) => void>();
    const events = { on: (e: string, fn: (r: any) => void) => handlers.set(e, fn), off: () => undefined };
    let now = 0;
    const capture = createCallCapture(events, { maxMessagesPerCall: 3, maxCalls: 2, maxBytes: 2000, maxPending: 4, pendingMs: 1000, now: () => now });
    const peer = { address: '10.0.0.1', port: 5060 };
    const call = (id: string, callId: string) => handlers.get('call')!({ id, aLeg: { callId }, bLeg: {} });
    // Per call: 3 kept, the rest counted as dropped.
    call('c1', 'A1');
    for (let i = 0; i < 5; i++) capture.trace('in', sip(`INFO sip:x SIP/2.0`, 'A1'), peer, udp);
    expect(capture.messages('c1')).toMatchObject({ dropped: 2 });
    expect(capture.messages('c1')!.messages).toHaveLength(3);
    // In calls: the oldest is forgotten.
    call('c2', 'A2');
    call('c3', 'A3');
    expect(capture.messages('c1')).toBeUndefined();
    expect(capture.size.calls).toBe(2);
    // Unclaimed Call-IDs (a flood of unauthenticated INVITEs): at most maxPending, each aged out.
    for (let i = 0; i < 50; i++) capture.trace('in', sip('INVITE sip:x SIP/2.0', `junk-${i}`), peer, udp);
    expect(capture.size.pending).toBe(4);
    now += 1001;
    capture.trace('in', sip('INVITE sip:x SIP/2.0', 'late'), peer, udp);
    expect(capture.size.pending).toBe(1);
    // In bytes: never above maxBytes, whatever arrives.
    const big = sip('INFO sip:x SIP/2.0', 'A3', `X-Pad: ${'p'.repeat(700)}\r\n`);
    for (let i = 0; i < 3; i++) capture.trace('in', big, peer, udp);
    for (let i = 0; i < 20; i++) capture.trace('in', sip('INVITE sip:x SIP/2.0', `more-${i}`, `X-Pad: ${'p'.repeat(300)}\r\n`), peer, udp);
    expect(capture.size.bytes).toBeLessThanOrEqual(2000);
    // Messages without a Call-ID (keep-alives, garbage) are not kept at all.
    const before = capture.size.bytes;
    capture.trace('in', Buffer.from('\r\n\r\n'), peer, udp);
    capture.trace('in', Buffer.from('garbage'), peer, udp);
    expect(capture.size.bytes).toBe(before);
    capture.close();
    expect(capture.size).toEqual({ calls: 0, pending: 0, bytes: 0 });
  });
});

function challenge(req: SipRequest) {
  return createResponse(req, 407, { headers: { 'Proxy-Authenticate': 'Digest realm="pbx.example.test", nonce="abc", algorithm=MD5' } });
}
