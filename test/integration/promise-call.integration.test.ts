import { afterEach, describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { CallFailedError, UserAgent } from '../../src/dialog/index.js';

const agents: UserAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

/** Bob pulls his calls with accept(); Alice awaits hers. Real UDP sockets on 127.0.0.1, ephemeral ports. */
async function pair(): Promise<{ alice: UserAgent; bob: UserAgent; bobUri: string }> {
  const bob = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })], timers: { T1: 100 } });
  const alice = new UserAgent({ transports: [await UdpTransport.bind({ host: '127.0.0.1', port: 0 })], timers: { T1: 100 } });
  agents.push(alice, bob);
  return { alice, bob, bobUri: `sip:bob@127.0.0.1:${bob.layer.transports[0]!.local.port}` };
}

describe('promise-first calls over real UDP on 127.0.0.1', () => {
  it('await ua.call() / await ua.accept(): ring, answer, BYE with a Reason, both whenEnded resolve', async () => {
    const { alice, bob, bobUri } = await pair();
    const accepted = bob.accept().then(async (call) => {
      call.provisional(180);
      await call.answer({ body: SDP });
      return call;
    });
    const rang: number[] = [];
    const call = await alice.call(bobUri, { body: SDP, from: '<sip:alice@127.0.0.1>', ringTimeoutMs: 5000, on: { provisional: (r) => rang.push(r.status) } });
    const incoming = await accepted;
    expect(call.state).toBe('answered');
    expect(rang).toContain(180);
    expect(call.remoteSdp && Buffer.from(call.remoteSdp).toString()).toBe(SDP);
    await call.hangup({ reason: { protocol: 'Q.850', cause: 16 } });
    expect(await incoming.whenEnded).toMatchObject({ by: 'remote', method: 'BYE', reason: { protocol: 'Q.850', cause: 16 } });
    expect(await call.whenEnded).toMatchObject({ by: 'local', method: 'BYE' });
    expect(alice.stats.calls).toBe(0);
    expect(bob.stats.calls).toBe(0);
  });

  it('a busy callee: the await throws CallFailedError CALL_REJECTED 486 with its Reason', async () => {
    const { alice, bob, bobUri } = await pair();
    void bob.accept().then((c) => c.reject(486, { reason: { protocol: 'Q.850', cause: 17, text: 'User busy' } }));
    const err = await alice.call(bobUri).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CallFailedError);
    expect(err).toMatchObject({ code: 'CALL_REJECTED', status: 486, by: 'remote', reason: { protocol: 'Q.850', cause: 17 } });
  });

  it('ring timeout: CANCEL with a Reason, RING_TIMEOUT; the callee sees the CANCEL', async () => {
    const { alice, bob, bobUri } = await pair();
    const ringing = bob.accept().then((c) => {
      c.provisional(180);
      return c;
    });
    const err = await alice.call(bobUri, { ringTimeoutMs: 1000 }).then(
      () => undefined,
      (e: unknown) => e as CallFailedError,
    );
    // Q.850 19 once the 180 is in (18 on a machine too loaded to deliver it within the second: the unit tests pin each).
    expect(err).toMatchObject({ code: 'RING_TIMEOUT', by: 'local', reason: { protocol: 'Q.850' } });
    const incoming = await ringing;
    expect(await incoming.whenEnded).toMatchObject({ by: 'remote', method: 'CANCEL', reason: { protocol: 'Q.850', cause: err!.reason!.cause } });
  });
});
