/**
 * The progress line on a terminal: rewritten in place (\r) once a second with the elapsed time,
 * ordered and executed commands per second over the last second, and what is in flight. Nothing is
 * written when the stream is not a terminal (logs of scripted runs stay clean).
 */
import type { BenchCounters } from './benchContext.js';

export const PROGRESS_INTERVAL_MS = 1_000;

export interface ProgressSource {
  readonly counters: BenchCounters;
  readonly clock: () => number;
  /** What is in flight, already formatted ("16 batches", "4,000 commands"). */
  inFlight(): string;
}

export class ProgressLine {
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastUs = 0;
  private lastOrdered = 0;
  private lastExecuted = 0;
  private width = 0;

  constructor(
    private readonly source: ProgressSource,
    private readonly write: (text: string) => void,
    private readonly startUs: number,
  ) {}

  start(): void {
    this.lastUs = this.source.clock();
    this.timer = setInterval(() => this.update(), PROGRESS_INTERVAL_MS);
  }

  /** Stops updating and clears the line. */
  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.write(`\r${' '.repeat(this.width)}\r`);
  }

  private update(): void {
    const nowUs = this.source.clock();
    const { orderedTotal, executedTotal } = this.source.counters;
    const dt = Math.max(1e-6, (nowUs - this.lastUs) / 1e6);
    const rate = (delta: number): string => Math.round(delta / dt).toLocaleString('en-US');
    const line =
      `[${((nowUs - this.startUs) / 1e6).toFixed(1)} s] ordered ${rate(orderedTotal - this.lastOrdered)}/s` +
      `  executed ${rate(executedTotal - this.lastExecuted)}/s  in flight ${this.source.inFlight()}`;
    this.lastUs = nowUs;
    this.lastOrdered = orderedTotal;
    this.lastExecuted = executedTotal;
    this.write(`\r${line.padEnd(this.width)}`);
    this.width = Math.max(this.width, line.length);
  }
}
