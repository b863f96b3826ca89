import type { B2bua } from 'sipkit/b2bua';
import type { Clock } from 'sipkit/transport';
import type { Logger } from './log.js';

export type ShutdownMode = 'drain' | 'hangup';

export interface ShutdownOptions {
  b2bua: B2bua;
  /** What `stop()` does without an argument (default 'hangup'). */
  mode?: ShutdownMode;
  /** How long a drain waits for the calls up to end by themselves (default 30 s). */
  drainMs?: number;
  /** How long the far ends get to answer the shutdown BYEs and CANCELs before the sockets close (default 2 s). */
  hangupTimeoutMs?: number;
  /** The drain's deadline runs on this (default: the B2BUA's own clock). */
  clock?: Clock;
  log?: Logger;
  /**
   * Started at once when stop() is called, new calls being refused from then on, alongside the
   * drain: what must still reach the network, such as unregistering from carriers' registrars so
   * they stop sending calls. Awaited (at most `hangupTimeoutMs` once the drain is over) before the
   * B2BUA closes its sockets. One that throws is logged.
   */
  before?: ReadonlyArray<() => unknown>;
  /**
   * Closed in this order once the B2BUA has closed: the HTTP API, the media relay, the CDR
   * writer's flush… One that throws is logged and the rest still run.
   */
  after?: ReadonlyArray<() => unknown>;
}

export interface Shutdown {
  /**
   * Stop taking calls (new ones get 503 + Retry-After); in 'drain' mode wait until the calls up
   * have ended or the drain time is over; hang up what is left (a BYE, CANCEL or 503 with
   * `Reason: Q.850;cause=16`, each call getting its `end` event at once); close the B2BUA, then
   * each of `after`. A second call returns the same promise; a 'hangup' during a drain ends the
   * wait at once.
   */
  stop(mode?: ShutdownMode): Promise<void>;
}

/** Resolves true once `b2bua` has no calls up (on its `end` events), false when `ms` runs out first or `cancel` is called. */
export function waitForCalls(b2bua: Pick<B2bua, 'activeCalls' | 'on' | 'off'>, ms: number, clock: Clock): { ended: Promise<boolean>; cancel(): void } {
  if (b2bua.activeCalls === 0) return { ended: Promise.resolve(true), cancel: () => undefined };
  let finish: (ended: boolean) => void = () => undefined;
  const ended = new Promise<boolean>((resolve) => {
    const onEnd = () => {
      if (b2bua.activeCalls === 0) finish(true);
    };
    const timer = clock.setTimer(ms, () => finish(false));
    finish = (value) => {
      timer.cancel();
      b2bua.off('end', onEnd);
      finish = () => undefined;
      resolve(value);
    };
    b2bua.on('end', onEnd);
  });
  return { ended, cancel: () => finish(false) };
}

/**
 * Graceful shutdown for a B2BUA and what was built around it, driven by its `end` events and
 * one deadline timer — no polling.
 *
 * On its own, with a plain B2BUA:
 *
 *     const shutdown = createShutdown({ b2bua, mode: 'drain', drainMs: 60_000, after: [() => cdr.flush()] });
 *     process.once('SIGTERM', () => void shutdown.stop().then(() => process.exit(0)));
 */
export function createShutdown(options: ShutdownOptions): Shutdown {
  const { b2bua, log } = options;
  const clock = options.clock ?? b2bua.ua.clock;
  let stopping: Promise<void> | undefined;
  let draining: { cancel(): void } | undefined;

  const run = async (mode: ShutdownMode): Promise<void> => {
    b2bua.stopAccepting();
    log?.('info', 'trunk.stopping', { mode, calls: b2bua.activeCalls });
    const before = (options.before ?? []).map((step) =>
      Promise.resolve()
        .then(step)
        .catch((err: unknown) => log?.('error', 'trunk.stop_step_failed', { error: err instanceof Error ? err.message : String(err) })),
    );
    if (mode === 'drain') {
      const wait = waitForCalls(b2bua, options.drainMs ?? 30_000, clock);
      draining = wait;
      if (!(await wait.ended)) log?.('info', 'trunk.drain_over', { calls: b2bua.activeCalls });
      draining = undefined;
    }
    if (before.length > 0) {
      let timer: { cancel(): void } | undefined;
      const timeout = new Promise<void>((resolve) => (timer = clock.setTimer(options.hangupTimeoutMs ?? 2000, resolve)));
      await Promise.race([Promise.all(before), timeout]);
      timer?.cancel();
    }
    await b2bua.close({ reason: { protocol: 'Q.850', cause: 16, text: 'Shutdown' }, timeoutMs: options.hangupTimeoutMs ?? 2000 });
    for (const close of options.after ?? []) {
      try {
        await close();
      } catch (err) {
        log?.('error', 'trunk.stop_step_failed', { error: err instanceof Error ? err.message : String(err) });
      }
    }
    log?.('info', 'trunk.stopped', {});
  };

  return {
    stop(mode = options.mode ?? 'hangup') {
      if (mode === 'hangup') draining?.cancel();
      return (stopping ??= run(mode));
    },
  };
}
