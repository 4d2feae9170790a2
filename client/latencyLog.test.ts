import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { wallClockUs } from './clock.js';
import { DETAIL_LOG_HEADER, DetailLogWriter, formatLogLine, installFlushOnSignal, LatencyLogWriter } from './latencyLog.js';

const POMPE_HS_LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} \[pompe info\] \d+\.\d{6}$/;

/** 2026-11-20 12:00:00 local time, in µs: the line must show this wall time whatever the zone. */
const NOON_US = new Date(2026, 10, 20, 12, 0, 0).getTime() * 1000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pompe-latency-log-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const linesOf = async (path: string): Promise<string[]> => (await readFile(path, 'utf8')).split('\n').slice(0, -1);

describe('formatLogLine', () => {
  it('writes the Pompe-HS line exactly', () => {
    expect(formatLogLine(NOON_US + 123_456, 2481)).toBe('2026-11-20 12:00:00.123456 [pompe info] 0.002481');
  });

  it('pads µs to six digits and writes seconds with six decimals', () => {
    expect(formatLogLine(NOON_US + 5, 5)).toBe('2026-11-20 12:00:00.000005 [pompe info] 0.000005');
    expect(formatLogLine(NOON_US, 0)).toBe('2026-11-20 12:00:00.000000 [pompe info] 0.000000');
    expect(formatLogLine(NOON_US + 40_000, 12_345_678.6)).toBe('2026-11-20 12:00:00.040000 [pompe info] 12.345679');
    expect(formatLogLine(NOON_US, 1_000_000)).toBe('2026-11-20 12:00:00.000000 [pompe info] 1.000000');
    // A negative latency (a caller's clock bug) is written as it is, not hidden.
    expect(formatLogLine(NOON_US, -2481)).toBe('2026-11-20 12:00:00.000000 [pompe info] -0.002481');
    expect(formatLogLine(NOON_US, -3_000_000.4)).toBe('2026-11-20 12:00:00.000000 [pompe info] -3.000000');
  });

  it('moves to the next second, minute and day correctly (cached second text is refreshed)', () => {
    expect(formatLogLine(NOON_US + 999_999, 1)).toBe('2026-11-20 12:00:00.999999 [pompe info] 0.000001');
    expect(formatLogLine(NOON_US + 1_000_000, 1)).toBe('2026-11-20 12:00:01.000000 [pompe info] 0.000001');
    const lastSecondOfDayUs = new Date(2026, 10, 20, 23, 59, 59).getTime() * 1000;
    expect(formatLogLine(lastSecondOfDayUs + 7, 1)).toBe('2026-11-20 23:59:59.000007 [pompe info] 0.000001');
    expect(formatLogLine(lastSecondOfDayUs + 1_000_007, 1)).toBe('2026-11-21 00:00:00.000007 [pompe info] 0.000001');
  });

  it('matches the Pompe-HS shape for any time and latency', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e15 }), fc.double({ min: 0, max: 1e10, noNaN: true }), (wallUs, latencyUs) => {
        expect(formatLogLine(wallUs, latencyUs)).toMatch(POMPE_HS_LINE);
      }),
    );
  });

  it('rejects non-finite inputs instead of writing NaN into a log', () => {
    expect(() => formatLogLine(Number.NaN, 1)).toThrow(RangeError);
    expect(() => formatLogLine(NOON_US, Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('LatencyLogWriter', () => {
  it('writes one line per latency of a batch, all with the batch completion time', async () => {
    const path = join(dir, 'client0.exec.log');
    const log = await LatencyLogWriter.open(path);
    log.recordBatch(NOON_US + 1, [1000, 2000, 3_000_000]);
    log.record(NOON_US + 2, 42);
    expect(log.linesWritten).toBe(4);
    await log.close();
    expect(await linesOf(path)).toEqual([
      '2026-11-20 12:00:00.000001 [pompe info] 0.001000',
      '2026-11-20 12:00:00.000001 [pompe info] 0.002000',
      '2026-11-20 12:00:00.000001 [pompe info] 3.000000',
      '2026-11-20 12:00:00.000002 [pompe info] 0.000042',
    ]);
  });

  it('writes a batch line for line as formatLogLine does, for any completion time and latencies', async () => {
    const path = join(dir, 'client1.exec.log');
    const log = await LatencyLogWriter.open(path);
    const expected: string[] = [];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e15 }), fc.array(fc.double({ min: -1e10, max: 1e10, noNaN: true }), { maxLength: 20 }), (wallUs, latencies) => {
        log.recordBatch(wallUs, latencies);
        for (const latencyUs of latencies) expected.push(formatLogLine(wallUs, latencyUs));
      }),
    );
    await log.close();
    expect(await linesOf(path)).toEqual(expected);
  });

  it('flush() puts every recorded line in the file before close', async () => {
    const path = join(dir, 'client0.order.log');
    const log = await LatencyLogWriter.open(path);
    log.recordBatch(NOON_US, new Float64Array([10, 20]));
    await log.flush();
    expect(await linesOf(path)).toHaveLength(2);
    log.record(NOON_US, 30);
    await log.flush();
    expect(await linesOf(path)).toHaveLength(3);
    await log.close();
  });

  it('streams many lines through small chunks and backpressure without losing or reordering one', async () => {
    const path = join(dir, 'client1.exec.log');
    // Tiny chunks and bound so that the stream reports backpressure and the bound is hit often.
    const log = await LatencyLogWriter.open(path, { chunkBytes: 4096, maxBufferedBytes: 64 * 1024 });
    const batches = 2000;
    const perBatch = 100;
    let askedToWait = 0;
    for (let b = 0; b < batches; b++) {
      const latenciesUs = Array.from({ length: perBatch }, (_, i) => b * perBatch + i);
      if (!log.recordBatch(NOON_US + b, latenciesUs)) {
        askedToWait++;
        await log.whenWritable();
      }
    }
    await log.close();
    expect(askedToWait).toBeGreaterThan(0);
    expect(log.backpressureEvents).toBeGreaterThan(0);
    expect(log.linesWritten).toBe(batches * perBatch);
    const lines = await linesOf(path);
    expect(lines).toHaveLength(batches * perBatch);
    for (let k = 0; k < lines.length; k += 997) {
      expect(lines[k]).toBe(formatLogLine(NOON_US + Math.floor(k / perBatch), k));
    }
    expect(lines.at(-1)).toBe(formatLogLine(NOON_US + batches - 1, batches * perBatch - 1));
  });

  it('keeps every line even when the caller ignores backpressure', async () => {
    const path = join(dir, 'client2.exec.log');
    const log = await LatencyLogWriter.open(path, { chunkBytes: 1024, maxBufferedBytes: 1024 });
    const n = 50_000;
    let overBound = 0;
    for (let i = 0; i < n; i++) if (!log.record(NOON_US, i)) overBound++;
    expect(overBound).toBeGreaterThan(0);
    await log.close();
    const lines = await linesOf(path);
    expect(lines).toHaveLength(n);
    expect(lines[n - 1]).toBe(formatLogLine(NOON_US, n - 1));
  });

  it('refuses (and counts) lines recorded after close instead of throwing', async () => {
    const path = join(dir, 'client3.exec.log');
    const log = await LatencyLogWriter.open(path);
    log.record(NOON_US, 1);
    const closed = log.close();
    expect(log.record(NOON_US, 2)).toBe(false);
    await closed;
    await log.close(); // idempotent
    expect(log.linesWritten).toBe(1);
    expect(log.linesRefused).toBe(1);
    expect(await linesOf(path)).toHaveLength(1);
  });

  it.skipIf(!existsSync('/dev/full'))('reports a failed disk write instead of losing lines silently', async () => {
    const log = await LatencyLogWriter.open('/dev/full'); // every write fails with ENOSPC
    log.record(NOON_US, 1);
    await expect(log.flush()).rejects.toThrow(/ENOSPC/);
    expect(() => log.record(NOON_US, 2)).toThrow(/ENOSPC/);
    await expect(log.close()).rejects.toThrow(/ENOSPC/);
  });

  it('rejects open() when the file cannot be created', async () => {
    await expect(LatencyLogWriter.open(join(dir, 'missing', 'client0.exec.log'))).rejects.toThrow(/ENOENT/);
  });
});

