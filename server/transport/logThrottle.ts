/**
 * Rate-limited logging for bad input: a source that keeps sending garbage must not turn our log
 * into its amplifier. At most one line per interval; the lines in between are counted and the
 * count goes into the next line that is written.
 */
export class LogThrottle {
  private lastMs = -Infinity;
  private suppressed = 0;

  constructor(private readonly intervalMs: number) {}

  /** Calls `write(suppressedSinceLast)` if a line is due now, else counts this one as suppressed. */
  run(write: (suppressed: number) => void, nowMs: number = Date.now()): void {
    if (nowMs - this.lastMs < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const suppressed = this.suppressed;
    this.lastMs = nowMs;
    this.suppressed = 0;
    write(suppressed);
  }
}
