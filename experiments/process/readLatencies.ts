/**
 * Reads latency logs into compact columns: one Float64Array of latencies, plus what throughput
 * needs (the measured interval and commands completed per wall-clock second), never the lines.
 */
import { forEachLine } from './forEachLine.js';
import { GrowableFloat64Array } from './growableFloat64Array.js';
import { parseLatencyLine } from './latencyLine.js';
import { PerSecondCounter } from './throughput.js';

export interface LatencyData {
  /** Every well-formed line's latency, in file order. */
  readonly latenciesUs: Float64Array;
  readonly malformedLines: number;
  /** Earliest command start (completion − latency) over all files; +Infinity when there are none. */
  readonly firstStartWallUs: number;
  /** Latest completion over all files; −Infinity when there are none. */
  readonly lastCompletionWallUs: number;
  /** Commands completed in each wall-clock second (key: ⌊completion µs / 1e6⌋). */
  readonly completionsPerSecond: ReadonlyMap<number, number>;
}

export async function readLatencyLogs(paths: readonly string[]): Promise<LatencyData> {
  const latenciesUs = new GrowableFloat64Array();
  const completions = new PerSecondCounter();
  let malformedLines = 0;
  let firstStartWallUs = Number.POSITIVE_INFINITY;
  let lastCompletionWallUs = Number.NEGATIVE_INFINITY;

  const onLine = (line: string): void => {
    const parsed = parseLatencyLine(line);
    if (parsed === undefined) {
      // Blank lines (a trailing newline, a hand-edited file) are not worth a warning.
      if (line.trim() !== '') malformedLines++;
      return;
    }
    const { completionWallUs, latencyUs } = parsed;
    latenciesUs.push(latencyUs);
    firstStartWallUs = Math.min(firstStartWallUs, completionWallUs - latencyUs);
    lastCompletionWallUs = Math.max(lastCompletionWallUs, completionWallUs);
    completions.add(completionWallUs);
  };

  // One file at a time: interleaving would not be faster on one disk, and keeps memory flat.
  for (const path of paths) {
    // Not `malformedLines += await …`: that would read the count before onLine adds to it.
    const overlongLines = await forEachLine(path, onLine);
    malformedLines += overlongLines;
  }
  return {
    latenciesUs: latenciesUs.view(),
    malformedLines,
    firstStartWallUs,
    lastCompletionWallUs,
    completionsPerSecond: completions.counts(),
  };
}
