import type { SipResponse } from '../parser/index.js';
import { isSynthesized } from '../transaction/index.js';
import type { Clock, Timer } from '../transport/index.js';
import type { CallEvents } from './call-base.js';
import { CallFailedError, type CallFailureCode } from './call-failure.js';
import type { HangupCause, ReasonInit } from './call-types.js';
import type { InviteOptions, OutgoingCall } from './outgoing-call.js';
import { sentReason } from './reason.js';

export interface CallOptions extends InviteOptions {
  /**
   * Give up when no final response came within this many milliseconds (on the user agent's
   * clock): the INVITE is CANCELled with an RFC 3326 Reason — Q.850 19 "No answer from user"
   * once the callee rang (180/183), Q.850 18 "No user responding" before — and the promise
   * rejects with `RING_TIMEOUT` at once. Default: none (Timer B, 64·T1, still bounds a silent peer).
   */
  ringTimeoutMs?: number;
  /**
   * Abort the attempt: before the answer it is CANCELled (a 2xx that crosses the CANCEL is
   * ACKed and BYEd, §9.1) and the promise rejects with `CALL_CANCELLED`; already aborted, no
   * INVITE is sent. Aborting with a `ReasonInit` (`ac.abort({ protocol: 'Q.850', cause: 16 })`)
   * puts it in the CANCEL's Reason header. No effect once the call was answered.
   */
  signal?: AbortSignal;
}

/**
 * Q.850 causes for a call nobody answered (ITU-T Q.850: 18 when the called user did
 * not respond to the set-up at all, 19 when it was alerted but did not answer; RFC 3398 §8.2.6.1
 * maps them to 408 and 480). RFC 3326 §2 allows a Reason in a CANCEL to say why.
 */
const NO_USER_RESPONDING: ReasonInit = { protocol: 'Q.850', cause: 18, text: 'No user responding' };
const NO_ANSWER: ReasonInit = { protocol: 'Q.850', cause: 19, text: 'No answer from user' };

/** A ReasonInit given as an AbortSignal's reason (anything else there is an ordinary abort). */
function abortReason(signal: AbortSignal): ReasonInit | undefined {
  const r: unknown = signal.reason;
  if (typeof r !== 'object' || r === null) return undefined;
  const { protocol, cause, text } = r as Partial<ReasonInit>;
  if (typeof protocol !== 'string') return undefined;
  return { protocol, ...(typeof cause === 'number' ? { cause } : {}), ...(typeof text === 'string' ? { text } : {}) };
}

function failureCode(res: SipResponse): CallFailureCode {
  if (!isSynthesized(res)) return 'CALL_REJECTED';
  return res.status === 408 ? 'TIMEOUT' : 'TRANSPORT_FAILED';
}

/**
 * `UserAgent.call()`: an INVITE placed with `invite` (the one mechanism: every event still
 * fires), its outcome as a promise — the call once answered, a `CallFailedError` otherwise.
 */
export function placeCall(invite: (target: string, options: InviteOptions) => OutgoingCall, clock: Clock, target: string, options: CallOptions): Promise<OutgoingCall> {
  const { ringTimeoutMs, signal, ...inviteOptions } = options;
  if (signal?.aborted) {
    return Promise.reject(new CallFailedError('CALL_CANCELLED', `call to ${target} aborted before it was placed`, { by: 'local', reason: sentReason(abortReason(signal)) }));
  }
  return new Promise<OutgoingCall>((resolve, reject) => {
    let settled = false;
    let timer: Timer | undefined;
    let call: OutgoingCall | undefined;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      timer?.cancel();
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    /** We gave up before a final response: CANCEL now, reject now (the 487 or crossing 2xx is the call's business). */
    const giveUp = (code: 'RING_TIMEOUT' | 'CALL_CANCELLED', reason: ReasonInit | undefined, message: string): void => {
      if (!call || call.state === 'answered' || call.ended || !settle()) return;
      call.cancel(reason);
      reject(new CallFailedError(code, message, { by: 'local', method: 'CANCEL', reason: sentReason(reason) }));
    };
    const onAbort = (): void => giveUp('CALL_CANCELLED', abortReason(signal!), `call to ${target} aborted`);
    const user = options.on ?? {};
    // Ours run after the application's own listeners, attached (as theirs are) before the INVITE leaves.
    const on: Partial<CallEvents> = {
      ...user,
      // try/finally: a throwing listener of the application's (reported by the emitter) must not leave the promise pending.
      answer: (res) => {
        try {
          user.answer?.(res);
        } finally {
          if (settle()) resolve(call!);
        }
      },
      failure: (res, cause) => {
        try {
          user.failure?.(res, cause);
        } finally {
          if (settle()) reject(new CallFailedError(failureCode(res), `call to ${target} failed: ${res.status} ${res.reason}`, cause, res));
        }
      },
      ended: (cause: HangupCause) => {
        try {
          user.ended?.(cause);
        } finally {
          // Ended with neither answer nor failure: the user agent closed (close() CANCELs), or a hang-up raced.
          if (settle()) reject(new CallFailedError('CLOSED', `call to ${target} ended before it was answered`, cause));
        }
      },
    };
    try {
      call = invite(target, { ...inviteOptions, on });
    } catch (err) {
      settle();
      reject(err);
      return;
    }
    if (settled) return;
    if (ringTimeoutMs !== undefined) {
      timer = clock.setTimer(ringTimeoutMs, () =>
        giveUp('RING_TIMEOUT', call!.state === 'early' ? NO_ANSWER : NO_USER_RESPONDING, `call to ${target}: no answer within ${ringTimeoutMs} ms`),
      );
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
