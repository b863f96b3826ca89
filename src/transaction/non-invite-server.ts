import type { SipResponse } from '../parser/index.js';
import { IGNORE, type Machine } from './fsm.js';
import { ServerTransaction, type ServerAction } from './server.js';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** What can happen to a non-INVITE server transaction: the request again, the TU's responses, Timer J, a transport error. */
export type NonInviteServerEvent = 'request_retransmission' | 'tu_1xx' | 'tu_final' | 'timer_J' | 'transport_error';

type NonInviteServerAction = ServerAction | 'startTimerJ';

/**
 * RFC 3261 §17.2.2 Figure 8. "Request / send response" is resendResponse: the last
 * provisional in Proceeding, the final in Completed; Trying absorbs retransmissions.
 */
export const NON_INVITE_SERVER: Machine<NonInviteServerState, NonInviteServerEvent, NonInviteServerAction> = {
  figure: 'RFC 3261 Figure 8',
  initial: 'trying',
  entry: [],
  states: ['trying', 'proceeding', 'completed', 'terminated'],
  events: ['request_retransmission', 'tu_1xx', 'tu_final', 'timer_J', 'transport_error'],
  actions: ['sendResponse', 'resendResponse', 'informTUTransportError', 'startTimerJ'],
  rows: {
    trying: {
      request_retransmission: IGNORE,
      tu_1xx:                 ['proceeding', 'sendResponse'],
      tu_final:               ['completed', 'sendResponse', 'startTimerJ'],
      timer_J:                IGNORE,
      // Nothing has been sent yet, so nothing can fail.
      transport_error:        IGNORE,
    },
    proceeding: {
      request_retransmission: ['proceeding', 'resendResponse'],
      tu_1xx:                 ['proceeding', 'sendResponse'],
      tu_final:               ['completed', 'sendResponse', 'startTimerJ'],
      timer_J:                IGNORE,
      transport_error:        ['terminated', 'informTUTransportError'],
    },
    completed: {
      request_retransmission: ['completed', 'resendResponse'],
      tu_1xx:                 IGNORE,
      tu_final:               IGNORE,
      timer_J:                ['terminated'],
      transport_error:        ['terminated', 'informTUTransportError'],
    },
    terminated: {
      request_retransmission: IGNORE,
      tu_1xx:                 IGNORE,
      tu_final:               IGNORE,
      timer_J:                IGNORE,
      transport_error:        IGNORE,
    },
  },
};

/** Non-INVITE server transaction (RFC 3261 §17.2.2), driven by the NON_INVITE_SERVER table: Timer J absorbs request retransmissions after the final. */
export class NonInviteServerTransaction extends ServerTransaction {
  // On the prototype, not a field of every transaction (a wait state keeps one for 64·T1, issue #16).
  declare readonly kind: 'non-invite-server';
  static {
    (this.prototype as { kind: string }).kind = 'non-invite-server';
  }

  /** @internal */
  protected st: string = NON_INVITE_SERVER.initial;

  /** @internal */
  protected override get machine(): typeof NON_INVITE_SERVER {
    return NON_INVITE_SERVER;
  }

  override get state(): NonInviteServerState {
    return this.st as NonInviteServerState;
  }

  respond(res: SipResponse): boolean {
    return this.fire(res.status < 200 ? 'tu_1xx' : 'tu_final', res);
  }

  /** @internal */
  protected override act(action: NonInviteServerAction, input: unknown): void {
    if (action === 'startTimerJ') this.startWait('timer_J', this.reliable ? 0 : 64 * this.host.timers.T1);
    else super.act(action, input);
  }
}
