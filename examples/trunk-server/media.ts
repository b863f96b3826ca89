import type { CallRecord, MediaHooks, RouteDecision } from 'sipkit/b2bua';
import type { SipRequest } from 'sipkit/parser';
import type { Logger } from './log.js';
import { MediaRelay } from './rtp-relay.js';

/** The media part: the B2BUA's media hooks, plus what routing and shutdown need. */
export interface MediaPart extends MediaHooks {
  /**
   * Wrap a route decision: a routed call's offer is admitted (its relay ports bound) or the
   * call refused — 488 for an address family the trunk has no media address in (RFC 3261
   * §21.4.26), 400 for malformed SDP, 503 when the port range is used up. A refusal or an empty
   * route passes through as it is. Only here can a call be refused with the status that fits:
   * a failing media hook always costs the caller a 500.
   */
  admit(request: SipRequest, record: CallRecord, decision: RouteDecision): RouteDecision | Promise<RouteDecision>;
  /** Close every call's relay sockets (after the B2BUA has closed). */
  close(): void;
}

export interface MediaRelayOptions {
  /** The IPv4 address the relay binds and writes into SDP; null: IPv4 offers get 488. */
  address: string | null;
  /** The same for IPv6; null: IPv6 offers get 488. */
  address6?: string | null;
  /** The relay's RTP ports, even (RTCP on each one + 1, RFC 3550 §11). A call takes two pairs per stream. */
  ports: { min: number; max: number };
  log?: Logger;
}

/** Media goes end to end, the SDP untouched: nothing to admit, nothing to close. */
export const directMedia: MediaPart = {
  admit: (_request, _record, decision) => decision,
  close: () => undefined,
};

/**
 * An RTP relay anchoring each call's media on the trunk (rtp-relay.ts): every SDP is rewritten
 * to the relay's address and ports, and each side's packets are relayed to where the other
 * side's really come from (symmetric RTP, so callers behind NAT work).
 *
 * On its own, with a plain B2BUA: the object is the B2BUA's media hooks, `admit` goes around
 * your route hook, `close` after the B2BUA's:
 *
 *     const media = createMediaRelay({ address: '192.0.2.1', ports: { min: 20000, max: 29998 } });
 *     const b2bua = new B2bua({
 *       transports,
 *       media,
 *       route: (req, { record }) => media.admit(req, record, [{ uri: 'sip:192.0.2.10' }]),
 *     });
 *     // on shutdown: await b2bua.close(); media.close();
 */
export function createMediaRelay(options: MediaRelayOptions): MediaPart & { readonly relay: MediaRelay } {
  const relay = new MediaRelay({
    addresses: { IP4: options.address, IP6: options.address6 ?? null },
    ports: options.ports,
    log: options.log ?? (() => undefined),
  });
  return {
    ...relay.hooks(),
    relay,
    admit: (req, record, decision) => (Array.isArray(decision) && decision.length > 0 ? relay.admit(record.id, req.body).then((refused) => refused ?? decision) : decision),
    close: () => relay.close(),
  };
}
