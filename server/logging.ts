/**
 * The one way server processes make a logger: pino, to a file or to stdout, written asynchronously
 * (pino.destination with sync: false) so logging never blocks the event loop on a disk or a pipe.
 * close() writes out what is buffered and closes the file, so call it on shutdown (a signal
 * handler) or the tail of the log may be lost.
 *
 * Format: JSON lines (for files and log collectors), or `pretty` (pino-pretty: a coloured line
 * per record, for a person at a terminal). `auto` is pretty on a terminal's stdout, JSON otherwise.
 */
import { once } from 'node:events';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { PinoPretty } from 'pino-pretty';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

export function isLogLevel(value: string): value is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export interface LoggerOptions {
  /** Appears as `name` on every line (e.g. "replica-2", "client-0"). */
  readonly name: string;
  /** Default: info. */
  readonly level?: LevelWithSilent;
  /** Append to this file (created with its directory if missing) instead of writing to stdout. */
  readonly file?: string;
  /** Default: auto (pretty only when writing to a terminal). */
  readonly format?: LogFormat;
}

export type ServerLogger = Logger & {
  /** Writes out buffered lines and closes the file (stdout stays open). Idempotent. */
  close(): Promise<void>;
};

export function createLogger(options: LoggerOptions): ServerLogger {
  const settings = { name: options.name, level: options.level ?? 'info' };
  const toFile = options.file !== undefined;
  // Asynchronous for stdout too: a blocked pipe must not stall the event loop.
  const destination = pino.destination({ dest: options.file ?? STDOUT_FD, sync: false, mkdir: toFile, append: true });
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && !toFile && process.stdout.isTTY === true);
  // The prettifier writes into the same destination, so close() below flushes both.
  const stream: DestinationStream = pretty ? PinoPretty({ destination, colorize: !toFile && process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) : destination;
  const logger = pino(settings, stream);
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      const done = once(destination, 'close'); // rejects if the stream reports an error first
      // Ending the prettifier ends the destination after it; the destination writes what is
      // buffered (after the file opens, if it has not yet), then closes; it never closes stdout.
      if (pretty) (stream as unknown as NodeJS.WritableStream).end();
      else destination.end();
      await done;
    })();
    return closed;
  };
  return Object.assign(logger, { close });
}

const STDOUT_FD = 1;
