/**
 * Replica-side latency of each batch through this replica, phase by phase:
 *
 *   stamp (this replica sent its timestamp) → ack (its sequencing ack) → commit (the block
 *   carrying the batch committed here) → execute (executed here)
 *
 * plus stamp → execute in all. Measured on this replica's clock from the step outputs the driver
 * already sees (tsReply and ack messages, commits, execution records), so the cores need no timer.
 * A batch this replica did not stamp or ack (it was down, or the collector used other replicas)
 * still counts in the phases it did see. Batches of this replica's own gateway are not seen (their
 * stamp and ack never leave as messages).
 *
 * Each phase is a histogram with fixed buckets, kept twice: cumulative (exported to Prometheus as
 * pompe_batch_phase_seconds) and over the last RECENT_WINDOW_SAMPLES rate samples (one a second,
 * for /status and the dashboard, where "since start" would hide what is happening now).
 */
import type { Histogram } from 'prom-client';

/** Bucket upper bounds, seconds: a healthy loopback phase takes 1–30 ms, a loaded one 100s of
 *  ms, a view change around the view timeout (0.5 s by default), an outage seconds. */
export const PHASE_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10] as const;

export const PHASES = ['stamp_to_ack', 'ack_to_commit', 'commit_to_execute', 'stamp_to_execute'] as const;
export type Phase = (typeof PHASES)[number];

/** Batches whose stamp or ack time is remembered until they execute. A batch that never executes
 *  (never sequenced, or sequenced elsewhere after a restart) is forgotten oldest first; 64 Ki is
 *  minutes of batches at peak load, far beyond a batch's lifetime. */
export const MAX_TRACKED_BATCHES = 65_536;
/** Blocks whose commit time is remembered until their batches execute (execution waits at most
 *  for missing bytes; 4096 blocks is tens of seconds at the busiest). */
export const MAX_TRACKED_BLOCKS = 4_096;
/** The "recent" histograms cover this many rate samples (10 s at one a second). */
export const RECENT_WINDOW_SAMPLES = 10;

export interface PhaseSummary {
  readonly count: number;
  /** Estimated from the buckets (linear within a bucket); null with no observation. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Observations per bucket (not cumulative), bucket i ≤ bucketsMs[i], the last one above all. */
  readonly counts: readonly number[];
}

export interface PhaseLatencyJson {
  readonly windowSeconds: number;
  readonly bucketsMs: readonly number[];
  /** Over the last windowSeconds. */
  readonly recent: Readonly<Record<Phase, PhaseSummary>>;
  /** Since this process started. */
  readonly total: Readonly<Record<Phase, PhaseSummary>>;
}

type Counts = Record<Phase, number[]>;

const BUCKETS = PHASE_BUCKETS_S.length + 1;
const emptyCounts = (): Counts => Object.fromEntries(PHASES.map((p) => [p, new Array<number>(BUCKETS).fill(0)])) as Counts;

/** Insertion-ordered map that forgets its oldest entry past `limit`. */
class BoundedTimes<K> {
  private readonly map = new Map<K, number>();

  constructor(private readonly limit: number) {}

  /** Remembers the first time only (a re-sent reply is not a new stamp); true if it was new. */
  set(key: K, us: number): boolean {
    if (this.map.has(key)) return false;
    if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value as K);
    this.map.set(key, us);
    return true;
  }

  take(key: K): number | undefined {
    const us = this.map.get(key);
    this.map.delete(key);
    return us;
  }

  get(key: K): number | undefined {
    return this.map.get(key);
  }

  get size(): number {
    return this.map.size;
  }
}

export class PhaseLatency {
  private readonly stamped = new BoundedTimes<string>(MAX_TRACKED_BATCHES);
  private readonly acked = new BoundedTimes<string>(MAX_TRACKED_BATCHES);
  private readonly committed = new BoundedTimes<number>(MAX_TRACKED_BLOCKS);
  private readonly total: Counts = emptyCounts();
  /** Snapshots of `total` at the last samples, oldest first. */
  private readonly snapshots: Counts[] = [];

