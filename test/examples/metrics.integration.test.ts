import { afterEach, describe, expect, it } from 'vitest';
import { parsePrometheus, valueOf } from '../support/prometheus.js';
import { dial, DOMAIN, http, trunkWithGateway, until, type TrunkSetup } from './page-harness.js';

const setups: TrunkSetup[] = [];
afterEach(async () => {
  await Promise.all(setups.splice(0).map((s) => s.stop()));
});

async function trunk(extra: Record<string, unknown> = {}): Promise<TrunkSetup> {
  const s = await trunkWithGateway(extra);
  setups.push(s);
  return s;
}

describe('trunk /metrics and /healthz over HTTP', () => {
  it('/healthz answers 200 without a token; /metrics wants the token and parses as Prometheus text', async () => {
    const s = await trunk();
    expect(await http(s, '/healthz', null)).toMatchObject({ status: 200, json: { status: 'ok' } });
    const refused = await http(s, '/metrics', null);
    expect(refused).toMatchObject({ status: 401, json: { error: { code: 'unauthorized' } } });
    expect((await http(s, '/metrics', 'wrong')).status).toBe(401);
    const ok = await http(s, '/metrics');
    expect(ok.status).toBe(200);
    expect(ok.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const { types, help } = parsePrometheus(ok.text);
    for (const name of ['sipkit_trunk_active_calls', 'sipkit_trunk_calls_started_total', 'sipkit_trunk_transactions', 'sipkit_trunk_dialogs', 'sipkit_trunk_sip_retransmissions_total', 'sipkit_trunk_parse_errors_total', 'sipkit_trunk_event_loop_lag_seconds', 'sipkit_trunk_heap_used_bytes', 'sipkit_trunk_auth_challenges_total', 'sipkit_trunk_udp_inbox_queued', 'sipkit_trunk_udp_inbox_dropped_total', 'sipkit_trunk_udp_inbox_shed_total', 'sipkit_trunk_udp_send_threads', 'sipkit_trunk_udp_send_thread_datagrams_total']) {
      expect(types.has(name), name).toBe(true);
      expect(help.get(name)).toBeTruthy();
    }
  });

  it('counts a real call: the 407 challenge, the call by trunk, answered, then ended; a wrong password is a rejection', async () => {
    const s = await trunk();
    const c = dial(s, '+4930123');
    await c.answered;
    let m = parsePrometheus((await http(s, '/metrics')).text).samples;
    expect(valueOf(m, 'sipkit_trunk_active_calls')).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_calls_started_total', { trunk: DOMAIN })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_calls_answered_total', { trunk: DOMAIN })).toBe(1);
    // The trunk's UDP listener sends through its worker thread: the 407, the INVITE out, the 200 back.
    if (process.platform === 'linux') {
      expect(valueOf(m, 'sipkit_trunk_udp_send_threads')).toBe(1);
      expect(valueOf(m, 'sipkit_trunk_udp_send_thread_datagrams_total', { state: 'posted' })).toBeGreaterThanOrEqual(3);
    }
    expect(valueOf(m, 'sipkit_trunk_auth_challenges_total', { reason: 'MISSING_CREDENTIALS' })).toBe(1);
    // The challenge went out statelessly (no transaction): counted by status.
    expect(valueOf(m, 'sipkit_trunk_stateless_rejections_total', { status: '407' })).toBe(1);
    expect(valueOf(m, 'sipkit_trunk_dialogs')).toBe(2);
    expect(valueOf(m, 'sipkit_trunk_sip_messages_total', { direction: 'in', transport: 'udp' })).toBeGreaterThanOrEqual(5);
    await c.call.hangup();
    const wrong = dial(s, '+4930123', 'not-the-password');
    expect(await wrong.failed).toBe(407);
    m = await until(async () => {
      const x = parsePrometheus((await http(s, '/metrics')).text).samples;
      return valueOf(x, 'sipkit_trunk_active_calls') === 0 && valueOf(x, 'sipkit_trunk_auth_rejections_total', { reason: 'BAD_RESPONSE' }) === 1 ? x : undefined;
    }, 'the call to end and the rejection');
    expect(valueOf(m, 'sipkit_trunk_calls_ended_total', { trunk: DOMAIN, class: '2xx' })).toBe(1);
  });

  it('metrics.public serves /metrics without the token', async () => {
    const s = await trunk({ metrics: { public: true } });
    expect((await http(s, '/metrics', null)).status).toBe(200);
  });

  it('/healthz answers 503 while the trunk drains', async () => {
    const s = await trunk({ shutdown: { mode: 'drain', drainSeconds: 30 } });
    const c = dial(s, '+4930123');
    await c.answered;
    const stopped = s.trunk.stop('drain');
    expect(await http(s, '/healthz', null)).toMatchObject({ status: 503, json: { status: 'stopping' } });
    await c.call.hangup();
    await stopped;
  });
});
