/**
 * The benchmark's counters and latency histograms (hdr-histogram-js, µs, 3 significant digits),
 * and the summary it prints at the end: counts and rates over the measured interval, order and
 * exec percentiles, the protocol's trouble counters and, as Pompe-HS does, how many entries each
 * client's logs got.
 */
import * as hdr from 'hdr-histogram-js';

/** Latencies above this (µs) are clamped: a minute is far beyond any batch's lifetime default. */
const HIGHEST_TRACKABLE_US = 120_000_000;

export function newLatencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_TRACKABLE_US, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

export function recordLatency(h: hdr.Histogram, latencyUs: number, count = 1): void {
  const v = Math.min(HIGHEST_TRACKABLE_US, Math.max(1, Math.round(latencyUs)));
  if (count === 1) h.recordValue(v);
  else h.recordValueWithCount(v, count);
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

export function summarizeHistogram(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    meanMs: h.totalCount === 0 ? 0 : ms(h.mean),
    maxMs: ms(h.maxValue),
  };
}

export interface ClientLogCounts {
  readonly index: number;
  readonly orderLines: number;
  readonly execLines: number;
  readonly detailLines: number;
}

export interface BenchSummary {
  readonly clients: number;
  readonly mode: 'direct' | 'gateway';
  readonly sockets: 'shared' | 'per-client';
  readonly batchSize: number;
  readonly loop: string;
  readonly measuredSeconds: number;
  readonly warmupSeconds: number;
  /** Open loop: commands the schedule created for the measured interval (the offered load,
   *  whether or not the cluster kept up); closed loop: commands submitted in it. */
  readonly offered: number;
  /** Commands ordered / executed within the measured interval, and per second over it. */
  readonly ordered: number;
  readonly executed: number;
  readonly orderedPerSecond: number;
  readonly executedPerSecond: number;
  /** Measured commands that completed after the interval, while draining. */
  readonly drainedExecuted: number;
  /** Measured commands not executed when the run ended (still in flight, abandoned). */
  readonly unfinished: number;
  readonly orderLatency: LatencySummary;
  readonly execLatency: LatencySummary;
  readonly restarts: number;
  readonly resends: number;
  /** Direct clients' congestion windows (batches in flight): halvings in all, the smallest limit
   *  any reached, the mean limit at the end; null when the window was fixed. */
  readonly window: { readonly max: number; readonly halvings: number; readonly smallest: number; readonly final: number } | null;
  readonly refusals: Readonly<Record<string, number>>;
  /** Every command of the run, measured or not: created, executed (confirmed by f+1), failed. */
  readonly allCommands: { readonly submitted: number; readonly executed: number; readonly failed: number };
  /** Commands whose batch failed (refused by f+1, expired) or timed out. */
  readonly failedCommands: number;
  readonly timedOutCommands: number;
  readonly duplicateResults: number;
  readonly malformedResults: number;
  /** Commands replicas did not run for their number or deadline (seqTooFar, expired, tooManyClients). */
  readonly notRunResults: number;
  readonly gatewayFailovers: number;
  /** Executed commands whose ordering was never observed: no order line. */
  readonly orderUnobserved: number;
  readonly logBackoffs: number;
  readonly sendBackoffs: number;
  readonly linkDisconnects: number;
  readonly stoppedBy: string;
  /** CPU this process used over the run (user + system), and per executed command: what the
   *  client costs, apart from the cluster. */
  readonly clientCpuSeconds: number;
  readonly clientCpuUsPerCommand: number;
  readonly logs: readonly ClientLogCounts[];
}

const num = (v: number, digits = 0): string => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function latencyLine(name: string, l: LatencySummary): string {
  if (l.count === 0) return `${name} latency: no samples`;
  return `${name} latency (ms): p50 ${l.p50Ms.toFixed(3)}  p90 ${l.p90Ms.toFixed(3)}  p99 ${l.p99Ms.toFixed(3)}  mean ${l.meanMs.toFixed(3)}  max ${l.maxMs.toFixed(3)}`;
}

export function formatSummary(s: BenchSummary): string {
  const refusals = Object.entries(s.refusals);
  const lines = [
    `pompe bench: ${s.clients} client(s), ${s.mode} mode, batch ${s.batchSize}, ${s.loop}, ${s.sockets} sockets; ` +
      `${s.measuredSeconds.toFixed(3)} s measured after ${s.warmupSeconds} s warmup (stopped by ${s.stoppedBy})`,
    `offered:  ${num(s.offered)} commands  ${num(s.measuredSeconds > 0 ? s.offered / s.measuredSeconds : 0, 1)}/s`,
    `ordered:  ${num(s.ordered)} commands  ${num(s.orderedPerSecond, 1)}/s`,
    `executed: ${num(s.executed)} commands  ${num(s.executedPerSecond, 1)}/s` +
      `  (+${num(s.drainedExecuted)} after the interval, ${num(s.unfinished)} unfinished)`,
    latencyLine('order', s.orderLatency),
    latencyLine('exec', s.execLatency),
    `late restarts: ${s.restarts}  resends: ${s.resends}  refusals: ${refusals.length === 0 ? 'none' : refusals.map(([r, c]) => `${r} ${c}`).join(', ')}`,
    ...(s.window === null || s.window.halvings === 0
      ? []
      : [`window: halved ${s.window.halvings} times on late restarts, smallest ${s.window.smallest}, mean ${s.window.final.toFixed(1)} of ${s.window.max} at the end`]),
    `failures: ${num(s.failedCommands)} command(s) (timed out ${num(s.timedOutCommands)})  duplicate results: ${s.duplicateResults}  malformed: ${s.malformedResults}  not run: ${s.notRunResults}` +
      (s.mode === 'gateway' ? `  gateway failovers: ${s.gatewayFailovers}` : ''),
    `ordering not observed: ${num(s.orderUnobserved)} command(s) (no order line; detail outcome executed_unordered)`,
    `backoffs: log ${s.logBackoffs}, send ${s.sendBackoffs}  link drops: ${s.linkDisconnects}`,
    `client cpu: ${s.clientCpuSeconds.toFixed(2)} s (${s.clientCpuUsPerCommand.toFixed(2)} µs per executed command)`,
  ];
  for (const c of s.logs) {
    lines.push(`client${c.index}: ${c.orderLines} order entries, ${c.execLines} exec entries, ${c.detailLines} detail entries`);
  }
  return `${lines.join('\n')}\n`;
}
