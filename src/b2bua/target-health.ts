import { parseUri, SipError, SipUri, type SipResponse } from '../parser/index.js';
import type { Timer } from '../transport/index.js';
import { isSynthesized } from '../transaction/index.js';
import type { UserAgent } from '../dialog/index.js';
import { Emitter } from '../util/events.js';

export interface ProbeOptions {
  /** SIP URIs to probe with OPTIONS (`sip:carrier.example`, `sip:10.0.0.5:5060;transport=tcp`). */
  targets: readonly string[];
  /** Time between two probes of a target, ms (default 30 000). */
  intervalMs?: number;
  /** Consecutive failed probes that take a target down (default 3). */
  failureThreshold?: number;
  /** Consecutive good probes that bring it (back) up (default 2). */
  successThreshold?: number;
  /** A probe with no final response within this long has failed, ms (default 5000; the transaction still ends by Timer F). */
  timeoutMs?: number;
  /**
   * Which final responses mean the target is up. Default: any response it really sent other
   * than 5xx/6xx — a 404 or 405 to OPTIONS still proves a SIP server there answers.
   * Timeouts and transport errors (synthesized 408/503) are always failures.
   */
  isUp?: (status: number) => boolean;
}

export type TargetState = 'unknown' | 'up' | 'down';

export interface TargetHealth {
  uri: string;
  state: TargetState;
  /** The addresses it resolved to at the last probe (`udp 192.0.2.1:5060`), empty before one. */
  addresses: string[];
  /** Clock time (ms) of the last change of state; undefined while `unknown`. */
  lastChange: number | undefined;
  /** Status of the last probe's final response (408/503 when it timed out or could not be sent). */
  lastStatus: number | undefined;
  /** Probes sent so far. */
  probes: number;
}

export interface TargetProberEvents {
  'target-down'(health: TargetHealth): void;
  'target-up'(health: TargetHealth): void;
}

interface Probed extends TargetHealth {
  key: string;
  successes: number;
  failures: number;
  inFlight: boolean;
}

/**
 * The "target" part of a SIP URI: scheme, host, port and transport — what a probe and a
 * route both reach whatever the user part says (`sip:+1555@carrier` is `sip:carrier`).
 */
export function targetKey(uri: string): string | undefined {
  let u;
  try {
    u = parseUri(uri);
  } catch {
    return undefined;
  }
  if (!(u instanceof SipUri)) return undefined;
  return `${u.scheme}:${u.hostname}:${u.port ?? ''}:${u.transport ?? ''}`;
}

/**
 * OPTIONS probing of configured targets (the health checks Kamailio's dispatcher or a
 * carrier's SBC run): each target is probed every `intervalMs` on the user agent's clock, at
 * most one probe in flight per target, through the user agent's RFC 3263 location — a name
 * is up when one of its targets answers. `failureThreshold` failures in a row take a target
 * down (`target-down`), `successThreshold` successes bring it up (`target-up`).
 */
export class TargetProber extends Emitter<TargetProberEvents> {
  private readonly targets: Probed[] = [];
  private readonly byKey = new Map<string, Probed>();
  private readonly intervalMs: number;
  private readonly failureThreshold: number;
  private readonly successThreshold: number;
  private readonly timeoutMs: number;
  private readonly isUp: (status: number) => boolean;
  private timers: Timer[] = [];
  private running = false;

  constructor(
    private readonly ua: UserAgent,
    options: ProbeOptions,
  ) {
    super();
    this.intervalMs = positive(options.intervalMs ?? 30_000, 'probe.intervalMs');
    this.failureThreshold = whole(options.failureThreshold ?? 3, 'probe.failureThreshold');
    this.successThreshold = whole(options.successThreshold ?? 2, 'probe.successThreshold');
    this.timeoutMs = positive(options.timeoutMs ?? 5000, 'probe.timeoutMs');
    this.isUp = options.isUp ?? ((s) => s < 500);
    for (const uri of options.targets) {
      const key = targetKey(uri);
      if (key === undefined) throw new SipError('BAD_OPTION', `probe.targets: not a sip: or sips: URI: ${uri.slice(0, 64)}`);
      if (this.byKey.has(key)) continue;
      const t: Probed = { uri, key, state: 'unknown', addresses: [], lastChange: undefined, lastStatus: undefined, probes: 0, successes: 0, failures: 0, inFlight: false };
      this.targets.push(t);
      this.byKey.set(key, t);
    }
  }

