/**
 * A FIFO of encoded frames with byte accounting: the per-link send queue. Frames are shared, not
 * copied (a broadcast puts the same bytes in every peer's queue), and never modified.
 */
export class FrameQueue {
  private items: Uint8Array[] = [];
  private head = 0;
  private byteCount = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  push(frame: Uint8Array): void {
    this.items.push(frame);
    this.byteCount += frame.length;
  }

  /** Puts `frames` back in front, in their order (frames a closed connection never wrote). */
  unshiftAll(frames: readonly Uint8Array[]): void {
    if (frames.length === 0) return;
    this.items = [...frames, ...this.items.slice(this.head)];
    this.head = 0;
    for (const f of frames) this.byteCount += f.length;
  }

  peek(): Uint8Array | undefined {
    return this.items[this.head];
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
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
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
    this.head = 0;
    this.byteCount = 0;
    return dropped;
  }
}

const EMPTY = new Uint8Array(0);
