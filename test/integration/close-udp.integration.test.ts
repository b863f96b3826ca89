import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { UserAgent, type HangupCause, type IncomingCall } from '../../src/dialog/index.js';

const agents: UserAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

/** Bob on real UDP, keeping his calls and what each ended with. */
async function bob(onInvite: (c: IncomingCall) => void) {
  const seen: Array<{ call: IncomingCall; ended: Promise<HangupCause>; events: string[] }> = [];
  const ua = new UserAgent({
    transports: [await UdpTransport.bind({ host: '127.0.0.1' })],
    timers: { T1: 100 },
    onInvite: (call) => {
      const events: string[] = [];
      call.on('hangup', () => events.push('hangup'));
      call.on('cancel', () => events.push('cancel'));
      seen.push({ call, events, ended: new Promise((r) => call.on('ended', r)) });
      onInvite(call);
    },
  });
  agents.push(ua);
  return { ua, seen, uri: `sip:bob@127.0.0.1:${ua.layer.transports[0]!.local.port}` };
}

async function alice() {
  // Closed by the test itself (a second close in afterEach returns the same promise).
  const ua = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1' })], timers: { T1: 100 } });
  agents.push(ua);
  return ua;
}

describe('UserAgent.close() over real UDP sockets', () => {
  it('an answered call: the far end receives the BYE with its Reason before the socket closes', async () => {
    const b = await bob((c) => void c.answer({ body: SDP }));
    const a = await alice();
    const call = a.invite(b.uri, { body: SDP });
    await new Promise<void>((resolve) => call.on('answer', () => resolve()));
    const mine = new Promise<HangupCause>((r) => call.on('ended', r));
    await a.close({ reason: { protocol: 'Q.850', cause: 16, text: 'Shutdown' } });
    expect(await mine).toMatchObject({ by: 'local', method: 'BYE' });
    expect(await b.seen[0]!.ended).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16, text: 'Shutdown' } });
    expect(b.seen[0]!.events).toEqual(['hangup']);
  });

  it('a ringing call: the far end receives the CANCEL with its Reason', async () => {
    const b = await bob((c) => c.provisional(180));
    const a = await alice();
    const call = a.invite(b.uri, { body: SDP });
    await new Promise<void>((resolve) => call.on('provisional', () => resolve()));
    await a.close({ reason: { protocol: 'SIP', cause: 503, text: 'Going away' } });
    expect(call.cause).toMatchObject({ by: 'local', method: 'CANCEL' });
    expect(await b.seen[0]!.ended).toMatchObject({ by: 'remote', method: 'CANCEL', status: 487, reason: { protocol: 'SIP', cause: 503, text: 'Going away' } });
    expect(b.seen[0]!.events).toEqual(['cancel']);
  });

  it('an incoming call not answered: the caller receives 503 with the Reason', async () => {
    const b = await bob((c) => c.provisional(180));
    const a = await alice();
    const call = a.invite(b.uri, { body: SDP });
    await new Promise<void>((resolve) => call.on('provisional', () => resolve()));
    const failed = new Promise<[number, HangupCause]>((r) => call.on('failure', (res, cause) => r([res.status, cause])));
    await b.ua.close();
    const [status, cause] = await failed;
    expect(status).toBe(503);
    expect(cause.reason).toMatchObject({ protocol: 'Q.850', cause: 16 });
  });
});
