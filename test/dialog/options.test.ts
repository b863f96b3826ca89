import { describe, expect, it } from 'vitest';
import { UserAgent } from '../../src/dialog/index.js';
import { createResponse } from '../../src/parser/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { drive } from '../support/ua-harness.js';

function pair(bob: Partial<ConstructorParameters<typeof UserAgent>[0]> = {}) {
  const clock = new FakeClock(0);
  const net = new TestNetwork({ clock });
  const alice = new UserAgent({ transports: [net.transport('10.0.0.1')], clock });
  const b = new UserAgent({ transports: [net.transport('10.0.0.2')], clock, onInvite: () => undefined, ...bob });
  return { clock, net, alice, bob: b };
}

describe('OPTIONS answered by the user agent (RFC 3261 §11.2)', () => {
  it('200 with Allow, Accept and Supported (the option tags its validation supports)', async () => {
    const p = pair({ validate: { supported: ['100rel', 'timer'] } });
    const res = await drive(p, p.alice.request('OPTIONS', 'sip:10.0.0.2'));
    expect(res.status).toBe(200);
    expect(res.getAll('allow').join(', ')).toMatch(/\bINVITE\b.*\bOPTIONS\b/);
    expect(res.get('accept')).toBe('application/sdp');
    expect(res.getAll('supported')).toEqual(['100rel', 'timer']);
  });

  it('draining: 503 with Retry-After (what an INVITE would get from a server going away), and back', async () => {
    const p = pair();
    p.bob.setAvailability('draining');
    expect(p.bob.available).toBe('draining');
    const res = await drive(p, p.alice.request('OPTIONS', 'sip:10.0.0.2'));
    expect(res.status).toBe(503);
    expect(res.get('retry-after')).toBe('30');
    expect(res.get('allow')).toBeDefined();
    p.bob.setAvailability('available');
    expect((await drive(p, p.alice.request('OPTIONS', 'sip:10.0.0.2'))).status).toBe(200);
  });

  it('no one takes calls (no onInvite): 480, as an INVITE would get', async () => {
    const p = pair({ onInvite: undefined });
    expect((await drive(p, p.alice.request('OPTIONS', 'sip:10.0.0.2'))).status).toBe(480);
  });

  it('onOptions answers instead (the opt-out), even when onRequest is given', async () => {
    const seen: string[] = [];
    const p = pair({
      onOptions: (req, tx) => void tx.respond(createResponse(req, 200, { headers: { 'X-Mine': '1' } })),
      onRequest: (req, tx) => {
        seen.push(req.method);
        tx.respond(createResponse(req, 200));
      },
    });
    const res = await drive(p, p.alice.request('OPTIONS', 'sip:10.0.0.2'));
    expect(res.get('x-mine')).toBe('1');
    expect(res.get('allow')).toBeUndefined();
    expect(seen).toEqual([]);
  });
});