describe('DetailLogWriter', () => {
  const digest = 'ab'.repeat(32);
  const executed = { client: '1000007', digest, orderedUs: 200, executedUs: 300, tsUs: 150, position: 7, measured: true };

  it('writes the header, then one line per command: identity, seq, batch, times, place, outcome, phase', async () => {
    const path = join(dir, 'client0.detail.log');
    const log = await DetailLogWriter.open(path);
    log.recordBatch(executed, 41, 2, (i) => 100 + i, (i) => (i === 0 ? 'executed' : 'duplicate'));
    log.record({ ...executed, orderedUs: null, executedUs: null, tsUs: null, position: null, seq: 43, submitUs: 110, index: null, outcome: 'timed_out', measured: false });
    log.recordBatch({ ...executed, digest: null, orderedUs: null }, 44, 1, () => 120, () => 'executed_unordered', false);
    expect(log.linesWritten).toBe(4);
    await log.close();
    expect(await linesOf(path)).toEqual([
      DETAIL_LOG_HEADER,
      `1000007 41 ${digest} 100 200 300 150 7 0 executed measured`,
      `1000007 42 ${digest} 101 200 300 150 7 1 duplicate measured`,
      `1000007 43 ${digest} 110 - - - - - timed_out warmup`,
      '1000007 44 - 120 - 300 150 7 - executed_unordered measured',
    ]);
    expect(DETAIL_LOG_HEADER).toBe('# pompe detail v2: client seq digest submit_us ordered_us executed_us ts_us position index outcome phase');
  });

  it('rejects values that are not safe integers, and client names with spaces', async () => {
    const log = await DetailLogWriter.open(join(dir, 'client1.detail.log'));
    expect(() => log.recordBatch({ ...executed, orderedUs: 1.5 }, 1, 1, () => 1, () => 'executed')).toThrow(RangeError);
    expect(() => log.recordBatch(executed, 1, 1, () => Number.NaN, () => 'executed')).toThrow(RangeError);
    expect(() => log.recordBatch({ ...executed, client: 'a b' }, 1, 1, () => 1, () => 'executed')).toThrow(RangeError);
    await log.close();
  });
});

