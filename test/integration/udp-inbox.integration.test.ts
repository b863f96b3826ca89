// The UDP inbox on real loopback sockets (issue #16): the socket is read fast and what was read is
// handed over by priority. To put a burst in the kernel's receive buffer before our event loop
// reads any of it, a child `node -e` sends it while execFileSync blocks this process: libuv then
// reads the whole burst (up to 32 datagrams) in one poll, before the inbox's drain runs.
import { describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { burst, collect, req, resp, turns } from '../support/udp-burst.js';

describe('UdpTransport inbox: read fast, process by priority (real sockets, 127.0.0.1)', () => {
  it('delivers a response before the INVITEs that arrived ahead of it, and the INVITEs in their order', async () => {
    const t = await UdpTransport.bind();
    try {
      const c = collect(t);
      const invites = Array.from({ length: 20 }, (_, i) => req('INVITE', i));
      burst(t.local.port, [...invites, resp(1)]);
      await c.until(21);
      expect(c.got).toEqual(['resp-1', ...Array.from({ length: 20 }, (_, i) => `invite-${i}`)]);
      await turns();
      expect(t.stats).toMatchObject({ queued: 0, dropped: 0 });
      expect(t.stats.maxQueued).toBeGreaterThanOrEqual(21);
    } finally {
      await t.close();
    }
  });

  it('keeps arrival order within each lane: BYE before ACK, INVITE before CANCEL, the lanes interleaved by priority', async () => {
    const t = await UdpTransport.bind();
    try {
      const c = collect(t);
      burst(t.local.port, [req('INVITE', 'a'), req('BYE', 1), req('CANCEL', 'a'), req('ACK', 1), req('INVITE', 'b'), resp(2), req('OPTIONS', 1)]);
      await c.until(7);
      expect(c.got).toEqual([
        'bye-1',
        'ack-1',
        'resp-2',
        'options-1',
        'invite-a',
        'cancel-a',
        'invite-b',
      ]);
    } finally {
      await t.close();
    }
  });

  it('drops and counts new INVITEs beyond the low lane cap, while a response in the same burst is delivered', async () => {
    const t = await UdpTransport.bind({ inboxLimit: { datagrams: 5 } });
    try {
      const c = collect(t);
      burst(t.local.port, [...Array.from({ length: 20 }, (_, i) => req('INVITE', i)), resp(3)]);
      await c.until(6);
      await turns();
      expect(c.got).toEqual(['resp-3', ...Array.from({ length: 5 }, (_, i) => `invite-${i}`)]);
      expect(t.stats).toMatchObject({ queued: 0, dropped: 15, droppedLow: 15, droppedHigh: 0, droppedOnClose: 0, maxQueued: 6 });
    } finally {
      await t.close();
    }
  });

  it('caps the high lane too: responses beyond it are dropped and counted', async () => {
    const t = await UdpTransport.bind({ highInboxLimit: { datagrams: 3 } });
    try {
      const c = collect(t);
      burst(t.local.port, Array.from({ length: 8 }, (_, i) => resp(i)));
      await c.until(3);
      await turns();
      expect(c.got).toEqual(['resp-0', 'resp-1', 'resp-2']);
      expect(t.stats).toMatchObject({ queued: 0, dropped: 5, droppedHigh: 5, droppedLow: 0 });
    } finally {
      await t.close();
    }
  });

  it('close() drops what is still queued, counted, and delivers nothing afterwards', async () => {
    const t = await UdpTransport.bind();
    let closing: Promise<void> | undefined;
    const c = collect(t, () => {
      closing ??= t.close();
    });
    burst(t.local.port, [...Array.from({ length: 10 }, (_, i) => req('INVITE', i)), resp(4)]);
    await c.until(1);
    await closing;
    await turns();
    expect(c.got).toEqual(['resp-4']);
    expect(t.stats).toMatchObject({ queued: 0, dropped: 10, droppedOnClose: 10 });
  });
});