  /** Probe every target now, then every `intervalMs` (spread over the interval so probes do not all leave at once). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const n = this.targets.length;
    this.targets.forEach((t, i) => this.schedule(t, i === 0 ? 0 : Math.floor((this.intervalMs * i) / n)));
  }

  /** Stop probing (probes in flight finish; their results are still counted). */
  stop(): void {
    this.running = false;
    for (const t of this.timers) t.cancel();
    this.timers = [];
  }

  /** Every probed target's health, in the configured order. */
  health(): TargetHealth[] {
    return this.targets.map(publicView);
  }

  /** The state of the probed target `uri` reaches (its host, port and transport); undefined when not probed. */
  stateOf(uri: string): TargetState | undefined {
    const key = targetKey(uri);
    return key === undefined ? undefined : this.byKey.get(key)?.state;
  }

  /** Probe one target now (also what the timer does); resolves once its result is counted. */
  async probe(uri: string): Promise<TargetHealth | undefined> {
    const key = targetKey(uri);
    const t = key === undefined ? undefined : this.byKey.get(key);
    if (t === undefined) return undefined;
    await this.probeOne(t);
    return publicView(t);
  }

  private schedule(t: Probed, ms: number): void {
    const timer = this.ua.clock.setTimer(ms, () => {
      this.timers = this.timers.filter((x) => x !== timer);
      if (!this.running) return;
      void this.probeOne(t).finally(() => {
        if (this.running) this.schedule(t, this.intervalMs);
      });
    });
    this.timers.push(timer);
  }

  private async probeOne(t: Probed): Promise<void> {
    if (t.inFlight) return;
    t.inFlight = true;
    t.probes++;
    try {
      void this.addressesOf(t);
      const status = await this.optionsStatus(t.uri);
      this.count(t, status);
    } finally {
      t.inFlight = false;
    }
  }

  private async addressesOf(t: Probed): Promise<void> {
    try {
      const found = await this.ua.layer.resolver.resolve(t.uri);
      t.addresses = found.map((a) => `${a.transport} ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
    } catch {
      t.addresses = [];
    }
  }

  /** The probe's status: the final's when it is one the target sent and `isUp` accepts; otherwise a failure (status, or 408 on timeout). */
  private optionsStatus(uri: string): Promise<{ status: number; up: boolean }> {
    return new Promise((resolve) => {
      let settled = false;
      const timer = this.ua.clock.setTimer(this.timeoutMs, () => {
        if (settled) return;
        settled = true;
        resolve({ status: 408, up: false });
      });
      const done = (r: { status: number; up: boolean }) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(r);
      };
      this.ua.request('OPTIONS', uri, { headers: { Accept: 'application/sdp' } }).then(
        (res: SipResponse) => done({ status: res.status, up: !isSynthesized(res) && this.isUp(res.status) }),
        () => done({ status: 503, up: false }),
      );
    });
  }

  private count(t: Probed, r: { status: number; up: boolean }): void {
    t.lastStatus = r.status;
    if (r.up) {
      t.failures = 0;
      if (++t.successes >= this.successThreshold && t.state !== 'up') this.change(t, 'up');
    } else {
      t.successes = 0;
      if (++t.failures >= this.failureThreshold && t.state !== 'down') this.change(t, 'down');
    }
  }

  private change(t: Probed, state: 'up' | 'down'): void {
    t.state = state;
    t.lastChange = this.ua.clock.now();
    this.emit(state === 'up' ? 'target-up' : 'target-down', publicView(t));
  }
}

function publicView(t: Probed): TargetHealth {
  return { uri: t.uri, state: t.state, addresses: [...t.addresses], lastChange: t.lastChange, lastStatus: t.lastStatus, probes: t.probes };
}

function positive(v: number, what: string): number {
  if (!(Number.isFinite(v) && v > 0)) throw new SipError('BAD_OPTION', `${what} must be a positive number (got ${v})`);
  return v;
}

function whole(v: number, what: string): number {
  if (!(Number.isInteger(v) && v >= 1)) throw new SipError('BAD_OPTION', `${what} must be a whole number ≥ 1 (got ${v})`);
  return v;
}
