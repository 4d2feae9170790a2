import { describe, expect, it } from 'vitest';
import { findAnchor, MAX_ANCHOR_WINDOW_NS, type ClockSources } from './clock.js';

/**
 * A simulated pair of clocks: true time advances `stepNs` per reading; the wall clock shows whole ms
 * of true time; `stallAtReading` makes true time jump (the thread was preempted) at one reading.
 */
function simulated(startNs: bigint, stepNs: bigint, stalls: ReadonlyMap<number, bigint> = new Map()): ClockSources & { trueNs(): bigint } {
  let t = startNs;
  let readings = 0;
  const advance = (): void => {
    t += stepNs + (stalls.get(readings) ?? 0n);
    readings++;
  };
  return {
    trueNs: () => t,
    // Monotonic and true time are the same clock here, offset by nothing: the anchor must map
    // mono → wall with wall = true time.
    monoNs: () => {
      advance();
      return t;
    },
    wallMs: () => {
      advance();
      return Number(t / 1_000_000n);
    },
  };
}

/** Error of the anchor: what it says the wall clock read at its monotonic instant, minus the truth. */
const errorNs = (a: { wallUs: number; monoNs: bigint }): bigint => BigInt(a.wallUs) * 1000n - a.monoNs;

describe('findAnchor', () => {
  it('locates the millisecond tick to within the reading window', () => {
    const src = simulated(5_000_000_123_456n, 300n);
    const a = findAnchor(src);
    expect(Number(errorNs(a))).toBeLessThanOrEqual(Number(MAX_ANCHOR_WINDOW_NS));
    expect(Math.abs(Number(errorNs(a)))).toBeLessThan(2_000);
  });

  it('rejects a tick observed across a preemption and uses the next one', () => {
    // Readings go 300 ns apart; the thread stalls 10 ms right after the Date read that first shows
    // the new millisecond, which the old anchoring took as the moment of the tick (10 ms off).
    for (let stallAt = 0; stallAt < 40; stallAt++) {
      const src = simulated(5_000_000_999_000n, 300n, new Map([[stallAt, 10_000_000n]]));
      const a = findAnchor(src);
      expect(Math.abs(Number(errorNs(a))), `stall at reading ${stallAt}`).toBeLessThan(2_000);
    }
  });

  it('settles for the narrowest window when every tick is stretched', () => {
    // Each reading takes 0.4 ms: windows are always ~1 ms; the anchor is still within one.
    const src = simulated(7_000_000_000_000n, 400_000n);
    const a = findAnchor(src);
    expect(Math.abs(Number(errorNs(a)))).toBeLessThanOrEqual(1_200_000);
  });
});