  constructor(private readonly histogram: Histogram<'phase'> | null = null) {}

  stamp(digestHex: string, nowUs: number): void {
    this.stamped.set(digestHex, nowUs);
  }

  ack(digestHex: string, nowUs: number): void {
    if (!this.acked.set(digestHex, nowUs)) return;
    const stampUs = this.stamped.get(digestHex);
    if (stampUs !== undefined) this.observe('stamp_to_ack', nowUs - stampUs);
  }

  commit(height: number, nowUs: number): void {
    this.committed.set(height, nowUs);
  }

  execute(digestHex: string, blockHeight: number, nowUs: number): void {
    const stampUs = this.stamped.take(digestHex);
    const ackUs = this.acked.take(digestHex);
    const commitUs = this.committed.get(blockHeight);
    if (ackUs !== undefined && commitUs !== undefined) this.observe('ack_to_commit', commitUs - ackUs);
    if (commitUs !== undefined) this.observe('commit_to_execute', nowUs - commitUs);
    if (stampUs !== undefined) this.observe('stamp_to_execute', nowUs - stampUs);
  }

  /** Once a second (with the rate sampler): moves the recent window on. */
  sample(): void {
    this.snapshots.push(Object.fromEntries(PHASES.map((p) => [p, [...this.total[p]]])) as Counts);
    if (this.snapshots.length > RECENT_WINDOW_SAMPLES) this.snapshots.shift();
  }

  /** Batches and blocks whose times are held (for tests and /status). */
  get tracked(): { readonly batches: number; readonly blocks: number } {
    return { batches: Math.max(this.stamped.size, this.acked.size), blocks: this.committed.size };
  }

  toJson(): PhaseLatencyJson {
    const base = this.snapshots[0];
    const summary = (counts: Counts, minus: Counts | undefined): Record<Phase, PhaseSummary> =>
      Object.fromEntries(PHASES.map((p) => [p, summarize(counts[p].map((c, i) => c - (minus?.[p][i] ?? 0)))])) as Record<Phase, PhaseSummary>;
    return {
      windowSeconds: RECENT_WINDOW_SAMPLES,
      bucketsMs: PHASE_BUCKETS_S.map((s) => s * 1000),
      recent: summary(this.total, base),
      total: summary(this.total, undefined),
    };
  }

  private observe(phase: Phase, us: number): void {
    const seconds = Math.max(0, us) / 1e6;
    let i = 0;
    while (i < PHASE_BUCKETS_S.length && seconds > PHASE_BUCKETS_S[i]!) i++;
    this.total[phase][i]!++;
    this.histogram?.labels(phase).observe(seconds);
  }
}

function summarize(counts: readonly number[]): PhaseSummary {
  const count = counts.reduce((a, b) => a + b, 0);
  return { count, p50Ms: quantileMs(counts, count, 0.5), p99Ms: quantileMs(counts, count, 0.99), counts };
}

/** The q-quantile from bucket counts, interpolated linearly inside its bucket (as Prometheus's
 *  histogram_quantile does); the open last bucket reports its lower bound. */
export function quantileMs(counts: readonly number[], count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = q * count;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (seen + c >= rank && c > 0) {
      const lowS = i === 0 ? 0 : PHASE_BUCKETS_S[i - 1]!;
      if (i >= PHASE_BUCKETS_S.length) return lowS * 1000;
      const highS = PHASE_BUCKETS_S[i]!;
      return round3((lowS + ((highS - lowS) * (rank - seen)) / c) * 1000);
    }
    seen += c;
  }
  return round3(PHASE_BUCKETS_S[PHASE_BUCKETS_S.length - 1]! * 1000);
}

const round3 = (ms: number): number => Math.round(ms * 1000) / 1000;
