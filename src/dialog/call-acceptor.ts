import { SipError } from '../parser/index.js';
import type { IncomingCall } from './incoming-call.js';

export interface AcceptOptions {
  /** Stop waiting: accept() rejects with `SipError` `ABORTED` (a call arriving later waits for the next accept()). */
  signal?: AbortSignal;
}

interface Taker {
  resolve(call: IncomingCall): void;
  reject(err: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * New incoming calls for an application that pulls them (`UserAgent.accept()`), the way a
 * listening socket's accept() works: a call arriving while an accept() waits goes to the
 * longest-waiting one; otherwise it waits in a backlog of at most `backlog` calls (the
 * caller hears the transaction layer's 100 Trying meanwhile) — beyond that the user agent
 * refuses it. A waiting call the caller CANCELs is dropped without being handed out.
 */
export class CallAcceptor {
  private readonly backlog: IncomingCall[] = [];
  private readonly takers: Taker[] = [];
  private closed = false;

  constructor(private readonly limit: number) {}

  /** A new call: handed to a waiting accept(), or kept; false when the backlog is full. */
  offer(call: IncomingCall): boolean {
    const taker = this.takers.shift();
    if (taker) {
      taker.signal?.removeEventListener('abort', taker.onAbort);
      taker.resolve(call);
      return true;
    }
    this.dropEnded();
    if (this.backlog.length >= this.limit) return false;
    this.backlog.push(call);
    return true;
  }

  take(options: AcceptOptions = {}): Promise<IncomingCall> {
    if (this.closed) return Promise.reject(new SipError('CLOSED', 'the user agent is closing'));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new SipError('ABORTED', 'accept() was aborted'));
    this.dropEnded();
    const next = this.backlog.shift();
    if (next) return Promise.resolve(next);
    return new Promise<IncomingCall>((resolve, reject) => {
      const taker: Taker = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.takers.indexOf(taker);
          if (i >= 0) this.takers.splice(i, 1);
          reject(new SipError('ABORTED', 'accept() was aborted'));
        },
      };
      signal?.addEventListener('abort', taker.onAbort, { once: true });
      this.takers.push(taker);
    });
  }

  /** The user agent closes: every waiting accept() rejects with `CLOSED` (the calls themselves are ended by close()). */
  close(): void {
    this.closed = true;
    this.backlog.length = 0;
    for (const t of this.takers.splice(0)) {
      t.signal?.removeEventListener('abort', t.onAbort);
      t.reject(new SipError('CLOSED', 'the user agent closed while accept() was waiting'));
    }
  }

  private dropEnded(): void {
    for (let i = this.backlog.length - 1; i >= 0; i--) if (this.backlog[i]!.ended) this.backlog.splice(i, 1);
  }
}
