import { afterEach, describe, expect, it } from 'vitest';
import { DigestClient, parseChallenges } from '../../src/digest/index.js';
import { UserAgent } from '../../src/dialog/index.js';
import type { SipResponse } from '../../src/parser/index.js';
import { UdpTransport } from '../../src/transport/index.js';
import { validateConfig, type TrunkConfig } from '../../examples/trunk-server/config.js';
import { startTrunk, type TrunkServer } from '../../examples/trunk-server/server.js';
import { RawSipPeer, replayAsNewCall } from './trunk-auth-peer.js';

// Auth hardening of the trunk over real UDP sockets on 127.0.0.1 / 127.0.0.2 (issue #14).

const DOMAIN = 'acme.trunk.sipkit.test';
const URI = `sip:+4930123@${DOMAIN}`;

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** A gateway that records the calls the trunk forwards (B2BUA Call-IDs) and refuses them (486), so no dialog is left behind. */
async function gateway() {
  const forwarded: string[] = [];
  const gw = new UserAgent({
    transports: [await UdpTransport.bind()],
    onInvite: (c) => {
      forwarded.push(c.invite.get('call-id')!);
      void c.reject(486);
    },
  });
  stops.push(() => gw.close());
  return { forwarded, port: gw.layer.transports[0]!.local.port };
}

async function setup(extra: Record<string, unknown> = {}, auth: Record<string, unknown> = {}) {
  const gw = await gateway();
  const config = validateConfig({
    sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
    http: { host: '127.0.0.1', port: 0, token: 'tok' },
    auth: { secret: 'trunk-auth-secret-0123456789abcdef', algorithms: ['SHA-256', 'MD5'], ...auth },
    domains: {
      [DOMAIN]: {
        extensions: { '2000': { password: 'pw-2000' }, '2001': { password: 'pw-2001' } },
        routes: [{ prefix: '', targets: [`sip:127.0.0.1:${gw.port}`] }],
      },
    },
    cdr: { path: null },
    log: { level: 'error' },
    ...extra,
  });
  return { gw, config };
}

async function trunk(config: TrunkConfig): Promise<{ server: TrunkServer; port: number; stop: () => Promise<void> }> {
  const server = await startTrunk(config);
  let stopped = false;
  const stop = async () => {
    if (!stopped) await server.stop('hangup');
    stopped = true;
  };
  stops.push(stop);
  return { server, port: server.sip[0]!.port, stop };
}

async function peer(host: string) {
  const p = await RawSipPeer.bind(host);
  stops.push(() => p.close());
  return p;
}

const challenges = (r: SipResponse) => r.getAll('proxy-authenticate').flatMap(parseChallenges);

