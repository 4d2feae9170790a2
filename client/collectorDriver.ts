/**
 * The I/O shell around one ordering/ Collector (the pure state machine that drives batches through
 * the ordering phase): feeds it submissions and replica replies with the current time, sends what
 * it asks to send (each message encoded once, even when it goes to every replica), hands its events
 * to the owner, and ticks it at its nextWakeUs with a single timer.
 *
 * One driver may carry batches of many logical clients (the benchmark shares one between all its
 * clients): the Collector keys batches by digest and never looks at the collector id inside.
 *
 * Abandoned batches: the Collector has no way to drop a batch, and keeps re-sending a sequenced
 * batch until f+1 replicas report its execution. A caller that gave up on a batch (a timeout)
 * calls abandon(); its events are then ignored, and once every batch the Collector still holds is
 * abandoned the Collector is replaced by a fresh one, so a lost batch cannot cost re-sends forever.
 */
import { toHex } from '../common/bytes.js';
import { encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { ReplicaToCollectorMsg } from '../common/messages.js';
import { Collector, type CollectorEvent, type CollectorOutput, type CollectorStats } from '../ordering/collector.js';
import type { ReplicaLinks } from './links.js';

export interface CollectorDriverOptions {
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly links: ReplicaLinks;
  /** Wall-clock µs (batch expiry is compared with replicas' clocks). */
  readonly clock: () => number;
  readonly verifySignatures: boolean;
  readonly retryUs: number;
  readonly maxRetryUs: number;
  readonly onEvent: (event: CollectorEvent, nowUs: number) => void;
}

/** Timers fire no earlier than asked, but a wake a little late costs nothing: round up to 1 ms. */
const MIN_TIMER_MS = 1;

export class CollectorDriver {
  private collector: Collector;
  private readonly abandoned = new Set<string>();
  private readonly retired: CollectorStats[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAtUs = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(private readonly opts: CollectorDriverOptions) {
    this.collector = this.newCollector();
  }

  /** Batches the Collector still drives (abandoned ones included until it is recycled). */
  get pending(): number {
    return this.collector.pending;
  }

  submit(bytes: Uint8Array, digest: Digest, expiresAtUs: number): void {
    if (this.closed) return;
    this.step({ kind: 'submit', batch: bytes, digest, expiresAtUs });
  }

  onReply(from: ReplicaId, msg: ReplicaToCollectorMsg): void {
    if (this.closed) return;
    this.step({ kind: 'reply', from, msg });
  }

  /** The owner gave up on this batch: its events are dropped from now on. */
  abandon(digest: Digest): void {
    this.abandoned.add(toHex(digest));
    this.recycleIfIdle();
  }

  /** Counters over the driver's whole life (across recycled Collectors). */
  stats(): CollectorStats {
    const total: CollectorStats = { submitted: 0, ordered: 0, executed: 0, failed: 0, restarts: 0, resends: 0, refusals: {}, badReplies: 0 };
    for (const s of [...this.retired, this.collector.stats]) {
      total.submitted += s.submitted;
      total.ordered += s.ordered;
      total.executed += s.executed;
      total.failed += s.failed;
      total.restarts += s.restarts;
      total.resends += s.resends;
      total.badReplies += s.badReplies;
      for (const [reason, count] of Object.entries(s.refusals)) total.refusals[reason] = (total.refusals[reason] ?? 0) + count;
    }
    return total;
  }

  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  private newCollector(): Collector {
    const { config, crypto, verifySignatures, retryUs, maxRetryUs } = this.opts;
    return new Collector({ config, crypto, verifySignatures, retryUs, maxRetryUs });
  }

  private step(input: Parameters<Collector['step']>[0]): void {
    const nowUs = this.opts.clock();
    const out = this.collector.step(input, nowUs);
    this.apply(out, nowUs);
    this.schedule(nowUs);
  }

  private apply(out: CollectorOutput, nowUs: number): void {
    const { links } = this.opts;
    for (const { to, msg } of out.send) {
      const frame = encodeMessage(msg);
      if (to === 'all') links.sendAll(frame);
      else links.send(to, frame);
    }
    for (const event of out.events) {
      if (this.abandoned.size > 0) {
        const key = toHex(event.digest);
        if (this.abandoned.has(key)) {
          if (event.kind !== 'ordered') this.abandoned.delete(key);
          continue;
        }
      }
      this.opts.onEvent(event, nowUs);
    }
    if (this.abandoned.size > 0) this.recycleIfIdle();
  }

  private recycleIfIdle(): void {
    if (this.abandoned.size === 0 || this.collector.pending > this.abandoned.size) return;
    // Every batch left is abandoned. (pending < abandoned cannot happen: an abandoned batch leaves
    // the Collector only through an event, which removes it from `abandoned` above.)
    this.retired.push(this.collector.stats);
    this.collector = this.newCollector();
    this.abandoned.clear();
    this.clearTimer();
  }

  /** One timer, at the Collector's next deadline; moved only when that deadline comes sooner. */
  private schedule(nowUs: number): void {
    if (this.closed) return;
    const next = this.collector.nextWakeUs();
    if (next === null) {
      this.clearTimer();
      return;
    }
    if (this.timer !== null && this.timerAtUs <= next) return;
    this.clearTimer();
    this.timerAtUs = next;
    const delayMs = Math.max(MIN_TIMER_MS, Math.ceil((next - nowUs) / 1000));
    this.timer = setTimeout(() => this.onTimer(), delayMs);
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAtUs = Number.POSITIVE_INFINITY;
    if (!this.closed) this.step({ kind: 'tick' });
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAtUs = Number.POSITIVE_INFINITY;
  }
}
