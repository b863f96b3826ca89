import { parseMessage, type SipRequest } from '../parser/index.js';
import { ownBytes } from '../util/own.js';

/**
 * An INVITE as a call keeps it once set up: its header section as text (a character per byte)
 * and its body — the very buffer the call keeps as its SDP when they are the same bytes, so
 * the SDP is not held twice. `revive` parses it back.
 */
export class KeptInvite {
  private constructor(
    private readonly head: string,
    private readonly body: Uint8Array | undefined,
  ) {}

  /** `sdp`: the call's copy of the same SDP, shared when its bytes are the body's. */
  static of(invite: SipRequest, sdp: Uint8Array | undefined): KeptInvite {
    const bytes = invite.toBytes();
    const body = invite.body;
    const headLength = bytes.length - body.length;
    const shared = body.length === 0 ? undefined : sdp !== undefined && Buffer.compare(sdp, body) === 0 ? sdp : ownBytes(body);
    return new KeptInvite(bytes.toString('latin1', 0, headLength), shared);
  }

  /** A fresh parse of the INVITE. */
  revive(): SipRequest {
    const head = Buffer.from(this.head, 'latin1');
    return parseMessage(this.body === undefined ? head : Buffer.concat([head, this.body])) as SipRequest;
  }
}
