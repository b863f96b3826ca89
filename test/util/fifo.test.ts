import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/util/fifo.js';

// The queue behind the UDP inbox's lanes, the B2BUA's keepRecords and the UDP send thread's waiting datagrams: first in, first out, with
// passed slots neither kept nor piling up however many items pass through.
describe('Fifo', () => {
  it('hands items out in the order they came, undefined once empty; clear() says how many it dropped', () => {
    const q = new Fifo<string>();
    expect(q.shift()).toBeUndefined();
    q.push('a');
    q.push('b');
    expect(q.shift()).toBe('a');
    q.push('c');
    expect([q.length, q.shift(), q.shift(), q.shift(), q.length]).toEqual([2, 'b', 'c', undefined, 0]);
    q.push('d');
    q.push('e');
    expect(q.clear()).toBe(2);
    expect([q.length, q.shift()]).toEqual([0, undefined]);
  });

  it('peek() shows the oldest without taking it (the UDP send thread\'s waiting datagrams)', () => {
    const q = new Fifo<string>();
    expect(q.peek()).toBeUndefined();
    q.push('a');
    q.push('b');
    expect([q.peek(), q.length]).toEqual(['a', 2]);
    q.shift();
    expect([q.peek(), q.length]).toEqual(['b', 1]);
    q.shift();
    expect(q.peek()).toBeUndefined();
  });

  it('keeps no reference to what it handed out, and compacts: 100 000 items through a queue ~3 000 long', () => {
    const q = new Fifo<{ n: number }>();
    const items = (q as unknown as { items: unknown[] });
    let next = 0;
    let longest = 0;
    for (let i = 0; i < 100_000; i++) {
      q.push({ n: i });
      if (i >= 3000) expect(q.shift()!.n).toBe(next++);
      longest = Math.max(longest, items.items.length);
    }
    expect(q.length).toBe(3000);
    // Compacted once the passed slots are half of it: never twice the live items (or 1 024) and more.
    expect(longest).toBeLessThanOrEqual(2 * 3000 + 1);
    expect(items.items.slice(0, items.items.length - q.length).every((v) => v === undefined)).toBe(true);
  });
});
