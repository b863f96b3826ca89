import type { SipRequest, SipResponse } from '../parser/index.js';
import { type Destination, type TransactionHost } from './base.js';
import { keepBytes, resendable } from '../util/own.js';
import { ClientTransaction, type ClientAction, type ClientTransactionUser } from './client.js';
import { IGNORE, type Machine } from './fsm.js';
import { createCancel, createNon2xxAck } from './requests.js';

export type InviteClientState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

/**
 * What can happen to an INVITE client transaction: a response from the transport layer (by
 * class), a timer, a transport error, the size-driven switch back to UDP (§18.1.1), and the
 * TU asking to cancel (§9.1).
 */
export type InviteClientEvent =
  | '1xx'
  | '2xx'
  | '300-699'
  | 'timer_A'
  | 'timer_B'
  | 'timer_D'
  | 'timer_M'
  | 'transport_error'
  | 'transport_fallback'
  | 'tu_cancel';

type InviteClientAction =
  | ClientAction
  | 'startTimerA'
  | 'resetTimerA'
  | 'stopTimerA'
  | 'startTimerB'
  | 'stopTimerB'
  | 'startTimerD'
  | 'startTimerM'
  | 'sendAck'
  | 'resendAck'
  | 'holdCancel'
  | 'sendCancel'
  | 'sendHeldCancel';

/**
 * RFC 3261 §17.1.1.2 Figure 5, as replaced by RFC 6026 §7.2 (the Accepted state, Timer M).
 * Figure labels → actions: "INVITE sent" sendRequest, "Reset A" resetTimerA, "1xx to TU",
 * "2xx to TU", "resp. to TU" passToTU, "ACK sent" sendAck/resendAck, "inform TU" informTU….
 * Beyond the figure: Timer B stops once a provisional came (the transaction then waits for
 * the final, §17.1.1.2), a CANCEL is held until a provisional allows it (§9.1), and a request
 * moved to TCP for its size falls back to UDP when the connection is refused (§18.1.1).
 */
export const INVITE_CLIENT: Machine<InviteClientState, InviteClientEvent, InviteClientAction> = {
  figure: 'RFC 3261 Figure 5 as replaced by RFC 6026 §7.2',
  initial: 'calling',
  entry: ['sendRequest', 'startTimerA', 'startTimerB'],
  states: ['calling', 'proceeding', 'completed', 'accepted', 'terminated'],
  events: ['1xx', '2xx', '300-699', 'timer_A', 'timer_B', 'timer_D', 'timer_M', 'transport_error', 'transport_fallback', 'tu_cancel'],
  actions: [
    'sendRequest', 'passToTU', 'informTUTimeout', 'informTUTransportError', 'switchTransport',
    'startTimerA', 'resetTimerA', 'stopTimerA', 'startTimerB', 'stopTimerB', 'startTimerD', 'startTimerM',
    'sendAck', 'resendAck', 'holdCancel', 'sendCancel', 'sendHeldCancel',
  ],
  rows: {
    calling: {
      '1xx':              ['proceeding', 'stopTimerA', 'stopTimerB', 'passToTU', 'sendHeldCancel'],
      '2xx':              ['accepted', 'stopTimerA', 'stopTimerB', 'passToTU', 'startTimerM'],
      '300-699':          ['completed', 'stopTimerA', 'stopTimerB', 'sendAck', 'passToTU', 'startTimerD'],
      timer_A:            ['calling', 'sendRequest', 'resetTimerA'],
      timer_B:            ['terminated', 'informTUTimeout'],
      timer_D:            IGNORE,
      timer_M:            IGNORE,
      transport_error:    ['terminated', 'informTUTransportError'],
      transport_fallback: ['calling', 'switchTransport', 'sendRequest', 'startTimerA', 'startTimerB'],
      tu_cancel:          ['calling', 'holdCancel'],
    },
    proceeding: {
      '1xx':              ['proceeding', 'passToTU'],
      '2xx':              ['accepted', 'passToTU', 'startTimerM'],
      '300-699':          ['completed', 'sendAck', 'passToTU', 'startTimerD'],
      timer_A:            IGNORE,
      timer_B:            IGNORE,
      timer_D:            IGNORE,
      timer_M:            IGNORE,
      transport_error:    ['terminated', 'informTUTransportError'],
      transport_fallback: IGNORE,
      tu_cancel:          ['proceeding', 'sendCancel'],
    },
    completed: {
      // A retransmitted final: ACK it again, do not bother the TU.
      '1xx':              IGNORE,
      '2xx':              IGNORE,
      '300-699':          ['completed', 'resendAck'],
      timer_A:            IGNORE,
      timer_B:            IGNORE,
      timer_D:            ['terminated'],
      timer_M:            IGNORE,
      transport_error:    ['terminated', 'informTUTransportError'],
      transport_fallback: IGNORE,
      tu_cancel:          IGNORE,
    },
    accepted: {
      // RFC 6026 §8.4: 2xx retransmissions and 2xx from other forks go to the TU, which ACKs them.
      '1xx':              IGNORE,
      '2xx':              ['accepted', 'passToTU'],
      '300-699':          IGNORE,
      timer_A:            IGNORE,
      timer_B:            IGNORE,
      timer_D:            IGNORE,
      timer_M:            ['terminated'],
      // Nothing is sent in Accepted (the TU ACKs 2xx itself), so an error is a late one from
      // Calling; the figure has no arrow for it and the call must not hear a 503 after its 2xx.
      transport_error:    IGNORE,
      transport_fallback: IGNORE,
      tu_cancel:          IGNORE,
    },
    terminated: {
      '1xx':              IGNORE,
      '2xx':              IGNORE,
      '300-699':          IGNORE,
      timer_A:            IGNORE,
      timer_B:            IGNORE,
      timer_D:            IGNORE,
      timer_M:            IGNORE,
      transport_error:    IGNORE,
      transport_fallback: IGNORE,
      tu_cancel:          IGNORE,
    },
  },
};

