// UdpTransport sends on real loopback sockets (issue #16): the socket answers IP literals
// itself instead of through dns.lookup, so a datagram leaves inside post()/send() rather than a
// tick later; failures still come asynchronously as TransportError SEND_FAILED.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TransportError, UdpTransport, type TransportAddress } from '../../src/transport/index.js';

function receiveOne(t: UdpTransport): Promise<[string, TransportAddress]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram')), 5000);
    t.setReceiver({
      onMessage(bytes, from) {
        clearTimeout(timer);
        resolve([Buffer.from(bytes).toString(), from]);
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

/** Bytes waiting in the receive queue of the IPv4 UDP socket bound to `port` (Linux /proc/net/udp). */
function rxQueue(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hexPort}`)) return parseInt(f[4]!.split(':')[1]!, 16);
  }
  return undefined;
}

function ipv6Loopback(): Promise<boolean> {
  return UdpTransport.bind({ host: '::1' }).then(
    (t) => t.close().then(() => true),
    () => false,
  );
}

describe('UdpTransport sends (real sockets, loopback)', () => {
  it.runIf(existsSync('/proc/net/udp'))('an IP literal destination: the datagram has left when post() returns', async () => {
    const a = await UdpTransport.bind();
    const b = await UdpTransport.bind();
    try {
      const got = receiveOne(b);
      expect(rxQueue(b.local.port)).toBe(0);
      let sent = false;
      a.post(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'), b.local, (e) => expect.fail(e.message), () => (sent = true));
      // Loopback delivery happens inside sendmsg(): the datagram is in b's queue already.
      expect(rxQueue(b.local.port)).toBeGreaterThan(0);
      // The completion callback still comes later.
      expect(sent).toBe(false);
      expect((await got)[0]).toContain('OPTIONS');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a send() just before close() goes out and its promise resolves', async () => {
    const a = await UdpTransport.bind();
    const b = await UdpTransport.bind();
    try {
      const got = receiveOne(b);
      const sending = a.send(Buffer.from('last words'), b.local);
      await a.close();
      expect((await got)[0]).toBe('last words');
      await expect(sending).resolves.toBeUndefined();
    } finally {
      await b.close();
    }
  });

  it('keeps the order of sends to one destination', async () => {
    const a = await UdpTransport.bind();
    const b = await UdpTransport.bind();
    try {
      const got: string[] = [];
      const all = new Promise<void>((resolve) => b.setReceiver({ onMessage: (m) => got.push(Buffer.from(m).toString()) === 20 && resolve() }));
      for (let i = 0; i < 20; i++) a.post(Buffer.from(String(i)), b.local, (e) => expect.fail(e.message));
      await all;
      expect(got).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reports a port dgram refuses as SEND_FAILED, asynchronously (post() does not throw)', async () => {
    const a = await UdpTransport.bind();
    try {
      const f = await failureOf((onError) => a.post(Buffer.from('x'), { address: '127.0.0.1', port: 0 }, onError));
      expect(f.error).toBeInstanceOf(TransportError);
      expect(f.error.code).toBe('SEND_FAILED');
      expect(f.sync).toBe(false);
      await expect(a.send(Buffer.from('x'), { address: '127.0.0.1', port: 70_000 })).rejects.toMatchObject({ code: 'SEND_FAILED' });
    } finally {
      await a.close();
    }
  });

  it('still resolves a name through dns.lookup (localhost, asked for IPv4 by a udp4 socket)', async () => {
    const a = await UdpTransport.bind();
    const b = await UdpTransport.bind();
    try {
      const got = receiveOne(b);
      await a.send(Buffer.from('by name'), { address: 'localhost', port: b.local.port });
      expect((await got)[0]).toBe('by name');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('IPv6: sends to ::1 from an IPv6 socket, and an IPv4 literal from it fails as SEND_FAILED, asynchronously', async (ctx) => {
    if (!(await ipv6Loopback())) return ctx.skip();
    const a = await UdpTransport.bind({ host: '::1' });
    const b = await UdpTransport.bind({ host: '::1' });
    try {
      const got = receiveOne(b);
      await a.send(Buffer.from('v6'), b.local);
      const [m, from] = await got;
      expect(m).toBe('v6');
      expect(from).toEqual({ address: '::1', port: a.local.port });
      const f = await failureOf((onError) => a.post(Buffer.from('x'), { address: '127.0.0.1', port: 9 }, onError));
      expect(f.error.code).toBe('SEND_FAILED');
      expect(f.sync).toBe(false);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
