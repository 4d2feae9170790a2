/**
 * Benchmark of the client latency log writer: lines per second into a real file, close (fsync)
 * included. At peak the benchmark clients write ~800k lines/s together.
 *
 *   npm run build && node dist/scripts/bench-latency-log.js [lines] [batchSize]
 *
 * A real client records lines from network callbacks, so the event loop runs between batches and
 * the file stream writes while lines are produced. The loop here yields every YIELD_EVERY_LINES to
 * model that; "no yield" records in one synchronous loop (the writer's worst case: disk and
 * formatting cannot overlap, and only backpressure lets the stream run).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { wallClockUs } from '../client/clock.js';
import { LatencyLogWriter } from '../client/latencyLog.js';

const YIELD_EVERY_LINES = 2000;

async function bench(dir: string, lines: number, batchSize: number, yieldToLoop: boolean): Promise<void> {
  const path = join(dir, `client0.exec.${batchSize}.log`);
  const log = await LatencyLogWriter.open(path);
  const latenciesUs = Float64Array.from({ length: batchSize }, (_, i) => 1000 + ((i * 7919) % 50_000));
  const startNs = process.hrtime.bigint();
  let waits = 0;
  let sinceYield = 0;
  for (let written = 0; written < lines; written += batchSize) {
    if (!log.recordBatch(wallClockUs(), latenciesUs)) {
      waits++;
      await log.whenWritable();
    }
    sinceYield += batchSize;
    if (yieldToLoop && sinceYield >= YIELD_EVERY_LINES) {
      sinceYield = 0;
      await nextTurn();
    }
  }
  await log.close();
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  const { size } = await stat(path);
  console.log(
    `batch ${String(batchSize).padStart(3)}, ${yieldToLoop ? 'yielding' : 'no yield'}: ` +
      `${Math.round(log.linesWritten / seconds).toLocaleString('en-US').padStart(9)} lines/s ` +
      `(${log.linesWritten} lines, ${(size / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(2)} s; ` +
      `stream backpressure ${log.backpressureEvents}, caller waits ${waits})`,
  );
  await rm(path);
}

const lines = Number(process.argv[2] ?? 5_000_000);
const batchSizes = process.argv[3] === undefined ? [1, 10, 100, 700] : [Number(process.argv[3])];
const dir = await mkdtemp(join(tmpdir(), 'pompe-bench-log-'));
try {
  for (const yieldToLoop of [true, false]) {
    for (const batchSize of batchSizes) await bench(dir, lines, batchSize, yieldToLoop);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
