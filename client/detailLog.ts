/**
 * Per-command detail logs (`client<i>.detail.log`) for the fairness check of the process script,
 * which counts ordering-linearizability violations across clients. Streamed like the latency logs.
 *
 * Format: the header line below, then one line per executed command with six integers:
 * submit, ordered and executed wall-clock µs; the batch's agreed timestamp (µs); the batch's position
 * in the executed sequence; the command's index inside its batch.
 */
import { ChunkedLogFile, type ChunkedLogFileOptions } from './chunkedLogFile.js';

export const DETAIL_LOG_HEADER = '# submit_us ordered_us executed_us ts_us position index';

/** What the commands of one executed batch share. */
export interface DetailBatch {
  /** When the batch's ordering phase completed (sequencing certificate), wall-clock µs. */
  readonly orderedWallUs: number;
  /** When the client counted the batch executed, wall-clock µs. */
  readonly executedWallUs: number;
  /** The batch's agreed (median) timestamp, µs. */
  readonly tsUs: number;
  /** The batch's index in the executed sequence. */
  readonly position: number;
}

export interface DetailRecord extends DetailBatch {
  /** When the command was submitted, wall-clock µs. */
  readonly submitWallUs: number;
  /** The command's index inside its batch. */
  readonly index: number;
}

function checkInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`detail log: ${name} must be a safe integer, got ${value}`);
}

function checkBatch(batch: DetailBatch): void {
  checkInteger('orderedWallUs', batch.orderedWallUs);
  checkInteger('executedWallUs', batch.executedWallUs);
  checkInteger('tsUs', batch.tsUs);
  checkInteger('position', batch.position);
}

/** Streams one detail log file. Create with `await DetailLogWriter.open(path)`. */
export class DetailLogWriter {
  private constructor(private readonly file: ChunkedLogFile) {}

  /** Creates (truncates) the file and writes the header line; rejects if it cannot be opened. */
  static async open(path: string, options: ChunkedLogFileOptions = {}): Promise<DetailLogWriter> {
    const file = await ChunkedLogFile.open(path, options);
    // The header is not a command, so it is not counted in linesWritten.
    file.append(`${DETAIL_LOG_HEADER}\n`, 0);
    return new DetailLogWriter(file);
  }

  get path(): string {
    return this.file.path;
  }

  /** Command lines accepted so far (the header is not counted). */
  get linesWritten(): number {
    return this.file.linesAccepted;
  }

  /** Lines offered after close() began; not written. */
  get linesRefused(): number {
    return this.file.linesRefused;
  }

  /**
   * One line per command of an executed batch; command i of `submitWallUs` gets index i.
   * Returns false when too much waits in memory (lines kept; await whenWritable()).
   */
  recordBatch(batch: DetailBatch, submitWallUs: ArrayLike<number>): boolean {
    checkBatch(batch);
    const shared = ` ${batch.orderedWallUs} ${batch.executedWallUs} ${batch.tsUs} ${batch.position} `;
    let text = '';
    for (let i = 0; i < submitWallUs.length; i++) {
      const submitUs = submitWallUs[i] as number;
      checkInteger('submitWallUs', submitUs);
      text += `${submitUs}${shared}${i}\n`;
    }
    return this.file.append(text, submitWallUs.length);
  }

  /** One command's line; see recordBatch. */
  record(entry: DetailRecord): boolean {
    checkBatch(entry);
    checkInteger('submitWallUs', entry.submitWallUs);
    checkInteger('index', entry.index);
    const { submitWallUs, orderedWallUs, executedWallUs, tsUs, position, index } = entry;
    return this.file.append(`${submitWallUs} ${orderedWallUs} ${executedWallUs} ${tsUs} ${position} ${index}\n`, 1);
  }

  whenWritable(): Promise<void> {
    return this.file.whenWritable();
  }

  flush(): Promise<void> {
    return this.file.flush();
  }

  /** Writes everything, fsyncs and closes; resolves when the log is on disk. Idempotent. */
  close(): Promise<void> {
    return this.file.close();
  }
}
