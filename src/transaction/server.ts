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

  /**
   * @internal With `retryElsewhere`, each send keeps its bytes until the transport reports: a
   * non-INVITE transaction over a connection ends as its final leaves (Timer J is 0), and its
   * response must still find the client when the connection is gone.
   */
  protected override send(bytes: Uint8Array): void {
    if (this.retryElsewhere === undefined) super.send(bytes);
    else this.host.transmit(bytes, this.dest, (err) => this.sendElsewhere(bytes, err));
  }

  /** A response could not be sent: try where §18.2.2 says next; report the failure when nothing is left. */
  private sendElsewhere(bytes: Uint8Array, err: TransportError): void {
    const elsewhere = this.retryElsewhere;
    if (elsewhere === undefined) {
      this.transportError(err);
      return;
    }
    elsewhere(this).then(
      (d) => {
        if (d === undefined) return this.transportError(err);
        this.dest.transport = d.transport;
        this.dest.address = d.address;
        this.host.transmit(bytes, this.dest, (e) => this.sendElsewhere(bytes, e));
      },
      () => this.transportError(err),
    );
  }

  protected override dropBuffers(): void {
    this.lastBytes = undefined;
    this.lastResponse = undefined;
  }
}
