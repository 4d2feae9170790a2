/**
 * Slot arithmetic: every part of the system computes slots and the sealed frontier the same way.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROTOCOL } from '../common/config.js';
import type { Slot } from '../common/ids.js';
import { SlotClock } from './slots.js';

const GENESIS = 1_000_000;
const SLOT = 5_000;
const DELTA = 10_000;
const clock = new SlotClock({ ...DEFAULT_PROTOCOL, genesisUs: GENESIS, slotUs: SLOT, deltaUs: DELTA });

describe('SlotClock', () => {
  it.each([
    [GENESIS - 1, 0],
    [0, 0],
    [GENESIS, 0],
    [GENESIS + SLOT - 1, 0],
    [GENESIS + SLOT, 1],
    [GENESIS + 7 * SLOT + 123, 7],
  ])('slotOf(%i) = %i', (ts, slot) => {
    expect(clock.slotOf(ts)).toBe(slot);
  });

  it('gives the first timestamp at the start of slot 1 (slot 0 belongs to the genesis block)', () => {
    expect(clock.firstTimestampUs).toBe(GENESIS + SLOT);
    expect(clock.slotOf(clock.firstTimestampUs)).toBe(1);
  });

  it.each([
    // [now, frontier]: a slot is sealed once it ended at least Δ ago.
    [0, 0],
    [GENESIS + SLOT + DELTA - 1, 0],
    [GENESIS + 2 * SLOT + DELTA - 1, 0],
    [GENESIS + 2 * SLOT + DELTA, 1],
    [GENESIS + 10 * SLOT + DELTA, 9],
    [GENESIS + 10 * SLOT + DELTA + SLOT - 1, 9],
  ])('at clock %i the frontier is slot %i', (now, frontier) => {
    expect(clock.clockFrontier(now)).toBe(frontier);
  });

  it('reaches each slot exactly at its seal time (its end plus Δ)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (s) => {
        const slot = s as Slot;
        expect(clock.clockFrontier(clock.sealTimeUs(slot))).toBe(slot);
        expect(clock.clockFrontier(clock.sealTimeUs(slot) - 1)).toBe(slot - 1);
      }),
    );
  });

  it('never counts a timestamp at or after now − Δ as sealed, and never moves back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.nat(DELTA * 3), (now, later, back) => {
        const frontier = clock.clockFrontier(now);
        const ts = Math.max(GENESIS, now - DELTA + back);
        if (now - DELTA + back >= GENESIS) expect(clock.slotOf(ts)).toBeGreaterThan(frontier);
        expect(clock.clockFrontier(now + later)).toBeGreaterThanOrEqual(frontier);
      }),
    );
  });
});
