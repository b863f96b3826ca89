import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/util/events.js';

class Ticker extends Emitter<{ tick(n: number): void }> {
  fire(n: number): boolean {
    return this.emit('tick', n);
  }
}

describe('Emitter', () => {
  it('runs every listener even when one throws, and hands the error to onListenerError (per instance)', () => {
    const a = new Ticker();
    const b = new Ticker();
    const seen: number[] = [];
    const errors: Array<[unknown, string]> = [];
    a.onListenerError = (err, event) => errors.push([err, String(event)]);
    a.on('tick', () => {
      throw new Error('boom');
    });
    a.on('tick', (n) => seen.push(n));
    expect(a.fire(1)).toBe(true);
    expect(seen).toEqual([1]);
    expect(errors).toHaveLength(1);
    expect(errors[0]![1]).toBe('tick');
    // The override is the instance's own; others keep the default (rethrow on a microtask).
    expect(b.onListenerError).not.toBe(a.onListenerError);
    expect(b.onListenerError).toBe(Ticker.prototype.onListenerError);
  });

  it('once() runs a listener a single time', () => {
    const t = new Ticker();
    let n = 0;
    t.once('tick', () => n++);
    t.fire(1);
    t.fire(2);
    expect(n).toBe(1);
    expect(t.listenerCount('tick')).toBe(0);
  });
});
