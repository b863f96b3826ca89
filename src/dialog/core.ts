import type { SipRequest, SipResponse } from '../parser/index.js';
import type { Clock } from '../transport/index.js';
import type { TargetList } from '../resolver/index.js';
import type { ClientTransactionUser, InviteClientTransaction, OutboundUser, Target, TimerValues } from '../transaction/index.js';
import type { Dialog, DialogOwner } from './dialog.js';
import type { SessionTimerConfig } from './session-timer-negotiation.js';

/** The methods a user agent accepts (Allow), in INVITEs, OPTIONS answers and 405s. */
export const ALLOWED_METHODS = 'INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, MESSAGE, NOTIFY, REFER';

export type { DialogOwner } from './dialog.js';

/** What a call needs of the user agent that owns it (implemented by UserAgent). */
export interface UserAgentCore {
  readonly clock: Clock;
  readonly timers: TimerValues;
  /** @internal RFC 4028 session timers for the calls of this user agent (undefined: off). */
  readonly sessionTimer: SessionTimerConfig | undefined;
  contactFor(destination: Target, secure?: boolean): string;
  /** @internal */
  /** Send an INVITE (or its authorized retry) in a new client transaction. */
  sendInvite(invite: SipRequest, destination: Target, user: ClientTransactionUser): InviteClientTransaction;
  /** @internal */
  /** Send an INVITE whose next hop is a host name to its located targets, with RFC 3263 fail-over; `onTarget` sees each attempt. */
  sendLocatedInvite(invite: SipRequest, targets: TargetList, user: OutboundUser, onTarget: (request: SipRequest, target: Target) => void): { cancel(reason?: string): void };
  /** @internal */
  /**
   * Send a request inside a dialog; resolves with its final response (a synthesized 408/503
   * on timeout or transport failure), rejects with `SipError` `CLOSED` when the transaction
   * layer closes first.
   */
  sendInDialog(dialog: Dialog, request: SipRequest): Promise<SipResponse>;
  /** @internal */
  /** Send (or send again) an ACK for a 2xx: a transaction of its own, new branch each time (§17.1.1.3). */
  sendAck(dialog: Dialog, ack: SipRequest): void;
  /** @internal */
  /** A 2xx from a fork we do not want (or after a CANCEL): ACK it, then BYE it. */
  ackAndBye(invite: SipRequest, response: SipResponse, destination: Target): void;
  /** @internal */
  /** ACK the 2xx that established `dialog` (for the INVITE of CSeq `inviteSeq`, whose `credentials` the ACK carries), then BYE it. */
  ackAndByeDialog(dialog: Dialog, inviteSeq: number, credentials?: Array<[string, string]>): void;
  /** @internal */
  /** Route the dialog's requests and ACKs to `owner`. */
  register(dialog: Dialog, owner: DialogOwner): void;
  /** @internal */
  unregister(dialog: Dialog): void;
  /** @internal */
  /** The call ended: forget how it was matched outside its dialogs (CANCEL, stray 2xx) and stop counting it. */
  release(owner: DialogOwner): void;
  /**
   * @internal
   * A message that ends a call is out (BYE, CANCEL, a non-2xx final awaiting its ACK): call
   * the returned function once it is answered or given up. close() waits (bounded) for all.
   */
  pendingEnd(): () => void;
}
