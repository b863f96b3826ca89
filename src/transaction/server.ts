import { parseMessage, type SipRequest, type SipResponse, type Via } from '../parser/index.js';
import type { TransportError } from '../transport/index.js';
import { Transaction, type Destination, type TransactionHost } from './base.js';

/** Actions both server tables name; the machines add their own. */
export type ServerAction = 'sendResponse' | 'resendResponse' | 'informTUTransportError';

/** Behaviour shared by the INVITE and non-INVITE server transactions. */
export abstract class ServerTransaction extends Transaction {
  abstract override readonly kind: 'invite-server' | 'non-invite-server';
  /** The last provisional sent; after a final only its bytes are kept (see lastResponse). */
  private provisional: SipResponse | undefined;
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
  /** The request's top Via, kept past the request only where §18.2.2's fall-back may need it. */
  private keptVia: Via | undefined;

  /** @internal The request's top Via: where responses go (and, over a connection, where else). */
  get topVia(): Via | undefined {
    return this.request?.topVia ?? this.keptVia;
  }

  /** Send a response in this transaction. Returns false if the state does not allow it. */
  abstract respond(response: SipResponse): boolean;

  /** @internal */
  /** A retransmission of the request arrived. */
  receiveRetransmission(): void {
    this.fire('request_retransmission');
  }

  /**
   * The last response sent (resent on request retransmissions); undefined once the transaction
   * ended. A final is kept only as the bytes to resend — a transaction waiting out Timer G/H,
   * J or L (a held call's INVITE, 64·T1) keeps no parsed message — so reading it then parses
   * those bytes again: an equal response, not the object passed to `respond`.
   */
  get lastResponse(): SipResponse | undefined {
    if (this.provisional !== undefined || this.lastBytes === undefined) return this.provisional;
    return parseMessage(this.lastBytes) as SipResponse;
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
        // A final leaves the transaction waiting (Completed, Accepted: Timers G/H, J, L) with only
        // its bytes to resend: the parsed response is not kept for a call held for hours.
        this.provisional = res.status < 200 ? res : undefined;
        this.lastBytes = res.toBytes();
        if (res.status >= 200) {
          if (this.retryElsewhere) this.keptVia = this.request?.topVia;
          this.releaseRequest();
        }
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
    this.provisional = undefined;
  }
}
