import type { Socket } from 'node:dgram';
import type { CallRecord, MediaHooks, RouteDecision, SdpBody } from 'sipkit/b2bua';
import type { Logger } from './log.js';
import { PortPool, PortsExhaustedError, type PortPair } from './port-pool.js';
import { isRelayable, readSdp, rewriteSdp, SdpRewriteError, unsupportedFamily, type AddressFamily, type RelayAddresses, type SdpOrigin, type SdpStream } from './sdp-rewrite.js';

type Side = 'caller' | 'callee';

interface Peer {
  address: string;
  port: number;
}

/** One stream's socket pair facing one side, and where that side's media is. */
interface Leg {
  pair: PortPair;
  /** Last address the side's SDP announced, to tell a changed SDP from a repeated one. */
  announced: string | undefined;
  rtp: Peer | undefined;
  rtcp: Peer | undefined;
  rtpLatched: boolean;
  rtcpLatched: boolean;
}

/** An address that means "send nothing here" (old-style hold, RFC 3264 §8.4). */
function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || /^[0:]+$/.test(address);
}

/**
 * One m= stream through the relay: a port pair facing the caller and one facing
 * the callee, in the stream's address family. Each side's address is learnt
 * from its SDP, then latched to where its packets really come from (symmetric
 * RTP, so NATed endpoints work); a new SDP address unlatches.
 */
class StreamRelay {
  forwarded = 0;
  private readonly legs: Record<Side, Leg>;

  constructor(
    readonly family: AddressFamily,
    caller: PortPair,
    callee: PortPair,
  ) {
    const leg = (pair: PortPair): Leg => ({ pair, announced: undefined, rtp: undefined, rtcp: undefined, rtpLatched: false, rtcpLatched: false });
    this.legs = { caller: leg(caller), callee: leg(callee) };
    this.wire(this.legs.caller, this.legs.callee);
    this.wire(this.legs.callee, this.legs.caller);
  }

  /** The relay port a side sends to (what goes in the SDP sent to that side). */
  portFacing(side: Side): number {
    return this.legs[side].pair.port;
  }

  /** The side's SDP says its media is at address:port (RTCP at rtcpPort or port + 1). */
  announce(side: Side, address: string, port: number, rtcpPort: number | undefined): void {
    const leg = this.legs[side];
    const key = `${address} ${port} ${rtcpPort}`;
    if (leg.announced === key) return;
    leg.announced = key;
    leg.rtpLatched = leg.rtcpLatched = false;
    if (isUnspecified(address)) {
      leg.rtp = leg.rtcp = undefined;
      return;
    }
    leg.rtp = { address, port };
    leg.rtcp = { address, port: rtcpPort ?? port + 1 };
  }

  private wire(from: Leg, to: Leg): void {
    const relay = (rtcp: boolean) => (msg: Buffer, rinfo: { address: string; port: number }) => {
      // Latch once per announced address: a stray source later cannot take the stream over.
      if (rtcp ? !from.rtcpLatched : !from.rtpLatched) {
        if (rtcp) {
          from.rtcp = { address: rinfo.address, port: rinfo.port };
          from.rtcpLatched = true;
        } else {
          from.rtp = { address: rinfo.address, port: rinfo.port };
          from.rtpLatched = true;
        }
      }
      const dest = rtcp ? to.rtcp : to.rtp;
      if (!dest) return;
      const socket: Socket = rtcp ? to.pair.rtcp : to.pair.rtp;
      socket.send(msg, dest.port, dest.address, () => undefined);
      this.forwarded++;
    };
    from.pair.rtp.on('message', relay(false));
    from.pair.rtcp.on('message', relay(true));
  }

  pairs(): PortPair[] {
    return [this.legs.caller.pair, this.legs.callee.pair];
  }
}

/** The o= line this relay sends to one side, and the SDP it last sent there. */
interface OriginState {
  origin: SdpOrigin;
  version: bigint;
  rest: string;
}

/** Everything the relay holds for one call: its streams by m= index. */
export class CallRelay {
  readonly streams: Array<StreamRelay | undefined> = [];
  private readonly origins: Partial<Record<Side, OriginState>> = {};
  /** Set once a media hook has seen the call (see MediaRelay.admit). */
  claimed = false;
  private closed = false;

