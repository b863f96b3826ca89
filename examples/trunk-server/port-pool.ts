import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

/** RTP on an even port, RTCP on the next one (RFC 3550 §11). */
export interface PortPair {
  port: number;
  rtp: Socket;
  rtcp: Socket;
}

/** No free port pair in the configured range; `code` is stable. */
export class PortsExhaustedError extends Error {
  readonly code = 'media.ports_exhausted';
  constructor(readonly range: { min: number; max: number }) {
    super(`no free RTP port pair in ${range.min}-${range.max}`);
    this.name = 'PortsExhaustedError';
  }
}

/**
 * The relay's RTP port range: even ports min..max, each with its RTCP port
 * above. Ports are reserved synchronously (so concurrent calls cannot both
 * count on the last pair) and bound afterwards; a port some other process holds
 * is skipped. The start of each search is random, so a relay port is not
 * guessable from the previous call's.
 */
export class PortPool {
  private readonly taken = new Set<number>();
  readonly size: number;

  constructor(readonly range: { min: number; max: number }) {
    this.size = (range.max - range.min) / 2 + 1;
  }

  get free(): number {
    return this.size - this.taken.size;
  }

  /** Reserve one pair's RTP port, or undefined when all are taken. */
  reserve(): number | undefined {
    if (this.taken.size >= this.size) return undefined;
    const start = randomInt(this.size);
    for (let i = 0; i < this.size; i++) {
      const port = this.range.min + 2 * ((start + i) % this.size);
      if (!this.taken.has(port)) {
        this.taken.add(port);
        return port;
      }
    }
    return undefined;
  }

  release(port: number): void {
    this.taken.delete(port);
  }

  /**
   * Bind a pair on host (udp4 or udp6 by `family`), starting with a reserved
   * port if given (consumed either way: do not release it after a throw).
   * Throws PortsExhaustedError when no pair in the range can be bound.
   */
  async bind(host: string, family: 'IP4' | 'IP6', reserved?: number): Promise<PortPair> {
    const busyElsewhere: number[] = [];
    try {
      let port = reserved ?? this.reserve();
      // Each pass either binds or sets a port aside until the end of this call: at most `size` passes.
      while (port !== undefined) {
        const pair = await bindPair(host, family, port);
        if (pair) return pair;
        busyElsewhere.push(port);
        port = this.reserve();
      }
      throw new PortsExhaustedError(this.range);
    } finally {
      // Held by another process now, perhaps not later.
      for (const p of busyElsewhere) this.release(p);
    }
  }

  /** Close a pair's sockets and give its ports back. */
  close(pair: PortPair): void {
    for (const s of [pair.rtp, pair.rtcp]) {
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
    this.release(pair.port);
  }
}

async function bindOne(host: string, family: 'IP4' | 'IP6', port: number): Promise<Socket | undefined> {
  const s = createSocket(family === 'IP6' ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    const onError = () => {
      try {
        s.close();
      } catch {
        /* never bound */
      }
      resolve(undefined);
    };
    s.once('error', onError);
    s.bind(port, host, () => {
      s.off('error', onError);
      // A socket error later (an ICMP-refused send…) must not become an uncaught 'error' event.
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

async function bindPair(host: string, family: 'IP4' | 'IP6', port: number): Promise<PortPair | undefined> {
  const rtp = await bindOne(host, family, port);
  if (!rtp) return undefined;
  const rtcp = await bindOne(host, family, port + 1);
  if (!rtcp) {
    rtp.close();
    return undefined;
  }
  return { port, rtp, rtcp };
}