describe('installFlushOnSignal', () => {
  it('closes every writer on the signal, then exits with 128 + the signal number', async () => {
    const path = join(dir, 'client0.exec.log');
    const writers = new Set<LatencyLogWriter>();
    let exitCode: number | undefined;
    const exited = new Promise<void>((resolve) => {
      // SIGUSR2 stands in for SIGTERM so the test runner's own handlers are not involved.
      const uninstall = installFlushOnSignal(writers, {
        signals: ['SIGUSR2'],
        exit: (code) => {
          exitCode = code;
          uninstall();
          resolve();
        },
      });
    });
    const log = await LatencyLogWriter.open(path);
    writers.add(log); // added after installation: the set is read when the signal arrives
    log.recordBatch(NOON_US, [1, 2, 3]);
    process.emit('SIGUSR2', 'SIGUSR2');
    await exited;
    expect(exitCode).toBe(128 + constants.signals.SIGUSR2);
    expect(await linesOf(path)).toHaveLength(3);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  });
});

describe('wallClockUs', () => {
  it('is integer µs near Date.now() and never goes backwards', () => {
    const first = wallClockUs();
    expect(Number.isSafeInteger(first)).toBe(true);
    expect(Math.abs(first - Date.now() * 1000)).toBeLessThan(50_000);
    let previous = first;
    let backwards = 0;
    for (let i = 0; i < 100_000; i++) {
      const now = wallClockUs();
      if (now < previous) backwards++;
      previous = now;
    }
    expect(backwards).toBe(0);
    expect(previous).toBeGreaterThanOrEqual(first);
  });
});
