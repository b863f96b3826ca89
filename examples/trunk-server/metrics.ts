import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { B2buaStats, CallRecord } from 'sipkit/b2bua';
import type { UdpInboxStats, UdpSendThreadStats } from 'sipkit/transport';
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
  /** The inboxes of the UDP listeners (`UdpTransport.stats`): datagrams queued, dropped when full, and new requests shed as stale. */
  udpInboxes?: () => readonly UdpInboxStats[];
  /** The send threads of the UDP listeners that have one (`UdpTransport.sendThreadStats`). */
  udpSendThreads?: () => readonly UdpSendThreadStats[];
}

/** A label value as the text format writes it: backslash, double quote and newline escaped. */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** One series' value, held by whoever counts into it often (the trace hook) so it is found once. */
interface Cell {
  n: number;
}

/** A counter family with labels; at most `maxSeries` label sets (then "other"), so a label can never grow memory without bound. */
class LabelledCounter {
  /** By the series' label text (`name="value",…`). */
  private readonly cells = new Map<string, Cell>();
  constructor(
    readonly names: readonly string[],
    private readonly maxSeries = 256,
  ) {}

  /**
   * Series keys by label values, one map level per label: escaping and joining the labels on
   * every count was a visible share of the trunk's CPU. Bounded like the series, so odd label
   * values cannot grow it.
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

  /** The series for these label values (the "other" one when there are too many series already); count into its `n`. */
  cell(values: readonly string[]): Cell {
    let key = this.keyOf(values);
    let c = this.cells.get(key);
    if (c !== undefined) return c;
    // One series is kept for "other", so there are never more than maxSeries.
    if (this.cells.size >= this.maxSeries - 1) {
      key = this.names.map((n) => `${n}="other"`).join(',');
      c = this.cells.get(key);
      if (c !== undefined) return c;
    }
    this.cells.set(key, (c = { n: 0 }));
    return c;
  }

  inc(values: readonly string[], by = 1): void {
    this.cell(values).n += by;
  }

