// Public face of sipkit/b2bua: a back-to-back user agent with early-media pass-through and hangup-cause relay.
export {
  B2bua,
  type B2buaOptions,
  type B2buaEvents,
  type B2buaStats,
  type AuthDecision,
  type RouteDecision,
  type CallContext,
  type CallJournal,
  type AnsweredCall,
} from './b2bua.js';
export { Bridge, BridgeError, type BridgeOptions, type BridgedCall, type MediaHooks, type MediaContext, type RouteTarget, type SdpBody } from './bridge.js';
export { SIP_TO_Q850, q850For } from './causes.js';
export { DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS, crossHeaders } from './headers.js';
export type { CallRecord, BridgeState, HangupRecord, RelayedBye } from './record.js';
export { TargetProber, targetKey, type ProbeOptions, type TargetHealth, type TargetState, type TargetProberEvents } from './target-health.js';
