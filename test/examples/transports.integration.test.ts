// The trunk's listeners (examples/trunk-server/transports.ts) on real loopback sockets.
import { describe, expect, it } from 'vitest';
import { UdpTransport } from '../../src/transport/index.js';
import { bindListeners } from '../../examples/trunk-server/transports.js';

describe('bindListeners', () => {
  it("bounds a UDP listener's inbox wait by the trunk's T1 when raised, never below RFC 3261's 500 ms (callers use it whatever the trunk's own T1)", async () => {
    const tls = { ca: null, verify: true } as const;
    const [slow] = await bindListeners([{ transport: 'udp', host: '127.0.0.1', port: 0 }], tls, undefined, { T1: 2000 });
    const [plain] = await bindListeners([{ transport: 'udp', host: '127.0.0.1', port: 0 }], tls);
    const [quick] = await bindListeners([{ transport: 'udp', host: '127.0.0.1', port: 0 }], tls, undefined, { T1: 50 });
    try {
      expect((quick as UdpTransport).inboxMaxAgeMs).toBe(500);
      expect(slow).toBeInstanceOf(UdpTransport);
      expect((slow as UdpTransport).inboxMaxAgeMs).toBe(2000);
      expect((plain as UdpTransport).inboxMaxAgeMs).toBe(500);
    } finally {
      await Promise.all([slow!.close(), plain!.close(), quick!.close()]);
    }
  });

  it('sends UDP from a worker thread unless the listener says sendThread: false', async () => {
    const tls = { ca: null, verify: true } as const;
    const [threaded, plain] = await bindListeners(
      [
        { transport: 'udp', host: '127.0.0.1', port: 0 },
        { transport: 'udp', host: '127.0.0.1', port: 0, sendThread: false },
      ],
      tls,
    );
    try {
      expect((threaded as UdpTransport).sendThreadStats?.active).toBe(process.platform === 'linux');
      expect((plain as UdpTransport).sendThreadStats).toBeUndefined();
    } finally {
      await Promise.all([threaded!.close(), plain!.close()]);
    }
  });
});
