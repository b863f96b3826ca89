import { createSocket, type Socket } from 'node:dgram';

interface Side {
  rtp: Socket;
  rtcp: Socket;
  /** Where this side's peer sends from (latched on its first packet) or announced in SDP. */
  peer: { address: string; port: number } | undefined;
  latched: boolean;
}

async function bindPair(host: string): Promise<{ rtp: Socket; rtcp: Socket }> {
  // RTP on an even port, RTCP on the next one (RFC 3550 §11).
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + 2 * Math.floor(Math.random() * 10_000);
    const rtp = createSocket('udp4');
    const rtcp = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      rtp.once('error', () => resolve(false));
      rtp.bind(port, host, () => {
        rtcp.once('error', () => resolve(false));
        rtcp.bind(port + 1, host, () => resolve(true));
      });
    });
    if (ok) return { rtp, rtcp };
    rtp.close();
    try {
      rtcp.close();
    } catch {
      /* not bound */
    }
  }
  throw new Error('no free RTP port pair');
}

/**
 * A minimal RTP/RTCP relay for one call: a port pair facing the caller and one
 * facing the callee. Packets are forwarded both ways; each side's address is
 * learnt from the SDP and then latched to where packets really come from
 * (symmetric RTP, so NATed endpoints work).
 */
export class RtpSession {
  private constructor(
    readonly host: string,
    private readonly caller: Side,
    private readonly callee: Side,
  ) {
    this.wire(caller, callee);
    this.wire(callee, caller);
  }

  static async open(host: string): Promise<RtpSession> {
    const a = await bindPair(host);
    const b = await bindPair(host);
    return new RtpSession(host, { ...a, peer: undefined, latched: false }, { ...b, peer: undefined, latched: false });
  }

  /** Port the caller should send to (what goes in the SDP sent to the caller). */
  get callerFacingPort(): number {
    return this.caller.rtp.address().port;
  }

  get calleeFacingPort(): number {
    return this.callee.rtp.address().port;
  }

  /** Packets forwarded (for tests and metrics). */
  forwarded = 0;

  setPeer(side: 'caller' | 'callee', address: string, port: number): void {
    const s = side === 'caller' ? this.caller : this.callee;
    if (!s.latched) s.peer = { address, port };
  }

  private wire(from: Side, to: Side): void {
    const relay = (rtcp: boolean) => (msg: Buffer, rinfo: { address: string; port: number }) => {
      if (!rtcp && (!from.latched || from.peer?.address !== rinfo.address || from.peer.port !== rinfo.port)) {
        from.peer = { address: rinfo.address, port: rinfo.port };
        from.latched = true;
      }
      const dest = to.peer;
      if (!dest) return;
      (rtcp ? to.rtcp : to.rtp).send(msg, rtcp ? dest.port + 1 : dest.port, dest.address);
      this.forwarded++;
    };
    from.rtp.on('message', relay(false));
    from.rtcp.on('message', relay(true));
  }

  close(): void {
    for (const s of [this.caller.rtp, this.caller.rtcp, this.callee.rtp, this.callee.rtcp]) {
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
  }
}

/** Rewrite c= and the first audio m= port of an SDP; return the original connection address and port. */
export function rewriteSdp(sdp: string, address: string, port: number): { sdp: string; address: string | undefined; port: number | undefined } {
  let origAddress: string | undefined;
  let origPort: number | undefined;
  const out = sdp.split(/\r?\n/).map((line) => {
    const c = /^c=IN IP4 (\S+)/.exec(line);
    if (c) {
      origAddress ??= c[1];
      return `c=IN IP4 ${address}`;
    }
    const o = /^o=(\S+ \S+ \S+) IN IP4 \S+/.exec(line);
    if (o) return `o=${o[1]} IN IP4 ${address}`;
    const m = /^m=(audio|video) (\d+)( .*)$/.exec(line);
    if (m && origPort === undefined) {
      origPort = Number(m[2]);
      return `m=${m[1]} ${port}${m[3]}`;
    }
    return line;
  });
  return { sdp: out.join('\r\n'), address: origAddress, port: origPort };
}
