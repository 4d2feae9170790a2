import { describe, expect, it } from 'vitest';
import { MAX_TRACKED_BATCHES, PhaseLatency, quantileMs, RECENT_WINDOW_SAMPLES } from './phaseLatency.js';

describe('phase latency', () => {
  it('measures each leg of a batch from its first stamp, ack, its block commit and its execution', () => {
    const p = new PhaseLatency();
    p.stamp('a', 1_000);
    p.stamp('a', 1_500); // a re-sent reply is not a new stamp
    p.ack('a', 4_000); // 3 ms
    p.ack('a', 9_000); // re-sent ack: not counted twice
    p.commit(7, 24_000); // 20 ms
    p.execute('a', 7, 25_000); // 1 ms; 24 ms in all
    const total = p.toJson().total;
    expect(total.stamp_to_ack.count).toBe(1);
    expect(total.ack_to_commit.count).toBe(1);
    expect(total.commit_to_execute.count).toBe(1);
    expect(total.stamp_to_execute.count).toBe(1);
    // 3 ms falls in the (2, 5] ms bucket; the estimate interpolates inside it.
    expect(total.stamp_to_ack.p50Ms).toBeGreaterThan(2);
    expect(total.stamp_to_ack.p50Ms).toBeLessThanOrEqual(5);
    expect(total.ack_to_commit.p99Ms).toBeGreaterThan(10);
    expect(total.ack_to_commit.p99Ms).toBeLessThanOrEqual(20);
    expect(p.tracked.batches).toBe(0);
  });

  it('a batch seen only at execution counts in no stamp leg, and old entries are forgotten', () => {
    const p = new PhaseLatency();
    p.commit(1, 0);
    p.execute('never-stamped', 1, 2_000);
    expect(p.toJson().total.commit_to_execute.count).toBe(1);
    expect(p.toJson().total.stamp_to_execute.count).toBe(0);
    for (let i = 0; i < MAX_TRACKED_BATCHES + 10; i++) p.stamp(`b${i}`, i);
    expect(p.tracked.batches).toBe(MAX_TRACKED_BATCHES);
  });

  it('the recent window forgets what is older than its samples', () => {
    const p = new PhaseLatency();
    p.sample();
    p.stamp('a', 0);
    p.ack('a', 1_000);
    expect(p.toJson().recent.stamp_to_ack.count).toBe(1);
    for (let i = 0; i < RECENT_WINDOW_SAMPLES; i++) p.sample();
    expect(p.toJson().recent.stamp_to_ack.count).toBe(0);
    expect(p.toJson().total.stamp_to_ack.count).toBe(1);
  });

  it('estimates quantiles from bucket counts', () => {
    const counts = new Array<number>(15).fill(0);
    counts[0] = 50; // ≤ 0.5 ms
    counts[4] = 50; // (5, 10] ms
    expect(quantileMs(counts, 100, 0.5)).toBe(0.5);
    expect(quantileMs(counts, 100, 0.99)).toBe(9.9);
    expect(quantileMs(counts, 0, 0.5)).toBeNull();
  });
});
