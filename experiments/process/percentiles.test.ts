import { describe, expect, it } from 'vitest';
import { nearestRank, summarizeLatencies } from './percentiles.js';

describe('nearestRank (process.py: lat[int(n*p)])', () => {
  it('picks ranks ⌊n·p⌋ on a known set', () => {
    const sorted = Float64Array.from({ length: 10 }, (_, i) => i + 1); // 1..10
    expect(nearestRank(sorted, 0.5)).toBe(6); // lat[5]
    expect(nearestRank(sorted, 0.9)).toBe(10); // lat[9]
    expect(nearestRank(sorted, 0.99)).toBe(10); // lat[int(9.9)] = lat[9]
    expect(nearestRank(sorted, 0)).toBe(1);
  });

  it('clamps p = 1 to the last element rather than reading past the end', () => {
    expect(nearestRank([1, 2, 3], 1)).toBe(3);
    expect(nearestRank([7], 0.99)).toBe(7);
  });

  it('uses the same ranks as Python on a larger set', () => {
    // Python: n = 12345 → int(n*0.5) = 6172, int(n*0.9) = 11110, int(n*0.99) = 12221.
    const sorted = Float64Array.from({ length: 12345 }, (_, i) => i);
    expect([0.5, 0.9, 0.99].map((p) => nearestRank(sorted, p))).toEqual([6172, 11110, 12221]);
  });

  it('refuses an empty array', () => {
    expect(() => nearestRank([], 0.5)).toThrow(RangeError);
  });
});

describe('summarizeLatencies', () => {
  it('sorts in place and reports percentiles, average, min and max', () => {
    const latenciesUs = Float64Array.from([5000, 1000, 4000, 2000, 3000]);
    expect(summarizeLatencies(latenciesUs)).toEqual({
      count: 5, p50Us: 3000, p90Us: 5000, p99Us: 5000, averageUs: 3000, minUs: 1000, maxUs: 5000,
    });
    expect([...latenciesUs]).toEqual([1000, 2000, 3000, 4000, 5000]);
  });

  it('returns undefined for no data instead of dividing by zero', () => {
    expect(summarizeLatencies(new Float64Array(0))).toBeUndefined();
  });
});
