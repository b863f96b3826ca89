import { ResolverError } from './errors.js';
import type { SipTarget, SipTransportName } from './types.js';

/** A host (name) and port still to be looked up, with the transport chosen for it. */
export interface Hop {
  host: string;
  port: number;
  transport: SipTransportName;
}

/** What a TargetList needs of the resolver: the hops (NAPTR/SRV stage) and a hop's addresses. */
export interface TargetSource {
  /** The hops in the order to try them; rejects when location fails before any hop is known. */
  hops(): Promise<Hop[]>;
  /** A hop's targets (A/AAAA); rejects with a ResolverError. */
  expand(hop: Hop): Promise<SipTarget[]>;
}

const SEVERITY = { DNS_NOT_FOUND: 0, DNS_FAILED: 1, DNS_TIMEOUT: 2, NO_TRANSPORT: 3, BAD_OPTION: 3 } as const;

/**
 * The targets for one request, in the order RFC 3263 §4.3 tries them, handed out one at a
 * time: the transaction user sends to `await list.next()`, and on a timeout, a 503 or a
 * transport error sends a copy with a new branch to the next one, until `next()` gives
 * `undefined`. Addresses of a later SRV target are looked up only when it is reached, and a
 * target whose addresses cannot be found is skipped; only a list that yields nothing rejects
 * (with the most telling error seen: a timeout over a failure over not-found). Calls to
 * `next()` are served in order; a target (transport, address, port) is given once.
 */
export class TargetList implements AsyncIterable<SipTarget> {
  private ready: SipTarget[] = [];
  private readyPos = 0;
  private hops: Hop[] | undefined;
  private hopPos = 0;
  private worst: ResolverError | undefined;
  private given = 0;
  private readonly seen = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly source: TargetSource | undefined,
    ready: SipTarget[],
  ) {
    for (const t of ready) this.add(t);
  }

  /** A list of targets already known (an IP-literal URI). */
  static of(targets: readonly SipTarget[]): TargetList {
    return new TargetList(undefined, [...targets]);
  }

  /** @internal A list that resolves through `source` as it is pulled. */
  static resolving(source: TargetSource): TargetList {
    return new TargetList(source, []);
  }

  /** A list that rejects with `error` on its first `next()`. */
  static failed(error: ResolverError): TargetList {
    const list = new TargetList(undefined, []);
    list.worst = error;
    return list;
  }

  /** Targets handed out so far. */
  get tried(): number {
    return this.given;
  }

  /** The next target to try, or undefined when there is none left. */
  next(): Promise<SipTarget | undefined> {
    const step = this.queue.then(() => this.step());
    this.queue = step.catch(() => undefined);
    return step;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SipTarget> {
    for (;;) {
      const t = await this.next();
      if (t === undefined) return;
      yield t;
    }
  }

  private async step(): Promise<SipTarget | undefined> {
    for (;;) {
      if (this.readyPos < this.ready.length) {
        this.given++;
        return this.ready[this.readyPos++];
      }
      const hop = await this.nextHop();
      if (hop === undefined) break;
      try {
        for (const t of await this.source!.expand(hop)) this.add(t);
      } catch (err) {
        this.note(err);
      }
    }
    if (this.given === 0) throw this.worst ?? new ResolverError('DNS_NOT_FOUND', 'no target found');
    return undefined;
  }

  private async nextHop(): Promise<Hop | undefined> {
    if (this.source === undefined) return undefined;
    if (this.hops === undefined) {
      try {
        this.hops = await this.source.hops();
      } catch (err) {
        this.hops = [];
        this.note(err);
      }
    }
    return this.hopPos < this.hops.length ? this.hops[this.hopPos++] : undefined;
  }

  private add(t: SipTarget): void {
    const key = t.transport + ' ' + t.address + ' ' + t.port;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.ready.push(t);
  }

  private note(err: unknown): void {
    const e = err instanceof ResolverError ? err : new ResolverError('DNS_FAILED', 'server location failed', undefined, undefined, err);
    if (this.worst === undefined || SEVERITY[e.code] > SEVERITY[this.worst.code]) this.worst = e;
  }
}
