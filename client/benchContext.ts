/**
 * State shared by every client of one benchmark run: the clock, the measured interval, whether new
 * work may start, the counters and histograms the summary is made of, and log backpressure.
 */
import type { Histogram } from 'hdr-histogram-js';
import { newLatencyHistogram } from './benchStats.js';
import { emptyStatusCounts, type StatusCounts } from './results.js';

export interface BenchCounters {
  /** Measured commands created (open loop: by the schedule; closed loop: when submitted). */
  offered: number;
  /** Every command ordered / executed (for the progress line), measured or not. */
  orderedTotal: number;
  executedTotal: number;
  /** Measured commands completed inside the measured interval. */
  orderedInInterval: number;
  executedInInterval: number;
  /** Measured commands executed after the interval ended (draining). */
  drainedExecuted: number;
  failedCommands: number;
  timedOutCommands: number;
  /** Every command created and every one that failed, measured or not (warm-up, the boundary
   *  at the end): with executedTotal, what a no-loss accounting against the replicas needs. */
  submittedTotal: number;
  failedTotal: number;
  logBackoffs: number;
  sendBackoffs: number;
  /** Measured commands whose execution was confirmed without their ordering being observed (the
   *  batch executed under an earlier attempt's ack after a restart): no order line. */
  orderUnobserved: number;
  readonly statuses: StatusCounts;
}

export class BenchContext {
  readonly counters: BenchCounters = {
    offered: 0,
    orderedTotal: 0,
    executedTotal: 0,
    orderedInInterval: 0,
    executedInInterval: 0,
    drainedExecuted: 0,
    failedCommands: 0,
    timedOutCommands: 0,
    submittedTotal: 0,
    failedTotal: 0,
    logBackoffs: 0,
    sendBackoffs: 0,
    orderUnobserved: 0,
    statuses: emptyStatusCounts(),
  };
  readonly orderHistogram: Histogram = newLatencyHistogram();
  readonly execHistogram: Histogram = newLatencyHistogram();
  /** Clients may start new work. */
  running = false;
  /** Set by a client whose log asked to back off; cleared when the log drains. */
  logBlocked = false;
  measureStartUs = Number.POSITIVE_INFINITY;
  measureEndUs = Number.POSITIVE_INFINITY;
  private readonly logWaiters: (() => void)[] = [];

  constructor(readonly clock: () => number) {}

  /** Work submitted in [measureStart, measureEnd) is measured (logged and counted). */
  isMeasured(submitUs: number): boolean {
    return submitUs >= this.measureStartUs && submitUs < this.measureEndUs;
  }

  inInterval(atUs: number): boolean {
    return atUs >= this.measureStartUs && atUs <= this.measureEndUs;
  }

  /** A log returned false: hold new work until `writable` resolves. */
  blockOnLog(writable: Promise<void>): void {
    this.counters.logBackoffs++;
    if (this.logBlocked) return;
    this.logBlocked = true;
    writable.then(
      () => this.unblock(),
      () => this.unblock(),
    );
  }

  /** Runs `fn` once logs accept lines again. */
  whenLogWritable(fn: () => void): void {
    this.logWaiters.push(fn);
  }

  private unblock(): void {
    this.logBlocked = false;
    for (const fn of this.logWaiters.splice(0)) fn();
  }
}
