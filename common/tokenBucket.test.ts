import { describe, expect, it } from 'vitest';
import { TokenBucket } from './tokenBucket.js';

describe('TokenBucket', () => {
  it('starts full, refills at its rate up to its burst, and refuses what it cannot cover', () => {
    const b = new TokenBucket(10, 5, 0);
    expect(b.take(5, 0)).toBe(true);
    expect(b.take(1, 0)).toBe(false);
    expect(b.take(1, 99_999)).toBe(false); // 0.99 tokens
    expect(b.take(1, 100_000)).toBe(true);
    expect(b.available(10_000_000)).toBe(5); // capped at the burst
    expect(b.take(6, 10_000_000)).toBe(false);
    expect(b.available(10_000_000)).toBe(5); // a refused take costs nothing
  });

  it('does not refill when time goes backwards', () => {
    const b = new TokenBucket(1_000, 1, 1_000_000);
    b.take(1, 1_000_000);
    expect(b.available(0)).toBe(0);
  });

  it('spends a cost known only afterwards into debt, which the refill pays off first', () => {
    const b = new TokenBucket(100, 100, 0);
    b.spend(130, 0);
    expect(b.available(0)).toBe(-30);
    expect(b.available(200_000)).toBe(-10); // 20 tokens of refill paid 20 of the debt
    expect(b.take(1, 200_000)).toBe(false);
    expect(b.available(2_000_000)).toBe(100);
  });
});
