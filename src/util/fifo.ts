/** Passed slots at the front beyond which a queue is compacted (when they are also half of it). */
const COMPACT_FROM = 1024;

/**
 * A first-in first-out queue: an array and a head index, so taking from the front is O(1)
 * (Array.prototype.shift moves every element), compacted now and then so passed slots do not
 * pile up. A taken slot is cleared, so the queue keeps no reference to what it handed out.
 * (The transaction layer's wait queues keep their own arrays: their due times must stay an
 * unboxed double array, which clearing slots would turn into boxed numbers.)
 */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, left in the queue; undefined when empty. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** The oldest item, or undefined when empty. */
  shift(): T | undefined {
    const items = this.items;
    const i = this.head;
    if (i >= items.length) return undefined;
    const item = items[i];
    items[i] = undefined;
    this.head = i + 1;
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_FROM && this.head * 2 >= items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Drop everything; returns how many items there were. */
  clear(): number {
    const n = this.length;
    this.items = [];
    this.head = 0;
    return n;
  }
}