  constructor(
    private readonly pool: PortPool,
    private readonly addresses: RelayAddresses,
  ) {}

  /** Packets forwarded over all streams (for tests and metrics). */
  get forwarded(): number {
    return this.streams.reduce((n, s) => n + (s?.forwarded ?? 0), 0);
  }

  /**
   * Have a relay stream for every active stream of an SDP: open missing ones, close
   * those now disabled. An offer re-anchors a stream whose family changed; an
   * answer cannot (the offerer already has our port), so that is an error.
   * `reserved` are ports from PortPool.reserve, used first and consumed either way.
   */
  async prepare(streams: readonly SdpStream[], kind: 'offer' | 'answer', reserved: number[] = []): Promise<void> {
    try {
      for (const s of streams) {
        const have = this.streams[s.index];
        if (s.port === 0 || !isRelayable(s)) {
          if (have) this.drop(s.index);
          continue;
        }
        if (have && have.family === s.family) continue;
        if (have && kind === 'answer') throw new SdpRewriteError('sdp.unsupported_family', `stream ${s.index} answered in ${s.family}, offered in ${have.family}`);
        if (have) this.drop(s.index);
        const family = s.family!;
        const host = this.addresses[family]!;
        const a = await this.pool.bind(host, family, reserved.shift());
        let b: PortPair;
        try {
          b = await this.pool.bind(host, family, reserved.shift());
        } catch (err) {
          this.pool.close(a);
          throw err;
        }
        if (this.closed) {
          this.pool.close(a);
          this.pool.close(b);
          return;
        }
        this.streams[s.index] = new StreamRelay(family, a, b);
      }
    } finally {
      for (const p of reserved) this.pool.release(p);
    }
  }

  /** The SDP from one side, as the other side must see it; learns where `from`'s media is. */
  rewrite(sdp: string, from: Side): string {
    const to: Side = from === 'caller' ? 'callee' : 'caller';
    const { streams } = readSdp(sdp);
    for (const s of streams) {
      const r = this.streams[s.index];
      if (r && s.port !== 0 && s.address !== undefined) r.announce(from, s.address, s.port, s.rtcpPort);
    }
    return rewriteSdp(sdp, {
      addresses: this.addresses,
      port: (s) => this.streams[s.index]?.portFacing(to) ?? 0,
      origin: (received, rest) => this.originToward(to, received, rest),
    });
  }

  /**
   * One origin per recipient, whoever the SDP came from (a fail-over callee has
   * another o=): its version goes up by one exactly when what the recipient gets
   * changes (RFC 3264 §8).
   */
  private originToward(to: Side, received: SdpOrigin, rest: string): SdpOrigin {
    const st = this.origins[to];
    if (!st) {
      let version: bigint;
      try {
        version = BigInt(received.version);
      } catch {
        version = 0n;
      }
      this.origins[to] = { origin: received, version, rest };
      return { ...received, version: String(version) };
    }
    if (st.rest !== rest) {
      st.version++;
      st.rest = rest;
    }
    return { ...st.origin, version: String(st.version) };
  }

  private drop(index: number): void {
    const s = this.streams[index];
    if (!s) return;
    for (const p of s.pairs()) this.pool.close(p);
    this.streams[index] = undefined;
  }

  close(): void {
    this.closed = true;
    for (let i = 0; i < this.streams.length; i++) this.drop(i);
  }
}

export interface MediaRelayOptions {
  addresses: RelayAddresses;
  ports: { min: number; max: number };
  log: Logger;
}

/**
 * The trunk's RTP anchor: one CallRelay per call, ports from one configured
 * range. A call's ports are taken when it is routed (`admit`), so the caller can
 * be told 488 or 503 — a media hook cannot choose the status it fails with.
 */
export class MediaRelay {
  readonly pool: PortPool;
  /** Calls by record id. */
  readonly calls = new Map<string, CallRelay>();

  constructor(private readonly opts: MediaRelayOptions) {
    this.pool = new PortPool(opts.ports);
  }

