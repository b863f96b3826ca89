import { FakeClock, TestNetwork, type NetworkConditions } from '../../src/transport/index.js';
import { UserAgent, type IncomingCall, type UserAgentOptions } from '../../src/dialog/index.js';

export const SDP_A = 'v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
export const SDP_B = 'v=0\r\no=bob 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

export interface UaPair {
  clock: FakeClock;
  net: TestNetwork;
  alice: UserAgent;
  bob: UserAgent;
  incoming: IncomingCall[];
}

/** Alice (10.0.0.1) and Bob (10.0.0.2) on a test network; Bob's incoming calls are collected. */
export function uaPair(options: { seed?: number; conditions?: NetworkConditions; bob?: Partial<UserAgentOptions>; reliable?: boolean } = {}): UaPair {
  const clock = new FakeClock(1_000_000);
  const net = new TestNetwork({ clock, seed: options.seed ?? 7, ...options.conditions });
  const incoming: IncomingCall[] = [];
  const alice = new UserAgent({ transports: [net.transport('10.0.0.1', 5060, { reliable: options.reliable })], clock, contactUser: 'alice' });
  const bob = new UserAgent({
    transports: [net.transport('10.0.0.2', 5060, { reliable: options.reliable })],
    clock,
    contactUser: 'bob',
    onInvite: (c) => incoming.push(c),
    ...options.bob,
  });
  return { clock, net, alice, bob, incoming };
}

export const BOB = 'sip:bob@10.0.0.2:5060';

/** Run the network until quiet (bounded). */
export function settle(p: UaPair, ms = 100): void {
  p.clock.advance(ms);
}

/** Await a promise while virtual time runs (for code paths that await across network round trips). */
export async function drive<T>(p: { clock: { advance(ms: number): void } }, promise: Promise<T>, maxMs = 120_000, stepMs = 10): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; t < maxMs && !done; t += stepMs) {
    p.clock.advance(stepMs);
    await new Promise((r) => setImmediate(r));
  }
  return promise;
}
