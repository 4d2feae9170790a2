/**
 * Keys ordered by an expiry slot, the earliest first: a binary min-heap in two parallel arrays.
 * Pruning what has expired then costs the expired entries (log n each), not a scan of every key
 * held — the batch store holds every batch of the last batch lifetime (30 s by default).
 */
export class ExpiryHeap {
  private readonly slots: number[] = [];
  private readonly keys: string[] = [];

  get size(): number {
    return this.slots.length;
  }

  push(slot: number, key: string): void {
    let i = this.slots.length;
    this.slots.push(slot);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.slots[parent]! <= slot) break;
      this.move(parent, i);
      i = parent;
    }
    this.slots[i] = slot;
    this.keys[i] = key;
  }

  /** The earliest slot held, or Infinity when empty. */
  peekSlot(): number {
    return this.slots.length === 0 ? Infinity : this.slots[0]!;
  }

  /** Removes and returns the key with the earliest slot (the heap must not be empty). */
  pop(): string {
    const top = this.keys[0]!;
    const lastSlot = this.slots.pop()!;
    const lastKey = this.keys.pop()!;
    const n = this.slots.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && this.slots[right]! < this.slots[left]! ? right : left;
        if (this.slots[child]! >= lastSlot) break;
        this.move(child, i);
        i = child;
      }
      this.slots[i] = lastSlot;
      this.keys[i] = lastKey;
    }
    return top;
  }

  private move(from: number, to: number): void {
    this.slots[to] = this.slots[from]!;
    this.keys[to] = this.keys[from]!;
  }
}
