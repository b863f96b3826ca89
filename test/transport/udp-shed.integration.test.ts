// The UDP inbox's age bound on real loopback sockets (issue #16), with a FakeClock the receiver
// advances as if each message took 200 ms to handle: no timing in the test. A burst is put in
// the kernel's receive buffer while this event loop is blocked (a child process sends it during
// execFileSync), so libuv reads all of it (up to 32 datagrams) in one poll, dated at once.
import { describe, expect, it } from 'vitest';
import { FakeClock, UdpTransport } from '../../src/transport/index.js';
import { burst, collect, req, resp, turns } from '../support/udp-burst.js';

/** Delivers like collect(), and each message handed over advances the clock by `costMs`: a receiver that slow. */
const slowReceiver = (t: UdpTransport, clock: FakeClock, costMs: number) => collect(t, () => clock.advance(costMs));

describe('UdpTransport inbox age bound (real sockets, 127.0.0.1, FakeClock)', () => {
  it('sheds INVITEs and CANCELs that waited longer than T1 (default 500 ms), serves the fresh ones, never sheds responses or BYEs', async () => {
    const clock = new FakeClock();
    const t = await UdpTransport.bind({ clock });
    try {
      const c = slowReceiver(t, clock, 200);
      // 3 high-lane messages first (they take 600 ms), then 8 INVITEs and a CANCEL all read at t=0:
      // by the time the low lane is served every one of them is 600 ms old.
      burst(t.local.port, [...Array.from({ length: 8 }, (_, i) => req('INVITE', i)), req('CANCEL', 0), resp(1), req('BYE', 1), resp(2)]);
      await c.until(3);
      await turns();
      expect(c.got).toEqual(['resp-1', 'bye-1', 'resp-2']);
      expect(t.stats).toMatchObject({ queued: 0, shed: 9, dropped: 0 });
      // A retransmission read now is fresh, and served.
      burst(t.local.port, [req('INVITE', 0)]);
      await c.until(4);
      expect(c.got[3]).toBe('invite-0');
      expect(t.stats.shed).toBe(9);
    } finally {
      await t.close();
    }
  });

  it('serves the head of the low lane while it is within the bound (inboxMaxAgeMs), in order', async () => {
    const clock = new FakeClock();
    const t = await UdpTransport.bind({ clock, inboxMaxAgeMs: 1000 });
    try {
      const c = slowReceiver(t, clock, 300);
      // Ages when reached: 0, 300, 600, 900, then 1200: the last two are shed.
      burst(t.local.port, Array.from({ length: 6 }, (_, i) => req('INVITE', i)));
      await c.until(4);
      await turns();
      expect(c.got).toEqual(['invite-0', 'invite-1', 'invite-2', 'invite-3']);
      expect(t.stats).toMatchObject({ queued: 0, shed: 2 });
    } finally {
      await t.close();
    }
  });

  it('inboxMaxAgeMs: Infinity never sheds', async () => {
    const clock = new FakeClock();
    const t = await UdpTransport.bind({ clock, inboxMaxAgeMs: Infinity });
    try {
      const c = slowReceiver(t, clock, 1000);
      burst(t.local.port, Array.from({ length: 10 }, (_, i) => req('INVITE', i)));
      await c.until(10);
      expect(t.stats.shed).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('takes zero, negative or NaN as the default bound (T1 = 500 ms): zero would shed every INVITE the moment it is read', async () => {
    for (const [given, used] of [[0, 500], [-1, 500], [Number.NaN, 500], [undefined, 500], [2000, 2000], [Infinity, Infinity]] as const) {
      const t = await UdpTransport.bind({ inboxMaxAgeMs: given });
      try {
        expect(t.inboxMaxAgeMs).toBe(used);
      } finally {
        await t.close();
      }
    }
  });
});
