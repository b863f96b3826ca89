import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { B2buaStats, CallRecord } from 'sipkit/b2bua';
import { ApiError, type HttpRoute } from './http-api.js';
import type { Logger } from './log.js';

/** What the metrics follow (a `B2bua` is one). */
export interface MetricsSource {
  readonly activeCalls: number;
  readonly stats: B2buaStats;
  on(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
  off(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
}

/** A B2BUA / transaction-layer `trace` hook. */
export type TraceHook = (direction: 'in' | 'out', bytes: Uint8Array, remote: { address: string; port: number }, transport: { protocol: string }) => void;

export interface TrunkMetrics {
  /** Counts every SIP message sent and received (datagrams, bytes, retransmissions): give it to the B2BUA's `trace`. */
  readonly trace: TraceHook;
  /** Wraps the auth part's logger: its `auth.challenge` and `auth.rejected` events are counted, then logged as before. */
  countAuth(log?: Logger): Logger;
  /** The Prometheus text exposition (format 0.0.4). */
  render(): string;
  /** Stop following the B2BUA and the event loop. */
  close(): void;
}

export interface MetricsOptions {
  /** Sample the event loop's delay (default true). */
  eventLoop?: boolean;
  /** Messages remembered per direction to spot a retransmission (default 4096). */
  recentMessages?: number;
  /** Source addresses throttled now (the digest server's `throttledSources`), for a gauge. */
  throttledSources?: () => number;
}

/** A label value as the text format writes it: backslash, double quote and newline escaped. */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A counter family with labels; at most `maxSeries` label sets (then "other"), so a label can never grow memory without bound. */
class LabelledCounter {
  readonly series = new Map<string, number>();
  constructor(
    readonly names: readonly string[],
    private readonly maxSeries = 256,
  ) {}

  /**
   * Series keys by label values, one map level per label: `inc` runs for every message (the
   * trace hook), and escaping and joining the labels each time was a visible share of the
   * trunk's CPU. Bounded like the series, so odd label values cannot grow it.
   */
  private readonly keys = new Map<string, unknown>();
  private cachedKeys = 0;

  private keyOf(values: readonly string[]): string {
    const full = this.cachedKeys >= 4 * this.maxSeries;
    let level = this.keys;
    const last = this.names.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] ?? '';
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) {
        if (full) return this.escapedKey(values);
        level.set(v, (next = new Map()));
        this.cachedKeys++;
      }
      level = next;
    }
    const v = values[last] ?? '';
    let key = level.get(v) as string | undefined;
    if (key === undefined) {
      key = this.escapedKey(values);
      if (!full) {
        level.set(v, key);
        this.cachedKeys++;
      }
    }
    return key;
  }

  private escapedKey(values: readonly string[]): string {
    return this.names.map((n, i) => `${n}="${labelValue(values[i] ?? '')}"`).join(',');
  }

  inc(values: readonly string[], by = 1): void {
    let key = this.keyOf(values);
    // One series is kept for "other", so there are never more than maxSeries.
    if (!this.series.has(key) && this.series.size >= this.maxSeries - 1) key = this.names.map((n) => `${n}="other"`).join(',');
    this.series.set(key, (this.series.get(key) ?? 0) + by);
  }
}

/**
 * A fingerprint of the whole message: retransmissions are byte-for-byte copies (RFC 3261
 * §17.1.1.2, §17.2.1). Multiply-and-fold over 32-bit little-endian words (MurmurHash2's
 * constant), the last bytes FNV-1a style: every byte counts, in a quarter of the steps of a
 * bytewise FNV-1a (this runs on every message sent and received: ~1 µs for a 600-byte message
 * bytewise, about half that wordwise).
 */
export function fingerprint(bytes: Uint8Array): number {
  let h = 0x811c9dc5 ^ bytes.length;
  const words = bytes.length & ~3;
  let i = 0;
  for (; i < words; i += 4) {
    h = Math.imul(h ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)), 0x5bd1e995);
    // A multiplication carries a change only upwards: folding the high half down lets a change in a
    // word's top byte reach every bit of what follows.
    h ^= h >>> 15;
  }
  for (; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h ^ (h >>> 13)) >>> 0;
}

/** The last `size` message fingerprints of one direction: a ring and a count per fingerprint. */
class RecentMessages {
  private readonly ring: number[];
  private readonly seen = new Map<number, number>();
  private next = 0;
  constructor(private readonly size: number) {
    this.ring = new Array<number>(size).fill(-1);
  }

