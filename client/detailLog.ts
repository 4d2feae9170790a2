/**
 * Per-command detail logs (`client<i>.detail.log`): one line for every command the benchmark
 * offered — warm-up included, whatever became of it — so that anyone can check from the logs
 * alone that nothing was lost or executed twice and that ordering was linearizable, command by
 * command (the process script does: experiments/process/). Streamed like the latency logs.
 *
 * Format: the header line below, then one line per command, eleven space-separated fields, `-`
 * where a value is unknown:
 *
 *   client     the client's identity: its public key, hex
 *   seq        its sequence number (1, 2, 3, … per client)
 *   digest     hex SHA-256 of the batch that carried it (gateway mode: as its gateway reported)
 *   submit_us  wall-clock µs it was submitted (or scheduled, open loop)
 *   ordered_us when its ordering completed (sequencing certificate); `-` if never observed
 *   executed_us when the client counted it executed (f+1 matching notices, or the gateway)
 *   ts_us      the batch's agreed timestamp
 *   position   the batch's place in the executed sequence
 *   index      the command's place in its batch (`-` in gateway mode: the gateway does not say)
 *   outcome    executed | executed_unordered (executed, ordering never observed) | duplicate (a
 *              copy skipped at `position`: the command executed elsewhere) | malformed |
 *              result_too_large | failed (refused, expired) | timed_out | unfinished (in flight
 *              when the run ended) | not_run (its batch executed, this command did not: numbered
 *              too far ahead, past its deadline, or too many clients) | state_machine_error
 *              (executed at `position`, and the state machine threw on it)
 *   phase      warmup | measured
 */
import { MAX_INTEGER_BYTES, writeBytes, writeInteger } from './asciiLine.js';
import { ChunkedLogFile, type ChunkedLogFileOptions } from './chunkedLogFile.js';
import type { CommandStatus } from './results.js';

export const DETAIL_LOG_HEADER = '# pompe detail v2: client seq digest submit_us ordered_us executed_us ts_us position index outcome phase';

export const DETAIL_OUTCOMES = ['executed', 'executed_unordered', 'duplicate', 'malformed', 'result_too_large', 'failed', 'timed_out', 'unfinished', 'not_run', 'state_machine_error'] as const;
export type DetailOutcome = (typeof DETAIL_OUTCOMES)[number];

/** The outcome of an executed command, by its result status and whether its ordering was seen. */
export function executedOutcome(status: CommandStatus, ordered: boolean): DetailOutcome {
  switch (status) {
    case 'executed':
      return ordered ? 'executed' : 'executed_unordered';
    case 'duplicate':
      return 'duplicate';
    case 'resultTooLarge':
      return 'result_too_large';
    case 'seqTooFar':
    case 'expired':
    case 'tooManyClients':
      return 'not_run';
    case 'stateMachineError':
      return 'state_machine_error';
    default:
      return 'malformed';
  }
}

/** What the commands of one batch share. */
export interface DetailBatch {
  readonly client: string;
  /** Hex digest of the batch; null if unknown. */
  readonly digest: string | null;
  readonly orderedUs: number | null;
  readonly executedUs: number | null;
  readonly tsUs: number | null;
  readonly position: number | null;
  readonly measured: boolean;
}

/** One command's line. */
export interface DetailRecord extends DetailBatch {
  readonly seq: number;
  readonly submitUs: number;
  readonly index: number | null;
  readonly outcome: DetailOutcome;
}

/** Printable ASCII without spaces: lines are written as latin1 bytes. */
const CLIENT_NAME = /^[\x21-\x7e]+$/;
/** The most a line's own fields take beyond the batch's shared ones: seq, submit_us and index
 *  (safe integers), and the longest outcome and phase with their separators and the newline. */
const MAX_LINE_VARIABLE_BYTES = 3 * MAX_INTEGER_BYTES + 1 + 19 + 1 + 8 + 1;
const DASH = 0x2d;

function field(name: string, value: number | null): string {
  if (value === null) return '-';
  if (!Number.isSafeInteger(value)) throw new RangeError(`detail log: ${name} must be a safe integer, got ${value}`);
  return String(value);
}

/** The fields from ordered_us to position, shared by a batch's lines. */
function sharedFields(b: DetailBatch): string {
  if (!CLIENT_NAME.test(b.client)) throw new RangeError(`detail log: a client name must be printable ASCII without spaces, got '${b.client}'`);
  return `${field('orderedUs', b.orderedUs)} ${field('executedUs', b.executedUs)} ${field('tsUs', b.tsUs)} ${field('position', b.position)}`;
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
   * One line per command of a batch: command i has sequence number firstSeq + i, was submitted at
   * submitUs(i) and ended as outcome(i); its index is i (null: `indexed` false, gateway mode).
   * Returns false when too much waits in memory (lines kept; await whenWritable()).
   */
  recordBatch(
    batch: DetailBatch,
    firstSeq: number,
    count: number,
    submitUs: (i: number) => number,
    outcome: (i: number) => DetailOutcome,
    indexed = true,
  ): boolean {
    // Formatted straight into bytes: the fields a batch's lines share are encoded once, and no
    // string is built per line (at peak, per-line strings cost the client more than its crypto).
    const head = Buffer.from(`${batch.client} `, 'latin1');
    const digest = Buffer.from(` ${batch.digest ?? '-'} `, 'latin1');
    const shared = Buffer.from(` ${sharedFields(batch)} `, 'latin1');
    const phase = batch.measured ? ' measured\n' : ' warmup\n';
    // " <outcome> <phase>\n" for each outcome the batch's lines have (usually one).
    const tails = new Map<DetailOutcome, Buffer>();
    const out = Buffer.allocUnsafe(count * (head.length + digest.length + shared.length + MAX_LINE_VARIABLE_BYTES));
    let at = 0;
    for (let i = 0; i < count; i++) {
      at = writeBytes(out, at, head);
      at = writeInteger(out, at, firstSeq + i);
      at = writeBytes(out, at, digest);
      at = writeInteger(out, at, Math.floor(submitUs(i)));
      at = writeBytes(out, at, shared);
      if (indexed) at = writeInteger(out, at, i);
      else out[at++] = DASH;
      const o = outcome(i);
      let tail = tails.get(o);
      if (tail === undefined) tails.set(o, (tail = Buffer.from(` ${o}${phase}`, 'latin1')));
      at = writeBytes(out, at, tail);
    }
    return this.file.appendBytes(out.subarray(0, at), count);
  }

  /** One command's line; see recordBatch. */
  record(r: DetailRecord): boolean {
    const line = `${r.client} ${field('seq', r.seq)} ${r.digest ?? '-'} ${field('submitUs', Math.floor(r.submitUs))} ${sharedFields(r)} ${field('index', r.index)} ${r.outcome} ${r.measured ? 'measured' : 'warmup'}\n`;
    return this.file.append(line, 1);
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
