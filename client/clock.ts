/**
 * Wall-clock time in microseconds for client logs.
 *
 * Date.now() has millisecond resolution and can step backwards (NTP), but client logs need µs, and
 * latencies computed as differences of two readings must never be negative. So we read the wall
 * clock once, then advance it with the monotonic high-resolution clock: readings are monotone
 * (non-decreasing) within a process and have µs resolution. The cost is that a wall-clock step
 * during the run is not followed, which is what a timed experiment wants.
 */

/** Wall-clock µs at the anchor, and the monotonic clock (ns) at the same moment. */
interface Anchor {
  readonly wallUs: number;
  readonly monoNs: bigint;
}

let anchor: Anchor | undefined;

/**
 * The fairness check compares submit and ordered times written by different client processes, so
 * their anchors must agree to better than Date.now()'s 1 ms truncation. Waiting for the millisecond
 * to tick over (at most ~1 ms of spinning, once per process) puts the anchor within a few µs of the
 * true wall clock instead of up to 1 ms behind it.
 */
function takeAnchor(): Anchor {
  const spinLimitNs = process.hrtime.bigint() + 2_000_000n;
  const startMs = Date.now();
  let nowMs = startMs;
  while (nowMs === startMs && process.hrtime.bigint() < spinLimitNs) nowMs = Date.now();
  return { wallUs: nowMs * 1000, monoNs: process.hrtime.bigint() };
}

/** Current wall-clock time in integer µs since the Unix epoch; monotone within this process. */
export function wallClockUs(): number {
  anchor ??= takeAnchor();
  // Divide in bigint so the result is a whole µs (a double of ns would lose precision after ~104 days).
  return anchor.wallUs + Number((process.hrtime.bigint() - anchor.monoNs) / 1000n);
}
