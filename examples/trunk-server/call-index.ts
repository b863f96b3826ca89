import type { CallRecord } from 'sipkit/b2bua';

type RecordEvent = 'call' | 'update' | 'end';

/** What the index follows: a B2BUA's stored records and the events that change them (a `B2bua` is one). */
export interface CallSource {
  get(id: string): CallRecord | undefined;
  /** Oldest first. */
  list(): CallRecord[];
  on(event: RecordEvent, fn: (record: CallRecord) => void): unknown;
  off(event: RecordEvent, fn: (record: CallRecord) => void): unknown;
}

/** Chunks split beyond twice this, so an insert or delete moves at most ~2×CHUNK numbers. */
const CHUNK = 256;

/** First index in ascending `a` whose value is >= `v` (a.length if none). */
function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A set of sequence numbers kept in ascending order, in chunks: finding a place is two binary
 * searches, and an insert or delete anywhere moves one chunk, never the whole list.
 */
export class SeqList {
  private readonly chunks: number[][] = [];
  size = 0;

  /** The first chunk whose last number is >= seq (chunks.length if none). */
  private chunkFor(seq: number): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.chunks[mid]!;
      if (c[c.length - 1]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(seq: number): void {
    if (this.chunks.length === 0) {
      this.chunks.push([seq]);
      this.size = 1;
      return;
    }
    const ci = Math.min(this.chunkFor(seq), this.chunks.length - 1);
    const c = this.chunks[ci]!;
    const i = lowerBound(c, seq);
    if (c[i] === seq) return;
    c.splice(i, 0, seq);
    this.size++;
    if (c.length > 2 * CHUNK) this.chunks.splice(ci + 1, 0, c.splice(CHUNK));
  }

  delete(seq: number): boolean {
    const ci = this.chunkFor(seq);
    const c = this.chunks[ci];
    if (!c) return false;
    const i = lowerBound(c, seq);
    if (c[i] !== seq) return false;
    c.splice(i, 1);
    this.size--;
    if (c.length === 0) this.chunks.splice(ci, 1);
    return true;
  }

  /** The smallest (oldest) number. */
  first(): number | undefined {
    return this.chunks[0]?.[0];
  }

  /** The numbers below `bound`, largest (newest) first. */
  *below(bound: number): Generator<number> {
    let ci = this.chunkFor(bound);
    let i: number;
    if (ci === this.chunks.length) {
      ci--;
      i = (this.chunks[ci]?.length ?? 0) - 1;
    } else {
      i = lowerBound(this.chunks[ci]!, bound) - 1;
    }
    for (; ci >= 0; ci--) {
      const c = this.chunks[ci]!;
      for (; i >= 0; i--) yield c[i]!;
      i = (this.chunks[ci - 1]?.length ?? 0) - 1;
    }
  }
}

interface Entry {
  seq: number;
  record: CallRecord;
  /** The status and domain the entry is filed under (the record's may have moved on). */
  status: string;
  domain: string | undefined;
}

export interface CallFilter {
  status?: string | undefined;
  domain?: string | undefined;
}

export interface CallPage {
  records: CallRecord[];
  /** Opaque: where the next page starts, or null at the end. */
  next: string | null;
}

/** A page_token that is not one this index gave out. */
export class CursorError extends Error {
  readonly code = 'invalid_page_token';
}

const CURSOR_PREFIX = 'c1.';

function encodeCursor(seq: number): string {
  return Buffer.from(CURSOR_PREFIX + seq.toString(36)).toString('base64url');
}

function decodeCursor(token: string): number {
  // Node's base64url decoder skips what is not base64: re-encoding must give the token back.
  const text = Buffer.from(token, 'base64url').toString('latin1');
  const m = /^c1\.([0-9a-z]{1,11})$/.exec(text);
  const seq = m ? parseInt(m[1]!, 36) : NaN;
  if (!Number.isSafeInteger(seq) || encodeCursor(seq) !== token) throw new CursorError('page_token is not one this server gave out');
  return seq;
}

/**
 * Calls by creation order (newest first), per status, per trunk domain and per both, kept from
 * the B2BUA's `call`/`update`/`end` events, so a page costs its own length and not the number
 * of stored records. A cursor names the last call a page showed: the next page is the calls
 * created before it that still match, however many were added or dropped in between.
 *
 * The B2BUA drops the ended records beyond `keepRecords`, in the order they ended, when it
 * stores a new one, just before it emits `call`; the index drops the same ones then, walking its
 * calls in the order their `end` came, so it holds what the B2BUA holds (calls still up never
 * hold the others back).
 */
export class CallIndex {
  private readonly bySeq = new Map<number, Entry>();
  private readonly byId = new Map<string, Entry>();
  private readonly lists = new Map<string, SeqList>();
  /** The calls that ended, in the order their `end` came: the order the B2BUA drops them in. */
  private readonly endedOrder = new Set<number>();
  private nextSeq = 1;
  private readonly onCall = (r: CallRecord) => {
    this.add(r);
    this.dropForgotten();
  };
  private readonly onChange = (r: CallRecord) => this.refile(r);
  private readonly onEnd = (r: CallRecord) => {
    this.refile(r);
    const e = this.byId.get(r.id);
    if (e) this.endedOrder.add(e.seq);
  };

