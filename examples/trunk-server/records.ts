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

export interface CdrWriterOptions {
  /** How long the first line of a batch waits for others (default 50 ms; 0: the next turn). */
  batchMs?: number;
  /** What appends to the file (default fs/promises' `appendFile`; a test may count the calls). */
  append?: (path: string, data: string) => Promise<void>;
}

/**
 * Call detail records: one JSON line per ended call, appended to `path` in the order the calls
 * ended. Lines are batched: the first waits `batchMs` for others, and lines written while a
 * batch is on its way to the file go in the next one. An append opens, writes and closes the
 * file on libuv's thread pool, about 100–200 µs of CPU on this project's test machine, which a
 * line per call paid for every call; batched, it is paid a few times a second. Each batch still
 * opens the file by its path with O_APPEND, so logrotate's rename and `copytruncate` both work
 * without a signal. A failed append is logged (`cdr.write_failed`, with how many lines it held)
 * and the next batch still tried; nothing throws into the B2BUA. `flush()` writes at once.
 *
 * On its own, with a plain B2BUA:
 *
 *     const cdr = createCdrWriter('/var/log/trunk/cdr.jsonl');
 *     b2bua.on('end', cdr.write);
 *     // on shutdown: await b2bua.close(); await cdr.flush();
 */
export function createCdrWriter(path: string, log?: Logger, options: CdrWriterOptions = {}): CdrWriter {
  const append = options.append ?? appendFile;
  const batchMs = options.batchMs ?? 50;
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> | undefined;
  const drain = async (): Promise<void> => {
    while (pending.length > 0) {
      const lines = pending;
      pending = [];
      try {
        await append(path, lines.join(''));
      } catch (err) {
        log?.('error', 'cdr.write_failed', { error: (err as Error).message, lines: lines.length });
      }
    }
    writing = undefined;
  };
  const start = (): Promise<void> => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    return (writing ??= drain());
  };
  return {
    write: (record) => {
      pending.push(JSON.stringify(viewOf(record)) + '\n');
      // A batch on its way picks this line up when it is done; otherwise one starts soon.
      if (writing === undefined && timer === undefined) timer = setTimeout(start, batchMs);
    },
    flush: () => (timer !== undefined ? start() : (writing ?? Promise.resolve())),
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
