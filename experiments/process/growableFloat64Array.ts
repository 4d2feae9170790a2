/**
 * An append-only Float64Array that doubles its capacity when full. Logs can hold hundreds of
 * millions of lines: 8 bytes per value, rather than a JS array of boxed numbers or strings.
 */
const INITIAL_CAPACITY = 1024;

export class GrowableFloat64Array {
  private data = new Float64Array(INITIAL_CAPACITY);
  private size = 0;

  get length(): number {
    return this.size;
  }

  push(value: number): void {
    if (this.size === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.size++] = value;
  }

  /** The values pushed so far, as a view that shares memory (valid until the next push). */
  view(): Float64Array {
    return this.data.subarray(0, this.size);
  }
}
