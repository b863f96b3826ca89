import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { UserAgent, type HangupCause, type IncomingCall } from '../../src/dialog/index.js';

const agents: UserAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

describe('a call between two user agents over real UDP on 127.0.0.1', () => {
  it('ringing, early media, answer, in-dialog INFO, hangup with a Reason', async () => {
    let incoming: IncomingCall | undefined;
    const bob = new UserAgent({
      transports: [await UdpTransport.bind({ host: '127.0.0.1' })],
      timers: { T1: 100 },
      onInvite: (call) => {
        incoming = call;
        call.provisional(180);
        call.provisional(183, { body: SDP });
        setTimeout(() => void call.answer({ body: SDP }), 20);
      },
    });
    const alice = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 } });
    agents.push(alice, bob);
    const events: string[] = [];
    const { port } = bob.layer.transports[0]!.local;
    const call = alice.invite(`sip:bob@127.0.0.1:${port}`, {
      body: SDP,
      from: '<sip:alice@127.0.0.1>',
      on: {
        provisional: (r) => events.push(String(r.status)),
        earlyMedia: () => events.push('early media'),
        answer: () => events.push('answer'),
      },
    });
    await new Promise<void>((resolve) => call.on('answer', () => resolve()));
    const info = await call.request('INFO', { body: 'Signal=1\r\n', contentType: 'application/dtmf-relay' });
    expect(info.status).toBe(200);
    const remoteEnd = new Promise<HangupCause>((resolve) => incoming!.on('ended', resolve));
    await call.hangup({ reason: { protocol: 'Q.850', cause: 16 } });
    const cause = await remoteEnd;
    expect(events).toEqual(['180', '183', 'early media', 'answer']);
    expect(cause).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
    expect(alice.stats.calls).toBe(0);
    expect(bob.stats.calls).toBe(0);
  });
});
