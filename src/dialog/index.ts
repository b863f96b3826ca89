// Public face of sipkit/dialog: RFC 3261 §12–15 dialogs and the user-agent core built on them.
export { Dialog, dialogKey, type DialogId, type DialogState, type InDialogRequestOptions } from './dialog.js';
export {
  Call,
  OutgoingCall,
  IncomingCall,
  reasonOf,
  type CallEvents,
  type CallHandlers,
  type CallState,
  type HangupCause,
  type InviteOptions,
  type OfferAnswer,
  type ReasonInit,
  type ReliableProvisional,
  type SendOptions,
} from './call.js';
export type { UserAgentCore } from './core.js';
export { UserAgent, type UserAgentCloseOptions, type UserAgentOptions, type UserAgentStats } from './user-agent.js';
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