/**
 * INVITE client transaction (RFC 3261 §17.1.1, with RFC 6026's Accepted state), driven by
 * the INVITE_CLIENT table: Timer A retransmits (doubling, unreliable only), B times out, D
 * absorbs retransmitted non-2xx finals (each re-ACKed), M keeps the transaction in Accepted
 * so 2xx retransmissions from every fork reach the user.
 */
export class InviteClientTransaction extends ClientTransaction {
  // On the prototype, not a field of every transaction (a wait state keeps one for 64·T1, issue #16).
  declare readonly kind: 'invite-client';
  static {
    (this.prototype as { kind: string }).kind = 'invite-client';
  }
  /** The ACK for a non-2xx final, kept to resend for Timer D: as sent over a connection, else as keepBytes keeps it. */
  private ack: Uint8Array | string | undefined;
  /** Cancel: undefined (not asked), the reason (held until a provisional allows it), or true (sent). */
  private cancelState: string | true | undefined = undefined;

  constructor(
    host: TransactionHost,
    key: string,
    request: SipRequest,
    dest: Destination,
    user: ClientTransactionUser,
    bytes: Uint8Array,
    sendCancel: (cancel: SipRequest, tx: InviteClientTransaction) => void,
  ) {
    super(host, key, request, dest, user, bytes);
    this.sendCancel = sendCancel;
  }

  // Dropped once a final came: nothing is cancelled after it, and the layer's closure may hold the INVITE.
  private sendCancel: ((cancel: SipRequest, tx: InviteClientTransaction) => void) | undefined;

  /** @internal */
  protected override waiting(): void {
    super.waiting();
    this.sendCancel = undefined;
  }

  /** @internal */
  protected st: string = INVITE_CLIENT.initial;

  /** @internal */
  protected override get machine(): typeof INVITE_CLIENT {
    return INVITE_CLIENT;
  }

  override get state(): InviteClientState {
    return this.st as InviteClientState;
  }

  /** @internal */
  receive(res: SipResponse): void {
    const s = res.status;
    this.fire(s < 200 ? '1xx' : s < 300 ? '2xx' : '300-699', res);
  }

  /**
   * Cancel the INVITE (RFC 3261 §9.1). A CANCEL may only follow a provisional
   * response, so before one arrives the cancel is held and sent with it.
   * No effect once a final response came.
   */
  cancel(reason?: string): void {
    if (this.cancelState !== true) this.fire('tu_cancel', reason ?? '');
  }

  /** True once cancel() was called, sent or waiting for a provisional. */
  get cancelRequested(): boolean {
    return this.cancelState !== undefined;
  }

  /** @internal */
  protected override act(action: InviteClientAction, input: unknown): void {
    const { T1, D } = this.host.timers;
    switch (action) {
      case 'startTimerA':
        if (!this.reliable) {
          this.interval = T1;
          this.startTimer('timer_A', T1);
        }
        return;
      case 'resetTimerA':
        // §17.1.1.2: Timer A doubles without the T2 cap that non-INVITE uses.
        this.interval *= 2;
        this.startTimer('timer_A', this.interval);
        return;
      case 'stopTimerA':
        this.stopTimer('timer_A');
        return;
      case 'startTimerB':
        this.startTimer('timer_B', 64 * T1);
        return;
      case 'stopTimerB':
        this.stopTimer('timer_B');
        return;
      case 'startTimerD':
        this.startWait('timer_D', this.reliable ? 0 : D);
        this.waiting();
        return;
      case 'startTimerM':
        this.startWait('timer_M', 64 * T1);
        this.waiting();
        return;
      case 'sendAck': {
        const ack = createNon2xxAck(this.request!, input as SipResponse).toBytes();
        // Resent for Timer D (32 s) on each retransmitted final: kept as a string of its own (keepBytes, src/util/own.ts).
        this.ack = this.reliable ? ack : keepBytes(ack);
        this.send(ack);
        return;
      }
      case 'resendAck':
        if (this.ack !== undefined) this.send(resendable(this.ack));
        return;
      case 'holdCancel':
        this.cancelState = input as string;
        return;
      case 'sendCancel':
        this.fireCancel(input as string);
        return;
      case 'sendHeldCancel':
        if (typeof this.cancelState === 'string') this.fireCancel(this.cancelState);
        return;
      default:
        super.act(action, input);
    }
  }

  /** @internal */
  protected override dropBuffers(): void {
    super.dropBuffers();
    this.ack = undefined;
  }

  private fireCancel(reason: string): void {
    this.cancelState = true;
    this.sendCancel?.(createCancel(this.request!, reason || undefined), this);
  }
}
