import { describe, expect, it } from 'vitest';
import { createMetrics, fingerprint } from '../../examples/trunk-server/metrics.js';
import { parsePrometheus, valueOf } from '../support/prometheus.js';
import { dial, GATEWAY, run, setup } from './parts-harness.js';

describe('the Prometheus text parser of these tests', () => {
  it('accepts the format and refuses what breaks it', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1",y="q\\"\\\\\\n"} 3\na_total 4\n# TYPE g gauge\ng 1.5e-3\n';
    expect(parsePrometheus(ok).samples).toEqual([
      { name: 'a_total', labels: { x: '1', y: 'q"\\\n' }, value: 3 },
      { name: 'a_total', labels: {}, value: 4 },
      { name: 'g', labels: {}, value: 0.0015 },
    ]);
    for (const bad of [
      'g 1\n', // no TYPE
      '# TYPE g gauge\ng 1', // no final newline
      '# TYPE g gauge\ng{x="a} 1\n',
      '# TYPE g gauge\ng{x="\\q"} 1\n',
      '# TYPE g gauge\ng x\n',
      '# TYPE g gauge\ng 1\ng 2\n',
      '# TYPE c counter\nc 1\n',
      '# TYPE g gauge\n# TYPE g gauge\n',
      '# TYPE g gauge\n# TYPE h gauge\ng 1\nh 1\ng{a="b"} 1\n',
      '# TYPE 1g gauge\n',
    ]) expect(() => parsePrometheus(bad), bad).toThrow();
  });
});

