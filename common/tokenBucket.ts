/**
 * A token bucket: `ratePerSecond` tokens a second, at most `burst` saved up. Time is an input
 * (µs), so the pure cores and the driver use the same one. A budget with a rate of 0 never refills.
 */
export class TokenBucket {
  private tokens: number;
  private atUs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    nowUs: number,
  ) {
    this.tokens = burst;
    this.atUs = nowUs;
  }

  /** Takes `cost` tokens if there are that many (after refilling to `nowUs`); false leaves it as it was. */
  take(cost: number, nowUs: number): boolean {
    this.refill(nowUs);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** Spends `cost` tokens whatever is left: for a cost known only after the work (CPU time), the
   *  balance may go below zero, a debt the refill pays off before more is available. */
  spend(cost: number, nowUs: number): void {
    this.refill(nowUs);
    this.tokens -= cost;
  }

  /** Microseconds from `nowUs` until `cost` tokens are available: 0 if they are now, Infinity if
   *  the bucket never refills or can never hold that many. */
  usUntil(cost: number, nowUs: number): number {
    this.refill(nowUs);
    if (this.tokens >= cost) return 0;
    if (this.ratePerSecond === 0 || cost > this.burst) return Infinity;
    return ((cost - this.tokens) * 1e6) / this.ratePerSecond;
  }

  /** Tokens available at `nowUs`. */
  available(nowUs: number): number {
    this.refill(nowUs);
    return this.tokens;
  }

  private refill(nowUs: number): void {
    if (nowUs > this.atUs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowUs - this.atUs) * this.ratePerSecond) / 1e6);
      this.atUs = nowUs;
    }
  }
}
