import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRequest, createResponse, parseMessage, type SipRequest, type SipResponse } from '../../src/parser/index.js';
import { TcpTransport, UdpTransport } from '../../src/transport/index.js';
import { TransactionLayer } from '../../src/transaction/index.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function within<T>(ms: number, what: string, register: (resolve: (v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

/** Resolves true when a TCP connection to 127.0.0.1:port is refused (nothing listens there). */
function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A UDP-only SIP peer: a plain dgram socket whose port has no TCP listener (checked, a few tries at most). */
async function udpOnlyPeer(): Promise<Socket> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    if (await tcpRefused(sock.address().port)) {
      cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
      return sock;
    }
    sock.close();
  }
  throw new Error('no UDP port without a TCP listener found in 5 tries');
}

describe('a request too large for UDP, to a UDP-only peer (RFC 3261 §18.1.1), over real sockets', () => {
  it('a 1600-byte INVITE is retried over UDP after the TCP connect is refused, and its 200 reaches the client transaction', async () => {
    const peer = await udpOnlyPeer();
    const udp = await UdpTransport.bind({ host: '127.0.0.1' });
    const tcp = await TcpTransport.listen({ host: '127.0.0.1' });
    const layer = new TransactionLayer({ transports: [udp, tcp], timers: { T1: 100 }, user: { onRequest: () => undefined } });
    cleanups.push(() => layer.close());

    const received: Array<{ req: SipRequest; size: number }> = [];
    peer.on('message', (msg, rinfo) => {
      const req = parseMessage(msg) as SipRequest;
      received.push({ req, size: msg.length });
      const ok = createResponse(req, 200, { toTag: 'gw' });
      peer.send(ok.toBytes(), rinfo.port, rinfo.address);
    });

    const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n';
    const padding = Array.from({ length: 40 }, (_, i) => `a=x-pad-${i}:${'p'.repeat(20)}\r\n`).join('');
    const invite = createRequest({
      method: 'INVITE',
      uri: `sip:gw@127.0.0.1:${peer.address().port}`,
      from: '<sip:a@127.0.0.1>',
      to: '<sip:gw@127.0.0.1>',
      contact: `<sip:a@127.0.0.1:${udp.local.port}>`,
      body: sdp + padding,
      contentType: 'application/sdp',
    });
    const statuses: number[] = [];
    let transportErrors = 0;
    let answered: (r: SipResponse) => void = () => undefined;
    const final = within<SipResponse>(5000, 'the final response', (resolve) => (answered = resolve));
    const tx = layer.sendRequest(invite, { address: '127.0.0.1', port: peer.address().port }, {
      onResponse: (r) => {
        statuses.push(r.status);
        if (r.status >= 200) answered(r);
      },
      onTransportError: () => transportErrors++,
    });
    const branch = invite.topVia!.branch;
    // It went to TCP first: the size made it so.
    expect(invite.topVia!.transport).toBe('TCP');

    const ok = await final;
    expect(ok.status).toBe(200);
    expect(statuses).toEqual([200]);
    expect(transportErrors).toBe(0);
    expect(received).toHaveLength(1);
    const got = received[0]!;
    expect(got.size).toBeGreaterThanOrEqual(1600);
    expect(got.req.topVia!.transport).toBe('UDP');
    expect(got.req.topVia!.port).toBe(udp.local.port);
    expect(got.req.topVia!.branch).toBe(branch);
    expect(tx.dest.transport).toBe(udp);
  });
});
