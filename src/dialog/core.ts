import type { SipRequest, SipResponse } from '../parser/index.js';
import type { Clock } from '../transport/index.js';
import type { InviteClientTransaction, InviteServerTransaction, Target, TimerValues } from '../transaction/index.js';
import type { Call, OutgoingCall } from './call.js';
import type { Dialog } from './dialog.js';

/** What a call needs of the user agent that owns it (implemented by UserAgent). */
export interface UserAgentCore {
  readonly clock: Clock;
  readonly timers: TimerValues;
  /** @internal */
  sendInvite(call: OutgoingCall, invite: SipRequest, destination: Target): InviteClientTransaction;
  /** @internal */
  /** Send a request inside a dialog; resolves with its final response (a synthesized 408/503 on failure). */
  sendInDialog(dialog: Dialog, request: SipRequest): Promise<SipResponse>;
  /** @internal */
  /** ACK a 2xx to a re-INVITE (with the answer, for a late offer). */
  sendAck(dialog: Dialog, response: SipResponse, cseq: number, body?: Uint8Array | string): void;
  /** @internal */
  resendAck(dialog: Dialog, ack: SipRequest): void;
  /** @internal */
  /** A 2xx from a fork we do not want (or after a CANCEL): ACK it, then BYE it. */
  ackAndBye(invite: SipRequest, response: SipResponse, destination: Target): void;
  /** @internal */
  /** Send a 2xx to an INVITE and retransmit it until the ACK (§13.3.1.4). */
  respond2xx(call: Call, tx: InviteServerTransaction, response: SipResponse, dialog: Dialog): void;
  contactFor(destination: Target): string;
  /** @internal */
  register(dialog: Dialog, call: Call): void;
  /** @internal */
  unregister(dialog: Dialog): void;
  /** @internal */
  release(call: Call): void;
  /**
   * @internal
   * A message that ends a call is out (BYE, CANCEL, a non-2xx final awaiting its ACK): call
   * the returned function once it is answered or given up. close() waits (bounded) for all.
   */
  pendingEnd(): () => void;
}