  /**
   * Before the call is bridged: refuse an offer the relay cannot carry (488, RFC 3261
   * §21.4.26; malformed SDP 400) or has no ports for (503), else bind its streams.
   * Undefined: go on.
   */
  async admit(id: string, body: Uint8Array): Promise<Extract<RouteDecision, { reject: number }> | undefined> {
    if (body.length === 0) return undefined; // late offer: anchored when the callee's offer comes
    let streams: SdpStream[];
    try {
      streams = readSdp(Buffer.from(body).toString()).streams;
    } catch (err) {
      this.opts.log('info', 'media.rejected', { call: id, status: 400, reason: (err as Error).message });
      return { reject: 400, phrase: 'Malformed SDP' };
    }
    const bad = unsupportedFamily(streams, this.opts.addresses);
    if (bad) {
      this.opts.log('info', 'media.rejected', { call: id, status: 488, reason: bad });
      return { reject: 488 };
    }
    const needed = 2 * streams.filter((s) => s.port !== 0 && isRelayable(s)).length;
    const reserved: number[] = [];
    for (let i = 0; i < needed; i++) {
      const p = this.pool.reserve();
      if (p === undefined) {
        for (const r of reserved) this.pool.release(r);
        return this.exhausted(id, needed);
      }
      reserved.push(p);
    }
    const call = new CallRelay(this.pool, this.opts.addresses);
    this.calls.set(id, call);
    try {
      await call.prepare(streams, 'offer', reserved);
    } catch (err) {
      this.end(id);
      if (err instanceof PortsExhaustedError) return this.exhausted(id, needed);
      throw err;
    }
    // The B2BUA runs the offer hook for a routed call before it next waits on I/O; a call
    // that ended while it was being routed never gets there, and must not keep its ports.
    setImmediate(() => {
      if (!call.claimed && this.calls.get(id) === call) this.end(id);
    });
    return undefined;
  }

  private exhausted(id: string, needed: number): { reject: number } {
    this.opts.log('warn', 'media.ports_exhausted', { call: id, range: `${this.pool.range.min}-${this.pool.range.max}`, needed, free: this.pool.free });
    return { reject: 503 };
  }

  private callFor(id: string): CallRelay {
    let call = this.calls.get(id);
    if (!call) {
      call = new CallRelay(this.pool, this.opts.addresses);
      this.calls.set(id, call);
    }
    call.claimed = true;
    return call;
  }

  /**
   * The B2BUA's media hooks. What fails in them (a late offer or re-offer in a family
   * the trunk lacks, no ports left for a stream added later) throws, which the
   * B2BUA turns into a 500 (initial offer) or the re-INVITE's 500.
   */
  hooks(): MediaHooks {
    const handle = async (sdp: Uint8Array, record: CallRecord, from: Side, kind: 'offer' | 'answer'): Promise<SdpBody> => {
      // A hook that runs late, for a call already over, must not anchor anything anew.
      if (record.state === 'hangup') return sdp;
      const id = record.id;
      const call = this.callFor(id);
      const text = Buffer.from(sdp).toString();
      const { streams } = readSdp(text);
      const bad = unsupportedFamily(streams, this.opts.addresses);
      if (bad) throw new SdpRewriteError('sdp.unsupported_family', bad);
      try {
        await call.prepare(streams, kind);
      } catch (err) {
        if (err instanceof PortsExhaustedError) this.exhausted(id, 0);
        throw err;
      }
      return call.rewrite(text, from);
    };
    return {
      onOffer: (sdp, ctx) => handle(sdp, ctx.record, ctx.from, 'offer'),
      onAnswer: (sdp, ctx) => {
        const rewritten = handle(sdp, ctx.record, ctx.from, 'answer');
        if (ctx.from === 'callee') return rewritten;
        // The caller's answer comes in its ACK (late offer): nothing can refuse it any more, and
        // the B2BUA does not catch a failure there. The callee gets it as it is, media unanchored.
        return rewritten.catch((err: Error) => {
          this.opts.log('warn', 'media.answer_unanchored', { call: ctx.record.id, reason: err.message });
          return sdp;
        });
      },
      onEnd: (record) => this.end(record.id),
    };
  }

  end(id: string): void {
    this.calls.get(id)?.close();
    this.calls.delete(id);
  }

  close(): void {
    for (const id of [...this.calls.keys()]) this.end(id);
  }
}
