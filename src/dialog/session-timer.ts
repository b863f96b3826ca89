import type { HeaderInit, SipRequest, SipResponse } from '../parser/index.js';
import type { Clock, Timer } from '../transport/index.js';
import type { ReasonInit } from './call-types.js';
import {
  decideAsUac,
  decideAsUas,
  minSeOf,
  uacRequestHeaders,
  uasResponseHeaders,
  type Negotiated,
  type SessionTimerConfig,
} from './session-timer-negotiation.js';

/** A refresh that succeeded (either direction), as the `refreshed` event reports it. */
export interface SessionRefresh {
  /** The session interval now in force, in seconds. */
  seconds: number;
  /** Who sends the next refresh. */
  refresher: 'local' | 'remote';
  method: string;
  /** 'sent': our refresh was answered 2xx; 'received': we answered the peer's with 2xx. */
  direction: 'sent' | 'received';
}

/** What the running timer needs of its call. */
export interface SessionTimerHost {
  readonly clock: Clock;
  /** Send a refresh in the confirmed dialog; resolves with its final response. */
  sendRefresh(method: 'UPDATE' | 'INVITE', headers: HeaderInit): Promise<SipResponse>;
  /** The session is over (expired, or a refresh failed): BYE with `reason`, ended by 'system'. */
  endSession(reason: ReasonInit): void;
  sessionRefreshed(refresh: SessionRefresh): void;
}

/**
 * The Reason on the BYE of a session nobody refreshed. RFC 4028 names none; Q.850 cause 102
 * "recovery on timer expiry" is what a timer running out is called in ISUP, and what RFC 3398
 * §8.2.6.1 maps a 408 to — the same cause a B2BUA relays to the other leg.
 */
export const SESSION_EXPIRED: ReasonInit = { protocol: 'Q.850', cause: 102, text: 'Session timer expired' };

/** A refresh answered 408 (or timed out) or 481: the Q.850 cause of that status (RFC 3398 §8.2.6.1). */
function refreshFailed(status: number): ReasonInit {
  return { protocol: 'Q.850', cause: status === 408 ? 102 : 41, text: `Session refresh failed (${status})` };
}

/** Refreshes that failed otherwise (500, 491, an INVITE pending) are tried again this many times per interval. */
const MAX_RETRIES = 3;

/**
 * One call's session timer (RFC 4028 §10), created only when one was negotiated. The refresher
 * refreshes at half the interval; the other side ends the session with a BYE when no refresh
 * came by the interval minus min(32 s, a third of it), the refresher at the interval. Every refresh that succeeds, sent
 * or received, starts a new interval with what it negotiated.
 */
export class SessionTimer {
  seconds: number;
  refresher: 'local' | 'remote';
  private refreshTimer: Timer | undefined;
  private expiryTimer: Timer | undefined;
  private refreshing = false;
  private retries = 0;
  private stopped = false;

  constructor(
    private readonly host: SessionTimerHost,
    private readonly config: SessionTimerConfig,
    private readonly peerAllowsUpdate: boolean,
    negotiated: Negotiated,
  ) {
    this.seconds = negotiated.seconds;
    this.refresher = negotiated.refresher;
    this.arm();
  }

  /** The call ended: no timer outlives it. */
  stop(): void {
    this.stopped = true;
    this.refreshTimer?.cancel();
    this.expiryTimer?.cancel();
  }

  private start(n: Negotiated): void {
    this.seconds = n.seconds;
    this.refresher = n.refresher;
    this.retries = 0;
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.refreshTimer?.cancel();
    this.expiryTimer?.cancel();
    const ms = this.seconds * 1000;
    // §10: "the refresher … SHOULD send … a session refresh request … at half the session interval".
    this.refreshTimer = this.refresher === 'local' ? this.host.clock.setTimer(ms / 2, () => void this.refresh(this.seconds, 0)) : undefined;
    // §10: with no refresh, "the UA SHOULD send a BYE … [at] the expiration time minus the minimum
    // of 32 seconds and one third of the session interval". The refresher, whose refreshes all
    // failed otherwise than by 408/481, ends it at the expiration itself.
    const deadline = this.refresher === 'local' ? ms : ms - Math.min(32_000, ms / 3);
    this.expiryTimer = this.host.clock.setTimer(deadline, () => this.expire(SESSION_EXPIRED));
  }

