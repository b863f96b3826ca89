import type { B2bua, CallRecord } from 'sipkit/b2bua';
import { byeFromSnapshot, type DialogSnapshot } from 'sipkit/dialog';
import { isSynthesized } from 'sipkit/transaction';
import type { SipResponse } from 'sipkit/parser';
import { CallJournalFile, type JournaledCall } from './journal.js';
import type { Logger } from './log.js';

/**
 * CSeq distance above the journaled one: the journal is written at answer, and each
 * in-dialog request the trunk sent on a leg afterwards (a relayed re-INVITE, UPDATE, INFO)
 * used one more. The BYE must be above all of them or the peer answers 500 (RFC 3261 §12.2.2).
 */
const CSEQ_GAP = 1000;

function outcomeOf(res: SipResponse): string {
  if (!isSynthesized(res)) return String(res.status);
  return res.status === 408 ? 'timeout' : 'transport-error';
}

function bye(b2bua: B2bua, snapshot: DialogSnapshot, cause: number): Promise<string> {
  return byeFromSnapshot(b2bua.ua, snapshot, {
    reason: { protocol: 'Q.850', cause, text: 'Restart' },
    cseq: Math.min(snapshot.localSeq + CSEQ_GAP, 2 ** 31 - 1),
  }).then(outcomeOf, () => 'unroutable');
}

/**
 * End the calls a crashed or killed run left up: a BYE with `Reason: Q.850;cause=<cause>`
 * to both legs, and a call record (hence a CDR line) saying the call ended by a restart —
 * answered when the journal says, hung up now. Each journal entry is removed once both
 * BYEs have their final response, so a crash during this is ended again on the next start.
 */
export function endJournaledCalls(b2bua: B2bua, journal: CallJournalFile, calls: readonly JournaledCall[], cause: number, log: Logger): void {
  const now = Date.now();
  for (const c of calls) {
    const r = c.record;
    const record: CallRecord = {
      ...r,
      state: 'hangup',
      timestamps: { ...r.timestamps, answered: r.timestamps.answered ?? c.answeredAt, hangup: now },
      hangup: { by: 'system', status: undefined, phrase: 'Trunk restart', q850: cause },
      tags: { ...r.tags, ended_by: 'restart' },
    };
    b2bua.addRecord(record);
    void Promise.all([bye(b2bua, c.caller, cause), bye(b2bua, c.callee, cause)]).then(([caller, callee]) => {
      record.tags.restart_bye_caller = caller;
      record.tags.restart_bye_callee = callee;
      journal.endedById(c.id);
      log('info', 'journal.call_ended', { id: c.id, caller, callee });
    });
  }
}

export interface OpenedJournal {
  /** The B2BUA's `journal` option. */
  journal: CallJournalFile;
  /** The calls the last run left up. */
  up: readonly JournaledCall[];
  /** End those calls through the B2BUA built with `journal` (once its `end` listeners are on, for their CDR lines). */
  endCallsLeftUp(b2bua: B2bua): void;
}

/**
 * The crash journal part: open (creating) the journal at `path` before the B2BUA exists, hand
 * it to the B2BUA, then end what the last run left up.
 *
 * On its own, with a plain B2BUA:
 *
 *     const opened = openCallJournal('/var/lib/trunk/journal.jsonl', { cause: 41 });
 *     const b2bua = new B2bua({ transports, route, journal: opened.journal });
 *     b2bua.on('end', cdr.write);
 *     opened.endCallsLeftUp(b2bua);
 */
export function openCallJournal(path: string, options: { cause: number; fsync?: boolean; log?: Logger }): OpenedJournal {
  const log: Logger = options.log ?? (() => undefined);
  const { journal, up } = CallJournalFile.open(path, { fsync: options.fsync, onError: (err) => log('error', 'journal.write_failed', { error: err.message }) });
  if (journal.skipped > 0) log('warn', 'journal.unreadable_lines', { count: journal.skipped });
  return {
    journal,
    up,
    endCallsLeftUp(b2bua) {
      if (up.length === 0) return;
      log('warn', 'journal.ending_calls', { count: up.length, cause: options.cause });
      endJournaledCalls(b2bua, journal, up, options.cause, log);
    },
  };
}
