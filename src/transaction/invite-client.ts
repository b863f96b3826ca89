import type { SipRequest, SipResponse } from '../parser/index.js';
import type { Destination, TransactionHost } from './base.js';
import { ClientTransaction, type ClientTransactionUser } from './client.js';
import { createCancel, createNon2xxAck } from './requests.js';

export type InviteClientState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

/**
 * INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state):
 * Timer A retransmits (doubling, unreliable only), B times out, D absorbs
 * retransmitted non-2xx finals (each re-ACKed), M keeps the transaction in
 * Accepted so 2xx retransmissions from every fork reach the user.
 */
export class InviteClientTransaction extends ClientTransaction {
  readonly kind = 'invite-client' as const;
  private st: InviteClientState = 'calling';
  private ack: Uint8Array | undefined;
  private cancelPending: string | null = null;
  private cancelSent = false;

  constructor(
    host: TransactionHost,
    key: string,
    request: SipRequest,
    dest: Destination,
    user: ClientTransactionUser,
    bytes: Uint8Array,
    private readonly sendCancel: (cancel: SipRequest, tx: InviteClientTransaction) => void,
  ) {
    super(host, key, request, dest, user, bytes);
  }

  get state(): InviteClientState {
    return this.terminated ? 'terminated' : this.st;
  }

  /** @internal */
  start(): void {
    const { T1 } = this.host.timers;
    this.send(this.bytes);
    if (!this.reliable) this.scheduleA(T1);
    this.startTimer('B', 64 * T1, () => {
      if (this.st === 'calling') this.timeout();
    });
  }

  private scheduleA(interval: number): void {
    this.startTimer('A', interval, () => {
      if (this.st !== 'calling') return;
      this.send(this.bytes);
      // §17.1.1.2: Timer A doubles without the T2 cap that non-INVITE uses.
      this.scheduleA(interval * 2);
    });
  }

  /** @internal */
  receive(res: SipResponse): void {
    const s = res.status;
    switch (this.st) {
      case 'calling':
      case 'proceeding':
        if (s < 200) {
          this.st = 'proceeding';
          this.stopTimer('A');
          this.stopTimer('B');
          this.deliver(res);
          if (this.cancelPending !== null) this.fireCancel(this.cancelPending);
        } else if (s < 300) {
          this.st = 'accepted';
          this.stopTimer('A');
          this.stopTimer('B');
          this.deliver(res);
          this.startTimer('M', 64 * this.host.timers.T1, () => this.terminate());
        } else {
          this.st = 'completed';
          this.stopTimer('A');
          this.stopTimer('B');
          this.ack = createNon2xxAck(this.request, res).toBytes();
          this.send(this.ack);
          this.deliver(res);
          this.startTimer('D', this.reliable ? 0 : this.host.timers.D, () => this.terminate());
        }
        break;
      case 'completed':
        // A retransmitted final: ACK it again, do not bother the user (§17.1.1.2).
        if (s >= 300 && this.ack) this.send(this.ack);
        break;
      case 'accepted':
        // RFC 6026 §8.4: 2xx retransmissions and 2xx from other forks go to the user, who ACKs them.
        if (s >= 200 && s < 300) this.deliver(res);
        break;
    }
  }

  /**
   * Cancel the INVITE (RFC 3261 §9.1). A CANCEL may only follow a provisional
   * response, so before one arrives the cancel is held and sent with it.
   * No effect once a final response came.
   */
  cancel(reason?: string): void {
    if (this.cancelSent || this.terminated) return;
    if (this.st === 'proceeding') this.fireCancel(reason ?? null);
    else if (this.st === 'calling') this.cancelPending = reason ?? '';
  }

  /** True once cancel() was called, sent or waiting for a provisional. */
  get cancelRequested(): boolean {
    return this.cancelSent || this.cancelPending !== null;
  }

  private fireCancel(reason: string | null): void {
    this.cancelPending = null;
    this.cancelSent = true;
    this.sendCancel(createCancel(this.request, reason || undefined), this);
  }
}
