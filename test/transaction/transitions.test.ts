import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import {
  createNon2xxAck,
  type InviteServerTransaction,
  type ServerTransaction,
  type TransactionTransition,
} from '../../src/transaction/index.js';
import { pair, send, T1, type Pair } from '../support/tx-harness.js';

/** Both layers report to one recorder; each transaction's path is kept apart, in order. */
function traced(options: Parameters<typeof pair>[0] = {}) {
  const steps: TransactionTransition[] = [];
  const p = pair({ ...options, layer: { onTransition: (t) => steps.push(t) } });
  const path = (kind: string) =>
    steps.filter((t) => t.transaction.kind === kind).map((t) => (t.ignored ? `${t.from} absorbs ${t.event}` : `${t.from} -${t.event}-> ${t.to}`));
  return { p, steps, path };
}

const serverTx = (p: Pair) => p.bUser.requests[0]!.tx;

describe('onTransition: each machine through a full RFC flow, compared with its figure', () => {
  it('INVITE answered 2xx (RFC 3261 Figures 5 and 7 as replaced by RFC 6026 §7.1, §7.2)', () => {
    const { p, steps, path } = traced();
    let invites = 0;
    // The first INVITE is lost: Timer A fires in Calling.
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('INVITE') && invites++ === 0 ? 'drop' : undefined);
    const { tx: client, rec, req: sent } = send(p, 'INVITE');
    p.clock.advance(T1 + 10);
    // The TU is slow: 100 Trying after 200 ms.
    p.clock.advance(200);
    const server = serverTx(p) as InviteServerTransaction;
    const ok = createResponse(server.request!, 200, { toTag: 'b1' });
    server.respond(createResponse(server.request!, 180, { toTag: 'b1' }));
    p.clock.advance(10);
    server.respond(ok);
    p.clock.advance(10);
    // The UAS core retransmits its 2xx (§13.3.1.4): the client passes it up again.
    server.respond(ok);
    p.clock.advance(10);
    // The INVITE arrives once more (a retransmission still in flight): absorbed, not a new call.
    const invite = p.net.packets('INVITE')[1]!;
    p.b.receive(invite.bytes, invite.from, p.bT);
    // An ACK that matches the transaction (an RFC 2543 peer's) goes to the TU from Accepted.
    p.a.sendStateless(createNon2xxAck(sent, ok), { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.bUser.acks).toHaveLength(1);
    p.clock.advance(64 * T1);

    expect(path('invite-client')).toEqual([
      'calling -timer_A-> calling',
      'calling -1xx-> proceeding', // 100 Trying
      'proceeding -1xx-> proceeding', // 180
      'proceeding -2xx-> accepted',
      'accepted -2xx-> accepted',
      'accepted -timer_M-> terminated',
    ]);
    expect(path('invite-server')).toEqual([
      'proceeding -timer_trying-> proceeding',
      'proceeding -tu_1xx-> proceeding',
      'proceeding -tu_2xx-> accepted',
      'accepted -tu_2xx-> accepted',
      'accepted -request_retransmission-> accepted',
      'accepted -ack-> accepted',
      'accepted -timer_L-> terminated',
    ]);
    expect(rec.statuses).toEqual([100, 180, 200, 200]);
    // Each step carries its transaction and the layer clock's time, in order.
    const clientSteps = steps.filter((t) => t.transaction === client);
    expect(clientSteps).toHaveLength(6);
    expect(clientSteps[0]!.at).toBe(1_000_000 + T1);
    expect(clientSteps.map((t) => t.at)).toEqual([...clientSteps.map((t) => t.at)].sort((x, y) => x - y));
  });

  it('INVITE rejected (Figures 5 and 7): Timer G until the ACK, Confirmed, Timer I; Completed re-ACKs, Timer D', () => {
    const { p, path } = traced();
    const { tx: client, rec } = send(p, 'INVITE');
    p.clock.advance(210); // 100 Trying from the server transaction: the client is in Proceeding
    const server = serverTx(p) as InviteServerTransaction;
    let busy = 0;
    let acks = 0;
    // The first 486 and the first ACK are lost.
    p.net.filter = (pkt) =>
      (pkt.firstLine.startsWith('SIP/2.0 486') && busy++ === 0) || (pkt.firstLine.startsWith('ACK') && acks++ === 0) ? 'drop' : undefined;
    server.respond(createResponse(server.request!, 486, { toTag: 'b1' }));
    p.clock.advance(T1 + 10); // Timer G: the 486 again, the client ACKs (lost)
    p.clock.advance(2 * T1); // Timer G at 2·T1: the 486 again, the client re-ACKs
    expect(server.state).toBe('confirmed');
    p.clock.advance(32_000);

    expect(path('invite-client')).toEqual([
      'calling -1xx-> proceeding',
      'proceeding -300-699-> completed',
      'completed -300-699-> completed',
      'completed -timer_D-> terminated',
    ]);
    expect(path('invite-server')).toEqual([
      'proceeding -timer_trying-> proceeding',
      'proceeding -tu_300-699-> completed',
      'completed -timer_G-> completed',
      'completed -timer_G-> completed',
      'completed -ack-> confirmed',
      'confirmed -timer_I-> terminated',
    ]);
    expect(rec.statuses).toEqual([100, 486]);
    expect(client.terminated).toBe(true);
  });

  it('non-INVITE (Figures 6 and 8): Timer E backs off, Trying absorbs, Proceeding resends, Timers K and J end them', () => {
    const { p, path } = traced();
    let requests = 0;
    p.net.filter = (pkt) => (pkt.firstLine.startsWith('OPTIONS') && requests++ === 0 ? 'drop' : undefined);
    const { rec } = send(p, 'OPTIONS');
    p.clock.advance(T1 + 10); // Timer E: sent again, a new server transaction in Trying
    p.clock.advance(2 * T1); // Timer E at 2·T1: a retransmission Trying absorbs
    const server = serverTx(p) as ServerTransaction;
    server.respond(createResponse(server.request!, 100));
    p.clock.advance(10);
    p.clock.advance(4 * T1); // Timer E at 4·T1 (Proceeding resets it to T2): Proceeding resends the 100
    server.respond(createResponse(server.request!, 200, { toTag: 'b1' }));
    p.clock.advance(10);
    // The request once more after the final: Completed resends the 200, the client absorbs it.
    const options = p.net.packets('OPTIONS')[1]!;
    p.b.receive(options.bytes, options.from, p.bT);
    p.clock.advance(10);
    p.clock.advance(64 * T1);

    expect(path('non-invite-client')).toEqual([
      'trying -timer_E-> trying',
      'trying -timer_E-> trying',
      'trying -1xx-> proceeding',
      'proceeding -timer_E-> proceeding',
      'proceeding -1xx-> proceeding',
      'proceeding -200-699-> completed',
      'completed absorbs 200-699',
      'completed -timer_K-> terminated',
    ]);
    expect(path('non-invite-server')).toEqual([
      'trying absorbs request_retransmission',
      'trying -tu_1xx-> proceeding',
      'proceeding -request_retransmission-> proceeding',
      'proceeding -tu_final-> completed',
      'completed -request_retransmission-> completed',
      'completed -timer_J-> terminated',
    ]);
    expect(rec.statuses).toEqual([100, 100, 200]);
  });

  it('a respond() the state refuses is reported as absorbed, and close() reports abort', async () => {
    const { p, steps, path } = traced();
    p.bUser.answer = () => 200;
    send(p, 'OPTIONS');
    p.clock.advance(10);
    const server = serverTx(p);
    expect(server.respond(createResponse(p.bUser.requests[0]!.req, 500))).toBe(false);
    send(p, 'INVITE');
    p.clock.advance(1);
    await p.a.close();
    expect(path('non-invite-server')).toEqual(['trying -tu_final-> completed', 'completed absorbs tu_final']);
    expect(path('invite-client')).toEqual(['calling -abort-> terminated']);
    expect(steps.find((t) => t.event === 'abort')!.transaction.terminated).toBe(true);
  });

  it('a hook only observes: the same flow with and without one sends the same packets and ends the same', () => {
    const run = (hook: boolean) => {
      const p = pair(hook ? { layer: { onTransition: () => undefined } } : {});
      p.bUser.answer = () => 486;
      const { rec } = send(p, 'INVITE');
      p.clock.advance(64 * T1);
      return { statuses: rec.statuses, packets: p.net.packets(/./).map((x) => x.firstLine), stats: p.a.stats };
    };
    expect(run(true)).toEqual(run(false));
  });
});
