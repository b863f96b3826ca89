import { describe, expect, it } from 'vitest';
import { UdpInbox, isNewWork, type UdpInboxLimit } from '../../src/transport/udp-inbox.js';

const b = (s: string) => Buffer.from(s, 'latin1');

describe('UDP inbox lane of a datagram, from its first bytes', () => {
  it('puts INVITE and CANCEL requests (new work) in the low lane, after any leading CRLF', () => {
    expect(isNewWork(b('INVITE sip:a@b SIP/2.0\r\n'))).toBe(true);
    expect(isNewWork(b('CANCEL sip:a@b SIP/2.0\r\n'))).toBe(true);
    expect(isNewWork(b('\r\n\r\nINVITE sip:a@b SIP/2.0\r\n'))).toBe(true);
  });

  it('puts responses, other requests, keep-alives and garbage in the high lane', () => {
    for (const s of ['SIP/2.0 200 OK\r\n', 'SIP/2.0 180 Ringing\r\n', 'ACK sip:a@b SIP/2.0', 'BYE sip:a@b SIP/2.0', 'PRACK sip:a SIP/2.0', 'OPTIONS sip:a SIP/2.0', 'UPDATE sip:a SIP/2.0', 'INVITEX sip:a SIP/2.0', 'INVITE', 'invite sip:a SIP/2.0', 'CANCELED x', '\r\n\r\n', '']) {
      expect(isNewWork(b(s)), s).toBe(false);
    }
  });
});

// Aging (issue #16): a new request that waited longer than its sender's retransmission interval
// (T1) has a fresher copy queued behind it; it is shed unparsed at the head of the low lane.
// The clock is a plain counter the deliveries advance: each delivery "takes" `cost` ms.
describe('UDP inbox: stale new requests are shed by age, with an injected clock', () => {
  const from = { address: '127.0.0.1', port: 5060 };
  const msg = (s: string) => b(s.startsWith('SIP/') ? `${s}\r\n\r\n` : `${s} sip:x SIP/2.0\r\n\r\n`);
  const turns = async (n = 5) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  function setup(options: { maxAgeMs?: number; cost?: number; low?: UdpInboxLimit; onDeliver?: (line: string) => void } = {}) {
    const clock = { t: 0, reads: 0 };
    const got: string[] = [];
    const inbox: UdpInbox = new UdpInbox(
      (m) => {
        const line = Buffer.from(m).toString('latin1').split('\r\n')[0]!;
        got.push(line.startsWith('SIP/') ? line : line.split(' sip:')[0]!);
        clock.t += options.cost ?? 0;
        options.onDeliver?.(got.at(-1)!);
      },
      options.low,
      {},
      {
        now: () => (clock.reads++, clock.t),
        maxAgeMs: options.maxAgeMs ?? 500,
      },
    );
    return { clock, got, inbox };
  }

  it('sheds the low lane heads older than the bound, counted, and serves the fresh ones', async () => {
    // Queued at t=0; each delivery takes 200 ms: I0 is 0 ms old when handed over, I1 200, I2 400, I3 600.
    const { got, inbox, clock } = setup({ cost: 200 });
    for (let i = 0; i < 6; i++) inbox.push(msg('INVITE'), from);
    await turns();
    expect(got).toEqual(['INVITE', 'INVITE', 'INVITE']);
    expect(inbox.stats).toMatchObject({ queued: 0, shed: 3, dropped: 0, droppedLow: 0 });
    // A request read after that drain is dated anew (t=600) and is served.
    expect(clock.t).toBe(600);
    inbox.push(msg('CANCEL'), from);
    await turns();
    expect(got).toEqual(['INVITE', 'INVITE', 'INVITE', 'CANCEL']);
    expect(inbox.stats.shed).toBe(3);
  });

  it('sheds at age strictly greater than the bound', async () => {
    const { got, inbox } = setup({ cost: 250 });
    for (let i = 0; i < 4; i++) inbox.push(msg('INVITE'), from);
    await turns();
    // Handed over at ages 0, 250, 500; the fourth would be 750.
    expect(got).toEqual(['INVITE', 'INVITE', 'INVITE']);
    expect(inbox.stats.shed).toBe(1);
  });

  it('never sheds the high lane by age, and serves it before the low lane', async () => {
    // Ten responses and two BYEs queued at t=0 with an INVITE; each takes 200 ms: the last one
    // waits 2.2 s and is still delivered, while the INVITE behind them is shed.
    const { got, inbox } = setup({ cost: 200 });
    inbox.push(msg('INVITE'), from);
    for (let i = 0; i < 10; i++) inbox.push(msg('SIP/2.0 200 OK'), from);
    inbox.push(msg('BYE'), from);
    inbox.push(msg('ACK'), from);
    await turns();
    expect(got).toEqual([...Array<string>(10).fill('SIP/2.0 200 OK'), 'BYE', 'ACK']);
    expect(inbox.stats).toMatchObject({ queued: 0, shed: 1, dropped: 0 });
  });

  it('reads the clock once per batch read between two drains, not per datagram', async () => {
    const { inbox, clock, got } = setup();
    for (let i = 0; i < 100; i++) inbox.push(msg('INVITE'), from);
    expect(clock.reads).toBe(1);
    // The datagrams of one batch share their date: 100 INVITEs, all queued "at t=0".
    clock.t = 400;
    inbox.push(msg('INVITE'), from);
    expect(clock.reads).toBe(1);
    await turns(10);
    expect(got).toHaveLength(101);
    expect(inbox.stats.shed).toBe(0);
  });

  it('makes room in a full low lane by shedding its stale heads before refusing a new request', async () => {
    // Cap 2. I0 and I1 queued at t=0; while I0 is handled the clock reaches 600 and two new
    // INVITEs come: the first fits, the second finds the lane full, and I1 (600 ms old) is shed for it.
    let pushed = false;
    const s = setup({
      low: { datagrams: 2 },
      onDeliver: () => {
        if (pushed) return;
        pushed = true;
        s.clock.t = 600;
        s.inbox.push(msg('CANCEL'), from);
        s.inbox.push(msg('CANCEL'), from);
      },
    });
    const { got, inbox } = s;
    inbox.push(msg('INVITE'), from);
    inbox.push(msg('INVITE'), from);
    await turns();
    expect(got).toEqual(['INVITE', 'CANCEL', 'CANCEL']);
    expect(inbox.stats).toMatchObject({ shed: 1, droppedLow: 0, dropped: 0, queued: 0 });
  });

  it('with an infinite bound sheds nothing and reads no clock for it', async () => {
    const { got, inbox, clock } = setup({ cost: 1000, maxAgeMs: Infinity });
    for (let i = 0; i < 5; i++) inbox.push(msg('INVITE'), from);
    expect(clock.reads).toBe(0);
    await turns();
    expect(got).toHaveLength(5);
    expect(inbox.stats.shed).toBe(0);
  });
});

describe('UDP inbox slices', () => {
  it('hands over fewer messages per event-loop turn than libuv reads per turn (32), so a backlog builds here, not in the kernel', async () => {
    let got = 0;
    const inbox = new UdpInbox(() => void got++);
    const from = { address: '127.0.0.1', port: 5060 };
    for (let i = 0; i < 100; i++) inbox.push(b('SIP/2.0 200 OK\r\n\r\n'), from);
    await new Promise((r) => setImmediate(r));
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(32);
    for (let i = 0; i < 10 && got < 100; i++) await new Promise((r) => setImmediate(r));
    expect(got).toBe(100);
  });
});
