import type { SipErrorCode } from '../parser/index.js';

/** Call states a bridged call goes through (what the trunk exposes over HTTP). */
export type BridgeState = 'dialing' | 'ringing' | 'progressing' | 'answered' | 'hangup';

export interface HangupRecord {
  /** caller (A), callee (B) or system (timeouts, failures, policy). */
  by: 'caller' | 'callee' | 'system';
  /** SIP status relayed to the caller (or of the BYE's leg: undefined after answer). */
  status: number | undefined;
  phrase: string | undefined;
  /** Q.850 cause: from the Reason header, or derived from the status. */
  q850: number | undefined;
  /**
   * A BYE from one leg is answered at once and relayed to the other: what became of the
   * relayed BYE (absent when no BYE was relayed). `pending` until its final response.
   */
  relayedBye?: RelayedBye;
  /**
   * Why the last target of a call that was never answered failed, when the failure was made
   * here rather than answered by the callee: the typed code of the transport error (TLS_IDENTITY,
   * TLS_UNTRUSTED, TLS_HANDSHAKE, CONNECT_FAILED, …), of server location (DNS_NOT_FOUND, …), or
   * TARGETS_EXHAUSTED when every target failed otherwise (timeouts, 503s). Absent otherwise.
   */
  targetError?: SipErrorCode;
}

export interface RelayedBye {
  /** The leg the BYE was relayed to. */
  to: 'caller' | 'callee';
  /** answered: a final response came (its status); timeout: none within 64·T1 (Timer F); transport-error: it could not be sent. */
  outcome: 'pending' | 'answered' | 'timeout' | 'transport-error';
  status?: number;
}

/** The record of one bridged call: every change is an event of the B2BUA. */
export interface CallRecord {
  id: string;
  state: BridgeState;
  /** Caller and callee as written in the A leg (From and Request-URI). */
  from: string;
  to: string;
  /** Who authenticated (the `authenticate` hook's identity). */
  identity: string | undefined;
  /** Where the caller's INVITE came from (`B2buaOptions.sourceOf`'s answer when there is one). */
  source: { address: string; port: number; transport: string };
  aLeg: { callId: string };
  bLeg: { callId: string | undefined; target: string | undefined; attempts: number };
  timestamps: {
    created: number;
    ringing?: number;
    progressing?: number;
    answered?: number;
    hangup?: number;
  };
  hangup: HangupRecord | undefined;
  /** Free-form data a hook may attach (trunk domain, extension, …). */
  tags: Record<string, string>;
}
