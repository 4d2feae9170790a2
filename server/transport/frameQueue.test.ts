import { describe, expect, it } from 'vitest';
import { FrameQueue } from './frameQueue.js';

const frame = (n: number, size = 3): Uint8Array => new Uint8Array(size).fill(n);

describe('FrameQueue', () => {
  it('is FIFO with byte accounting across many pushes and shifts (compaction included)', () => {
    const q = new FrameQueue();
    for (let i = 0; i < 5000; i++) q.push(frame(i % 256, 1 + (i % 7)));
    let bytes = q.bytes;
    for (let i = 0; i < 4000; i++) {
      const f = q.shift()!;
      expect(f[0]).toBe(i % 256);
      bytes -= f.length;
      expect(q.bytes).toBe(bytes);
    }
    expect(q.length).toBe(1000);
    expect(q.peek()![0]).toBe(4000 % 256);
  });

  it("puts another queue's frames back in front, in their order and with their times, and empties", () => {
    const q = new FrameQueue();
    q.push(frame(3), 30);
    q.push(frame(4), 40);
    expect(q.shift()![0]).toBe(3);
    const written = new FrameQueue();
    written.push(frame(1), 10);
    written.push(frame(2), 20);
    q.prependAll(written);
    expect(written.length).toBe(0);
    expect(q.bytes).toBe(9);
    expect(q.peekQueuedAtMs()).toBe(10);
    q.shift();
    expect(q.peekQueuedAtMs()).toBe(20);
    expect(q.takeAll().map((f) => f[0])).toEqual([2, 4]);
    expect(q.peekQueuedAtMs()).toBeUndefined();
    expect(q.length).toBe(0);
    expect(q.bytes).toBe(0);
    expect(q.shift()).toBeUndefined();
    q.push(frame(9, 10));
    expect(q.clear()).toBe(1);
    expect(q.bytes).toBe(0);
  });
});
