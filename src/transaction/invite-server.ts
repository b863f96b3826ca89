import type { SipRequest, SipResponse } from '../parser/index.js';
import { createResponse } from '../parser/index.js';
import type { TransportError } from '../transport/index.js';
import type { Destination, TransactionHost } from './base.js';
import { ServerTransaction } from './server.js';

export type InviteServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

/**
 * INVITE server transaction (RFC 3261 §17.2.1, with RFC 6026's Accepted state):
 * `100 Trying` when the user is slow, Timer G retransmits a non-2xx final until
 * the ACK (H gives up), I absorbs ACK retransmissions, L keeps Accepted so
 * INVITE retransmissions after a 2xx are absorbed rather than seen as new.
 */
export class InviteServerTransaction extends ServerTransaction {
  readonly kind = 'invite-server' as const;
  private st: InviteServerState = 'proceeding';
  /** @internal */
  /** Set when Timer H fired: the ACK never came. */
  ackTimedOut = false;
  /** Called when the ACK for a non-2xx final arrives (Completed → Confirmed). */
  onConfirmed: (() => void) | undefined;

  constructor(host: TransactionHost, key: string, request: SipRequest, dest: Destination, tryingAfterMs: number) {
    super(host, key, request, dest);
    // §17.2.1: answer 100 Trying if the user has not answered within 200 ms.
    if (tryingAfterMs >= 0) {
      this.startTimer('trying', tryingAfterMs, () => {
        if (this.st === 'proceeding' && this.lastStatus === 0) this.sendResponse(createResponse(request, 100));
      });
    }
  }

  get state(): InviteServerState {
    return this.terminated ? 'terminated' : this.st;
  }

  respond(res: SipResponse): boolean {
    const s = res.status;
    if (this.st === 'proceeding') {
      this.stopTimer('trying');
      this.sendResponse(res);
      const { T1 } = this.host.timers;
      if (s >= 200 && s < 300) {
        this.st = 'accepted';
        this.startTimer('L', 64 * T1, () => this.terminate());
      } else if (s >= 300) {
        this.st = 'completed';
        if (!this.reliable) this.scheduleG(T1);
        this.startTimer('H', 64 * T1, () => {
          this.ackTimedOut = true;
          this.terminate();
        });
      }
      return true;
    }
    if (this.st === 'accepted' && s >= 200 && s < 300) {
      // RFC 6026 §8.5: 2xx retransmissions from the user go out in Accepted.
      this.sendResponse(res);
      return true;
    }
    return false;
  }

  private scheduleG(interval: number): void {
    this.startTimer('G', interval, () => {
      if (this.st !== 'completed') return;
      this.resend();
      this.scheduleG(Math.min(interval * 2, this.host.timers.T2));
    });
  }

  /** @internal */
  receiveRetransmission(): void {
    // Proceeding: resend the last provisional; Completed: the final. Accepted/Confirmed absorb.
    if (this.st === 'proceeding' || this.st === 'completed') this.resend();
  }

  /** @internal */
  protected override transportError(err: TransportError): void {
    if (this.st === 'accepted' && !this.terminated) {
      // RFC 6026 §7.1, §8.7: Accepted exists to absorb INVITE retransmissions after a 2xx and is
      // left only when Timer L fires. Ending it on a failed 2xx retransmission would hand the
      // next INVITE retransmission to the TU as a new call; the TU is told, the state stays.
      this.onTransportError?.(err, this);
      return;
    }
    super.transportError(err);
  }

  /** @internal */
  /** An ACK matched this transaction (it acknowledges a non-2xx final). */
  receiveAck(): void {
    if (this.st !== 'completed') return;
    this.st = 'confirmed';
    this.stopTimer('G');
    this.stopTimer('H');
    this.onConfirmed?.();
    this.startTimer('I', this.reliable ? 0 : this.host.timers.T4, () => this.terminate());
  }
}
