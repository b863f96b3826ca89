import type { SipResponse } from '../parser/index.js';
import { ClientTransaction } from './client.js';

export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * Non-INVITE client transaction (RFC 3261 §17.1.2): Timer E retransmits,
 * doubling up to T2 (and at T2 once a provisional came), F times out, K
 * absorbs retransmitted finals.
 */
export class NonInviteClientTransaction extends ClientTransaction {
  readonly kind = 'non-invite-client' as const;
  private st: NonInviteClientState = 'trying';

  get state(): NonInviteClientState {
    return this.terminated ? 'terminated' : this.st;
  }

  /** @internal */
  start(): void {
    const { T1 } = this.host.timers;
    this.send(this.bytes);
    if (!this.reliable) this.scheduleE(T1);
    this.startTimer('F', 64 * T1, () => {
      if (this.st === 'trying' || this.st === 'proceeding') this.timeout();
    });
  }

  private scheduleE(interval: number): void {
    this.startTimer('E', interval, () => {
      if (this.st !== 'trying' && this.st !== 'proceeding') return;
      this.send(this.bytes);
      const { T2 } = this.host.timers;
      this.scheduleE(this.st === 'proceeding' ? T2 : Math.min(interval * 2, T2));
    });
  }

  /** @internal */
  receive(res: SipResponse): void {
    if (this.st !== 'trying' && this.st !== 'proceeding') return; // Completed absorbs retransmissions.
    if (res.status < 200) {
      this.st = 'proceeding';
      this.deliver(res);
      return;
    }
    this.st = 'completed';
    this.stopTimer('E');
    this.stopTimer('F');
    this.deliver(res);
    this.startTimer('K', this.reliable ? 0 : this.host.timers.T4, () => this.terminate());
  }
}
