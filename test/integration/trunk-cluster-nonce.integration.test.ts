import { afterEach, describe, expect, it } from 'vitest';
import { DigestClient, parseChallenges } from '../../src/digest/index.js';
import { UserAgent } from '../../src/dialog/index.js';
import type { SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { RawSipPeer, replayAsNewCall } from './trunk-auth-peer.js';

// Two instances of a cluster sharing the nonce secret (issue #18): a nonce names the instance
// that issued it, so another instance answers it stale=true and nc replay tables stay per
// instance — a replay sent to the other instance is refused too.

const DOMAIN = 'acme.trunk.sipkit.test';
const URI = `sip:+4930123@${DOMAIN}`;
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const challenges = (r: SipResponse) => r.getAll('proxy-authenticate').flatMap(parseChallenges);

async function cluster() {
  const forwarded: string[] = [];
  const gw = new UserAgent({
    transports: [await UdpTransport.bind()],
    onInvite: (c) => {
      forwarded.push(c.invite.get('call-id')!);
      void c.reject(486);
    },
  });
  stops.push(() => gw.close());
  const port = gw.layer.transports[0]!.local.port;
  const trunks: TrunkServer[] = [];
  for (const id of ['node-a', 'node-b']) {
    const t = await startTrunk(
      validateConfig({
        instance: { id },
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
        http: { host: '127.0.0.1', port: 0, token: 'tok' },
        auth: { secret: 'shared-cluster-secret-0123456789abcdef' },
        domains: { [DOMAIN]: { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: [`sip:127.0.0.1:${port}`] }] } },
        cdr: { path: null },
        log: { level: 'error' },
      }),
    );
    stops.push(() => t.stop('hangup'));
    trunks.push(t);
  }
  const caller = await RawSipPeer.bind('127.0.0.1');
  stops.push(() => caller.close());
  return { a: trunks[0]!.sip[0]!.port, b: trunks[1]!.sip[0]!.port, caller, forwarded };
}

describe('nonces across the instances of a cluster', () => {
  it("credentials on A's nonce sent to B get 407 stale=true; used on A they pass once; their replay is refused by A and by B", async () => {
    const { a, b, caller, forwarded } = await cluster();
    const first = caller.invite(URI, '2000', DOMAIN);
    const challenge = await caller.transact(first, a);
    expect(challenge.status).toBe(407);
    const signed = new DigestClient({ username: '2000', password: 'pw-2000' }).authorize(first, challenge);

    // B: the nonce is authentic (same secret) but A's: its nc history is A's, so B asks again, stale.
    const atB = await caller.transact(replayAsNewCall(signed), b);
    expect(atB.status).toBe(407);
    expect(challenges(atB).every((c) => c.stale)).toBe(true);
    expect(challenges(atB)[0]!.nonce).not.toBe(challenges(challenge)[0]!.nonce);
    expect(forwarded).toHaveLength(0);

    // A: the genuine use (nc=00000001) passes.
    expect((await caller.transact(signed, a)).status).toBe(486);
    expect(forwarded).toHaveLength(1);

    // The same nc replayed as a new call: A has seen it (refused, not stale); B refuses as before.
    const replayA = await caller.transact(replayAsNewCall(signed), a);
    expect(replayA.status).toBe(407);
    expect(challenges(replayA).every((c) => !c.stale)).toBe(true);
    const replayB = await caller.transact(replayAsNewCall(signed), b);
    expect(replayB.status).toBe(407);
    expect(challenges(replayB).every((c) => c.stale)).toBe(true);
    expect(forwarded).toHaveLength(1);

    // The genuine caller answers B's stale challenge without re-prompting, with B's own nonce.
    const retry = new DigestClient({ username: '2000', password: 'pw-2000' }).authorize(replayAsNewCall(signed), atB);
    expect((await caller.transact(retry, b)).status).toBe(486);
    expect(forwarded).toHaveLength(2);
  });
});
