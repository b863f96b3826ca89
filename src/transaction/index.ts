// Public face of sipkit/transaction: the RFC 3261 §17 state machines and the layer that runs them.
export { DEFAULT_TIMERS, type TimerValues } from './timers.js';
export { Transaction, type Destination, type TransactionTransition } from './base.js';
export { ClientTransaction, isSynthesized, type ClientTransactionUser } from './client.js';
export { ServerTransaction } from './server.js';
export { InviteClientTransaction, type InviteClientState, type InviteClientEvent } from './invite-client.js';
export { NonInviteClientTransaction, type NonInviteClientState, type NonInviteClientEvent } from './non-invite-client.js';
export { InviteServerTransaction, type InviteServerState, type InviteServerEvent } from './invite-server.js';
export { NonInviteServerTransaction, type NonInviteServerState, type NonInviteServerEvent } from './non-invite-server.js';
export { createCancel, createNon2xxAck } from './requests.js';
export { clientKey, serverKey, isRfc3261Branch } from './keys.js';
export { stampVia, responseAddress, targetFromUri, targetOf, type Target } from './routing.js';
export { OutboundRequest, failureCause, type OutboundUser, type PrepareAttempt } from './outbound.js';
export {
  TransactionLayer,
  type TransactionLayerOptions,
  type TransactionLayerStats,
  type TransactionUser,
  type MessageSource,
} from './layer.js';