  constructor(private readonly source: CallSource) {
    this.list(''); // the all-calls list, there from the start (it is never dropped when empty)
    for (const r of source.list()) this.add(r);
    source.on('call', this.onCall);
    source.on('update', this.onChange);
    source.on('end', this.onEnd);
  }

  /** Stop following the B2BUA. */
  close(): void {
    this.source.off('call', this.onCall);
    this.source.off('update', this.onChange);
    this.source.off('end', this.onEnd);
  }

  get size(): number {
    return this.bySeq.size;
  }

  /**
   * Up to `size` calls matching `filter`, newest first, after the cursor `after`.
   * @throws CursorError for a cursor this index did not make.
   */
  page(filter: CallFilter, size: number, after?: string): CallPage {
    const bound = after === undefined ? Number.MAX_SAFE_INTEGER : decodeCursor(after);
    const list = this.lists.get(keyOf(filter.status || undefined, filter.domain || undefined));
    const records: CallRecord[] = [];
    if (!list) return { records, next: null };
    let last = 0;
    for (const seq of list.below(bound)) {
      if (records.length === size) return { records, next: encodeCursor(last) };
      records.push(this.bySeq.get(seq)!.record);
      last = seq;
    }
    return { records, next: null };
  }

  private list(key: string): SeqList {
    let l = this.lists.get(key);
    if (!l) this.lists.set(key, (l = new SeqList()));
    return l;
  }

  private file(e: Entry): void {
    for (const key of keysOf(e)) this.list(key).insert(e.seq);
  }

  private unfile(e: Entry, keys = keysOf(e)): void {
    for (const key of keys) {
      const l = this.lists.get(key);
      l?.delete(e.seq);
      // Empty lists go, so per-domain lists cannot pile up; the all-calls list stays.
      if (l && l.size === 0 && key !== '') this.lists.delete(key);
    }
  }

  private add(record: CallRecord): void {
    if (this.byId.has(record.id)) return this.refile(record);
    const e: Entry = { seq: this.nextSeq++, record, status: record.state, domain: record.tags.domain };
    this.bySeq.set(e.seq, e);
    this.byId.set(record.id, e);
    this.file(e);
    // Stored already ended (the B2BUA does the same): it is dropped in turn with those that end.
    if (record.state === 'hangup') this.endedOrder.add(e.seq);
  }

  private refile(record: CallRecord): void {
    const e = this.byId.get(record.id);
    if (!e || (e.status === record.state && e.domain === record.tags.domain)) return;
    // A call changes state a few times and its domain seldom: only the lists whose key
    // changed are touched (the all-calls list and the domain's stay as they are).
    const before = keysOf(e);
    e.record = record;
    e.status = record.state;
    e.domain = record.tags.domain;
    const after = keysOf(e);
    this.unfile(e, before.filter((k) => !after.includes(k)));
    for (const key of after) if (!before.includes(key)) this.list(key).insert(e.seq);
  }

  /** Drop what the B2BUA no longer holds: a prefix of the ended calls, in the order they ended. */
  private dropForgotten(): void {
    for (const seq of this.endedOrder) {
      const e = this.bySeq.get(seq)!;
      if (this.source.get(e.record.id) === e.record) return;
      this.endedOrder.delete(seq);
      this.unfile(e);
      this.bySeq.delete(seq);
      this.byId.delete(e.record.id);
    }
  }
}

function keyOf(status: string | undefined, domain: string | undefined): string {
  // Statuses are fixed words: a NUL cannot occur in one, so keys cannot collide.
  if (status !== undefined && domain !== undefined) return `sd\0${status}\0${domain}`;
  if (status !== undefined) return `s\0${status}`;
  if (domain !== undefined) return `d\0${domain}`;
  return '';
}

function keysOf(e: Entry): string[] {
  const keys = ['', `s\0${e.status}`];
  if (e.domain !== undefined) keys.push(`d\0${e.domain}`, `sd\0${e.status}\0${e.domain}`);
  return keys;
}
