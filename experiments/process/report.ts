/**
 * The process script's output: the Pompe-HS text block (kept byte-compatible so scripts that grep
 * it keep working) followed by our additions, or the same facts as JSON.
 */
import type { IntegrityReport } from './integrity.js';
import type { FairnessReport } from './linearizability.js';
import type { LogKind } from './logFiles.js';
import type { LatencySummary } from './percentiles.js';
import type { Throughput } from './throughput.js';

export interface FairnessSummary extends FairnessReport {
  readonly integrity: IntegrityReport;
  readonly files: readonly string[];
  readonly malformedLines: number;
}

export interface ProcessSummary {
  readonly kind: LogKind;
  readonly dir: string;
  /** Names of the latency log files read. */
  readonly files: readonly string[];
  readonly malformedLines: number;
  /** undefined when no well-formed line was found. */
  readonly latency: LatencySummary | undefined;
  readonly throughput: Throughput | undefined;
  /** undefined when the directory holds no detail logs. */
  readonly fairness: FairnessSummary | undefined;
  readonly plotPath: string | undefined;
}

/** Every latency is printed in ms with this many decimals (µs resolution, as the logs have). */
const MS_DECIMALS = 3;

const ms = (us: number): string => (us / 1000).toFixed(MS_DECIMALS);

export function formatText(s: ProcessSummary): string {
  const lines = [`Total: ${s.latency?.count ?? 0}  transactions`];
  if (s.latency !== undefined) {
    lines.push(
      `50%:  ${ms(s.latency.p50Us)}`,
      `90%:  ${ms(s.latency.p90Us)}`,
      `99%:  ${ms(s.latency.p99Us)}`,
      `Average:  ${ms(s.latency.averageUs)}`,
    );
  }
  const t = s.throughput;
  if (t !== undefined) {
    const rate = t.commandsPerSecond === undefined ? 'n/a' : t.commandsPerSecond.toFixed(1);
    lines.push(`Throughput: ${rate}  commands/s over ${t.intervalSeconds.toFixed(3)} s`);
  }
  lines.push(`Files: ${s.files.length}`);
  if (s.fairness !== undefined) {
    const g = s.fairness.integrity;
    const outcomes = Object.entries(g.outcomes)
      .filter(([, count]) => count > 0)
      .map(([outcome, count]) => `${outcome} ${count}`)
      .join(', ');
    lines.push(
      `Linearizability violations: ${s.fairness.linearizabilityViolations}  (commands checked: ${s.fairness.commandsChecked})`,
      `Timestamp order violations: ${s.fairness.timestampOrderViolations}`,
      `Detail lines: ${g.lines} from ${g.clients} clients  (${outcomes === '' ? 'none' : outcomes})`,
      `Lost after ordering: ${g.lostAfterOrdering}  Executed twice: ${g.executedTwice}  Position collisions: ${g.positionCollisions}`,
      `Missing lines: ${g.missingLines}  Duplicate lines: ${g.duplicateLines}  Batch mismatches: ${g.batchMismatches}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Latencies in ms rounded to ns, so the JSON shows 2.481 rather than float noise. */
const jsonMs = (us: number): number => Math.round(us * 1000) / 1e6;

export function formatJson(s: ProcessSummary): string {
  const l = s.latency;
  const json = {
    kind: s.kind,
    dir: s.dir,
    files: s.files,
    total: l?.count ?? 0,
    malformedLines: s.malformedLines,
    latencyMs:
      l === undefined
        ? null
        : { p50: jsonMs(l.p50Us), p90: jsonMs(l.p90Us), p99: jsonMs(l.p99Us), average: jsonMs(l.averageUs), min: jsonMs(l.minUs), max: jsonMs(l.maxUs) },
    throughput:
      s.throughput === undefined
        ? null
        : { ...s.throughput, commandsPerSecond: s.throughput.commandsPerSecond ?? null },
    fairness: s.fairness ?? null,
    plot: s.plotPath ?? null,
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}
