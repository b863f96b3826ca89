// Public face of sipkit/dialog: RFC 3261 §12–15 dialogs and the user-agent core built on them.
export { Dialog, dialogKey, type DialogId, type DialogState, type InDialogRequestOptions } from './dialog.js';
export type { HangupCause, ReasonInit, SendOptions, OfferAnswer, CallState, ReliableProvisional } from './call-types.js';
export { reasonOf } from './reason.js';
export { Call, type CallEvents, type CallHandlers } from './call-base.js';
export { OutgoingCall, type InviteOptions } from './outgoing-call.js';
export { IncomingCall } from './incoming-call.js';
export { SESSION_EXPIRED, type SessionRefresh } from './session-timer.js';
export type { SessionTimerOptions } from './session-timer-negotiation.js';
export type { UserAgentCore } from './core.js';
export { UserAgent, type Availability, type UserAgentCloseOptions, type UserAgentEvents, type UserAgentOptions, type UserAgentStats } from './user-agent.js';
export { CallFailedError, type CallFailureCode } from './call-failure.js';
export type { CallOptions } from './call-promise.js';
export type { AcceptOptions } from './call-acceptor.js';
export {
  answerSnapshot,
  byeFromSnapshot,
  callSnapshot,
  dialogFromSnapshot,
  parseDialogSnapshot,
  snapshotOf,
  type DialogSnapshot,
  type SnapshotByeOptions,
} from './dialog-state.js';
export {
  Registration,
  type RegisteredInfo,
  type RegistrationEvents,
  type RegistrationFailure,
  type RegistrationFailureCause,
  type RegistrationHost,
  type RegistrationOptions,
  type RegistrationState,
} from './registration.js';