describe('metrics on a plain B2bua', () => {
  it('counts calls by trunk and class, live transactions and dialogs, messages and bytes by direction', async () => {
    const s = setup({
      authenticate: () => ({ ok: true, tags: { domain: 'pbx.example.test' } }),
      route: (req) => (req.requestUri.toString().includes('+404') ? { reject: 404 } : [{ uri: `sip:+1@${GATEWAY}:5060` }]),
      trace: (...a) => metrics.trace(...a),
    });
    const metrics = createMetrics(s.b2bua, { eventLoop: false });
    const answered = dial(s, 'sip:+1@pbx.example.test');
    dial(s, 'sip:+404@pbx.example.test');
    await run(s);
    let m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_active_calls')).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_calls_started_total', { trunk: 'pbx.example.test' })).toBe(2);
    expect(valueOf(m, 'sipkit_trunk_calls_answered_total', { trunk: 'pbx.example.test' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_calls_failed_total', { trunk: 'pbx.example.test', class: '4xx' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_dialogs')).toBe(s.b2bua.stats.dialogs);
    expect(valueOf(m, 'sipkit_trunk_dialogs')).toBeGreaterThanOrEqual(2);
    expect(valueOf(m, 'sipkit_trunk_transactions')).toBe(s.b2bua.stats.transactions);
    // What the network carried to and from the trunk, counted by the trace hook.
    const toTrunk = s.net.log.filter((p) => p.to.address === '10.0.0.5');
    const fromTrunk = s.net.log.filter((p) => p.from.address === '10.0.0.5');
    expect(valueOf(m, 'sipkit_trunk_sip_messages_total', { direction: 'in', transport: 'udp' })).toBe(toTrunk.length);
    expect(valueOf(m, 'sipkit_trunk_sip_messages_total', { direction: 'out', transport: 'udp' })).toBe(fromTrunk.length);
    expect(valueOf(m, 'sipkit_trunk_sip_bytes_total', { direction: 'in', transport: 'udp' })).toBeGreaterThan(toTrunk.length * 100);
    void answered.call.hangup();
    await run(s);
    m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_active_calls')).toBe(0);
    expect(valueOf(m, 'sipkit_trunk_calls_ended_total', { trunk: 'pbx.example.test', class: '2xx' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_calls_ended_total', { trunk: 'pbx.example.test', class: '4xx' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'out' })).toBe(0);
    metrics.close();
  });

  it('counts a byte-identical message seen again as a retransmission, per direction, and forgets after the window', () => {
    const s = setup({ route: () => [] });
    const metrics = createMetrics(s.b2bua, { eventLoop: false, recentMessages: 3 });
    const udp = { protocol: 'udp' };
    const peer = { address: '10.0.0.1', port: 5060 };
    const msg = (n: number) => Buffer.from(`OPTIONS sip:x SIP/2.0\r\nCSeq: ${n} OPTIONS\r\n\r\n`);
    metrics.trace('out', msg(1), peer, udp);
    metrics.trace('out', msg(1), peer, udp); // retransmitted
    metrics.trace('in', msg(1), peer, udp); // the same bytes the other way: not a retransmission of ours
    metrics.trace('out', msg(2), peer, udp);
    metrics.trace('out', msg(3), peer, udp);
    metrics.trace('out', msg(4), peer, udp);
    metrics.trace('out', msg(1), peer, udp); // out of the 3-message window by now
    const m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'out' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'in' })).toBe(0);
    expect(valueOf(m, 'sipkit_trunk_sip_messages_total', { direction: 'out', transport: 'udp' })).toBe(6);
    metrics.close();
  });

  it('counts retransmissions in both directions under their own label (not the second one seen as "other")', () => {
    const s = setup({ route: () => [] });
    const metrics = createMetrics(s.b2bua, { eventLoop: false });
    const udp = { protocol: 'udp' };
    const peer = { address: '10.0.0.1', port: 5060 };
    const msg = (n: number) => Buffer.from(`OPTIONS sip:x SIP/2.0\r\nCSeq: ${n} OPTIONS\r\n\r\n`);
    for (const direction of ['in', 'out', 'in'] as const) {
      metrics.trace(direction, msg(1), peer, udp);
      metrics.trace(direction, msg(1), peer, udp);
    }
    const m = parsePrometheus(metrics.render()).samples;
    // 'in' twice (its third and fourth copies), 'out' once.
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'in' })).toBe(3);
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'out' })).toBe(1);
    expect(m.filter((x) => x.name === 'sipkit_trunk_sip_retransmissions_total').length).toBe(2);
    metrics.close();
  });

  it('finds a retransmission whatever the alignment of its bytes, and forgets exactly what leaves the window', () => {
    const s = setup({ route: () => [] });
    const size = 64;
    const metrics = createMetrics(s.b2bua, { eventLoop: false, recentMessages: size });
    const udp = { protocol: 'udp' };
    const peer = { address: '10.0.0.1', port: 5060 };
    const text = (n: number) => `INVITE sip:${n}@x SIP/2.0\r\nCSeq: ${n} INVITE\r\nContent-Length: 0\r\n\r\n`;
    // The same message at every offset in a larger buffer: one retransmission after another.
    const big = Buffer.alloc(4096);
    let expected = 0;
    let sent = 0;
    const send = (n: number, offset: number) => {
      const len = big.write(text(n), offset, 'latin1');
      metrics.trace('out', big.subarray(offset, offset + len), peer, udp);
      sent++;
    };
    for (let offset = 0; offset < 8; offset++) {
      send(1, offset);
      if (offset > 0) expected++;
    }
    // Fill the window with other messages, many times over: the table's deletions keep every remembered one findable.
    for (let n = 2; n < 2 + 5 * size; n++) send(n, n & 7);
    for (let n = 2 + 4 * size; n < 2 + 5 * size; n++) {
      send(n, (n + 3) & 7); // still within the last `size`
      expected++;
    }
    send(1, 0); // long gone
    const m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'out' })).toBe(expected);
    expect(valueOf(m, 'sipkit_trunk_sip_messages_total', { direction: 'out', transport: 'udp' })).toBe(sent);
    metrics.close();
  });

  it('counts as a plain list of the last N messages would, a message coming as its own copy leaves the window included', () => {
    const s = setup({ route: () => [] });
    const size = 4;
    const metrics = createMetrics(s.b2bua, { eventLoop: false, recentMessages: size });
    const udp = { protocol: 'udp' };
    const peer = { address: '10.0.0.1', port: 5060 };
    const msgs = [1, 2, 3, 4, 5, 6].map((n) => Buffer.from(`OPTIONS sip:x SIP/2.0\r\nCSeq: ${n} OPTIONS\r\n\r\n`));
    // The same message exactly `size` messages later (its copy leaving the window as it comes), then in a seeded random mix.
    const order = [0, 1, 2, 3, 0, 1, 0, 0, 4, 5, 4];
    let seed = 7;
    for (let k = 0; k < 2000; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      order.push((seed >>> 16) % msgs.length);
    }
    const last: number[] = [];
    let expected = 0;
    for (const i of order) {
      if (last.includes(i)) expected++;
      last.push(i);
      if (last.length > size) last.shift();
      metrics.trace('in', msgs[i]!, peer, udp);
    }
    const m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_sip_retransmissions_total', { direction: 'in' })).toBe(expected);
    metrics.close();
  });

  it('fingerprints every byte of a message: a change at any position, or one byte more, gives another fingerprint', () => {
    for (const length of [0, 1, 3, 4, 5, 8, 37, 600]) {
      const base = Buffer.alloc(length, 0x41);
      const seen = new Set([fingerprint(base)]);
      expect(fingerprint(Buffer.from(base))).toBe(fingerprint(base));
      // Not on a multiple of 4 (read from bytes, not through an Int32Array view): the same fingerprint.
      const shifted = Buffer.alloc(length + 3);
      base.copy(shifted, 3);
      expect(fingerprint(shifted.subarray(3))).toBe(fingerprint(base));
      for (let i = 0; i < length; i++) {
        const changed = Buffer.from(base);
        changed[i] = 0x42;
        seen.add(fingerprint(changed));
      }
      seen.add(fingerprint(Buffer.alloc(length + 1, 0x41)));
      expect(seen.size).toBe(length + 2);
    }
  });

  it('reads the UDP listeners\' inboxes when scraped: datagrams queued (sum), the most ever queued (max), drops by lane, stale new requests shed', () => {
    const s = setup({ route: () => [] });
    const stats = (queued: number, maxQueued: number, droppedLow: number, droppedHigh: number, droppedOnClose: number, shed = 0) => ({
      shed,
      queued,
      maxQueued,
      droppedLow,
      droppedHigh,
      droppedOnClose,
      dropped: droppedLow + droppedHigh + droppedOnClose,
    });
    let inboxes = [stats(3, 40, 7, 1, 0, 4), stats(2, 90, 5, 0, 2, 6)];
    const metrics = createMetrics(s.b2bua, { eventLoop: false, udpInboxes: () => inboxes });
    let m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_queued')).toBe(5);
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_max_queued')).toBe(90);
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_dropped_total', { lane: 'new' })).toBe(12);
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_dropped_total', { lane: 'under_way' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_dropped_total', { lane: 'closed' })).toBe(2);
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_shed_total')).toBe(10);
    inboxes = [stats(0, 90, 12, 1, 2)];
    m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_udp_inbox_queued')).toBe(0);
    metrics.close();
  });

  it('reads the UDP send threads when scraped: threads sending now, datagrams posted, sent and refused (summed)', () => {
    const s = setup({ route: () => [] });
    let threads = [
      { active: true, posted: 10, sent: 9, refused: 2 },
      { active: false, posted: 5, sent: 5, refused: 7 },
    ];
    const metrics = createMetrics(s.b2bua, { eventLoop: false, udpSendThreads: () => threads });
    let m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_udp_send_threads')).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_udp_send_thread_datagrams_total', { state: 'posted' })).toBe(15);
    expect(valueOf(m, 'sipkit_trunk_udp_send_thread_datagrams_total', { state: 'sent' })).toBe(14);
    expect(valueOf(m, 'sipkit_trunk_udp_send_thread_datagrams_total', { state: 'refused' })).toBe(9);
    threads = [];
    m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_udp_send_threads')).toBe(0);
    metrics.close();
  });

  it("counts the auth part's challenges, rejections and throttling from its log events, and still logs them", () => {
    const s = setup({ route: () => [] });
    let throttledNow = 3;
    const metrics = createMetrics(s.b2bua, { eventLoop: false, throttledSources: () => throttledNow });
    const logged: string[] = [];
    const log = metrics.countAuth((level, event) => logged.push(`${level} ${event}`));
    log('debug', 'auth.challenge', { reason: 'MISSING_CREDENTIALS' });
    log('debug', 'auth.challenge', { reason: 'MISSING_CREDENTIALS' });
    log('warn', 'auth.rejected', { reason: 'BAD_RESPONSE' });
    log('warn', 'auth.rejected', { reason: 'THROTTLED' });
    log('warn', 'auth.rejected', { reason: 'x"\n{}' });
    log('info', 'call.created', {});
    const m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_auth_challenges_total', { reason: 'MISSING_CREDENTIALS' })).toBe(2);
    expect(valueOf(m, 'sipkit_trunk_auth_rejections_total', { reason: 'BAD_RESPONSE' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_auth_rejections_total', { reason: 'other' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_auth_throttled_total')).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_auth_throttled_sources')).toBe(3);
    throttledNow = 0;
    expect(valueOf(parsePrometheus(metrics.render()).samples, 'sipkit_trunk_auth_throttled_sources')).toBe(0);
    expect(logged).toHaveLength(6);
    metrics.close();
  });

  it('counts a label set into the same series before and after its cache of series keys is full', () => {
    const s = setup({ route: () => [] });
    const metrics = createMetrics(s.b2bua, { eventLoop: false });
    const log = metrics.countAuth();
    log('warn', 'auth.rejected', { reason: 'BAD_RESPONSE' });
    // Far more reasons than the 32 series and the keys remembered for them (4 per series).
    for (let i = 0; i < 500; i++) log('warn', 'auth.rejected', { reason: `R${i}` });
    log('warn', 'auth.rejected', { reason: 'BAD_RESPONSE' });
    log('warn', 'auth.rejected', { reason: 'R499' });
    log('warn', 'auth.rejected', { reason: 'R3' });
    const m = parsePrometheus(metrics.render()).samples;
    expect(valueOf(m, 'sipkit_trunk_auth_rejections_total', { reason: 'BAD_RESPONSE' })).toBe(2);
    expect(valueOf(m, 'sipkit_trunk_auth_rejections_total', { reason: 'R3' })).toBe(2);
    expect(valueOf(m, 'sipkit_trunk_auth_rejections_total', { reason: 'other' })).toBe(500 - 30 + 1);
    metrics.close();
  });

  it('reports event-loop lag and heap, and bounds label sets', () => {
    const s = setup({ route: () => [] });
    const metrics = createMetrics(s.b2bua);
    const log = metrics.countAuth();
    for (let i = 0; i < 100; i++) log('warn', 'auth.rejected', { reason: `R${i}` });
    const { samples, types } = parsePrometheus(metrics.render());
    expect(types.get('sipkit_trunk_event_loop_lag_seconds')).toBe('gauge');
    expect(samples.filter((x) => x.name === 'sipkit_trunk_event_loop_lag_seconds').map((x) => x.labels.quantile)).toEqual(['0.5', '0.99', '1']);
    expect(valueOf(samples, 'sipkit_trunk_heap_used_bytes')).toBeGreaterThan(1_000_000);
    // 31 reasons of their own, the rest under "other".
    expect(samples.filter((x) => x.name === 'sipkit_trunk_auth_rejections_total')).toHaveLength(32);
    expect(valueOf(samples, 'sipkit_trunk_auth_rejections_total', { reason: 'other' })).toBe(69);
    metrics.close();
  });
});
