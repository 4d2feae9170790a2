/**
 * Batches a replica timestamped in phase 1 and holds until they are sequenced or can no longer be
 * (their expiry slot is committed). Bounded per source and in total; a source over its bound loses
 * its own oldest batches, and when the total is reached the source holding the most loses its
 * oldest, so a flooding client cannot push out honest batches.
 */
import type { Digest, Slot } from '../common/ids.js';
import type { BatchHeader } from '../common/batch.js';
import { MAX_PENDING_BATCHES_PER_CONNECTION, MAX_PENDING_BYTES } from '../common/limits.js';

export interface PendingBatch {
  readonly key: string;
  readonly digest: Digest;
  readonly bytes: Uint8Array;
  readonly header: BatchHeader;
  readonly source: string;
  readonly ts: number;
  readonly tsSig: Uint8Array;
  readonly expiresSlot: Slot;
}

interface SourceQueue {
  keys: { key: string; seq: number }[];
  head: number;
  count: number;
  bytes: number;
}

/** A source's key list is compacted when it holds this many more entries than live batches (and
 *  over half are stale): amortised O(1) per removal, and a source that always has a few batches
 *  pending (a busy collector, a gateway) never holds more than this many stale entries. */
const STALE_KEYS_BEFORE_COMPACT = 1_024;

export class PendingBatches {
  private readonly byKey = new Map<string, PendingBatch>();
  /** Per source, its pending keys in arrival order (a key may be stale after removal: stale ones
   *  are dropped from the head as they go, and the whole list is compacted once mostly stale). */
  private readonly bySource = new Map<string, SourceQueue>();
  /** Arrival number of each held batch: a key added again is the newest, its old place is stale. */
  private readonly arrival = new Map<string, number>();
  private arrivals = 0;
  private totalBytes = 0;
  evictions = 0;

  constructor(
    private readonly maxPerSource = MAX_PENDING_BATCHES_PER_CONNECTION,
    private readonly maxBytes = MAX_PENDING_BYTES,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get(key: string): PendingBatch | undefined {
    return this.byKey.get(key);
  }

  add(batch: PendingBatch): void {
    this.remove(batch.key);
    while ((this.bySource.get(batch.source)?.count ?? 0) >= this.maxPerSource) this.evictOldest(batch.source);
    while (this.totalBytes + batch.bytes.length > this.maxBytes && this.byKey.size > 0) this.evictOldest(this.largestSource());
    let src = this.bySource.get(batch.source);
    if (src === undefined) {
      src = { keys: [], head: 0, count: 0, bytes: 0 };
      this.bySource.set(batch.source, src);
    }
    const seq = this.arrivals++;
    this.arrival.set(batch.key, seq);
    src.keys.push({ key: batch.key, seq });
    src.count++;
    src.bytes += batch.bytes.length;
    this.byKey.set(batch.key, batch);
    this.totalBytes += batch.bytes.length;
  }

  remove(key: string): PendingBatch | undefined {
    const batch = this.byKey.get(key);
    if (batch === undefined) return undefined;
    this.byKey.delete(key);
    this.arrival.delete(key);
    this.totalBytes -= batch.bytes.length;
    const src = this.bySource.get(batch.source)!;
    src.count--;
    src.bytes -= batch.bytes.length;
    if (src.count === 0) this.bySource.delete(batch.source);
    else this.dropStale(src, batch.source);
    return batch;
  }

  /** Entries in the per-source key lists, live and stale (a bound the tests check). */
  get trackedKeys(): number {
    let n = 0;
    for (const src of this.bySource.values()) n += src.keys.length - src.head;
    return n;
  }

  private isLive(entry: { key: string; seq: number }, source: string): boolean {
    return this.arrival.get(entry.key) === entry.seq && this.byKey.get(entry.key)?.source === source;
  }

  /** Batches mostly leave in arrival order: stale entries at the head go at once; the list is
   *  rebuilt from its live entries once it is mostly stale entries further in. */
  private dropStale(src: SourceQueue, source: string): void {
    while (src.head < src.keys.length && !this.isLive(src.keys[src.head]!, source)) src.head++;
    const held = src.keys.length - src.head;
    if (held - src.count > STALE_KEYS_BEFORE_COMPACT && held > 2 * src.count) {
      src.keys = src.keys.slice(src.head).filter((e) => this.isLive(e, source));
      src.head = 0;
    } else if (src.head > STALE_KEYS_BEFORE_COMPACT && src.head * 2 > src.keys.length) {
      src.keys = src.keys.slice(src.head);
      src.head = 0;
    }
  }

  /** Drops batches that can no longer be sequenced: their expiry slot is committed. */
  pruneExpired(committedThrough: Slot): void {
    for (const [key, b] of this.byKey) if (b.expiresSlot <= committedThrough) this.remove(key);
  }

  private evictOldest(source: string): void {
    const src = this.bySource.get(source);
    if (src === undefined) return;
    // remove() drops the stale entries its removal leaves at the head (dropStale).
    while (src.head < src.keys.length) {
      const entry = src.keys[src.head++]!;
      if (this.isLive(entry, source)) {
        this.remove(entry.key);
        this.evictions++;
        return;
      }
    }
  }

  private largestSource(): string {
    let best = '';
    let bestBytes = -1;
    for (const [source, src] of this.bySource) {
      if (src.bytes > bestBytes) {
        best = source;
        bestBytes = src.bytes;
      }
    }
    return best;
  }
}
