import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExpiryHeap } from './expiryHeap.js';

describe('ExpiryHeap', () => {
  it('gives back every key, earliest slot first, whatever the order of pushes and pops', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const heap = new ExpiryHeap();
        const held: { slot: number; key: string }[] = [];
        ops.forEach((op, i) => {
          if (op >= 0) {
            heap.push(op, `k${i}`);
            held.push({ slot: op, key: `k${i}` });
          } else if (held.length > 0) {
            const earliest = Math.min(...held.map((h) => h.slot));
            expect(heap.peekSlot()).toBe(earliest);
            const key = heap.pop();
            const at = held.findIndex((h) => h.key === key);
            expect(held[at]!.slot).toBe(earliest);
            held.splice(at, 1);
          }
          expect(heap.size).toBe(held.length);
        });
        expect(heap.peekSlot()).toBe(held.length === 0 ? Infinity : Math.min(...held.map((h) => h.slot)));
      }),
    );
  });
});
