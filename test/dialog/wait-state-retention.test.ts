import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { BOB, uaPair } from '../support/ua-harness.js';

// Issue #16 target 3: what a transaction keeps while it waits out Timer K (an ended call's BYE,
// an OPTIONS ping) must not reach the messages it carried. Measured with the collector itself.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const nextTurn = () => new Promise((r) => setImmediate(r));

describe('a user agent request waiting out Timer K', () => {
  it('keeps neither the request nor its final response reachable (the user closures hold no promise once settled)', async () => {
    const p = uaPair();
    const ref = await (async () => {
      const pending = p.alice.request('OPTIONS', BOB);
      p.clock.advance(10);
      const res = await pending;
      expect(res.status).toBe(200);
      return new WeakRef(res);
    })();
    expect(p.alice.stats.transactions).toBe(1); // the OPTIONS client transaction, in Completed
    await nextTurn(); // a WeakRef's target is kept until the job that made it is over
    gc();
    expect(ref.deref()).toBeUndefined();
    p.clock.advance(10_000);
    expect(p.alice.stats.transactions).toBe(0);
  });

  it('waits out Timer K with one user shared by every settled request, not a waiter of its own each', async () => {
    const p = uaPair();
    const pending = [p.alice.request('OPTIONS', BOB), p.alice.request('OPTIONS', BOB)];
    p.clock.advance(10);
    for (const res of await Promise.all(pending)) expect(res.status).toBe(200);
    const clients = (p.alice.layer as unknown as { clients: Map<string, { state: string; user: unknown }> }).clients;
    const waiting = [...clients.values()];
    expect(waiting.map((tx) => tx.state)).toEqual(['completed', 'completed']);
    // Before: each kept its FinalWaiter (~64 bytes) for Timer K — an ended call's BYE, an OPTIONS ping.
    expect(waiting[0]!.user).toBe(waiting[1]!.user);
    p.clock.advance(10_000);
    expect(p.alice.stats.transactions).toBe(0);
  });
});