  private expire(reason: ReasonInit): void {
    if (this.stopped) return;
    this.stop();
    this.host.endSession(reason);
  }

  private retryLater(): void {
    if (this.stopped || this.retries >= MAX_RETRIES) return;
    this.retries++;
    // The §14.1 back-off of the side that does not own the Call-ID's … or does: 2.1–4 s covers both.
    const ms = 2100 + 10 * Math.floor(Math.random() * 191);
    this.refreshTimer = this.host.clock.setTimer(ms, () => void this.refresh(this.seconds, 0));
  }

  /** §7.4: a refresh carries the interval in force and names its sender (the UAC of this request) as refresher. */
  private async refresh(seconds: number, tooSmall: number): Promise<void> {
    if (this.stopped || this.refreshing) return;
    this.refreshing = true;
    // §10: UPDATE where the peer allows it (no SDP, no ACK), re-INVITE otherwise.
    const method = this.config.method ?? (this.peerAllowsUpdate ? 'UPDATE' : 'INVITE');
    let res: SipResponse;
    try {
      res = await this.host.sendRefresh(method, uacRequestHeaders(seconds, this.config.minSeconds, 'uac'));
    } catch {
      // INVITE_PENDING (our own re-INVITE or the peer's is under way), or the call is going.
      this.refreshing = false;
      this.retryLater();
      return;
    }
    this.refreshing = false;
    if (this.stopped) return;
    const s = res.status;
    if (s >= 200 && s < 300) {
      const n = decideAsUac(res, seconds, this.config.minSeconds);
      this.start(n);
      this.host.sessionRefreshed({ ...n, method, direction: 'sent' });
      return;
    }
    // §10: "If the session refresh request transaction times out or generates a 408 or 481
    // response, then the UAC sends a BYE request".
    if (s === 408 || s === 481) return this.expire(refreshFailed(s));
    // §7.3 (which §7.4 applies to refreshes): retry with an interval of at least the 422's Min-SE.
    const minSe = s === 422 ? minSeOf(res) : undefined;
    if (minSe !== undefined && minSe > seconds && tooSmall < 2) return this.refresh(minSe, tooSmall + 1);
    // 491 (§14.1) or another failure: the session lives until its expiry; try again meanwhile.
    this.retryLater();
  }

  /** A re-INVITE/UPDATE from the peer: the 422 (or 400) refusing its interval (§9), if it must be refused. */
  refusal(req: SipRequest): SipResponse | undefined {
    const d = decideAsUas(req, this.config, this);
    return 'refuse' in d ? d.refuse : undefined;
  }

  /** We answer the peer's refresh with `res` (a 2xx): it carries the interval (§9), which starts now. */
  answered(req: SipRequest, res: SipResponse): void {
    const d = decideAsUas(req, this.config, this);
    if ('refuse' in d) return;
    res.remove('Session-Expires');
    for (const [name, value] of uasResponseHeaders(d)) res.append(name, value);
    this.start(d.accept);
    this.host.sessionRefreshed({ ...d.accept, method: req.method, direction: 'received' });
  }
}

/**
 * A re-INVITE or UPDATE that only refreshes the session (RFC 4028 §10): an UPDATE without a
 * body, or a re-INVITE offering exactly the SDP the peer offered last. A call with a session
 * timer answers these itself; a B2BUA need not carry one leg's refreshes to the other.
 */
export function isPureRefresh(req: SipRequest, remoteSdp: Uint8Array | undefined): boolean {
  if (req.method === 'UPDATE') return req.body.length === 0;
  return req.method === 'INVITE' && remoteSdp !== undefined && req.body.length > 0 && Buffer.compare(req.body, remoteSdp) === 0;
}
