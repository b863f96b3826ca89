import type { SipRequest } from '../parser/index.js';
import type { OfferAnswer } from './call-types.js';

export type Body = Uint8Array | string;

/** Bytes of a body; a string is encoded into a buffer of its own (not a slice of Node's shared slab: a call may keep it for hours). */
export function toBody(b: Body | undefined): Uint8Array | undefined {
  if (b === undefined || typeof b !== 'string') return b;
  const out = Buffer.allocUnsafeSlow(Buffer.byteLength(b));
  out.write(b);
  return out;
}

/**
 * What a re-INVITE or UPDATE is answered with when no policy is given: 200 with the last SDP
 * we sent when the request carries an offer (an INVITE without one asks us for an offer,
 * §14.2), a bare 200 otherwise.
 */
export function defaultUpdateAnswer(req: SipRequest, localSdp: Uint8Array | undefined): OfferAnswer {
  return req.body.length > 0 || req.method === 'INVITE' ? { status: 200, body: localSdp } : { status: 200 };
}

/**
 * Run `use` with a value now, or once its promise settles (`undefined` when it rejects, or
 * when a synchronous producer threw). Returns what `use` returns, or a promise of it.
 */
export function whenReady<T, R>(produce: () => T | Promise<T>, use: (v: T | undefined) => R): R | Promise<R> {
  let v: T | Promise<T>;
  try {
    v = produce();
  } catch {
    return use(undefined);
  }
  if (v instanceof Promise) return v.then(use, () => use(undefined));
  return use(v);
}
