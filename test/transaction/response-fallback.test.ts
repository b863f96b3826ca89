import { describe, expect, it } from 'vitest';
import { createResponse } from '../../src/parser/index.js';
import { SipResolver } from '../../src/resolver/index.js';
import { TransactionLayer, type ServerTransaction } from '../../src/transaction/index.js';
import { FakeClock, TestNetwork } from '../../src/transport/index.js';
import { addr, FakeDns } from '../resolver/fake-dns.js';

const REQUEST = (via: string) =>
  [
    'OPTIONS sip:server@10.0.0.5 SIP/2.0',
    `Via: ${via}`,
    'Max-Forwards: 70',
    'From: <sip:client@client.test>;tag=a1',
    'To: <sip:server@10.0.0.5>',
    'Call-ID: fallback-1',
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');

async function run(clock: FakeClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 5) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
}

describe('responses when the request\'s connection is gone (RFC 3261 §18.2.2, RFC 3263 §5)', () => {
  it('goes to received at the sent-by port, then to the sent-by as DNS locates it', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const dns = new FakeDns();
    dns.zone.SRV.set('_sip._tcp.client.test', 'NXDOMAIN');
    dns.zone.A.set('client.test', [addr('10.0.0.7')]);
    let pending: ServerTransaction | undefined;
    const server = new TransactionLayer({
      transports: [net.transport('10.0.0.5', 5060, { reliable: true })],
      clock,
      resolver: new SipResolver({ lookup: dns, clock, transports: ['tcp'], families: [4] }),
      user: { onRequest: (_req, tx) => (pending = tx) },
    });
    // The request comes from an ephemeral connection (10.0.0.1:40000) whose Via names client.test:5070.
    const ephemeral = net.transport('10.0.0.1', 40000, { reliable: true });
    const home = net.transport('10.0.0.7', 5070, { reliable: true });
    const got: string[] = [];
    home.setReceiver({ onMessage: (b) => got.push(Buffer.from(b).toString().split('\r\n')[0]!) });
    ephemeral.setReceiver({ onMessage: () => got.push('on the old connection') });
    await ephemeral.send(Buffer.from(REQUEST('SIP/2.0/TCP client.test:5070;branch=z9hG4bKfb1')), { address: '10.0.0.5', port: 5060 });
    await run(clock, 20);
    expect(pending).toBeDefined();
    // The connection goes away before the answer.
    await ephemeral.close();
    pending!.respond(createResponse(pending!.request!, 200));
    await run(clock, 50);
    expect(got).toEqual(['SIP/2.0 200 OK']);
    // First 10.0.0.1:5070 (received, sent-by port): refused; then A client.test → 10.0.0.7:5070.
    expect(dns.count('A', 'client.test')).toBe(1);
    expect(server.stats.transportErrors).toBeGreaterThanOrEqual(2);
  });

  it('reports the transport error once nothing is left (received refused, sent-by not in DNS)', async () => {
    const clock = new FakeClock(0);
    const net = new TestNetwork({ clock });
    const dns = new FakeDns();
    const errors: string[] = [];
    let pending: ServerTransaction | undefined;
    new TransactionLayer({
      transports: [net.transport('10.0.0.5', 5060, { reliable: true })],
      clock,
      tryingAfterMs: -1,
      resolver: new SipResolver({ lookup: dns, clock, transports: ['tcp'], families: [4] }),
      user: {
        onRequest: (_req, tx) => {
          pending = tx;
          tx.onTransportError = (err) => errors.push(err.code);
        },
      },
    });
    const ephemeral = net.transport('10.0.0.1', 40000, { reliable: true });
    ephemeral.setReceiver({ onMessage: () => undefined });
    // An INVITE refused 486: its transaction lives on (Completed) to hear of the failure.
    const invite = REQUEST('SIP/2.0/TCP gone.test:5070;branch=z9hG4bKfb2').replace('OPTIONS sip', 'INVITE sip').replace('CSeq: 1 OPTIONS', 'CSeq: 1 INVITE').replace('Max-Forwards: 70', 'Max-Forwards: 70\r\nContact: <sip:client@gone.test:5070;transport=tcp>');
    await ephemeral.send(Buffer.from(invite), { address: '10.0.0.5', port: 5060 });
    await run(clock, 20);
    await ephemeral.close();
    pending!.respond(createResponse(pending!.request!, 486));
    await run(clock, 50);
    expect(errors).toEqual(['CONNECT_FAILED']);
  });
});
