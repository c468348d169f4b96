/**
 * A FIFO with O(1) push and shift and an ordered insert for requeues. A plain array with a head
 * index: `Array.prototype.shift` is O(n) on long queues, and a queue may hold a million messages.
 * Not exported by the package (its declaration ships: the memory transport's declarations name it).
 */
export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    // Compact now and then so the array does not grow without bound.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Inserts keeping the order of `key` (ascending); items are assumed sorted already. */
  insertSorted(item: T, key: (item: T) => number): void {
    const k = key(item);
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (key(this.items[mid] as T) < k) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.head && this.head > 0) {
      this.head--;
      this.items[this.head] = item;
    } else {
      this.items.splice(lo, 0, item);
    }
  }

  /** Removes and returns every item. */
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T;
  }
}
