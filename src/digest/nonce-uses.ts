/**
 * The last nonce-count accepted per nonce, kept for the nonce's whole lifetime.
 *
 * Replay protection (RFC 7616 §3.4, §5.4) only holds while a nonce's nc history is
 * remembered, so an entry is never evicted early: it is dropped once its nonce has
 * expired (within one bucket width after), and when `capacity` nonces are live a new
 * nonce is refused (`record` returns false) instead of forgetting an old one. Entries
 * are grouped in buckets by expiry time, so expiring them costs O(expired), not O(size).
 */
import { DigestError } from './errors.js';

export class NonceUseTable {
  /** Nonce key → last nc accepted (0 for an RFC 2069 response). */
  private readonly lastNc = new Map<number, number>();
  /** Expiry bucket number → keys of the nonces expiring in it. */
  private readonly buckets = new Map<number, number[]>();
  private readonly bucketMs: number;
  /** The earliest time a bucket can be due (avoids scanning the buckets on every insert). */
  private nextDue = Infinity;

  constructor(
    readonly capacity: number,
    ttlMs: number,
  ) {
    if (!(capacity >= 1)) throw new DigestError('BAD_OPTION', 'nonce table capacity must be at least 1');
    // 16 buckets per lifetime: an entry outlives its nonce by at most 1/16 of the TTL.
    this.bucketMs = Math.max(1000, Math.ceil(ttlMs / 16));
  }

  get size(): number {
    return this.lastNc.size;
  }

  get(key: number): number | undefined {
    return this.lastNc.get(key);
  }

  /** Move a known nonce's nc forward. */
  update(key: number, nc: number): void {
    this.lastNc.set(key, nc);
  }

  /**
   * Start tracking a nonce that expires at `expiresAt`. False when `capacity` live
   * nonces are tracked already: the caller refuses the request rather than forget one.
   */
  add(key: number, nc: number, expiresAt: number, now: number): boolean {
    if (now >= this.nextDue) this.expire(now);
    if (this.lastNc.size >= this.capacity) return false;
    this.lastNc.set(key, nc);
    // The bucket ends at or after the expiry, so its nonces are all dead when it is due.
    const bucket = Math.ceil(expiresAt / this.bucketMs);
    const keys = this.buckets.get(bucket);
    if (keys) keys.push(key);
    else {
      this.buckets.set(bucket, [key]);
      this.nextDue = Math.min(this.nextDue, bucket * this.bucketMs);
    }
    return true;
  }

  /** Milliseconds until the next tracked nonce expires (when a full table frees a place). */
  msUntilNextExpiry(now: number): number {
    return Math.max(0, this.nextDue - now);
  }

  private expire(now: number): void {
    let next = Infinity;
    for (const [bucket, keys] of this.buckets) {
      const due = bucket * this.bucketMs;
      if (due <= now) {
        for (const k of keys) this.lastNc.delete(k);
        this.buckets.delete(bucket);
      } else if (due < next) next = due;
    }
    this.nextDue = next;
  }
}
