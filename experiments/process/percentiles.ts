/**
 * Latency percentiles by the nearest-rank rule of Pompe-HS process.py: sort ascending and take
 * lat[int(n * p)], so figures stay comparable with results produced by the old script.
 */

/** The value at rank ⌊n·p⌋ of an ascending array, clamped to the last element (p = 1 would overrun). */
export function nearestRank(sortedAscending: ArrayLike<number>, p: number): number {
  const n = sortedAscending.length;
  if (n === 0) throw new RangeError('nearestRank of an empty array');
  // Math.floor of the same double product as Python's int(n*p), so ranks match process.py exactly.
  return sortedAscending[Math.min(n - 1, Math.floor(n * p))] as number;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly averageUs: number;
  readonly minUs: number;
  readonly maxUs: number;
}

/** Sorts `latenciesUs` in place (the caller reuses the order for the CDF); undefined when empty. */
export function summarizeLatencies(latenciesUs: Float64Array): LatencySummary | undefined {
  const count = latenciesUs.length;
  if (count === 0) return undefined;
  latenciesUs.sort();
  let sumUs = 0;
  for (let i = 0; i < count; i++) sumUs += latenciesUs[i] as number;
  return {
    count,
    p50Us: nearestRank(latenciesUs, 0.5),
    p90Us: nearestRank(latenciesUs, 0.9),
    p99Us: nearestRank(latenciesUs, 0.99),
    averageUs: sumUs / count,
    minUs: latenciesUs[0] as number,
    maxUs: latenciesUs[count - 1] as number,
  };
}
