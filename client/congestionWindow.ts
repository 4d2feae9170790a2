/**
 * How many batches a benchmark client keeps in flight when the cluster falls behind: additive
 * increase, multiplicative decrease, as TCP does for segments.
 *
 * Why: a batch whose Sequence reaches the replicas more than about Δ after its timestamp is refused
 * `late` and restarts phase 1 with its full bytes. If the load offered is above what the cluster
 * orders within Δ, every restart adds load and makes more batches late: a closed loop with a fixed
 * window collapses instead of queueing (measured on the dev VM, 16 clients × 4 batches of 1000 in
 * flight, Δ 30 ms: 15k cmd/s, exec p50 2.6 s, 8,152 restarts in 15 s, against 63–75k cmd/s with 4
 * clients). A batch that restarts again and again is the cluster saying it is behind, so the
 * window halves; a batch ordered at its first attempt widens it by one batch per window's worth of
 * batches, up to the configured maximum. One restart alone is not taken as overload: near capacity
 * a few batches restart once (a GC pause, a slow fsync), and halving on each of those cost a third
 * of the throughput in the 4-client run above. A batch f+1 replicas answered `overloaded` (their
 * admission control: ordering/admission.ts) counts like one that restarted again and again.
 */

/** Phase-1 attempts at which an ordered batch counts as a sign of overload. */
export const OVERLOAD_ATTEMPTS = 3;
export class CongestionWindow {
  private size: number;
  /** Batches ordered since the last halving: one halving per window's worth (one episode). */
  private orderedSinceHalving = 0;
  /** Halvings so far, and the smallest limit reached: for the summary. */
  halvings = 0;
  smallestLimit: number;

  constructor(private readonly max: number) {
    this.size = max;
    this.smallestLimit = max;
  }

  /** Batches that may be in flight now: at least 1, at most the configured maximum. */
  get limit(): number {
    return Math.max(1, Math.floor(this.size));
  }

  /** A batch was ordered after `attempts` attempts of phase 1 (1: no restart); `throttled`: f+1
   *  replicas answered it `overloaded`. */
  onOrdered(attempts: number, throttled = false): void {
    this.orderedSinceHalving++;
    if (attempts <= 1 && !throttled) {
      this.size = Math.min(this.max, this.size + 1 / this.size);
      return;
    }
    if (attempts < OVERLOAD_ATTEMPTS && !throttled) return;
    // Batches in flight together see the same overload: count it once per window's worth.
    if (this.orderedSinceHalving < this.limit || this.size <= 1) return;
    this.size = Math.max(1, this.size / 2);
    this.orderedSinceHalving = 0;
    this.halvings++;
    this.smallestLimit = Math.min(this.smallestLimit, this.limit);
  }
}
