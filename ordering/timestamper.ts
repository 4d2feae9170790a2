/**
 * Timestamps in µs, strictly increasing per replica and across restarts. A durable high-water mark
 * is reserved ahead of the clock (one sync write per reservation, not per timestamp); after a
 * restart the replica starts above the last reservation, so it never repeats or goes back.
 */
/** How far ahead of the clock a reservation reaches: at most this much clock time is skipped after
 *  a restart, and one reservation write covers this long a run of timestamps. */
export const TS_RESERVATION_US = 250_000;

export class Timestamper {
  private lastUs: number;
  private reservedUntilUs: number;

  /** `firstUs`: the lowest timestamp allowed; `recoveredReservationUs`: the last durable reservation. */
  constructor(firstUs: number, recoveredReservationUs: number) {
    this.lastUs = Math.max(firstUs - 1, recoveredReservationUs);
    this.reservedUntilUs = recoveredReservationUs;
  }

  get lastTimestampUs(): number {
    return this.lastUs;
  }

  /** The timestamp `next` would give now, without giving it. After a restart it lies above the
   *  last reservation, possibly ahead of the clock. */
  peek(nowUs: number): number {
    return Math.max(nowUs, this.lastUs + 1);
  }

  /** The next timestamp, and a new reservation to persist before the timestamp leaves (or null). */
  next(nowUs: number): { readonly ts: number; readonly reserveUntilUs: number | null } {
    const ts = this.peek(nowUs);
    this.lastUs = ts;
    if (ts < this.reservedUntilUs) return { ts, reserveUntilUs: null };
    this.reservedUntilUs = ts + TS_RESERVATION_US;
    return { ts, reserveUntilUs: this.reservedUntilUs };
  }
}
