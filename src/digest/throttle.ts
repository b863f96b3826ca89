import { LruMap } from '../util/lru.js';

export interface ThrottleOptions {
  /** Failures of one username from one source within `windowMs` that block that pair. Default 10. */
  maxFailures?: number;
  windowMs?: number;
  /** How long a blocked pair (or source) stays blocked. Default 300 s. */
  blockMs?: number;
  /** Sources tracked (LRU). Default 10 000. */
  tableSize?: number;
  /**
   * Usernames tracked per source. A source failing on more distinct usernames within the
   * window is scanning for accounts and is blocked as a whole. Default 16.
   */
  maxUsersPerSource?: number;
}

interface Counter {
  failures: number;
  windowStart: number;
  blockedUntil: number;
}

interface SourceState {
  blockedUntil: number;
  users: Map<string, Counter>;
}

/**
 * Brute-force throttling per (source, username): one extension guessed at does not lock
 * the other extensions behind the same address (a PBX). Only failures the server can pin
 * on the source are fed here — with source-bound nonces, a request whose nonce was issued
 * to that address — so a spoofed source cannot lock anyone out. Memory is bounded: at most
 * `tableSize` sources × `maxUsersPerSource` counters.
 */
export class FailureThrottle {
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly blockMs: number;
  private readonly maxUsersPerSource: number;
  private readonly sources: LruMap<string, SourceState>;

  constructor(options: ThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.blockMs = options.blockMs ?? 300_000;
    this.maxUsersPerSource = options.maxUsersPerSource ?? 16;
    this.sources = new LruMap(options.tableSize ?? 10_000);
  }

  /** Sources tracked (for tests of the bound). */
  get size(): number {
    return this.sources.size;
  }

  /** Sources blocked now, as a whole or for at least one username (a scan of the bounded table: for metrics, not per request). */
  blockedSources(now: number): number {
    let n = 0;
    for (const s of this.sources.values()) {
      if (s.blockedUntil > now) n++;
      else for (const c of s.users.values()) if (c.blockedUntil > now) {
        n++;
        break;
      }
    }
    return n;
  }

  /** True while the source as a whole, or (with `user`) that user from that source, is blocked. */
  isBlocked(source: string, user: string | undefined, now: number): boolean {
    const s = this.sources.peek(source);
    if (s === undefined) return false;
    if (s.blockedUntil > now) return true;
    if (user === undefined) return false;
    const c = s.users.get(user);
    return c !== undefined && c.blockedUntil > now;
  }

  noteFailure(source: string, user: string, now: number): void {
    let s = this.sources.get(source);
    if (s === undefined) {
      s = { blockedUntil: 0, users: new Map() };
      this.sources.set(source, s);
    }
    let c = s.users.get(user);
    if (c === undefined) {
      if (s.users.size >= this.maxUsersPerSource) this.forgetIdle(s, now);
      if (s.users.size >= this.maxUsersPerSource) {
        // Failing on many usernames at once is a scan: block the source, not one pair.
        s.blockedUntil = now + this.blockMs;
        return;
      }
      c = { failures: 0, windowStart: now, blockedUntil: 0 };
      s.users.set(user, c);
    } else if (now - c.windowStart > this.windowMs) {
      c.failures = 0;
      c.windowStart = now;
    }
    if (++c.failures >= this.maxFailures) {
      c.blockedUntil = now + this.blockMs;
      c.failures = 0;
      c.windowStart = now;
    }
  }

  /** Drop counters whose window has passed and that block nothing. */
  private forgetIdle(s: SourceState, now: number): void {
    for (const [user, c] of s.users) {
      if (c.blockedUntil <= now && now - c.windowStart > this.windowMs) s.users.delete(user);
    }
  }
}
