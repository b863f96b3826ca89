import type { SipRequest, SipResponse } from '../parser/index.js';
import { createResponse } from '../parser/index.js';
import type { Destination, MessageSource, TransactionHost } from './base.js';
import { IGNORE, type Machine } from './fsm.js';
import { ServerTransaction, type ServerAction } from './server.js';

export type InviteServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

/**
 * What can happen to an INVITE server transaction: the INVITE again, the TU's responses (by
 * class), an ACK, a timer (`timer_trying` is §17.2.1's "send 100 if TU won't in 200 ms"),
 * a transport error.
 */
export type InviteServerEvent =
  | 'request_retransmission'
  | 'tu_1xx'
  | 'tu_2xx'
  | 'tu_300-699'
  | 'ack'
  | 'timer_trying'
  | 'timer_G'
  | 'timer_H'
  | 'timer_I'
  | 'timer_L'
  | 'transport_error';

type InviteServerAction =
  | ServerAction
  | 'startTimerTrying'
  | 'stopTimerTrying'
  | 'send100'
  | 'startTimerG'
  | 'resetTimerG'
  | 'stopTimerG'
  | 'startTimerH'
  | 'stopTimerH'
  | 'startTimerI'
  | 'startTimerL'
  | 'noteAckTimeout'
  | 'notifyConfirmed'
  | 'dropResponse'
  | 'passAckToTU';

/** An ACK and where it came from (the TU gets both when the transaction passes it on). */
interface ReceivedAck {
  request: SipRequest;
  source: MessageSource;
}

/**
 * RFC 3261 §17.2.1 Figure 7, as replaced by RFC 6026 §7.1 (the Accepted state, Timer L).
 * Accepted absorbs INVITE retransmissions, sends every 2xx the TU passes down (RFC 6026
 * §8.5), hands ACKs to the TU, and on a transport error informs the TU but stays until
 * Timer L (RFC 6026 §7.1, §8.7): leaving early would turn the next INVITE retransmission
 * into a new call.
 */
export const INVITE_SERVER: Machine<InviteServerState, InviteServerEvent, InviteServerAction> = {
  figure: 'RFC 3261 Figure 7 as replaced by RFC 6026 §7.1',
  initial: 'proceeding',
  entry: ['startTimerTrying'],
  states: ['proceeding', 'completed', 'confirmed', 'accepted', 'terminated'],
  events: ['request_retransmission', 'tu_1xx', 'tu_2xx', 'tu_300-699', 'ack', 'timer_trying', 'timer_G', 'timer_H', 'timer_I', 'timer_L', 'transport_error'],
  actions: [
    'sendResponse', 'resendResponse', 'informTUTransportError',
    'startTimerTrying', 'stopTimerTrying', 'send100', 'startTimerG', 'resetTimerG', 'stopTimerG', 'startTimerH', 'stopTimerH',
    'startTimerI', 'startTimerL', 'noteAckTimeout', 'notifyConfirmed', 'dropResponse', 'passAckToTU',
  ],
  rows: {
    proceeding: {
      request_retransmission: ['proceeding', 'resendResponse'],
      tu_1xx:                 ['proceeding', 'stopTimerTrying', 'sendResponse'],
      tu_2xx:                 ['accepted', 'stopTimerTrying', 'sendResponse', 'startTimerL'],
      'tu_300-699':           ['completed', 'stopTimerTrying', 'sendResponse', 'startTimerG', 'startTimerH'],
      // No final has been sent: nothing for an ACK to acknowledge.
      ack:                    IGNORE,
      timer_trying:           ['proceeding', 'send100'],
      timer_G:                IGNORE,
      timer_H:                IGNORE,
      timer_I:                IGNORE,
      timer_L:                IGNORE,
      transport_error:        ['terminated', 'informTUTransportError'],
    },
    completed: {
      request_retransmission: ['completed', 'resendResponse'],
      tu_1xx:                 IGNORE,
      tu_2xx:                 IGNORE,
      'tu_300-699':           IGNORE,
      ack:                    ['confirmed', 'stopTimerG', 'stopTimerH', 'dropResponse', 'notifyConfirmed', 'startTimerI'],
      timer_trying:           IGNORE,
      timer_G:                ['completed', 'resendResponse', 'resetTimerG'],
      timer_H:                ['terminated', 'noteAckTimeout'],
      timer_I:                IGNORE,
      timer_L:                IGNORE,
      transport_error:        ['terminated', 'informTUTransportError'],
    },
    confirmed: {
      // Only ACK retransmissions are drawn (absorbed); everything else is absorbed too.
      request_retransmission: IGNORE,
      tu_1xx:                 IGNORE,
      tu_2xx:                 IGNORE,
      'tu_300-699':           IGNORE,
      ack:                    ['confirmed'],
      timer_trying:           IGNORE,
      timer_G:                IGNORE,
      timer_H:                IGNORE,
      timer_I:                ['terminated'],
      timer_L:                IGNORE,
      transport_error:        IGNORE,
    },
    accepted: {
      request_retransmission: ['accepted'],
      tu_1xx:                 IGNORE,
      tu_2xx:                 ['accepted', 'sendResponse'],
      'tu_300-699':           IGNORE,
      ack:                    ['accepted', 'passAckToTU'],
      timer_trying:           IGNORE,
      timer_G:                IGNORE,
      timer_H:                IGNORE,
      timer_I:                IGNORE,
      timer_L:                ['terminated'],
      transport_error:        ['accepted', 'informTUTransportError'],
    },
    terminated: {
      request_retransmission: IGNORE,
      tu_1xx:                 IGNORE,
      tu_2xx:                 IGNORE,
      'tu_300-699':           IGNORE,
      ack:                    IGNORE,
      timer_trying:           IGNORE,
      timer_G:                IGNORE,
      timer_H:                IGNORE,
      timer_I:                IGNORE,
      timer_L:                IGNORE,
      transport_error:        IGNORE,
    },
  },
};

