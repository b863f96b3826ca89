import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { TransactionLayer, type InviteServerTransaction } from '../../src/transaction/index.js';
import { FakeClock } from '../../src/transport/index.js';
import { pair, send, T1 } from '../support/tx-harness.js';

// Issue #16 target 3: a transaction waiting out its timers (Completed, Accepted; G/H, J, K, L, M)
// keeps its key and the bytes it may resend, not parsed messages or bytes it will never send.

const requestBytes = (tx: object) => (tx as { bytes: Uint8Array }).bytes.length;
const lastBytes = (tx: object) => (tx as { lastBytes: Uint8Array | string | undefined }).lastBytes;
/**
 * Bytes kept to resend through a wait (Timer G, J, D) are a one-byte string (keepBytes): neither
 * a slice of Node's 8 KiB buffer pool, which it would hold whole, nor a Buffer of its own, which
 * costs a typed array, an ArrayBuffer and a backing store beyond its bytes (issue #16).
 */
const keptAsText = (b: Uint8Array | string | undefined, response: string) => typeof b === 'string' && b.startsWith(response);

describe('wait-state transactions keep bytes, not parsed messages', () => {
  it('an INVITE server transaction in Accepted keeps no copy of its 2xx (the TU retransmits it); the client one in Accepted drops its INVITE bytes', () => {
    const p = pair();
    const { tx: client, rec } = send(p, 'INVITE');
    p.clock.advance(10);
    const server = p.bUser.requests[0]!.tx as InviteServerTransaction;
    const ok = createResponse(p.bUser.requests[0]!.req, 200);
    server.respond(ok);
    p.clock.advance(10);
    expect(server.state).toBe('accepted');
    // RFC 6026 §7.1: Accepted absorbs INVITE retransmissions without answering them; the 2xx is
    // the TU's to retransmit. A held call's INVITE transaction keeps neither the 200 nor its bytes.
    expect(server.lastResponse).toBeUndefined();
    expect(lastBytes(server)).toBeUndefined();
    expect(server.lastStatus).toBe(200);
    // The INVITE retransmitted is still absorbed: no new request for the TU, nothing sent.
    const sent = p.net.stats.sent;
    void p.aT.send(p.net.log.find((x) => x.firstLine.startsWith('INVITE'))!.bytes, { address: '10.0.0.2', port: 5060 });
    p.clock.advance(10);
    expect(p.bUser.requests).toHaveLength(1);
    expect(p.b.stats.retransmissionsAbsorbed).toBe(1);
    expect(p.net.stats.sent).toBe(sent + 1);
    // The client transaction in Accepted (Timer M) will never send its INVITE again: its bytes are gone.
    expect(client.state).toBe('accepted');
    expect(requestBytes(client)).toBe(0);
    expect(rec.statuses).toEqual([200]);
    p.clock.advance(64 * T1 + 10);
    expect(p.a.stats.transactions + p.b.stats.transactions).toBe(0);
  });

  it('a non-INVITE client transaction in Completed (Timer K) lets go of its request bytes; a server one keeps its final as bytes', () => {
    const p = pair();
    p.bUser.answer = () => 200;
    const { tx } = send(p, 'BYE');
    p.clock.advance(10);
    expect(tx.state).toBe('completed');
    expect(requestBytes(tx)).toBe(0);
    const server = p.bUser.requests[0]!.tx;
    expect(server.state).toBe('completed');
    expect((server as unknown as { provisional: unknown }).provisional).toBeUndefined();
    expect(server.lastResponse).toMatchObject({ status: 200 });
    // Timer J resends it for 64·T1: as a string of its own, not a slice of Node's 8 KiB pool,
    // which a kept slice would hold whole, nor a Buffer (issue #16).
    expect(keptAsText(lastBytes(server), 'SIP/2.0 200 ')).toBe(true);
  });

  it('2 000 server transactions in Accepted do not keep their requests: the key is a string of its own, not a chain over the request text', () => {
    // A key built by concatenation over the branch, a slice of the request's text, keeps the
    // whole text (V8 cons and sliced strings). Each INVITE here carries 4 KB of padding: kept,
    // they would cost ≥ 4 KB a transaction; what a transaction itself costs is far less.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const sink = { protocol: 'udp', reliable: false, local: { address: '10.0.0.2', port: 5060 }, setReceiver() {}, send: () => Promise.resolve(), close: () => Promise.resolve() };
    const layer = new TransactionLayer({
      transports: [sink],
      clock: new FakeClock(),
      tryingAfterMs: -1,
      user: { onRequest: (req, tx) => void tx.respond(createResponse(req, 200)) },
    });
    const padding = 'X-Padding: ' + 'p'.repeat(4096) + '\r\n';
    const receive = (i: number) =>
      layer.receive(
        Buffer.from(
          `INVITE sip:b@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-keep-${i}\r\nFrom: <sip:a@10.0.0.1>;tag=a${i}\r\n` +
            `To: <sip:b@10.0.0.2>\r\nCall-ID: keep-${i}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n${padding}Content-Length: 0\r\n\r\n`,
        ),
        { address: '10.0.0.1', port: 5060 },
        sink,
      );
    receive(-1);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 2000; i++) receive(i);
    gc();
    const perTransaction = (process.memoryUsage().heapUsed - before) / 2000;
    expect(layer.stats.transactions).toBe(2001);
    expect(perTransaction).toBeLessThan(2048);
  });

  it('an INVITE server transaction lets go of its non-2xx once the ACK confirmed it; the client keeps its ACK in a buffer of its own', () => {
    const p = pair();
    p.bUser.answer = () => 486;
    const { tx: client } = send(p, 'INVITE');
    p.clock.advance(1);
    const server = p.bUser.requests[0]!.tx as InviteServerTransaction;
    // Completed: the 486 is resent on Timer G, so it is kept (as a string of its own).
    expect(server.state).toBe('completed');
    expect(keptAsText(lastBytes(server), 'SIP/2.0 486 ')).toBe(true);
    p.clock.advance(10);
    expect(server.state).toBe('confirmed');
    // Confirmed absorbs ACK retransmissions (Timer I) and never sends the final again.
    expect(lastBytes(server)).toBeUndefined();
    expect(server.lastResponse).toBeUndefined();
    expect(server.lastStatus).toBe(486);
    // The client's ACK is resent for each 486 retransmission during Timer D.
    expect(client.state).toBe('completed');
    expect(keptAsText((client as unknown as { ack: string }).ack, 'ACK ')).toBe(true);
  });

  it('a waiting transaction holds one timer in a slot of its own (no Map), and none once it ended', () => {
    const p = pair();
    const { tx: client } = send(p, 'INVITE');
    expect(client.timerCount).toBe(2); // A and B
    p.clock.advance(10);
    const server = p.bUser.requests[0]!.tx as InviteServerTransaction;
    server.respond(createResponse(p.bUser.requests[0]!.req, 200));
    p.clock.advance(10);
    expect([client.timerCount, server.timerCount]).toEqual([1, 1]); // M, L
    expect(Object.values(server).some((v) => v instanceof Map)).toBe(false);
    p.clock.advance(64 * T1 + 10);
    expect([client.timerCount, server.timerCount]).toEqual([0, 0]);
  });

  it('a transaction lets go of its parsed request once it waits out its timers (Completed, Accepted), on either side', () => {
    const p = pair();
    // INVITE answered 2xx: server in Accepted (Timer L), client in Accepted (Timer M).
    const { tx: client } = send(p, 'INVITE');
    p.clock.advance(10);
    const server = p.bUser.requests[0]!.tx as InviteServerTransaction;
    expect(server.request).toBe(p.bUser.requests[0]!.req);
    expect(client.request?.method).toBe('INVITE');
    server.respond(createResponse(p.bUser.requests[0]!.req, 200));
    p.clock.advance(10);
    expect([server.state, client.state]).toEqual(['accepted', 'accepted']);
    expect(server.request).toBeUndefined();
    expect(client.request).toBeUndefined();
    // The 200 went to the user in onResponse; the waiting transaction does not keep it parsed.
    expect(client.lastResponse).toBeUndefined();
    // Nothing is cancelled after a final: the layer's CANCEL hook (a closure that may hold the INVITE) goes too.
    expect((client as unknown as { sendCancel: unknown }).sendCancel).toBeUndefined();
    // INVITE answered 486: server in Completed (G/H), client in Completed (D), the ACK still sent.
    p.bUser.answer = () => 486;
    const { tx: failed } = send(p, 'INVITE');
    p.clock.advance(10);
    expect(failed.state).toBe('completed');
    expect(failed.request).toBeUndefined();
    expect(p.bUser.requests[1]!.tx.request).toBeUndefined();
    // A BYE answered 200: server in Completed (Timer J), client in Completed (Timer K).
    p.bUser.answer = () => 200;
    const { tx: bye } = send(p, 'BYE');
    p.clock.advance(10);
    expect(bye.state).toBe('completed');
    expect(bye.request).toBeUndefined();
    expect(bye.lastResponse).toBeUndefined();
    expect(p.bUser.requests[2]!.tx.state).toBe('completed');
    expect(p.bUser.requests[2]!.tx.request).toBeUndefined();
  });
});
