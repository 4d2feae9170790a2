/**
 * Groups the writes of one event-loop turn into one LevelDB batch (DESIGN.md "Performance").
 *
 * Why: every LevelDB write is a log append and, with sync, an fsync (milliseconds). At peak a
 * replica persists hundreds of small records per second from many code paths (acks, votes,
 * blocks); written one by one they would queue behind each other's fsyncs. Collected per turn,
 * they cost one log append and at most one fsync per turn, whatever their number.
 *
 * How:
 *  - enqueue() copies the ops into the pending native batch at once (so the caller may reuse its
 *    buffers) and schedules a flush on the next macrotask (setImmediate): everything enqueued in
 *    this turn, microtasks included, lands in the same batch.
 *  - The batch is written with sync if any enqueued group asked for sync.
 *  - One batch is in flight at a time. Ops enqueued meanwhile collect in the next batch, which is
 *    written after the in-flight one completes (pipelining: while LevelDB fsyncs, the next turns'
 *    writes accumulate). Batches therefore reach LevelDB in enqueue order.
 *  - Every enqueue of one batch gets the same promise (one allocation per batch, not per call),
 *    resolved when that batch is written — durable if the batch was synced. Because LevelDB
 *    applies batches in order, earlier batches are then written too.
 *  - A failed write makes the batcher fail for good: that batch, the pending one and every later
 *    enqueue reject with the same StoreWriteError. Writing on after a lost write could make later
 *    data durable without the earlier data it depends on; the replica must stop.
 */
import { performance } from 'node:perf_hooks';
import { assert } from '../../common/assert.js';
import type { DbOp, DbWriteBatch } from './db.js';
import { StoreWriteError, levelErrorDetail } from './errors.js';

/** What the batcher writes to: Db, or a fake in tests. */
export interface BatchTarget {
  newBatch(): DbWriteBatch;
}

/** Counters for metrics; cumulative since construction. Read them, do not write them. */
export interface WriteBatcherStats {
  batches: number;
  ops: number;
  /** Key plus value bytes handed to LevelDB. */
  bytes: number;
  syncBatches: number;
  /** Time from handing the last batch to LevelDB until it was written (with its fsync, if any). */
  lastBatchLatencyUs: number;
  totalBatchLatencyUs: number;
}

interface Pending {
  readonly batch: DbWriteBatch;
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  ops: number;
  bytes: number;
  sync: boolean;
}

const RESOLVED: Promise<void> = Promise.resolve();

export class WriteBatcher {
  readonly stats: WriteBatcherStats = { batches: 0, ops: 0, bytes: 0, syncBatches: 0, lastBatchLatencyUs: 0, totalBatchLatencyUs: 0 };

  private pending: Pending | null = null;
  /** The batch LevelDB is writing, if any. */
  private inFlight: Pending | null = null;
  private flushScheduled = false;
  private failure: StoreWriteError | null = null;
  private closed = false;
  private readonly flushNow = (): void => this.flush();

  constructor(private readonly target: BatchTarget) {}

  /**
   * Adds `ops` (one group, written atomically with the rest of its batch) to the next batch.
   * The promise resolves when that batch is written; with `sync`, when it is durable.
   * An empty group writes nothing and forces no fsync: it waits for the writes enqueued before it.
   */
  enqueue(ops: readonly DbOp[], options: { readonly sync: boolean }): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    assert(!this.closed, 'write enqueued after the store was closed');
    if (ops.length === 0) return this.pending?.done ?? this.inFlight?.done ?? RESOLVED;
    const p = this.pending ?? this.startPending();
    let bytes = 0;
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        if (op.type === 'put') {
          p.batch.put(op.key, op.value);
          bytes += op.key.length + op.value.length;
        } else {
          p.batch.del(op.key);
          bytes += op.key.length;
        }
      }
    } catch (error) {
      // An op LevelDB refuses is a programmer error. Part of this group may already be in the
      // batch, so the batch must never be written: fail everything rather than break atomicity.
      this.fail(new StoreWriteError(`an op was refused: ${levelErrorDetail(error)}`, { cause: error }));
      throw error;
    }
    p.ops += ops.length;
    p.bytes += bytes;
    p.sync ||= options.sync;
    if (!this.flushScheduled && this.inFlight === null) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
    return p.done;
  }

  /** Key plus value bytes enqueued but not yet handed to LevelDB: a backpressure signal. */
  get queuedBytes(): number {
    return this.pending?.bytes ?? 0;
  }

  /** Resolves when everything enqueued so far is written. */
  drain(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return this.pending?.done ?? this.inFlight?.done ?? RESOLVED;
  }

  /** Writes what is enqueued, then refuses further writes (a later enqueue asserts). */
  async close(): Promise<void> {
    const drained = this.drain();
    this.closed = true;
    await drained;
  }

  private startPending(): Pending {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const p: Pending = { batch: this.target.newBatch(), done, resolve, reject, ops: 0, bytes: 0, sync: false };
    this.pending = p;
    return p;
  }

  private flush(): void {
    this.flushScheduled = false;
    const p = this.pending;
    if (p === null || this.inFlight !== null || this.failure !== null) return;
    this.pending = null;
    this.inFlight = p;
    const startedMs = performance.now();
    p.batch.write(p.sync).then(
      () => this.written(p, startedMs),
      (error: unknown) => this.fail(new StoreWriteError(levelErrorDetail(error), { cause: error })),
    );
  }

  private written(p: Pending, startedMs: number): void {
    const latencyUs = Math.round((performance.now() - startedMs) * 1000);
    const s = this.stats;
    s.batches++;
    s.ops += p.ops;
    s.bytes += p.bytes;
    if (p.sync) s.syncBatches++;
    s.lastBatchLatencyUs = latencyUs;
    s.totalBatchLatencyUs += latencyUs;
    this.inFlight = null;
    p.resolve();
    // The next batch starts on a later macrotask, not here: the writers woken by resolve() run
    // as microtasks first, and what they enqueue should join it.
    if (this.pending !== null && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private fail(error: StoreWriteError): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const p of [this.inFlight, this.pending]) {
      if (p === null) continue;
      if (p !== this.inFlight) p.batch.discard();
      // A batch whose first group was refused was never handed out: nobody awaits it.
      if (p.ops > 0) p.reject(error);
    }
    this.inFlight = null;
    this.pending = null;
  }
}
