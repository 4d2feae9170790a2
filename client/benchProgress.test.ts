import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { BenchContext } from './benchContext.js';
import { PROGRESS_INTERVAL_MS, ProgressLine } from './benchProgress.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

it('rewrites one line in place each second with the last second’s rates, and clears it at the end', async () => {
  let nowUs = 1_000_000_000;
  const ctx = new BenchContext(() => nowUs);
  let written = '';
  const line = new ProgressLine({ counters: ctx.counters, clock: () => nowUs, inFlight: () => '16 batches' }, (t) => void (written += t), nowUs);
  line.start();
  ctx.counters.orderedTotal = 5_000;
  ctx.counters.executedTotal = 4_000;
  nowUs += 1_000_000;
  await vi.advanceTimersByTimeAsync(PROGRESS_INTERVAL_MS);
  const first = '[1.0 s] ordered 5,000/s  executed 4,000/s  in flight 16 batches';
  expect(written).toBe(`\r${first}`);
  ctx.counters.orderedTotal = 6_000;
  ctx.counters.executedTotal = 6_000;
  nowUs += 2_000_000;
  await vi.advanceTimersByTimeAsync(PROGRESS_INTERVAL_MS);
  expect(written.split('\r').at(-1)).toBe('[3.0 s] ordered 500/s  executed 1,000/s  in flight 16 batches'.padEnd(first.length)); // a shorter line blanks the rest of the longer one
  line.stop();
  expect(written.endsWith(`\r${' '.repeat(first.length)}\r`)).toBe(true);
  expect(vi.getTimerCount()).toBe(0);
});
