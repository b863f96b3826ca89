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
    const chunks = this.chunks;
    if (chunks.length === 0) {
      chunks.push([seq]);
      this.size = 1;
      return;
    }
    let ci = chunks.length - 1;
    let c = chunks[ci]!;
    let i = c.length;
    // New calls come last (their numbers only grow): no search then.
    if (c[i - 1]! >= seq) {
      ci = Math.min(this.chunkFor(seq), ci);
      c = chunks[ci]!;
      i = lowerBound(c, seq);
      if (c[i] === seq) return;
    }
    // Moved by hand: splice would allocate the (empty) array of what it removed.
    for (let k = c.length; k > i; k--) c[k] = c[k - 1]!;
    c[i] = seq;
    this.size++;
    if (c.length > 2 * CHUNK) chunks.splice(ci + 1, 0, c.splice(CHUNK));
  }

  delete(seq: number): boolean {
    const ci = this.chunkFor(seq);
    const c = this.chunks[ci];
    if (!c) return false;
    const i = lowerBound(c, seq);
    if (c[i] !== seq) return false;
    // Calls mostly leave oldest first: shift() drops the head without moving the rest.
    if (i === 0) c.shift();
    else {
      for (let k = i + 1; k < c.length; k++) c[k - 1] = c[k]!;
      c.pop();
    }
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
  /** Every call (never dropped, even when empty). */
  private readonly all = new SeqList();
  private readonly byStatus = new Map<string, SeqList>();
  private readonly byDomain = new Map<string, DomainLists>();
  /**
   * The calls that ended, in the order their `end` came (the order the B2BUA drops them in), from
   * `endedHead` on. A queue, not a Set: a Set whose oldest entries are deleted one by one keeps
   * them as holes that every later `for…of` walks past again until the table is rebuilt — at
   * 10 000 kept records that was ~7 µs per call. A call listed twice (two `end`s) is dropped once.
   */
  private endedOrder: number[] = [];
  private endedHead = 0;
  private nextSeq = 1;
  private readonly onCall = (r: CallRecord) => {
    this.add(r);
    this.dropForgotten();
  };
  private readonly onChange = (r: CallRecord) => this.refile(r);
  private readonly onEnd = (r: CallRecord) => {
    this.refile(r);
    const e = this.byId.get(r.id);
    if (e) this.endedOrder.push(e.seq);
  };

  constructor(private readonly source: CallSource) {
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
    const list = this.listOf(filter.status || undefined, filter.domain || undefined);
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

  /** The list a filter names, if it has any call. */
  private listOf(status: string | undefined, domain: string | undefined): SeqList | undefined {
    if (domain === undefined) return status === undefined ? this.all : this.byStatus.get(status);
    const d = this.byDomain.get(domain);
    return status === undefined ? d?.all : d?.byStatus.get(status);
  }

  /*
   * Lists are found by the record's own strings in maps, one level per label: a key string built
   * per call (and hashed afresh, being new) was most of the index's cost per call.
   */

  private fileStatus(seq: number, status: string, domain: string | undefined): void {
    insertInto(this.byStatus, status, seq);
    if (domain === undefined) return;
    insertInto(this.domainLists(domain).byStatus, status, seq);
  }

  private unfileStatus(seq: number, status: string, domain: string | undefined): void {
    deleteFrom(this.byStatus, status, seq);
    if (domain === undefined) return;
    const d = this.byDomain.get(domain);
    if (d) deleteFrom(d.byStatus, status, seq);
  }

  private domainLists(domain: string): DomainLists {
    let d = this.byDomain.get(domain);
    if (!d) this.byDomain.set(domain, (d = { all: new SeqList(), byStatus: new Map() }));
    return d;
  }

  private file(e: Entry): void {
    this.all.insert(e.seq);
    if (e.domain !== undefined) this.domainLists(e.domain).all.insert(e.seq);
    this.fileStatus(e.seq, e.status, e.domain);
  }

  private unfile(e: Entry): void {
    this.all.delete(e.seq);
    this.unfileStatus(e.seq, e.status, e.domain);
    this.unfileDomain(e.seq, e.domain);
  }

  /** Off its domain's all-calls list; the domain goes once it holds no call (so domains cannot pile up). */
  private unfileDomain(seq: number, domain: string | undefined): void {
    if (domain === undefined) return;
    const d = this.byDomain.get(domain);
    if (!d) return;
    d.all.delete(seq);
    if (d.all.size === 0) this.byDomain.delete(domain);
  }

  private add(record: CallRecord): void {
    if (this.byId.has(record.id)) return this.refile(record);
    const e: Entry = { seq: this.nextSeq++, record, status: record.state, domain: record.tags.domain };
    this.bySeq.set(e.seq, e);
    this.byId.set(record.id, e);
    this.file(e);
    // Stored already ended (the B2BUA does the same): it is dropped in turn with those that end.
    if (record.state === 'hangup') this.endedOrder.push(e.seq);
  }

  private refile(record: CallRecord): void {
    const e = this.byId.get(record.id);
    if (!e) return;
    e.record = record;
    const status = record.state;
    const domain = record.tags.domain;
    if (e.status === status && e.domain === domain) return;
    // A call changes state a few times and its domain seldom: only the lists whose key
    // changed are touched (the all-calls list, and the domain's when it stays, are left as they are).
    this.unfileStatus(e.seq, e.status, e.domain);
    if (e.domain !== domain) {
      this.unfileDomain(e.seq, e.domain);
      if (domain !== undefined) this.domainLists(domain).all.insert(e.seq);
    }
    e.status = status;
    e.domain = domain;
    this.fileStatus(e.seq, status, domain);
  }

  /** Drop what the B2BUA no longer holds: a prefix of the ended calls, in the order they ended. */
  private dropForgotten(): void {
    const q = this.endedOrder;
    while (this.endedHead < q.length) {
      const e = this.bySeq.get(q[this.endedHead]!);
      // (Undefined: listed twice, dropped already.)
      if (e !== undefined) {
        if (this.source.get(e.record.id) === e.record) break;
        this.unfile(e);
        this.bySeq.delete(e.seq);
        this.byId.delete(e.record.id);
      }
      this.endedHead++;
    }
    // The dropped head is cut off now and then, so the queue holds about what is listed.
    if (this.endedHead > 1024 && this.endedHead * 2 > q.length) {
      this.endedOrder = q.slice(this.endedHead);
      this.endedHead = 0;
    }
  }
}

/** A trunk domain's lists: all its calls, and by status. */
interface DomainLists {
  all: SeqList;
  byStatus: Map<string, SeqList>;
}

function insertInto(lists: Map<string, SeqList>, key: string, seq: number): void {
  let l = lists.get(key);
  if (!l) lists.set(key, (l = new SeqList()));
  l.insert(seq);
}

/** Empty lists go, so per-domain lists cannot pile up. */
function deleteFrom(lists: Map<string, SeqList>, key: string, seq: number): void {
  const l = lists.get(key);
  if (!l) return;
  l.delete(seq);
  if (l.size === 0) lists.delete(key);
}