describe('trunk auth: credential replay (issue #14.3)', () => {
  it('an INVITE captured before a restart and replayed after it as a new call gets 407 stale=true and is not forwarded', async () => {
    const { gw, config } = await setup();
    const first = await trunk(config);
    const caller = await peer('127.0.0.1');
    const legit = await caller.call(URI, DOMAIN, first.port, { username: '2000', password: 'pw-2000' });
    expect(legit.final.status).toBe(486); // authenticated, forwarded, refused by the gateway
    expect(gw.forwarded).toHaveLength(1);
    const captured = legit.signed!;

    // The same running trunk already refuses the replay (nc seen): a fresh challenge, not stale.
    const sameRun = await caller.transact(replayAsNewCall(captured), first.port);
    expect(sameRun.status).toBe(407);
    expect(challenges(sameRun).every((c) => !c.stale)).toBe(true);

    // Restart: same config, same secret, the nonce well within its 300 s TTL.
    await first.stop();
    const second = await trunk(config);
    const replay = replayAsNewCall(captured);
    const res = await caller.transact(replay, second.port);
    expect(res.status).toBe(407);
    expect(challenges(res).length).toBe(2);
    expect(challenges(res).every((c) => c.stale)).toBe(true);
    expect(gw.forwarded).toHaveLength(1);

    // The genuine caller, answering that stale challenge, gets through without re-prompting.
    const retry = new DigestClient({ username: '2000', password: 'pw-2000' }).authorize(replay, res);
    expect((await caller.transact(retry, second.port)).status).toBe(486);
    expect(gw.forwarded).toHaveLength(2);
  });

  it('when the live-nonce memory is full, a new login gets 503 with Retry-After rather than a forgotten nonce', async () => {
    const { gw, config } = await setup({}, { maxLiveNonces: 1 });
    const t = await trunk(config);
    const caller = await peer('127.0.0.1');
    const one = await caller.call(URI, DOMAIN, t.port, { username: '2000', password: 'pw-2000' });
    expect(one.final.status).toBe(486);
    const two = await caller.call(URI, DOMAIN, t.port, { username: '2001', password: 'pw-2001' });
    expect(two.final.status).toBe(503);
    expect(Number(two.final.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The tracked nonce is still remembered: its replay is refused.
    expect((await caller.transact(replayAsNewCall(one.signed!), t.port)).status).toBe(407);
    expect(gw.forwarded).toHaveLength(1);
  });
});

describe('trunk auth: per-source trust (issue #14.4)', () => {
  it('a spoofing attacker cannot lock out the caller at 127.0.0.1', async () => {
    const { gw, config } = await setup();
    const t = await trunk(config);
    const caller = await peer('127.0.0.1');
    // The attacker at 127.0.0.2 claims 127.0.0.1 in Via and Contact; its answers still come to 127.0.0.2.
    const liar = await peer('127.0.0.2');
    for (let i = 0; i < 12; i++) {
      const r = await liar.call(URI, DOMAIN, t.port, { username: '2000', password: 'guess' + i }, '127.0.0.1');
      expect([407, 403]).toContain(r.final.status);
    }
    // True spoofing, simulated: wrong passwords sent from a 127.0.0.1 socket, on nonces issued to 127.0.0.2.
    const spoofer = await peer('127.0.0.1');
    for (let i = 0; i < 12; i++) {
      const inv = liar.invite(URI, '2000', DOMAIN, '127.0.0.1');
      const ch = await liar.transact(inv, t.port);
      expect(ch.status).toBe(407);
      const forged = new DigestClient({ username: '2000', password: 'spoof' + i }).authorize(spoofer.invite(URI, '2000', DOMAIN), ch);
      const r = await spoofer.transact(forged, t.port);
      // Not issued to this address: a fresh stale challenge, and not counted as a failure.
      expect(r.status).toBe(407);
      expect(challenges(r).every((c) => c.stale)).toBe(true);
    }
    const legit = await caller.call(URI, DOMAIN, t.port, { username: '2000', password: 'pw-2000' });
    expect(legit.final.status).toBe(486);
    expect(gw.forwarded).toHaveLength(1);
  });

  it('a real brute force on one username from one source is throttled (403), another username from that source still works', async () => {
    const { gw, config } = await setup();
    const t = await trunk(config);
    const attacker = await peer('127.0.0.2');
    for (let i = 0; i < 10; i++) {
      const r = await attacker.call(URI, DOMAIN, t.port, { username: '2000', password: 'guess' + i });
      expect(r.final.status).toBe(407);
    }
    const blocked = await attacker.call(URI, DOMAIN, t.port, { username: '2000', password: 'pw-2000' });
    expect(blocked.final.status).toBe(403);
    const other = await attacker.call(URI, DOMAIN, t.port, { username: '2001', password: 'pw-2001' });
    expect(other.final.status).toBe(486);
    // And the throttled username from another address is not blocked.
    const elsewhere = await (await peer('127.0.0.1')).call(URI, DOMAIN, t.port, { username: '2000', password: 'pw-2000' });
    expect(elsewhere.final.status).toBe(486);
    expect(gw.forwarded).toHaveLength(2);
  });
});

describe('trunk auth: no domain or user enumeration (issue #14.5)', () => {
  /** What an outsider can compare: status, reason, header names, and the challenge params but the realm and nonce. */
  function shape(r: SipResponse) {
    return {
      status: r.status,
      reason: r.reason,
      headers: r.headerLines().map(([name]) => name.toLowerCase()),
      challenges: r.getAll('proxy-authenticate').map((v) =>
        v
          .replace(/realm="[^"]*"/, 'realm=""')
          .replace(/nonce="[^"]*"/, 'nonce=""'),
      ),
    };
  }

  it('known and unknown domains (and unknown users) answer alike, before and after credentials', async () => {
    const { gw, config } = await setup();
    const t = await trunk(config);
    const p = await peer('127.0.0.1');
    const known = await p.call(URI, DOMAIN, t.port, { username: '2000', password: 'wrong' });
    const unknownDomain = await p.call('sip:+4930123@nope.trunk.sipkit.test', 'nope.trunk.sipkit.test', t.port, { username: '2000', password: 'wrong' });
    const unknownUser = await p.call(URI, DOMAIN, t.port, { username: '9999', password: 'wrong' });
    for (const r of [known, unknownDomain, unknownUser]) {
      expect(r.challenge.status).toBe(407);
      expect(r.final.status).toBe(407);
    }
    expect(shape(unknownDomain.challenge)).toEqual(shape(known.challenge));
    expect(shape(unknownDomain.final)).toEqual(shape(known.final));
    expect(shape(unknownUser.final)).toEqual(shape(known.final));
    // The realm is the host dialled, known or not.
    expect(challenges(unknownDomain.challenge)[0]!.realm).toBe('nope.trunk.sipkit.test');
    expect(gw.forwarded).toHaveLength(0);
  });
});

describe('trunk auth: algorithms per domain and per extension (issue #14.17)', () => {
  it('a domain configured MD5-only challenges with MD5 only while another offers SHA-256 and MD5', async () => {
    const { gw, config } = await setup({
      domains: {
        [DOMAIN]: { extensions: { '2000': { password: 'pw-2000' } }, routes: [{ prefix: '', targets: ['sip:127.0.0.1:9'] }] },
        'old.trunk.sipkit.test': {
          auth: { algorithms: ['MD5'] },
          extensions: { '3000': { password: 'pw-3000' } },
          routes: [{ prefix: '', targets: ['sip:127.0.0.1:9'] }],
        },
      },
    });
    void gw;
    const t = await trunk(config);
    const p = await peer('127.0.0.1');
    const modern = await p.transact(p.invite(URI, '2000', DOMAIN), t.port);
    expect(challenges(modern).map((c) => c.algorithm)).toEqual(['SHA-256', 'MD5']);
    const old = await p.transact(p.invite('sip:+4930123@old.trunk.sipkit.test', '3000', 'old.trunk.sipkit.test'), t.port);
    expect(challenges(old).map((c) => c.algorithm)).toEqual(['MD5']);
  });

  it('an extension accepted with MD5 only: SHA-256 credentials get a stale MD5-only challenge, and MD5 gets through', async () => {
    const { gw, config } = await setup();
    config.domains[DOMAIN]!.extensions['2000']!.algorithms = ['MD5'];
    const t = await trunk(config);
    const p = await peer('127.0.0.1');
    const first = await p.call(URI, DOMAIN, t.port, { username: '2000', password: 'pw-2000' });
    expect(first.signed!.get('proxy-authorization')).toContain('algorithm=SHA-256');
    expect(first.final.status).toBe(407);
    expect(challenges(first.final).map((c) => [c.algorithm, c.stale])).toEqual([['MD5', true]]);
    const retry = new DigestClient({ username: '2000', password: 'pw-2000' }).authorize(first.signed!, first.final);
    expect(retry.get('proxy-authorization')).toContain('algorithm=MD5');
    expect((await p.transact(retry, t.port)).status).toBe(486);
    expect(gw.forwarded).toHaveLength(1);
  });
});