  /** Whether `fp` was among the last `size`; remembers it either way. */
  check(fp: number): boolean {
    const repeated = this.seen.has(fp);
    const old = this.ring[this.next]!;
    if (old !== -1) {
      const n = this.seen.get(old)! - 1;
      if (n === 0) this.seen.delete(old);
      else this.seen.set(old, n);
    }
    this.ring[this.next] = fp;
    this.seen.set(fp, (this.seen.get(fp) ?? 0) + 1);
    this.next = (this.next + 1) % this.size;
    return repeated;
  }
}

const statusClass = (status: number | undefined) => (status === undefined ? 'none' : `${Math.floor(status / 100)}xx`);

/**
 * Counters and gauges for a Prometheus scrape, from the B2BUA's events, its `stats`, the
 * `trace` hook and the auth part's log events. Nothing is polled: counters move on events and
 * gauges are read when scraped. Labels are bounded (the trunk domain, a status class, a digest
 * reason, a transport), so the series stay few.
 *
 * On its own, with a plain B2BUA:
 *
 *     const metrics = createMetrics(b2bua);           // give metrics.trace to the B2bua's `trace` for message counts
 *     const http = createHttpApi(b2bua, token, { routes: metricsRoutes(metrics, { stopping: () => false }) });
 */
export function createMetrics(b2bua: MetricsSource, options: MetricsOptions = {}): TrunkMetrics {
  const started = new LabelledCounter(['trunk']);
  const answered = new LabelledCounter(['trunk']);
  const failed = new LabelledCounter(['trunk', 'class']);
  const ended = new LabelledCounter(['trunk', 'class']);
  const challenges = new LabelledCounter(['reason'], 32);
  const rejections = new LabelledCounter(['reason'], 32);
  let throttled = 0;
  const messages = new LabelledCounter(['direction', 'transport'], 16);
  const bytes = new LabelledCounter(['direction', 'transport'], 16);
  const retransmissions = new LabelledCounter(['direction'], 2);
  const size = options.recentMessages ?? 4096;
  const recent = { in: new RecentMessages(size), out: new RecentMessages(size) };
  const counted = new WeakSet<CallRecord>();
  const trunkOf = (r: CallRecord) => [r.tags.domain ?? ''];

  const onCall = (r: CallRecord) => started.inc(trunkOf(r));
  const onUpdate = (r: CallRecord) => {
    if (r.state !== 'answered' || counted.has(r)) return;
    counted.add(r);
    answered.inc(trunkOf(r));
  };
  const onEnd = (r: CallRecord) => {
    onUpdate(r);
    // A call that was answered ends as 2xx, whoever hung up; one that was not, by the final status the caller got.
    const cls = r.timestamps.answered !== undefined ? '2xx' : statusClass(r.hangup?.status);
    ended.inc([r.tags.domain ?? '', cls]);
    if (r.timestamps.answered === undefined) failed.inc([r.tags.domain ?? '', cls]);
  };
  b2bua.on('call', onCall);
  b2bua.on('update', onUpdate);
  b2bua.on('end', onEnd);

  let loop: IntervalHistogram | undefined;
  if (options.eventLoop !== false) {
    loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
  }

  const trace: TraceHook = (direction, data, _remote, transport) => {
    messages.inc([direction, transport.protocol]);
    bytes.inc([direction, transport.protocol], data.length);
    if (recent[direction].check(fingerprint(data))) retransmissions.inc([direction]);
  };

  const countAuth = (log?: Logger): Logger => (level, event, fields = {}) => {
    const reason = typeof fields.reason === 'string' && /^[\w .-]{1,40}$/.test(fields.reason) ? fields.reason : 'other';
    if (event === 'auth.challenge') challenges.inc([reason]);
    else if (event === 'auth.rejected') {
      rejections.inc([reason]);
      if (reason === 'THROTTLED') throttled++;
    }
    log?.(level, event, fields);
  };

  const render = (): string => {
    const out: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge', help: string, samples: Iterable<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${labels ? `{${labels}}` : ''} ${value}`);
    };
    const one = (v: number): Iterable<[string, number]> => [['', v]];
    const s = b2bua.stats;
    family('sipkit_trunk_active_calls', 'gauge', 'Calls up now (dialing, ringing, answered).', one(b2bua.activeCalls));
    family('sipkit_trunk_calls_started_total', 'counter', 'Authenticated calls, by trunk domain.', started.series);
    family('sipkit_trunk_calls_answered_total', 'counter', 'Calls answered by the destination, by trunk domain.', answered.series);
    family('sipkit_trunk_calls_failed_total', 'counter', 'Calls that ended unanswered, by trunk domain and the class of the final status sent to the caller.', failed.series);
    family('sipkit_trunk_calls_ended_total', 'counter', 'Calls that ended, by trunk domain and class (2xx: answered).', ended.series);
    family('sipkit_trunk_auth_challenges_total', 'counter', 'Digest challenges sent (407), by reason.', challenges.series);
    family('sipkit_trunk_auth_rejections_total', 'counter', 'Credentials refused, by reason.', rejections.series);
    family('sipkit_trunk_auth_throttled_total', 'counter', 'Requests refused because their source and user were throttled after failures.', one(throttled));
    family('sipkit_trunk_transactions', 'gauge', 'Live SIP transactions (client and server).', one(s.transactions));
    family('sipkit_trunk_dialogs', 'gauge', 'Live SIP dialogs (both legs).', one(s.dialogs));
    family('sipkit_trunk_sip_messages_total', 'counter', 'SIP messages (datagrams or stream messages), by direction and transport.', messages.series);
    family('sipkit_trunk_sip_bytes_total', 'counter', 'SIP message bytes, by direction and transport.', bytes.series);
    family('sipkit_trunk_sip_retransmissions_total', 'counter', 'Messages identical to one of the last few thousand of the same direction: retransmissions.', retransmissions.series);
    family('sipkit_trunk_retransmissions_absorbed_total', 'counter', 'Request retransmissions absorbed by server transactions.', one(s.retransmissionsAbsorbed));
    family('sipkit_trunk_parse_errors_total', 'counter', 'Messages that could not be parsed or failed the checks, by kind.', [
      ['kind="request"', s.malformedRequests],
      ['kind="response"', s.malformedResponses],
    ]);
    family('sipkit_trunk_stateless_responses_total', 'counter', 'Requests answered statelessly (failed the stateless checks, or over the transaction limit).', one(s.statelessResponses));
    family(
      'sipkit_trunk_stateless_rejections_total',
      'counter',
      'Requests answered statelessly, by status (400 malformed, 407 challenge, 420, 483, 503 over the limit…).',
      Object.entries(s.statelessByStatus ?? {}).map(([status, n]) => [`status="${status}"`, n] as [string, number]),
    );
    family('sipkit_trunk_stray_responses_total', 'counter', 'Responses that matched no transaction.', one(s.strayResponses));
    family('sipkit_trunk_transport_errors_total', 'counter', 'Sends and receives that failed in the transport.', one(s.transportErrors));
    if (loop) {
      // The window is the time since the last scrape: the histogram is reset after each.
      const seconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
      family('sipkit_trunk_event_loop_lag_seconds', 'gauge', 'Event-loop delay since the last scrape, by quantile (max: 1).', [
        ['quantile="0.5"', seconds(loop.percentile(50))],
        ['quantile="0.99"', seconds(loop.percentile(99))],
        ['quantile="1"', seconds(loop.max)],
      ]);
      loop.reset();
    }
    if (options.throttledSources) {
      family('sipkit_trunk_auth_throttled_sources', 'gauge', 'Source addresses refused now after failed authentications (as a whole or for some username).', one(options.throttledSources()));
    }
    family('sipkit_trunk_heap_used_bytes', 'gauge', 'V8 heap in use.', one(getHeapStatistics().used_heap_size));
    return out.join('\n') + '\n';
  };

  return {
    trace,
    countAuth,
    render,
    close() {
      loop?.disable();
      b2bua.off('call', onCall);
      b2bua.off('update', onUpdate);
      b2bua.off('end', onEnd);
    },
  };
}

export interface MetricsRouteOptions {
  /** Serve /metrics without the bearer token (default false). */
  public?: boolean;
  /** True once the trunk is stopping or draining: /healthz answers 503 then. */
  stopping(): boolean;
}

/**
 * `GET /metrics` (the bearer token unless `public`) and `GET /healthz` (never a token: load
 * balancers ask it) as routes for `createHttpApi`.
 */
export function metricsRoutes(metrics: TrunkMetrics, options: MetricsRouteOptions): HttpRoute[] {
  const getOnly = (method: string | undefined) => {
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, 'method_not_allowed', 'only GET', { allow: 'GET, HEAD' });
  };
  return [
    (req, res, { path }) => {
      if (path !== '/healthz') return false;
      getOnly(req.method);
      const stopping = options.stopping();
      const body = JSON.stringify({ status: stopping ? 'stopping' : 'ok' });
      res.writeHead(stopping ? 503 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    },
    (req, res, { path, authorized }) => {
      if (path !== '/metrics') return false;
      getOnly(req.method);
      if (!options.public && !authorized) throw new ApiError(401, 'unauthorized', 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
      const body = metrics.render();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    },
  ];
}
