import type { SipResponse } from '../parser/index.js';
import { ClientTransaction, type ClientAction } from './client.js';
import { IGNORE, type Machine } from './fsm.js';

export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** What can happen to a non-INVITE client transaction (see InviteClientEvent). */
export type NonInviteClientEvent = '1xx' | '200-699' | 'timer_E' | 'timer_F' | 'timer_K' | 'transport_error' | 'transport_fallback';

type NonInviteClientAction =
  | ClientAction
  | 'startTimerE'
  | 'resetTimerE'
  | 'resetTimerEToT2'
  | 'stopTimerE'
  | 'startTimerF'
  | 'stopTimerF'
  | 'startTimerK';

/**
 * RFC 3261 §17.1.2.2 Figure 6. "Timer E / send request" is sendRequest + resetTimerE: the
 * interval doubles up to T2 in Trying and is T2 in Proceeding. Beyond the figure, as for
 * INVITE: the size-driven fallback to UDP (§18.1.1).
 */
export const NON_INVITE_CLIENT: Machine<NonInviteClientState, NonInviteClientEvent, NonInviteClientAction> = {
  figure: 'RFC 3261 Figure 6',
  initial: 'trying',
  entry: ['sendRequest', 'startTimerE', 'startTimerF'],
  states: ['trying', 'proceeding', 'completed', 'terminated'],
  events: ['1xx', '200-699', 'timer_E', 'timer_F', 'timer_K', 'transport_error', 'transport_fallback'],
  actions: [
    'sendRequest', 'passToTU', 'informTUTimeout', 'informTUTransportError', 'switchTransport',
    'startTimerE', 'resetTimerE', 'resetTimerEToT2', 'stopTimerE', 'startTimerF', 'stopTimerF', 'startTimerK',
  ],
  rows: {
    trying: {
      '1xx':              ['proceeding', 'passToTU'],
      '200-699':          ['completed', 'stopTimerE', 'stopTimerF', 'passToTU', 'startTimerK'],
      timer_E:            ['trying', 'sendRequest', 'resetTimerE'],
      timer_F:            ['terminated', 'informTUTimeout'],
      timer_K:            IGNORE,
      transport_error:    ['terminated', 'informTUTransportError'],
      transport_fallback: ['trying', 'switchTransport', 'sendRequest', 'startTimerE', 'startTimerF'],
    },
    proceeding: {
      '1xx':              ['proceeding', 'passToTU'],
      '200-699':          ['completed', 'stopTimerE', 'stopTimerF', 'passToTU', 'startTimerK'],
      timer_E:            ['proceeding', 'sendRequest', 'resetTimerEToT2'],
      timer_F:            ['terminated', 'informTUTimeout'],
      timer_K:            IGNORE,
      transport_error:    ['terminated', 'informTUTransportError'],
      transport_fallback: IGNORE,
    },
    completed: {
      // Retransmitted responses are absorbed. Nothing is sent here, so a transport error is a
      // late one from Trying or Proceeding: the TU already has its final response.
      '1xx':              IGNORE,
      '200-699':          IGNORE,
      timer_E:            IGNORE,
      timer_F:            IGNORE,
      timer_K:            ['terminated'],
      transport_error:    IGNORE,
      transport_fallback: IGNORE,
    },
    terminated: {
      '1xx':              IGNORE,
      '200-699':          IGNORE,
      timer_E:            IGNORE,
      timer_F:            IGNORE,
      timer_K:            IGNORE,
      transport_error:    IGNORE,
      transport_fallback: IGNORE,
    },
  },
};

/**
 * Non-INVITE client transaction (RFC 3261 §17.1.2), driven by the NON_INVITE_CLIENT table:
 * Timer E retransmits, doubling up to T2 (and at T2 once a provisional came), F times out,
 * K absorbs retransmitted finals.
 */
export class NonInviteClientTransaction extends ClientTransaction {
  // On the prototype, not a field of every transaction (a wait state keeps one for 64·T1, issue #16).
  declare readonly kind: 'non-invite-client';
  static {
    (this.prototype as { kind: string }).kind = 'non-invite-client';
  }

  /** @internal */
  protected st: string = NON_INVITE_CLIENT.initial;

  /** @internal */
  protected override get machine(): typeof NON_INVITE_CLIENT {
    return NON_INVITE_CLIENT;
  }

  override get state(): NonInviteClientState {
    return this.st as NonInviteClientState;
  }

  /** @internal */
  receive(res: SipResponse): void {
    this.fire(res.status < 200 ? '1xx' : '200-699', res);
  }

  /** @internal */
  protected override act(action: NonInviteClientAction, input: unknown): void {
    const { T1, T2, T4 } = this.host.timers;
    switch (action) {
      case 'startTimerE':
        if (!this.reliable) {
          this.interval = T1;
          this.startTimer('timer_E', T1);
        }
        return;
      case 'resetTimerE':
        this.interval = Math.min(this.interval * 2, T2);
        this.startTimer('timer_E', this.interval);
        return;
      case 'resetTimerEToT2':
        this.interval = T2;
        this.startTimer('timer_E', T2);
        return;
      case 'stopTimerE':
        this.stopTimer('timer_E');
        return;
      case 'startTimerF':
        this.startTimer('timer_F', 64 * T1);
        return;
      case 'stopTimerF':
        this.stopTimer('timer_F');
        return;
      case 'startTimerK':
        this.startWait('timer_K', this.reliable ? 0 : T4);
        this.waiting();
        return;
      default:
        super.act(action, input);
    }
  }
}
