import { SipError, SipResponse, type SipRequest } from '../parser/index.js';
import type { ReliableProvisional } from './call-types.js';
import type { Dialog } from './dialog.js';

// ---- UAC side (RFC 3262 §4) ---------------------------------------------------------------

function requires100rel(m: SipRequest | SipResponse): boolean {
  return m.getAll('require').some((t) => t.toLowerCase() === '100rel');
}

/** The RSeq of a provisional sent reliably (Require: 100rel and a valid RSeq), or undefined. */
export function reliableRSeq(res: SipResponse): number | undefined {
  const raw = res.get('rseq');
  if (raw === undefined || !requires100rel(res)) return undefined;
  const t = raw.trim();
  return /^\d{1,10}$/.test(t) ? Number(t) : undefined;
}

/** The PRACK for a reliable provisional (§7.2: RAck is its RSeq, CSeq number and method). */
export function prackFor(dialog: Dialog, res: SipResponse, rseq: number): SipRequest {
  return dialog.createRequest('PRACK', { headers: [['RAck', `${rseq} ${res.cseq.seq} ${res.cseq.method}`]] });
}

// ---- UAS side (RFC 3262 §3) ---------------------------------------------------------------

/** True when the caller supports or requires reliable provisionals. */
export function offers100rel(invite: SipRequest): boolean {
  return requires100rel(invite) || invite.getAll('supported').some((t) => t.toLowerCase() === '100rel');
}

/** A caller that requires 100rel gets every provisional but 100 reliably (§3). */
export function demands100rel(invite: SipRequest): boolean {
  return requires100rel(invite);
}

/** The RSeq a PRACK acknowledges, when its RAck names our INVITE (§7.2); undefined otherwise. */
export function rackedRSeq(prack: SipRequest, invite: SipRequest): number | undefined {
  const rack = (prack.get('rack') ?? '').trim().split(/\s+/);
  if (rack.length !== 3 || Number(rack[1]) !== invite.cseq.seq || rack[2] !== 'INVITE' || !/^\d{1,10}$/.test(rack[0]!)) return undefined;
  return Number(rack[0]);
}

/** Where the queue sends what it releases (the call: a reliable one is also retransmitted). */
export interface ProvisionalSink {
  sendProvisional(res: SipResponse, reliable: boolean): void;
}

interface Reliable {
  rseq: number;
  res: SipResponse;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * The provisionals of one INVITE once one went out reliably. RFC 3262 §3: a second reliable
 * provisional is not sent before the first is PRACKed, so they wait here in order (a B2BUA
 * relays 180 and 183 back to back); an unreliable one waits behind them too, so none
 * overtakes another. RSeq starts random and grows by one per reliable provisional.
 */
export class ProvisionalQueue {
  private nextRSeq = 1 + Math.floor(Math.random() * 0x7fff);
  private inFlight: Reliable | undefined;
  private readonly waiting: Array<Reliable | SipResponse> = [];
  private drained: { promise: Promise<void>; resolve(): void } | undefined;
  private readonly sink: ProvisionalSink;

  constructor(sink: ProvisionalSink) {
    this.sink = sink;
  }

  /** Send `res` reliably now, or once the ones before it are PRACKed. */
  sendReliably(res: SipResponse): ReliableProvisional {
    const rseq = this.nextRSeq++;
    res.append('Require', '100rel');
    res.set('RSeq', rseq);
    let entry!: Reliable;
    const acked = new Promise<void>((resolve, reject) => (entry = { rseq, res, resolve, reject }));
    // Nobody has to listen: a timeout also ends the call, which reports it.
    acked.catch(() => undefined);
    if (this.inFlight) this.waiting.push(entry);
    else this.release(entry);
    return { rseq, acked };
  }

  /** Send an unreliable provisional now, unless reliable ones are waiting (then after them). */
  sendUnreliably(res: SipResponse): void {
    if (this.waiting.length > 0) this.waiting.push(res);
    else this.sink.sendProvisional(res, false);
  }

  /** True when `rseq` is the reliable provisional awaiting its PRACK. */
  isInFlight(rseq: number): boolean {
    return this.inFlight?.rseq === rseq;
  }

  /** The PRACK for `rseq` arrived: true when it was the one awaited (then the next goes out). */
  prack(rseq: number): boolean {
    const e = this.inFlight;
    if (!e || e.rseq !== rseq) return false;
    this.inFlight = undefined;
    e.resolve();
    this.releaseNext();
    return true;
  }

  /** The one in flight was retransmitted for 64·T1 without a PRACK. */
  timedOut(): void {
    const e = this.inFlight;
    this.inFlight = undefined;
    e?.reject(new SipError('PRACK_TIMEOUT', `no PRACK for RSeq ${e.rseq}`));
  }

  /** The call ended: whatever was not PRACKed never will be. */
  abandon(): void {
    const ended = (e: Reliable) => e.reject(new SipError('NO_DIALOG', `the call ended before the PRACK for RSeq ${e.rseq}`));
    if (this.inFlight) ended(this.inFlight);
    this.inFlight = undefined;
    for (const e of this.waiting) if (!isResponse(e)) ended(e);
    this.waiting.length = 0;
    this.settle();
  }

  /** Resolves once every reliable provisional is PRACKed (or the queue abandoned): a 2xx may go (§3). */
  allAcknowledged(): Promise<void> {
    if (!this.inFlight) return Promise.resolve();
    if (!this.drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drained = { promise, resolve };
    }
    return this.drained.promise;
  }

  private release(e: Reliable): void {
    this.inFlight = e;
    this.sink.sendProvisional(e.res, true);
  }

  private releaseNext(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      if (isResponse(next)) {
        this.sink.sendProvisional(next, false);
        continue;
      }
      this.release(next);
      return;
    }
    this.settle();
  }

  private settle(): void {
    const d = this.drained;
    this.drained = undefined;
    d?.resolve();
  }
}

function isResponse(e: Reliable | SipResponse): e is SipResponse {
  return e instanceof SipResponse;
}
