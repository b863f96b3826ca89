import type { Clock } from './clock.js';
import { TransportError, addressKey, type Transport, type TransportAddress, type TransportReceiver } from './types.js';

/** Deterministic pseudo-random numbers (mulberry32): a seed replays a lossy run exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface NetworkConditions {
  /** Probability a datagram is lost (0…1). */
  loss?: number;
  /** Probability a datagram is delivered twice. */
  duplicate?: number;
  /** Delay range in ms; random delays reorder datagrams. Default [1, 1]. */
  delayMs?: [min: number, max: number];
}

export interface Packet {
  from: TransportAddress;
  to: TransportAddress;
  bytes: Uint8Array;
  /** First line of the message, for readable scripts and assertions. */
  readonly firstLine: string;
}

export type PacketFate = 'deliver' | 'drop' | 'duplicate';

export interface TestNetworkOptions extends NetworkConditions {
  clock: Clock;
  seed?: number;
  /** Keep a log of every packet sent (for assertions). Default true. */
  record?: boolean;
}

/**
 * An in-memory network for tests: hosts with addresses, datagram loss,
 * duplication, reordering and delay, all driven by the injected clock and a
 * seeded random source — the same seed gives the same run.
 */
export class TestNetwork {
  readonly clock: Clock;
  conditions: NetworkConditions;
  /** A script that decides a packet's fate before the random conditions apply. */
  filter: ((p: Packet) => PacketFate | undefined) | undefined;
  readonly log: Packet[] = [];
  readonly stats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  private readonly random: () => number;
  private readonly record: boolean;
  private readonly endpoints = new Map<string, TestTransport>();

  constructor(options: TestNetworkOptions) {
    this.clock = options.clock;
    this.random = seededRandom(options.seed ?? 1);
    this.record = options.record ?? true;
    this.conditions = { loss: options.loss ?? 0, duplicate: options.duplicate ?? 0, delayMs: options.delayMs ?? [1, 1] };
  }

  /** A transport bound to address:port on this network. Reliable ones (TCP-like) never lose or reorder. */
  transport(address: string, port = 5060, options: { protocol?: string; reliable?: boolean } = {}): TestTransport {
    const t = new TestTransport(this, { address, port }, options.protocol ?? (options.reliable ? 'tcp' : 'udp'), options.reliable ?? false);
    this.endpoints.set(t.protocol + '|' + addressKey(t.local), t);
    return t;
  }

  /** Packets whose first line matches, from the log. */
  packets(match?: RegExp | string): Packet[] {
    if (match === undefined) return this.log;
    return this.log.filter((p) => (typeof match === 'string' ? p.firstLine.startsWith(match) : match.test(p.firstLine)));
  }

  /** @internal */
  detach(t: TestTransport): void {
    this.endpoints.delete(t.protocol + '|' + addressKey(t.local));
  }

  /** @internal */
  carry(from: TestTransport, bytes: Uint8Array, to: TransportAddress): void {
    const copy = Buffer.from(bytes);
    const nl = copy.indexOf(13);
    const packet: Packet = { from: from.local, to, bytes: copy, firstLine: copy.toString('utf8', 0, nl < 0 ? Math.min(copy.length, 80) : nl) };
    this.stats.sent++;
    if (this.record) this.log.push(packet);
    let fate = this.filter?.(packet);
    const reliable = from.reliable;
    if (fate === undefined) {
      const c = this.conditions;
      fate = 'deliver';
      if (!reliable) {
        if (this.random() < (c.loss ?? 0)) fate = 'drop';
        else if (this.random() < (c.duplicate ?? 0)) fate = 'duplicate';
      }
    }
    if (fate === 'drop') {
      this.stats.dropped++;
      return;
    }
    const copies = fate === 'duplicate' ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const [min, max] = this.conditions.delayMs ?? [1, 1];
    for (let i = 0; i < copies; i++) {
      // Reliable links keep order: a fixed delay. Datagrams get a random one, and so reorder.
      const delay = reliable ? min : min + Math.floor(this.random() * (max - min + 1));
      this.clock.setTimer(delay, () => {
        const dest = this.endpoints.get(from.protocol + '|' + addressKey(to));
        if (!dest) {
          this.stats.dropped++;
          return;
        }
        this.stats.delivered++;
        dest.deliver(copy, from.local);
      });
    }
  }

  /** @internal */
  reachable(protocol: string, to: TransportAddress): boolean {
    return this.endpoints.has(protocol + '|' + addressKey(to));
  }
}

/** One endpoint on a TestNetwork. */
export class TestTransport implements Transport {
  private receiver: TransportReceiver | undefined;
  private closed = false;

  constructor(
    private readonly network: TestNetwork,
    readonly local: TransportAddress,
    readonly protocol: string,
    readonly reliable: boolean,
  ) {}

  setReceiver(receiver: TransportReceiver): void {
    this.receiver = receiver;
  }

  /** @internal */
  deliver(bytes: Uint8Array, from: TransportAddress): void {
    if (!this.closed) this.receiver?.onMessage(bytes, from, this);
  }

  send(bytes: Uint8Array, to: TransportAddress): Promise<void> {
    if (this.closed) return Promise.reject(new TransportError('CLOSED', 'transport is closed', to));
    // A reliable transport finds out at once that nobody listens (connection refused).
    if (this.reliable && !this.network.reachable(this.protocol, to)) {
      // As a real stack sees it: the peer answered the SYN with a reset.
      const refused = Object.assign(new Error(`connect ECONNREFUSED ${addressKey(to)}`), { code: 'ECONNREFUSED' });
      return Promise.reject(new TransportError('CONNECT_FAILED', `nothing listens on ${addressKey(to)}`, to, refused));
    }
    this.network.carry(this, bytes, to);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    this.network.detach(this);
    return Promise.resolve();
  }
}
