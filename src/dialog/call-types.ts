import type { HeaderInit, Reason } from '../parser/index.js';

/** Why a call ended: who ended it, with what status, and the RFC 3326 Reason when one came. */
export interface HangupCause {
  by: 'local' | 'remote' | 'system';
  /** Final status of the INVITE (failures, cancels) — undefined for a BYE after answer. */
  status?: number;
  /** Reason phrase of that status. */
  phrase?: string;
  /** The request that ended it: BYE or CANCEL. */
  method?: 'BYE' | 'CANCEL';
  /** The Reason header (RFC 3326) that came with it, or that we sent. */
  reason?: Reason;
}

export interface ReasonInit {
  protocol: 'SIP' | 'Q.850' | string;
  cause?: number;
  text?: string;
}

export interface SendOptions {
  body?: Uint8Array | string;
  contentType?: string;
  headers?: HeaderInit;
}

/** The answer to an offer received in a re-INVITE or UPDATE. */
export interface OfferAnswer {
  /** Status (default 200). */
  status?: number;
  body?: Uint8Array | string;
  contentType?: string;
  headers?: HeaderInit;
}

export type CallState = 'calling' | 'early' | 'answered' | 'ended';

/** A provisional sent reliably (RFC 3262): its RSeq, and when its PRACK came. */
export interface ReliableProvisional {
  rseq: number;
  acked: Promise<void>;
}