/**
 * INVITE server transaction (RFC 3261 §17.2.1, with RFC 6026's Accepted state), driven by
 * the INVITE_SERVER table: `100 Trying` when the user is slow, Timer G retransmits a non-2xx
 * final until the ACK (H gives up), I absorbs ACK retransmissions, L keeps Accepted so
 * INVITE retransmissions after a 2xx are absorbed rather than seen as new.
 */
export class InviteServerTransaction extends ServerTransaction {
  // On the prototype, not a field of every transaction (a wait state keeps one for 64·T1, issue #16).
  declare readonly kind: 'invite-server';
  static {
    (this.prototype as { kind: string }).kind = 'invite-server';
  }
  /** The current Timer G interval, in ms; -1 once Timer H fired (see ackTimedOut). */
  private interval = 0;

  /** @internal */
  /** Set when Timer H fired: the ACK never came. */
  get ackTimedOut(): boolean {
    return this.interval < 0;
  }
  /** Called when the ACK for a non-2xx final arrives (Completed → Confirmed). */
  onConfirmed: (() => void) | undefined;

  constructor(host: TransactionHost, key: string, request: SipRequest, dest: Destination, tryingAfterMs: number) {
    super(host, key, request, dest);
    this.enter(tryingAfterMs);
  }

  /** @internal */
  protected st: string = INVITE_SERVER.initial;

  /** @internal */
  protected override get machine(): typeof INVITE_SERVER {
    return INVITE_SERVER;
  }

  override get state(): InviteServerState {
    return this.st as InviteServerState;
  }

  /** @internal A 2xx is the TU's to retransmit (RFC 6026 §7.1); Accepted never resends it. */
  protected override resendsFinal(status: number): boolean {
    return status >= 300;
  }

  respond(res: SipResponse): boolean {
    const s = res.status;
    return this.fire(s < 200 ? 'tu_1xx' : s < 300 ? 'tu_2xx' : 'tu_300-699', res);
  }

  /** @internal */
  /** An ACK matched this transaction: Completed takes it as the ACK for its final; Accepted passes it to the TU. */
  receiveAck(request: SipRequest, source: MessageSource): void {
    const ack: ReceivedAck = { request, source };
    this.fire('ack', ack);
  }

  /** @internal */
  protected override act(action: InviteServerAction, input: unknown): void {
    const { T1, T2, T4 } = this.host.timers;
    switch (action) {
      case 'startTimerTrying':
        // §17.2.1: answer 100 Trying if the TU has not answered within 200 ms (-1: never).
        if ((input as number) >= 0) this.startTimer('timer_trying', input as number);
        return;
      case 'stopTimerTrying':
        this.stopTimer('timer_trying');
        return;
      case 'send100':
        super.act('sendResponse', createResponse(this.request!, 100));
        return;
      case 'startTimerG':
        if (!this.reliable) {
          this.interval = T1;
          this.startTimer('timer_G', T1);
        }
        return;
      case 'resetTimerG':
        this.interval = Math.min(this.interval * 2, T2);
        this.startTimer('timer_G', this.interval);
        return;
      case 'stopTimerG':
        this.stopTimer('timer_G');
        return;
      case 'startTimerH':
        this.startTimer('timer_H', 64 * T1);
        return;
      case 'stopTimerH':
        this.stopTimer('timer_H');
        return;
      case 'startTimerI':
        this.startWait('timer_I', this.reliable ? 0 : T4);
        return;
      case 'startTimerL':
        this.startWait('timer_L', 64 * T1);
        return;
      case 'noteAckTimeout':
        this.interval = -1;
        return;
      case 'notifyConfirmed':
        this.onConfirmed?.();
        return;
      case 'dropResponse':
        // Confirmed only absorbs ACK retransmissions (Timer I): the final is never sent again.
        this.dropResponse();
        return;
      case 'passAckToTU': {
        const ack = input as ReceivedAck;
        this.host.deliverAck(ack.request, ack.source);
        return;
      }
      default:
        super.act(action, input);
    }
  }
}
