import type { SipRequest, SipResponse } from '../parser/index.js';
import type { TransportError } from '../transport/index.js';
import { Transaction, type Destination, type TransactionHost } from './base.js';

/** Actions both server tables name; the machines add their own. */
export type ServerAction = 'sendResponse' | 'resendResponse' | 'informTUTransportError';

/** Behaviour shared by the INVITE and non-INVITE server transactions. */
export abstract class ServerTransaction extends Transaction {
  abstract override readonly kind: 'invite-server' | 'non-invite-server';
  /** The last response sent (resent on request retransmissions); released when the transaction ends. */
  lastResponse: SipResponse | undefined;
  protected lastBytes: Uint8Array | undefined;
  /** Status of the last response sent (0: none yet). Kept after the transaction ends. */
  lastStatus = 0;
  /** Called when a response could not be sent (the transaction is then terminated, except an INVITE server transaction in Accepted: RFC 6026). */
  onTransportError: ((err: TransportError, tx: ServerTransaction) => void) | undefined;

  constructor(host: TransactionHost, key: string, request: SipRequest, dest: Destination) {
    super(host, key, request, dest);
  }

  /**
   * @internal Set by the layer for a request that came over a connection: where its responses
   * go once sending back over that connection fails (RFC 3261 §18.2.2, §17.2.4; RFC 3263 §5).
   * Resolves with the next destination, or undefined when none is left.
   */
  retryElsewhere: ((tx: ServerTransaction) => Promise<Destination | undefined>) | undefined;

  /** Send a response in this transaction. Returns false if the state does not allow it. */
  abstract respond(response: SipResponse): boolean;

  /** @internal */
  /** A retransmission of the request arrived. */
  receiveRetransmission(): void {
    this.fire('request_retransmission');
  }

  /** True once a final response was sent. */
  get finalSent(): boolean {
    return this.lastStatus >= 200;
  }

  /** @internal */
  protected override act(action: ServerAction, input: unknown): void {
    switch (action) {
      case 'sendResponse': {
        const res = input as SipResponse;
        this.lastStatus = res.status;
        this.lastResponse = res;
        this.lastBytes = res.toBytes();
        this.send(this.lastBytes);
        return;
      }
      case 'resendResponse':
        if (this.lastBytes) this.send(this.lastBytes);
        return;
      case 'informTUTransportError':
        // §17.2.4: a response that cannot be sent is reported to the TU (the table says whether the transaction ends).
        this.onTransportError?.(input as TransportError, this);
        return;
      default:
        action satisfies never;
    }
  }

  /** @internal A response could not be sent: try where §18.2.2 says next, and report the failure when nothing is left. */
  protected override transportError(err: TransportError): void {
    const elsewhere = this.retryElsewhere;
    if (elsewhere === undefined || this.lastBytes === undefined) {
      super.transportError(err);
      return;
    }
    const fail = (): void => {
      this.retryElsewhere = undefined;
      if (this.state !== 'terminated') super.transportError(err);
    };
    elsewhere(this).then((d) => {
      if (this.state === 'terminated') return;
      if (d === undefined || this.lastBytes === undefined) return fail();
      this.dest.transport = d.transport;
      this.dest.address = d.address;
      this.send(this.lastBytes);
    }, fail);
  }

  protected override dropBuffers(): void {
    this.lastBytes = undefined;
    this.lastResponse = undefined;
  }
}
