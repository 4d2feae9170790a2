/**
 * A FIFO of encoded frames with byte accounting: the per-link send queue. Frames are shared, not
 * copied (a broadcast puts the same bytes in every peer's queue), and never modified. Each frame
 * keeps the time it was queued (the caller's clock), so a link can shed what has grown stale.
 */
export class FrameQueue {
  private items: Uint8Array[] = [];
  /** When each frame was queued, parallel to `items`. */
  private times: number[] = [];
  private head = 0;
  private byteCount = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  push(frame: Uint8Array, queuedAtMs = 0): void {
    this.items.push(frame);
    this.times.push(queuedAtMs);
    this.byteCount += frame.length;
  }

  /** Moves every frame of `other` in front of this queue's, in their order, with their times
   *  (frames a closed connection never wrote go back before those still waiting). */
  prependAll(other: FrameQueue): void {
    if (other.length === 0) return;
    const bytes = other.bytes;
    this.items = [...other.items.slice(other.head), ...this.items.slice(this.head)];
    this.times = [...other.times.slice(other.head), ...this.times.slice(this.head)];
    this.head = 0;
    this.byteCount += bytes;
    other.clear();
  }

  peek(): Uint8Array | undefined {
    return this.items[this.head];
  }

  /** When the oldest frame was queued. */
  peekQueuedAtMs(): number | undefined {
    return this.head < this.items.length ? this.times[this.head] : undefined;
  }

  shift(): Uint8Array | undefined {
    if (this.head >= this.items.length) return undefined;
    const frame = this.items[this.head]!;
    this.items[this.head] = EMPTY; // let the frame be collected
    this.head++;
    this.byteCount -= frame.length;
    // Compact once the consumed prefix dominates, so shift stays O(1) amortised.
    if (this.head === this.items.length) {
      this.items = [];
      this.times = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
    return frame;
  }

  /** Empties the queue and returns its frames, oldest first. */
  takeAll(): Uint8Array[] {
    const frames = this.items.slice(this.head);
    this.clear();
    return frames;
  }

  /** Empties the queue; returns how many frames it held. */
  clear(): number {
    const dropped = this.length;
    this.items = [];
    this.times = [];
    this.head = 0;
    this.byteCount = 0;
    return dropped;
  }
}

const EMPTY = new Uint8Array(0);
