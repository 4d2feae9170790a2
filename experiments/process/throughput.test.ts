import { describe, expect, it } from 'vitest';
import { measureThroughput, PerSecondCounter, throughputSeries } from './throughput.js';

describe('throughput', () => {
  it('divides commands by the interval from first start to last completion', () => {
    expect(measureThroughput(500, 1_000_000, 3_000_000)).toEqual({
      commandsPerSecond: 250,
      intervalSeconds: 2,
      firstStartWallUs: 1_000_000,
      lastCompletionWallUs: 3_000_000,
    });
  });

  it('never divides by zero', () => {
    expect(measureThroughput(0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)).toBeUndefined();
    expect(measureThroughput(1, 5, 5)?.commandsPerSecond).toBeUndefined();
  });

  it('counts completions per second, in any order, and shows idle seconds as zero', () => {
    const counter = new PerSecondCounter();
    for (const wallUs of [10_000_000, 10_500_000, 13_200_000, 10_999_999, 13_000_000]) counter.add(wallUs);
    expect(throughputSeries(counter.counts())).toEqual([
      { second: 0, commands: 3 },
      { second: 1, commands: 0 },
      { second: 2, commands: 0 },
      { second: 3, commands: 2 },
    ]);
    expect(throughputSeries(new PerSecondCounter().counts())).toEqual([]);
  });
});
