import { appendFile } from 'node:fs/promises';
import type { CallRecord } from 'sipkit/b2bua';
import { viewOf } from './call-view.js';
import type { Logger } from './log.js';

/** The B2BUA events the records part follows (a `B2bua` has them). */
export interface CallEvents {
  on(event: 'call' | 'update' | 'end', fn: (record: CallRecord) => void): unknown;
}

export interface CdrWriter {
  /** Append the call's CDR line (its HTTP API JSON, call-view.ts); a listener for the B2BUA's `end`. */
  write(record: CallRecord): void;
  /** Resolves once every line written so far is in the file (or its failure logged). */
  flush(): Promise<void>;
}

/**
 * Call detail records: one JSON line per ended call, appended to `path` in the order the calls
 * ended. A failed write is logged (`cdr.write_failed`) and the next line still tried; nothing
 * throws into the B2BUA.
 *
 * Rotation needs no signal: every line opens the file by its path and appends (O_APPEND), so
 * logrotate's default (rename, then the next line creates a new file) and `copytruncate` both
 * work as they are; no line is lost or written into the renamed file after the rename. Unlike
 * the in-process call records (the B2BUA's `keepRecords`), the file grows until rotated.
 *
 * On its own, with a plain B2BUA:
 *
 *     const cdr = createCdrWriter('/var/log/trunk/cdr.jsonl');
 *     b2bua.on('end', cdr.write);
 *     // on shutdown: await b2bua.close(); await cdr.flush();
 */
export function createCdrWriter(path: string, log?: Logger): CdrWriter {
  let writes: Promise<void> = Promise.resolve();
  return {
    write: (record) => {
      const line = JSON.stringify(viewOf(record)) + '\n';
      writes = writes
        .then(() => appendFile(path, line))
        .catch((err: Error) => {
          log?.('error', 'cdr.write_failed', { error: err.message });
        });
    },
    flush: () => writes,
  };
}

/**
 * One log line per call event: `call.created` (info), `call.updated` (debug), `call.ended`
 * (info, with who hung up, the SIP status and the Q.850 cause). `logCallEvents(b2bua, log)`.
 */
export function logCallEvents(b2bua: CallEvents, log: Logger): void {
  b2bua.on('call', (r) => log('info', 'call.created', { id: r.id, from: r.from, to: r.to, extension: r.identity, domain: r.tags.domain }));
  b2bua.on('update', (r) => log('debug', 'call.updated', { id: r.id, status: r.state }));
  b2bua.on('end', (r) => log('info', 'call.ended', { id: r.id, by: r.hangup?.by, code: r.hangup?.status, q850: r.hangup?.q850 }));
}
