/**
 * Wall-clock time in microseconds for client logs (and replicas' timestamps: server/ uses it too).
 *
 * Date.now() has millisecond resolution and can step backwards (NTP), but client logs need µs, and
 * latencies computed as differences of two readings must never be negative. So we read the wall
 * clock once, then advance it with the monotonic high-resolution clock: readings are monotone
 * (non-decreasing) within a process and have µs resolution. The cost is that a wall-clock step
 * during the run is not followed, which is what a timed experiment wants.
 */

/** Wall-clock µs at the anchor, and the monotonic clock (ns) at the same moment. */
export interface Anchor {
  readonly wallUs: number;
  readonly monoNs: bigint;
}

/** The two clocks an anchor relates (injectable for tests). */
export interface ClockSources {
  wallMs(): number;
  monoNs(): bigint;
}

/**
 * Widest window in which a millisecond tick of the wall clock may be located for the anchor to be
 * accepted. Reading both clocks takes well under 1 µs, so a wider window means the thread was
 * preempted between reads: on a loaded machine (four replicas starting at once on two cores) that
 * took 10 ms, and an anchor that far off put one replica's timestamps 10 ms behind the others (Δ is
 * 10 ms), so its batches were refused as late.
 */
export const MAX_ANCHOR_WINDOW_NS = 100_000n;
/** How long to look for a narrow window before settling for the narrowest seen: ~50 ticks. */
export const ANCHOR_BUDGET_NS = 50_000_000n;

/**
 * The fairness check compares submit and ordered times written by different client processes, so
 * their anchors must agree to better than Date.now()'s 1 ms truncation. So we watch the millisecond
 * tick over, locating it between the last reading of the old millisecond and the first of the new
 * one, each bracketed by monotonic readings: the anchor is the window's middle, within a few µs of
 * the true tick, and a window stretched by preemption is rejected and the next tick tried.
 */
export function findAnchor(src: ClockSources): Anchor {
  const deadline = src.monoNs() + ANCHOR_BUDGET_NS;
  let best: (Anchor & { readonly windowNs: bigint }) | null = null;
  let prevBefore = src.monoNs();
  let prevMs = src.wallMs();
  for (;;) {
    const before = src.monoNs();
    const ms = src.wallMs();
    const after = src.monoNs();
    // One tick since the last reading: the wall clock reached `ms` after the previous reading began
    // (it still showed ms − 1) and before this one ended. A jump of more is a preemption: skip.
    if (ms === prevMs + 1) {
      const windowNs = after - prevBefore;
      if (best === null || windowNs < best.windowNs) best = { wallUs: ms * 1000, monoNs: prevBefore + windowNs / 2n, windowNs };
      if (windowNs <= MAX_ANCHOR_WINDOW_NS) break;
    }
    prevBefore = before;
    prevMs = ms;
    if (after > deadline) break;
  }
  // No tick seen at all (a wall clock frozen for 50 ms): the best we can do is one plain reading.
  return best === null ? { wallUs: src.wallMs() * 1000, monoNs: src.monoNs() } : { wallUs: best.wallUs, monoNs: best.monoNs };
}

let anchor: Anchor | undefined;

const systemClocks: ClockSources = { wallMs: () => Date.now(), monoNs: () => process.hrtime.bigint() };

/** Current wall-clock time in integer µs since the Unix epoch; monotone within this process. */
export function wallClockUs(): number {
  anchor ??= findAnchor(systemClocks);
  // Divide in bigint so the result is a whole µs (a double of ns would lose precision after ~104 days).
  return anchor.wallUs + Number((process.hrtime.bigint() - anchor.monoNs) / 1000n);
}
