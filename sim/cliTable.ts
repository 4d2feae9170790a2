/**
 * The simulator CLI's summaries: per-group statistics, the block line printed every `--block` runs,
 * and the final table. Layers with an ordering summary (the full layer) get its columns too: the
 * fairness summary of THREATS.md "What the run summary shows".
 */
import type { OrderingOutcome, SeedOutcome } from './simLayers.js';

export class Stats {
  runs = 0;
  violations = 0;
  rateSum = 0;
  rateMin = Infinity;
  faults = 0;
  rejected = 0;
  runMs = 0;
  firstSeed = -1;
  lastSeed = -1;
  /** Sums (or maxima, where named so) of the ordering summaries; null when the layer has none. */
  ordering: {
    runs: number;
    batches: number;
    commands: number;
    linearizability: number;
    overlapping: number;
    inversions: number;
    late: number;
    early: number;
    busy: number;
    timeouts: number;
    maxShiftUs: number;
    execP50SumUs: number;
  } | null = null;

  add(r: SeedOutcome): void {
    if (this.runs === 0) this.firstSeed = r.seed;
    this.lastSeed = r.seed;
    this.runs++;
    if (r.violations.length > 0) this.violations++;
    this.rateSum += r.commitsPerSecond;
    this.rateMin = Math.min(this.rateMin, r.commitsPerSecond);
    for (const k of Object.values(r.faultsReported)) this.faults += k;
    this.rejected += r.rejectedFrames;
    this.runMs += r.realMs;
    if (r.ordering !== undefined) this.addOrdering(r.ordering);
  }

  private addOrdering(o: OrderingOutcome): void {
    const s = (this.ordering ??= {
      runs: 0, batches: 0, commands: 0, linearizability: 0, overlapping: 0, inversions: 0,
      late: 0, early: 0, busy: 0, timeouts: 0, maxShiftUs: 0, execP50SumUs: 0,
    });
    s.runs++;
    s.batches += o.batchesExecuted;
    s.commands += o.commandsExecuted;
    s.linearizability += o.linearizabilityViolations;
    s.overlapping += o.overlappingPairs;
    s.inversions += o.overlappingInversions;
    s.late += o.late;
    s.early += o.early;
    s.busy += o.busy;
    s.timeouts += o.timeouts;
    s.maxShiftUs = Math.max(s.maxShiftUs, o.maxMedianShiftUs);
    s.execP50SumUs += o.execLatencyP50Us;
  }

  get rateMean(): number {
    return this.runs === 0 ? 0 : this.rateSum / this.runs;
  }
}

export const fixed = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function blockLine(label: string, s: Stats): string {
  const o = s.ordering;
  return (
    `[${label}] seeds ${s.firstSeed}..${s.lastSeed}: ${s.runs} runs, ${s.violations} violations, ` +
    `commits/s mean ${fixed(s.rateMean)} min ${fixed(s.rateMin)}, faults reported ${s.faults}, ` +
    `rejected frames ${s.rejected}, ` +
    (o === null
      ? ''
      : `executed ${o.batches} batches / ${o.commands} commands, linearizability violations ${o.linearizability}, ` +
        `inversions ${o.inversions}/${o.overlapping} overlapping, late/early/busy ${o.late}/${o.early}/${o.busy}, ` +
        `timeouts ${o.timeouts}, max median shift ${fixed(o.maxShiftUs / 1000)} ms, `) +
    `${fixed(s.runMs / 1000)} s`
  );
}

/** One run's ordering summary, for verbose output and failure reports. */
export function orderingLine(o: OrderingOutcome): string {
  return (
    `executed ${o.batchesExecuted} batches / ${o.commandsExecuted} commands (${o.duplicateCommands} duplicates skipped), ` +
    `linearizability violations ${o.linearizabilityViolations}, inversions ${o.overlappingInversions}/${o.overlappingPairs} overlapping, ` +
    `late/early/busy ${o.late}/${o.early}/${o.busy}, timeouts ${o.timeouts}, max view ${o.maxView}, ` +
    `max median shift ${fixed(o.maxMedianShiftUs / 1000)} ms, exec p50 ${fixed(o.execLatencyP50Us / 1000)} ms, ` +
    `checkpoints ${o.checkpointsTaken} (restores ${o.restores}, installs ${o.installs})` +
    (o.floodBatches > 0 ? `, flood ${o.floodBatches} batches (pending max ${o.maxPendingBatches})` : '')
  );
}

export function table(groups: ReadonlyMap<string, Stats>, wallMs: number, workers: number): string {
  const withOrdering = [...groups.values()].some((s) => s.ordering !== null);
  const header = ['', 'runs', 'violations', 'commits/s mean', 'commits/s min'];
  if (withOrdering) header.push('exec batches', 'exec cmds', 'lin. viol.', 'inversions/overlap', 'late', 'early', 'busy', 'timeouts', 'max shift ms', 'exec p50 ms');
  header.push('faults reported', 'rejected frames', 'run time s');
  const rows = [...groups].map(([label, s]) => {
    const row = [label, String(s.runs), String(s.violations), fixed(s.rateMean), fixed(s.rateMin)];
    if (withOrdering) {
      const o = s.ordering;
      row.push(
        ...(o === null
          ? Array<string>(10).fill('-')
          : [
              String(o.batches), String(o.commands), String(o.linearizability), `${o.inversions}/${o.overlapping}`,
              String(o.late), String(o.early), String(o.busy), String(o.timeouts), fixed(o.maxShiftUs / 1000), fixed(o.execP50SumUs / o.runs / 1000),
            ]),
      );
    }
    row.push(String(s.faults), String(s.rejected), fixed(s.runMs / 1000));
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const all = [...groups.values()];
  const total = (f: (s: Stats) => number): number => all.reduce((sum, s) => sum + f(s), 0);
  return [
    line(header),
    ...rows.map(line),
    `total: ${total((s) => s.runs)} runs, ${total((s) => s.violations)} violations, ${total((s) => s.faults)} faults reported, ` +
      `${total((s) => s.rejected)} rejected frames; run time ${fixed(total((s) => s.runMs) / 1000)} s, ` +
      `wall clock ${fixed(wallMs / 1000)} s on ${Math.max(workers, 1)} ${workers === 0 ? 'thread (inline)' : 'worker(s)'}`,
  ].join('\n');
}
