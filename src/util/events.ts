/* eslint-disable @typescript-eslint/no-explicit-any */
type Handler = (...args: any[]) => void;

/**
 * A minimal typed event emitter. Listeners throwing do not stop the others or
 * the protocol machinery behind them: the error is reported to `onListenerError`.
 */
export class Emitter<E extends { [K in keyof E]: Handler }> {
  // Made by the first `on`: a busy B2BUA has thousands of emitters (its calls), most never listened to.
  private listeners: Map<keyof E, Handler[]> | undefined = undefined;
  /** Where a throwing listener's error goes (default: rethrown on a microtask). Assign to override. */
  onListenerError(err: unknown, _event: keyof E): void {
    // A prototype method, not a closure per instance: every call of a busy B2BUA is an emitter.
    queueMicrotask(() => {
      throw err;
    });
  }

  on<K extends keyof E>(event: K, fn: E[K]): this {
    const all = (this.listeners ??= new Map());
    const l = all.get(event);
    if (l) l.push(fn);
    else all.set(event, [fn]);
    return this;
  }

  once<K extends keyof E>(event: K, fn: E[K]): this {
    const wrap = ((...args: unknown[]) => {
      this.off(event, wrap as E[K]);
      (fn as Handler)(...args);
    }) as E[K];
    return this.on(event, wrap);
  }

  off<K extends keyof E>(event: K, fn: E[K]): this {
    const l = this.listeners?.get(event);
    if (l) {
      const i = l.indexOf(fn);
      if (i >= 0) l.splice(i, 1);
    }
    return this;
  }

  listenerCount(event: keyof E): number {
    return this.listeners?.get(event)?.length ?? 0;
  }

  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): boolean {
    const l = this.listeners?.get(event);
    if (!l || l.length === 0) return false;
    for (const fn of l.slice()) {
      try {
        fn(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
    return true;
  }

  protected removeAllListeners(): void {
    this.listeners = undefined;
  }
}
