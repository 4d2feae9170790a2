/**
 * A periodic check that runs only while there is something to check: started by poke(), it calls
 * `sweep` every `intervalMs` until sweep returns false (nothing left), then stops, so an idle
 * client holds no timer. Used for deadlines that need no precision beyond the interval (command
 * timeouts, gateway failover), where one timer per command would cost more than it buys.
 */
export class Sweeper {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly sweep: () => boolean,
  ) {}

  poke(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => this.run(), this.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private run(): void {
    this.timer = null;
    if (!this.stopped && this.sweep()) this.poke();
  }
}

/** A check period giving deadlines of `ms` a precision of ~10%, within [10 ms, 1 s]. */
export const sweepIntervalFor = (ms: number): number => Math.min(1_000, Math.max(10, Math.floor(ms / 10)));
