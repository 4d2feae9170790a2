/**
 * Benchmark latency logs (`client<i>.order.log`, `client<i>.exec.log`) in the Pompe-HS line format,
 * so existing tooling keeps working:
 *
 *   2026-11-20 12:00:00.123456 [pompe info] 0.002481
 *
 * local wall-clock completion time with µs, then the latency in seconds with 6 decimals. Lines are
 * streamed to disk in chunks while the benchmark runs (see chunkedLogFile.ts), never held until exit.
 */
import { MAX_INTEGER_BYTES, writeBytes, writeDigits } from './asciiLine.js';
import { ChunkedLogFile, type ChunkedLogFileOptions } from './chunkedLogFile.js';

export { DetailLogWriter, DETAIL_LOG_HEADER, type DetailBatch, type DetailRecord } from './detailLog.js';
export { installFlushOnSignal, type FlushOnSignalOptions, type Closable } from './flushOnSignal.js';

const LOG_TAG = ' [pompe info] ';
const US_PER_S = 1_000_000;

/** Zero-pads an integer in [0, 1e6) to six digits. */
function pad6(value: number): string {
  return value >= 100_000 ? String(value) : String(value).padStart(6, '0');
}

function pad2(value: number): string {
  return value >= 10 ? String(value) : `0${value}`;
}

/**
 * "YYYY-MM-DD HH:MM:SS" in local time (as Pompe-HS writes it), for the second containing the given
 * time. Formatting a date costs far more than a log line, and at peak hundreds of thousands of lines
 * share each second, so the last second's text is cached.
 */
let cachedSecond = Number.NaN;
let cachedSecondText = '';
function secondText(wallSeconds: number): string {
  if (wallSeconds !== cachedSecond) {
    const d = new Date(wallSeconds * 1000);
    cachedSecondText =
      `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    cachedSecond = wallSeconds;
  }
  return cachedSecondText;
}

/** Everything before the latency: "<date> <time>.<µs> [pompe info] ". */
function linePrefix(completionWallUs: number): string {
  if (!Number.isFinite(completionWallUs)) throw new RangeError(`completion time must be finite, got ${completionWallUs}`);
  const wallUs = Math.floor(completionWallUs);
  const wallSeconds = Math.floor(wallUs / US_PER_S);
  return `${secondText(wallSeconds)}.${pad6(wallUs - wallSeconds * US_PER_S)}${LOG_TAG}`;
}

/** The most bytes writeLatencySeconds writes: a sign, the seconds, the point and six decimals. */
const MAX_LATENCY_BYTES = MAX_INTEGER_BYTES + 7;
const POINT = 0x2e;
const MINUS = 0x2d;
const NEWLINE = 0x0a;

/** The latency in seconds with exactly 6 decimals, by integer arithmetic (no toFixed rounding
 *  surprises), written at `at`; returns the offset after it. */
function writeLatencySeconds(out: Uint8Array, at: number, latencyUs: number): number {
  if (!Number.isFinite(latencyUs)) throw new RangeError(`latency must be finite, got ${latencyUs}`);
  let us = Math.round(latencyUs);
  if (!Number.isSafeInteger(us)) throw new RangeError(`latency must be below 2^53 µs, got ${latencyUs}`);
  // A negative latency means a clock bug in the caller; write it faithfully rather than hide it.
  if (us < 0) {
    out[at++] = MINUS;
    us = -us;
  }
  const fraction = us % US_PER_S;
  at = writeDigits(out, at, (us - fraction) / US_PER_S, 1);
  out[at++] = POINT;
  return writeDigits(out, at, fraction, 6);
}

/** One log line, without its trailing newline. Times in µs (completion: wall clock since the epoch). */
export function formatLogLine(completionWallUs: number, latencyUs: number): string {
  const latency = new Uint8Array(MAX_LATENCY_BYTES);
  const end = writeLatencySeconds(latency, 0, latencyUs);
  return linePrefix(completionWallUs) + Buffer.from(latency.buffer, 0, end).toString('latin1');
}

/** Streams one latency log file. Create with `await LatencyLogWriter.open(path)`. */
export class LatencyLogWriter {
  private constructor(private readonly file: ChunkedLogFile) {}

  /** Creates (truncates) the log file; rejects if it cannot be opened. */
  static async open(path: string, options: ChunkedLogFileOptions = {}): Promise<LatencyLogWriter> {
    return new LatencyLogWriter(await ChunkedLogFile.open(path, options));
  }

  get path(): string {
    return this.file.path;
  }

  /** Lines accepted so far; each reaches the file (by flush() or close()) unless the disk fails. */
  get linesWritten(): number {
    return this.file.linesAccepted;
  }

  /** Lines offered after close() began (e.g. during a signal-triggered shutdown); not written. */
  get linesRefused(): number {
    return this.file.linesRefused;
  }

  /** How often the file stream reported backpressure. */
  get backpressureEvents(): number {
    return this.file.backpressureEvents;
  }

  /**
   * One line per latency, all with the same completion time: the commands of one batch complete
   * together. Returns false when too much waits in memory; the lines are kept, and the caller should
   * await whenWritable() before recording more.
   */
  recordBatch(completionWallUs: number, latenciesUs: ArrayLike<number>): boolean {
    // Formatted straight into bytes, the shared prefix encoded once (asciiLine.ts says why).
    const prefix = Buffer.from(linePrefix(completionWallUs), 'latin1');
    const count = latenciesUs.length;
    const out = Buffer.allocUnsafe(count * (prefix.length + MAX_LATENCY_BYTES + 1));
    let at = 0;
    for (let i = 0; i < count; i++) {
      at = writeBytes(out, at, prefix);
      at = writeLatencySeconds(out, at, latenciesUs[i] as number);
      out[at++] = NEWLINE;
    }
    return this.file.appendBytes(out.subarray(0, at), count);
  }

  /** One line; see recordBatch. */
  record(completionWallUs: number, latencyUs: number): boolean {
    return this.recordBatch(completionWallUs, [latencyUs]);
  }

  /** After recordBatch returned false: resolves when there is room again (half the bound). */
  whenWritable(): Promise<void> {
    return this.file.whenWritable();
  }

  /** Resolves when every line recorded so far has been written to the file. */
  flush(): Promise<void> {
    return this.file.flush();
  }

  /** Writes everything, fsyncs and closes; resolves when the log is on disk. Idempotent. */
  close(): Promise<void> {
    return this.file.close();
  }
}