  /** [label text, value] per series, for the exposition. */
  *series(): Iterable<[string, number]> {
    for (const [key, c] of this.cells) yield [key, c.n];
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const M = 0x5bd1e995;

/**
 * A fingerprint of the whole message: retransmissions are byte-for-byte copies (RFC 3261
 * §17.1.1.2, §17.2.1). Multiply-and-fold over 32-bit little-endian words (MurmurHash2's
 * constant) in two lanes — even and odd words — so two multiplications are in flight at once,
 * the last bytes FNV-1a style; the lanes are folded together at the end. Every byte counts: each
 * step is one-to-one in its word, so any single change gives another fingerprint. Words are read
 * through an Int32Array view when the bytes start on a multiple of 4 (received datagrams, pooled
 * Buffers), else assembled from bytes (the same values: little-endian hosts only take the view).
 * This runs on every message sent and received: ~0.3 µs for a 600-byte message, against ~0.5–0.7
 * for one lane assembled from bytes.
 */
export function fingerprint(bytes: Uint8Array): number {
  const len = bytes.length;
  let h = 0x811c9dc5 ^ len;
  let g = 0x9747b28c;
  const pairs = len >>> 3;
  let i = 0;
  if (LITTLE_ENDIAN && (bytes.byteOffset & 3) === 0) {
    const w = new Int32Array(bytes.buffer, bytes.byteOffset, pairs << 1);
    for (let k = 0; k < pairs << 1; k += 2) {
      h = Math.imul(h ^ w[k]!, M);
      // A multiplication carries a change only upwards: folding the high half down lets a change in a
      // word's top byte reach every bit of what follows.
      h ^= h >>> 15;
      g = Math.imul(g ^ w[k + 1]!, M);
      g ^= g >>> 15;
    }
    i = pairs << 3;
  } else {
    for (; i < pairs << 3; i += 8) {
      h = Math.imul(h ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)), M);
      h ^= h >>> 15;
      g = Math.imul(g ^ (bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24)), M);
      g ^= g >>> 15;
    }
  }
  for (; i < len; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  h = Math.imul(h ^ g, M);
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * The last `size` message fingerprints of one direction: a ring, and a count per fingerprint in an
 * open-addressing table of typed arrays (linear probing, deletion by shifting back). A Map keyed by
 * a 32-bit fingerprint boxes the larger half of them as heap numbers, and took three lookups per message.
 */
class RecentMessages {
  private readonly ring: Uint32Array;
  private filled = 0;
  private next = 0;
  private readonly keys: Uint32Array;
  /** 0: an empty slot. */
  private readonly counts: Uint32Array;
  private readonly mask: number;

  constructor(private readonly size: number) {
    this.ring = new Uint32Array(size);
    let capacity = 8;
    while (capacity < 2 * size) capacity *= 2; // at most half full
    this.keys = new Uint32Array(capacity);
    this.counts = new Uint32Array(capacity);
    this.mask = capacity - 1;
  }

  /** The slot holding `fp`, or the empty slot where it would go. */
  private slot(fp: number): number {
    let i = fp & this.mask;
    while (this.counts[i] !== 0 && this.keys[i] !== fp) i = (i + 1) & this.mask;
    return i;
  }

  /** Whether `fp` was among the last `size`; remembers it either way. */
  check(fp: number): boolean {
    const repeated = this.counts[this.slot(fp)] !== 0;
    if (this.filled === this.size) this.forget(this.ring[this.next]!);
    else this.filled++;
    this.ring[this.next] = fp;
    const i = this.slot(fp);
    this.keys[i] = fp;
    this.counts[i]!++;
    this.next = this.next + 1 === this.size ? 0 : this.next + 1;
    return repeated;
  }

  private forget(fp: number): void {
    let i = this.slot(fp);
    if (--this.counts[i]! !== 0) return;
    // Empty now: shift back the entries after it that would no longer be found past the gap.
    const { keys, counts, mask } = this;
    for (let j = (i + 1) & mask; counts[j] !== 0; j = (j + 1) & mask) {
      const home = keys[j]! & mask;
      // The entry at j stays when its home is cyclically within (i, j].
      if (i <= j ? home > i && home <= j : home > i || home <= j) continue;
      keys[i] = keys[j]!;
      counts[i] = counts[j]!;
      counts[j] = 0;
      i = j;
    }
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
  // in, out (and the "other" every family keeps a place for: with 2, the second direction seen was counted as "other").
  const retransmissions = new LabelledCounter(['direction'], 3);
  const size = options.recentMessages ?? 4096;
  const recent = { in: new RecentMessages(size), out: new RecentMessages(size) };
  const counted = new WeakSet<CallRecord>();
  /** The trace hook's series per direction and transport, found once. */
  const traceCells = { in: new Map<string, { messages: Cell; bytes: Cell }>(), out: new Map<string, { messages: Cell; bytes: Cell }>() };
  const retransmitted: { in?: Cell; out?: Cell } = {};
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
    const byTransport = traceCells[direction];
    let cells = byTransport.get(transport.protocol);
    if (cells === undefined) {
      // Bounded as the counters are: past 16 transports the cells are the "other" series.
      cells = { messages: messages.cell([direction, transport.protocol]), bytes: bytes.cell([direction, transport.protocol]) };
      if (byTransport.size < 16) byTransport.set(transport.protocol, cells);
    }
    cells.messages.n++;
    cells.bytes.n += data.length;
    // (The series appears with the first retransmission, as any labelled counter's does.)
    if (recent[direction].check(fingerprint(data))) (retransmitted[direction] ??= retransmissions.cell([direction])).n++;
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
    family('sipkit_trunk_calls_started_total', 'counter', 'Authenticated calls, by trunk domain.', started.series());
    family('sipkit_trunk_calls_answered_total', 'counter', 'Calls answered by the destination, by trunk domain.', answered.series());
    family('sipkit_trunk_calls_failed_total', 'counter', 'Calls that ended unanswered, by trunk domain and the class of the final status sent to the caller.', failed.series());
    family('sipkit_trunk_calls_ended_total', 'counter', 'Calls that ended, by trunk domain and class (2xx: answered).', ended.series());
    family('sipkit_trunk_auth_challenges_total', 'counter', 'Digest challenges sent (407), by reason.', challenges.series());
    family('sipkit_trunk_auth_rejections_total', 'counter', 'Credentials refused, by reason.', rejections.series());
    family('sipkit_trunk_auth_throttled_total', 'counter', 'Requests refused because their source and user were throttled after failures.', one(throttled));
    family('sipkit_trunk_transactions', 'gauge', 'Live SIP transactions (client and server).', one(s.transactions));
    family('sipkit_trunk_dialogs', 'gauge', 'Live SIP dialogs (both legs).', one(s.dialogs));
    family('sipkit_trunk_sip_messages_total', 'counter', 'SIP messages (datagrams or stream messages), by direction and transport.', messages.series());
    family('sipkit_trunk_sip_bytes_total', 'counter', 'SIP message bytes, by direction and transport.', bytes.series());
    family('sipkit_trunk_sip_retransmissions_total', 'counter', 'Messages identical to one of the last few thousand of the same direction: retransmissions.', retransmissions.series());
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
    if (options.udpInboxes) {
      // Read, not only waited for: a trunk past its limit shows it here first (new calls queued, then dropped).
      let queued = 0;
      let maxQueued = 0;
      let low = 0;
      let high = 0;
      let closed = 0;
      let shed = 0;
      for (const q of options.udpInboxes()) {
        queued += q.queued;
        maxQueued = Math.max(maxQueued, q.maxQueued);
        low += q.droppedLow;
        high += q.droppedHigh;
        closed += q.droppedOnClose;
        shed += q.shed;
      }
      family('sipkit_trunk_udp_inbox_queued', 'gauge', 'Datagrams read from the UDP sockets and not handled yet.', one(queued));
      family('sipkit_trunk_udp_inbox_max_queued', 'gauge', 'Most datagrams ever queued at once in one UDP inbox.', one(maxQueued));
      family('sipkit_trunk_udp_inbox_dropped_total', 'counter', 'Datagrams dropped by the UDP inboxes: new INVITE/CANCEL over their cap, work under way over its cap, queued at close.', [
        ['lane="new"', low],
        ['lane="under_way"', high],
        ['lane="closed"', closed],
      ]);
      // Apart from the drops: shedding is the inbox working as meant under overload (the sender has retransmitted).
      family('sipkit_trunk_udp_inbox_shed_total', 'counter', 'INVITE/CANCEL dropped unparsed after waiting in a UDP inbox longer than T1 (their senders have retransmitted them).', one(shed));
    }
    if (options.udpSendThreads) {
      let active = 0;
      let posted = 0;
      let sent = 0;
      let refused = 0;
      for (const t of options.udpSendThreads()) {
        if (t.active) active++;
        posted += t.posted;
        sent += t.sent;
        refused += t.refused;
      }
      family('sipkit_trunk_udp_send_threads', 'gauge', 'UDP listeners whose datagrams a worker thread sends now.', one(active));
      family('sipkit_trunk_udp_send_thread_datagrams_total', 'counter', 'Datagrams handed to the UDP send threads, and of them sent; refused: sent by the event loop itself (ring full).', [
        ['state="posted"', posted],
        ['state="sent"', sent],
        ['state="refused"', refused],
      ]);
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
