import { describe, expect, it } from 'vitest';
import { TransportError, UdpTransport, type TransportAddress } from '../../src/transport/index.js';

function receiveOne(t: UdpTransport): Promise<[Uint8Array, TransportAddress]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram')), 5000);
    t.setReceiver({
      onMessage(bytes, from) {
        clearTimeout(timer);
        resolve([bytes, from]);
      },
    });
  });
}

function failureOf(post: (onError: (e: TransportError) => void) => void): Promise<{ error: TransportError; sync: boolean }> {
  return new Promise((resolve) => {
    let returned = false;
    post((error) => resolve({ error, sync: !returned }));
    returned = true;
  });
}

describe('UdpTransport on real sockets (127.0.0.1)', () => {
  it('post() delivers a datagram without a promise, and send() still resolves once it is sent', async () => {
    const a = await UdpTransport.bind();
    const b = await UdpTransport.bind();
    try {
      const got = receiveOne(b);
      a.post(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'), b.local, () => {
        throw new Error('must not fail');
      });
      const [bytes, from] = await got;
      expect(Buffer.from(bytes).toString()).toContain('OPTIONS');
      expect(from.port).toBe(a.local.port);
      const again = receiveOne(b);
      await expect(a.send(Buffer.from('ping'), b.local)).resolves.toBeUndefined();
      expect(Buffer.from((await again)[0]).toString()).toBe('ping');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('post() reports an oversized datagram and a closed socket asynchronously, with typed codes', async () => {
    const a = await UdpTransport.bind();
    const to = { address: '127.0.0.1', port: 9 };
    const big = await failureOf((onError) => a.post(new Uint8Array(70_000), to, onError));
    expect(big.error.code).toBe('MESSAGE_TOO_LARGE');
    expect(big.sync).toBe(false);
    await a.close();
    const closed = await failureOf((onError) => a.post(Buffer.from('x'), to, onError));
    expect(closed.error.code).toBe('CLOSED');
    expect(closed.sync).toBe(false);
    await expect(a.send(Buffer.from('x'), to)).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
