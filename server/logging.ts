/**
 * The one way server processes make a logger: pino, to a file or to stdout, written asynchronously
 * (pino.destination with sync: false) so logging never blocks the event loop on a disk or a pipe.
 * close() writes out what is buffered and closes the file, so call it on shutdown (a signal
 * handler) or the tail of the log may be lost.
 */
import { once } from 'node:events';
import { pino, type Logger, type LevelWithSilent } from 'pino';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

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
  const logger = pino(settings, destination);
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      const done = once(destination, 'close'); // rejects if the stream reports an error first
      destination.end(); // writes what is buffered (after the file opens, if it has not yet), then closes; never closes stdout
      await done;
    })();
    return closed;
  };
  return Object.assign(logger, { close });
}

const STDOUT_FD = 1;
