import { describe, expect, it } from 'vitest';
import { createDigestAuth, type SharedThrottle } from '../../examples/trunk-server/auth.js';
import { dial, GATEWAY, run, setup, statusesTo } from './parts-harness.js';

// The auth part's hook for a cluster's shared throttle (issue #18): its blocks refuse here,
// and this instance's counted failures are reported to it.

const SECRET = 'parts-test-secret-0123456789abcdef';

function fakeThrottle(blocks: Record<string, 'all' | string[]> = {}) {
  const noted: Array<[string, string]> = [];
  const throttle: SharedThrottle = {
    blocked: (source) => {
      const b = blocks[source];
      return b === undefined || b === 'all' ? b : new Set(b);
    },
    noteFailure: (source, user) => void noted.push([source, user]),
  };
  return { throttle, noted };
}

function withAuth(sharedThrottle: SharedThrottle) {
  let clockNow = () => 0;
  const auth = createDigestAuth({
    domains: { 'pbx.example.test': { extensions: { '1000': { password: 'pw-1000' }, '1001': { password: 'pw-1001' } } } },
    secret: SECRET,
    now: () => clockNow(),
    sharedThrottle,
  });
  const s = setup({ authenticate: auth.authenticate, challenge: auth.challenge, route: () => [{ uri: `sip:+4930123@${GATEWAY}:5060` }] });
  clockNow = () => s.clock.now();
  return s;
}

describe('createDigestAuth with a shared throttle', () => {
  it('reports each wrong password and unknown user as realm+username from its source; a right one is not reported', async () => {
    const { throttle, noted } = fakeThrottle();
    const s = withAuth(throttle);
    dial(s, 'sip:1@pbx.example.test', { auth: { username: '1000', password: 'wrong' } });
    dial(s, 'sip:1@pbx.example.test', { auth: { username: '9999', password: 'x' } });
    const ok = dial(s, 'sip:1@pbx.example.test', { auth: { username: '1001', password: 'pw-1001' } });
    await run(s);
    expect(ok.answered).toBe(true);
    expect(noted.map(([, user]) => user).sort()).toEqual(['pbx.example.test 1000', 'pbx.example.test 9999']);
    expect(new Set(noted.map(([source]) => source)).size).toBe(1);
  });

  it('a pair blocked by the cluster gets 403 even with the right password; other users from that source pass', async () => {
    const probe = withAuth(fakeThrottle().throttle);
    dial(probe, 'sip:1@pbx.example.test', { auth: { username: '1001', password: 'pw-1001' } });
    await run(probe);
    const source = probe.b2bua.list()[0]!.source.address;

    const s = withAuth(fakeThrottle({ [source]: ['pbx.example.test 1000'] }).throttle);
    const blocked = dial(s, 'sip:1@pbx.example.test', { auth: { username: '1000', password: 'pw-1000' } });
    const other = dial(s, 'sip:1@pbx.example.test', { auth: { username: '1001', password: 'pw-1001' } });
    await run(s);
    expect(blocked.failures).toEqual([403]);
    expect(other.answered).toBe(true);
  });

  it('a source blocked as a whole by the cluster gets 403 at once, before any challenge', async () => {
    const probe = withAuth(fakeThrottle().throttle);
    dial(probe, 'sip:1@pbx.example.test', { auth: { username: '1001', password: 'pw-1001' } });
    await run(probe);
    const source = probe.b2bua.list()[0]!.source.address;
    const s = withAuth(fakeThrottle({ [source]: 'all' }).throttle);
    const d = dial(s, 'sip:1@pbx.example.test', { auth: { username: '1001', password: 'pw-1001' } });
    await run(s);
    expect(d.failures).toEqual([403]);
    expect(statusesTo(s)).toEqual([403]);
    expect(s.atGateway).toHaveLength(0);
  });
});
