/**
 * Server-sent events (text/event-stream) carrying a JSON snapshot every interval, for the live
 * dashboard: the browser's EventSource reconnects on its own, and plain HTTP needs no library or
 * upgrade. The snapshot is made once per interval whoever listens, and only while someone does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { reply } from './http.js';

/** Open streams at once: a dashboard is a handful of operators' tabs, not a public feed; a
 *  forgotten script opening streams in a loop gets 503s instead of a replica that serialises
 *  status for thousands. */
export const MAX_STATUS_STREAMS = 32;
/** A viewer that does not read (a suspended tab, a stuck proxy) is dropped once this much waits
 *  for it: a snapshot is a few kB, so this is minutes of frames. */
export const MAX_STREAM_BUFFERED_BYTES = 1024 * 1024;
/** How often a snapshot goes out. */
export const STATUS_STREAM_INTERVAL_MS = 1_000;

export class StatusStream {
  private readonly viewers = new Set<ServerResponse>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private sending = false;

  constructor(
    private readonly snapshot: () => unknown,
    private readonly logger: Logger,
    private readonly intervalMs = STATUS_STREAM_INTERVAL_MS,
  ) {}

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** The route handler: keeps the response open and adds it to the viewers. */
  readonly attach = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.viewers.size >= MAX_STATUS_STREAMS) {
      reply(res, 503, 'text/plain', `too many status streams open (${MAX_STATUS_STREAMS}); poll /status instead\n`, { 'retry-after': '10' });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // The browser retries a dropped stream after this long.
    res.write(`retry: ${this.intervalMs * 2}\n\n`);
    this.viewers.add(res);
    req.on('close', () => this.detach(res));
    if (this.timer === null) {
      this.timer = setInterval(() => void this.send(), this.intervalMs);
      this.timer.unref();
    }
    void this.send([res]);
  };

  /** Ends every stream and stops the timer. */
  close(): void {
    for (const res of this.viewers) res.end();
    this.viewers.clear();
    this.stopTimer();
  }

  private detach(res: ServerResponse): void {
    this.viewers.delete(res);
    if (this.viewers.size === 0) this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async send(to: Iterable<ServerResponse> = this.viewers): Promise<void> {
    const periodic = to === this.viewers;
    if (periodic && this.sending) return; // a slow snapshot: skip a beat, do not pile up
    if (periodic) this.sending = true;
    try {
      const frame = `data: ${JSON.stringify(await this.snapshot())}\n\n`;
      for (const res of [...to]) {
        if (res.writableLength > MAX_STREAM_BUFFERED_BYTES) {
          res.destroy();
          this.detach(res);
        } else {
          res.write(frame);
        }
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'status stream snapshot failed');
    } finally {
      if (periodic) this.sending = false;
    }
  }
}
