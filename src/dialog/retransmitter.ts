import type { SipResponse } from '../parser/index.js';
import type { Clock, Timer } from '../transport/index.js';
import type { ServerTransaction, TimerValues } from '../transaction/index.js';

/** What a retransmitter tells its owner: it sent for 64·T1 and nothing stopped it. */
export interface RetransmissionOwner {
  retransmissionGaveUp(what: Retransmitter): void;
}

/**
 * Retransmits one response a transaction will not retransmit itself, until stopped:
 * a 2xx to an INVITE until its ACK (RFC 3261 §13.3.1.4: T1, doubling, capped at T2) or a
 * reliable provisional until its PRACK (RFC 3262 §3: T1, doubling, with no cap). Either
 * gives up 64·T1 after the first send and tells its owner. Time is the injected clock's.
 */
export class Retransmitter {
  readonly kind: 'final' | 'provisional';
  readonly response: SipResponse;
  private readonly tx: ServerTransaction;
  private readonly clock: Clock;
  private readonly owner: RetransmissionOwner;
  private readonly cap: number;
  private readonly giveUpAt: number;
  private interval: number;
  private elapsed = 0;
  private timer: Timer | undefined;

  constructor(
    clock: Clock,
    timers: TimerValues,
    tx: ServerTransaction,
    response: SipResponse,
    kind: 'final' | 'provisional',
    owner: RetransmissionOwner,
  ) {
    this.clock = clock;
    this.tx = tx;
    this.response = response;
    this.kind = kind;
    this.owner = owner;
    this.cap = kind === 'final' ? timers.T2 : Infinity;
    this.giveUpAt = 64 * timers.T1;
    this.interval = timers.T1;
  }

  /** Send the response now and schedule its retransmissions. */
  start(): void {
    this.tx.respond(this.response);
    this.timer = this.clock.setTimer(this.interval, this.fire);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get active(): boolean {
    return this.timer !== undefined;
  }

  private readonly fire = (): void => {
    this.elapsed += this.interval;
    if (this.elapsed >= this.giveUpAt) {
      this.timer = undefined;
      this.owner.retransmissionGaveUp(this);
      return;
    }
    this.tx.respond(this.response);
    // The last wait is cut short so the give-up falls exactly at 64·T1.
    this.interval = Math.min(this.interval * 2, this.cap, this.giveUpAt - this.elapsed);
    this.timer = this.clock.setTimer(this.interval, this.fire);
  };
}
