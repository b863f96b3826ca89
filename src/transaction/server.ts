import { parseMessage, type SipRequest, type SipResponse, type Via } from '../parser/index.js';
import type { TransportError } from '../transport/index.js';
import { Transaction, type Destination, type TransactionHost } from './base.js';
import { keepBytes, resendable } from '../util/own.js';

/** The request's top Via, kept past the request only where §18.2.2's fall-back may need it (over a connection): not a field of every transaction. */
const keptVias = new WeakMap<ServerTransaction, Via>();

/** Actions both server tables name; the machines add their own. */
export type ServerAction = 'sendResponse' | 'resendResponse' | 'informTUTransportError';

/** Behaviour shared by the INVITE and non-INVITE server transactions. */
export abstract class ServerTransaction extends Transaction {
  abstract override readonly kind: 'invite-server' | 'non-invite-server';
  /** The last provisional sent; after a final only its bytes are kept (see lastResponse). */
  private provisional: SipResponse | undefined;
  /** A provisional's bytes; a final's as kept for resending (keepBytes) — or as sent, over a connection. */
  protected lastBytes: Uint8Array | string | undefined;
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

  /** @internal The request's top Via: where responses go (and, over a connection, where else). */
  get topVia(): Via | undefined {
    return this.request?.topVia ?? keptVias.get(this);
  }

  /** @internal Whether a final of this status is resent by this machine (so its bytes are kept). */
  protected resendsFinal(_status: number): boolean {
    return true;
  }

  /** @internal The transaction will not resend its response again (Confirmed): let go of the bytes. */
  protected dropResponse(): void {
    this.lastBytes = undefined;
  }

  /** Send a response in this transaction. Returns false if the state does not allow it. */
  abstract respond(response: SipResponse): boolean;

  /** @internal */
  /** A retransmission of the request arrived. */
  receiveRetransmission(): void {
    this.fire('request_retransmission');
  }

  /**
   * The last response sent while the transaction may still resend it: the provisional, or a
   * final this machine retransmits (a non-INVITE final under Timer J, a non-2xx final to an
   * INVITE until its ACK). A final is kept only as the bytes to resend, so reading it parses
   * them again: an equal response, not the object passed to `respond`. Undefined after a 2xx to
   * an INVITE (RFC 6026 §7.1: the TU, not the transaction, retransmits it — a held call's INVITE
   * transaction in Accepted keeps no copy), once the ACK confirmed a non-2xx, and once ended.
   * `lastStatus` stays.
   */
  get lastResponse(): SipResponse | undefined {
    if (this.provisional !== undefined || this.lastBytes === undefined) return this.provisional;
    return parseMessage(resendable(this.lastBytes)) as SipResponse;
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
        const status = res.status;
        this.lastStatus = status;
        // A final leaves the transaction waiting (Completed, Accepted: Timers G/H, J, L) with at
        // most its bytes to resend: the parsed response is not kept for a call held for hours.
        this.provisional = status < 200 ? res : undefined;
        const bytes = res.toBytes();
        if (status < 200) this.lastBytes = bytes;
        else {
          // Kept only where this machine resends it (Timer G, a request retransmission in
          // Completed), as a string of its own (keepBytes): the wait (Timer J, 64·T1 over UDP)
          // outlives Node's pool slab it was cut from, and a Buffer of its own costs ~300 bytes more.
          this.lastBytes = this.resendsFinal(status) ? (this.reliable ? bytes : keepBytes(bytes)) : undefined;
          const top = this.retryElsewhere && this.request?.topVia;
          if (top) keptVias.set(this, top);
          this.releaseRequest();
        }
        this.send(bytes);
        return;
      }
      case 'resendResponse':
        if (this.lastBytes !== undefined) this.send(resendable(this.lastBytes));
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
    this.host.sendFailed();
    const elsewhere = this.retryElsewhere;
    if (elsewhere === undefined) {
      this.transportError(err);
      return;
    }
    elsewhere(this).then(
      (d) => {
        if (d === undefined) return this.transportError(err);
        this.redirect({ transport: d.transport, address: d.address });
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
