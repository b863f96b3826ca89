import type { SipResponse } from '../parser/index.js';
import { ServerTransaction } from './server.js';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** Non-INVITE server transaction (RFC 3261 §17.2.2): Timer J absorbs request retransmissions after the final. */
export class NonInviteServerTransaction extends ServerTransaction {
  readonly kind = 'non-invite-server' as const;
  private st: NonInviteServerState = 'trying';

  get state(): NonInviteServerState {
    return this.terminated ? 'terminated' : this.st;
  }

  respond(res: SipResponse): boolean {
    if (this.st === 'completed' || this.terminated) return false;
    this.sendResponse(res);
    if (res.status < 200) {
      this.st = 'proceeding';
    } else {
      this.st = 'completed';
      this.startTimer('J', this.reliable ? 0 : 64 * this.host.timers.T1, () => this.terminate());
    }
    return true;
  }

  /** @internal */
  receiveRetransmission(): void {
    // Trying absorbs; Proceeding resends the provisional; Completed resends the final.
    if (this.st !== 'trying') this.resend();
  }
}
