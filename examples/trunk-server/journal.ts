import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { AnsweredCall, CallJournal, CallRecord } from 'sipkit/b2bua';
import { parseDialogSnapshot, type DialogSnapshot } from 'sipkit/dialog';

/** A call that was up when the journal was last written: what a restart must end. */
export interface JournaledCall {
  id: string;
  /** When the trunk relayed the 200 to the caller (ms since the epoch). */
  answeredAt: number;
  record: CallRecord;
  caller: DialogSnapshot;
  callee: DialogSnapshot;
}

type Line = { t: 'up'; call: JournaledCall } | { t: 'end'; id: string };

/** Bigger than this, a journal file is not read: it cannot be one this trunk wrote (10 000 calls ≈ 25 MB). */
const MAX_FILE_BYTES = 256 * 1024 * 1024;

function readCall(v: unknown): JournaledCall | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const c = v as Record<string, unknown>;
  const record = c.record as CallRecord | undefined;
  if (typeof c.id !== 'string' || typeof c.answeredAt !== 'number' || typeof record !== 'object' || record === null || typeof record.id !== 'string') return undefined;
  try {
    return { id: c.id, answeredAt: c.answeredAt, record, caller: parseDialogSnapshot(c.caller), callee: parseDialogSnapshot(c.callee) };
  } catch {
    return undefined;
  }
}

/**
 * The trunk's call journal: one JSON line when a call is answered (both legs' dialogs),
 * one when it ends, appended with a synchronous write — the line is in the kernel before
 * the caller's 200 leaves, so a SIGKILL keeps it (`fsync: true` also survives a power loss,
 * at a disk flush per line). The file is compacted on open and whenever ended lines
 * outnumber live calls, so its size follows the number of calls up.
 */
export class CallJournalFile implements CallJournal {
  /** Live calls' lines, to rewrite the file from. */
  private readonly live = new Map<string, string>();
  private lines = 0;
  /** Lines that could not be read when the file was opened (a torn last line after a crash). */
  readonly skipped: number;

  private constructor(
    readonly path: string,
    private readonly fsync: boolean,
    private readonly onError: (err: Error) => void,
    recovered: JournaledCall[],
    skipped: number,
  ) {
    this.skipped = skipped;
    for (const c of recovered) this.live.set(c.id, JSON.stringify({ t: 'up', call: c } satisfies Line));
    this.rewrite();
  }

  /**
   * Open (creating) a journal; returns it with the calls the last run left up, which the
   * caller must end and then mark `endedById`. The file is compacted to those calls first.
   */
  static open(path: string, options: { fsync?: boolean; onError?: (err: Error) => void } = {}): { journal: CallJournalFile; up: JournaledCall[] } {
    const up = new Map<string, JournaledCall>();
    let skipped = 0;
    if (existsSync(path)) {
      const text = readFileSync(path);
      if (text.length > MAX_FILE_BYTES) throw new Error(`journal ${path} is larger than ${MAX_FILE_BYTES} bytes: not a trunk journal`);
      for (const raw of text.toString('utf8').split('\n')) {
        if (raw.trim() === '') continue;
        let line: Line;
        try {
          line = JSON.parse(raw) as Line;
        } catch {
          skipped++;
          continue;
        }
        if (line?.t === 'end' && typeof line.id === 'string') up.delete(line.id);
        else if (line?.t === 'up') {
          const c = readCall(line.call);
          if (c) up.set(c.id, c);
          else skipped++;
        } else skipped++;
      }
    }
    const journal = new CallJournalFile(path, options.fsync ?? false, options.onError ?? (() => undefined), [...up.values()], skipped);
    return { journal, up: [...up.values()] };
  }

  /** Calls the journal holds as up. */
  get size(): number {
    return this.live.size;
  }

  answered(call: AnsweredCall): void {
    const entry: JournaledCall = { id: call.record.id, answeredAt: Date.now(), record: call.record, caller: call.caller, callee: call.callee };
    const line = JSON.stringify({ t: 'up', call: entry } satisfies Line);
    this.live.set(entry.id, line);
    this.append(line);
  }

  ended(record: CallRecord): void {
    this.endedById(record.id);
  }

  endedById(id: string): void {
    if (!this.live.delete(id)) return;
    this.append(JSON.stringify({ t: 'end', id } satisfies Line));
    // Ended lines outnumber live ones: rewrite, so the file stays proportional to the calls up.
    if (this.lines > 1024 + 2 * this.live.size) this.compact();
  }

  private append(line: string): void {
    // Opened per line, so no descriptor outlives the trunk that wrote it.
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'a', 0o600);
      writeSync(fd, line + '\n');
      if (this.fsync) fsyncSync(fd);
      this.lines++;
    } catch (err) {
      this.onError(err as Error);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  private compact(): void {
    try {
      this.rewrite();
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Write the live lines to a new file, then move it over the journal (atomic on POSIX). */
  private rewrite(): void {
    const tmp = this.path + '.tmp';
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const body = [...this.live.values()].map((l) => l + '\n').join('');
      if (body) writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.lines = this.live.size;
  }
}
