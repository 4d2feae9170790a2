/**
 * Throughput over the measured interval: from the earliest command start (completion − latency) to
 * the latest completion across all files. Pompe-HS printed no throughput and users divided Total by
 * the nominal run time, which also counts the clients' start-up delay.
 */

export interface Throughput {
  /** undefined when the interval is empty (e.g. one command of zero latency): no division by zero. */
  readonly commandsPerSecond: number | undefined;
  readonly intervalSeconds: number;
  readonly firstStartWallUs: number;
  readonly lastCompletionWallUs: number;
}

export function measureThroughput(commands: number, firstStartWallUs: number, lastCompletionWallUs: number): Throughput | undefined {
  if (commands === 0) return undefined;
  const intervalSeconds = (lastCompletionWallUs - firstStartWallUs) / 1e6;
  return {
    commandsPerSecond: intervalSeconds > 0 ? commands / intervalSeconds : undefined,
    intervalSeconds,
    firstStartWallUs,
    lastCompletionWallUs,
  };
}

/** Counts events per wall-clock second (key: ⌊µs / 1e6⌋). */
export class PerSecondCounter {
  private readonly bySecond = new Map<number, number>();
  // Consecutive log lines mostly complete in the same second, so count there and touch the map
  // only when the second changes: a map update per line was a visible share of the script's time.
  private second = Number.NaN;
  private count = 0;

  add(wallUs: number): void {
    const second = Math.floor(wallUs / 1e6);
    if (second !== this.second) {
      this.settle();
      this.second = second;
    }
    this.count++;
  }

  counts(): ReadonlyMap<number, number> {
    this.settle();
    return this.bySecond;
  }

  private settle(): void {
    if (this.count === 0) return;
    this.bySecond.set(this.second, (this.bySecond.get(this.second) ?? 0) + this.count);
    this.count = 0;
  }
}

export interface ThroughputPoint {
  /** Seconds since the first second in which a command completed. */
  readonly second: number;
  readonly commands: number;
}

/** Above this many seconds, gaps are not filled with zeros: a bogus timestamp must not allocate years. */
const MAX_FILLED_SECONDS = 100_000;

/** Commands completed per second, in time order, with idle seconds shown as 0. */
export function throughputSeries(completionsPerSecond: ReadonlyMap<number, number>): ThroughputPoint[] {
  const seconds = [...completionsPerSecond.keys()].sort((a, b) => a - b);
  const first = seconds[0];
  const last = seconds[seconds.length - 1];
  if (first === undefined || last === undefined) return [];
  const filled = last - first < MAX_FILLED_SECONDS ? Array.from({ length: last - first + 1 }, (_, i) => first + i) : seconds;
  return filled.map((s) => ({ second: s - first, commands: completionsPerSecond.get(s) ?? 0 }));
}
