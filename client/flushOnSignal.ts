/**
 * run_client.sh stops benchmark clients with a signal. Without a handler Node exits at once and
 * every line still in memory is lost; this closes (flushes and fsyncs) the logs first, then exits.
 */
import { constants } from 'node:os';

export interface Closable {
  close(): Promise<void>;
  readonly path?: string;
}

export interface FlushOnSignalOptions {
  readonly signals?: readonly NodeJS.Signals[];
  /** A stuck disk must not keep the process alive forever: exit after this long regardless. */
  readonly timeoutMs?: number;
  /** How to end the process (tests replace it). Default: process.exit. */
  readonly exit?: (code: number) => void;
  /** Where to report failures. Default: stderr. */
  readonly log?: (message: string) => void;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The shell's convention for "killed by signal N", so scripts can tell a stop from a failure. */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * On SIGINT/SIGTERM, closes every writer in `writers` (read when the signal arrives, so a live Set
 * may gain writers later), then exits with 128 + the signal number, or 1 if a log failed to close.
 * A second signal exits at once. Returns a function that removes the handlers.
 */
export function installFlushOnSignal(writers: Iterable<Closable>, options: FlushOnSignalOptions = {}): () => void {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const log = options.log ?? ((message: string) => void process.stderr.write(`${message}\n`));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let closing = false;

  const onSignal = (signal: NodeJS.Signals): void => {
    const code = signalExitCode(signal);
    if (closing) {
      log(`${signal} again: exiting without waiting for the logs`);
      exit(code);
      return;
    }
    closing = true;
    const timer = setTimeout(() => {
      log(`logs not closed after ${timeoutMs} ms: exiting; they may be incomplete`);
      exit(1);
    }, timeoutMs);
    const list = [...writers];
    void Promise.allSettled(list.map((w) => w.close())).then((results) => {
      clearTimeout(timer);
      let failed = false;
      results.forEach((result, i) => {
        if (result.status === 'rejected') {
          failed = true;
          log(`could not close log ${list[i]?.path ?? `#${i}`}: ${String(result.reason)}`);
        }
      });
      exit(failed ? 1 : code);
    });
  };

  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}
