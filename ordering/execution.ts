/**
 * Execution of committed entries (DESIGN.md "Execution"): a queue in committed order, each batch
 * run through the Executor once its bytes are here (fetched when missing; never skipped), and a
 * signed Executed notice for its collector. During a replay after a restart, batches execute
 * silently and are reported to the caller instead. Each committed block ends with a marker in the
 * queue, so whoever takes checkpoints learns when execution is through a block (even one without
 * entries).
 */
import { readBatchHeader } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { Block, BlockPayload, ExecutedMsg, OrderingCert, SealEntry } from '../common/messages.js';
import { executedMessage } from '../common/signing.js';
import type { BatchStore } from './batchStore.js';
import type { BatchSupply } from './batchSupply.js';
import type { CoreContext } from './context.js';
import { Executor, type ExecutorState } from './executor.js';
import { effectiveEntries } from './payload.js';
import { GENESIS_SLOT } from './slots.js';
import type { StateMachine } from './stateMachine.js';
import type { ExecutionRecord } from './types.js';
import { bitmapGet } from '../common/bitmap.js';

/** Executed notices kept to answer a collector that asks again (a repeated Sequence): each holds
 *  its batch's results (~5 KB for 1000 puts: ~20 MiB for the cache), so a few thousand cover seconds of
 *  peak traffic. */
const EXECUTED_NOTICE_CACHE = 4_096;
/** ...and at most this many bytes of results among them: at peak (~5 KB of results per batch of
 *  1000 puts, ~80 batches a second) 4 MiB still covers ~10 s of asking again, where 4,096 notices
 *  held ~20 MiB, the largest block of a replica's buffers in a heap snapshot at peak. */
export const EXECUTED_NOTICE_CACHE_BYTES = 4 * 1024 * 1024;
/** The consumed head of the queue is cut off once it is this long and over half the queue. */
const QUEUE_COMPACT_AT = 4_096;
/** While execution waits for a batch, the bytes of up to this many queued entries after it are
 *  fetched too: a replica back from a crash lacks every batch committed while it was down, and
 *  fetching them one round trip at a time executed ~60 blocks a second, slower than a cluster at
 *  peak commits; 16 a round trip is hundreds of batches a second. Their bytes wait in memory for
 *  their turn: a few hundred KiB at the benchmark's batch size, 16 × MAX_BATCH_BYTES (64 MiB) if a
 *  client made every committed batch as large as allowed. */
const EXECUTION_PREFETCH_ENTRIES = 16;
/** No more is asked for ahead while batch bytes held in memory reach this: fetches ahead never
 *  pile onto a replica already holding much (it then fetches only what execution waits for). */
const EXECUTION_PREFETCH_MAX_MEMORY_BYTES = 32 * 1024 * 1024;

interface QueuedEntry {
  readonly kind: 'entry';
  readonly entry: SealEntry;
  readonly oc: OrderingCert;
  readonly key: string;
  readonly height: number;
  readonly holders: readonly ReplicaId[];
}

/** After a block's entries: once through here, execution is through every slot up to its end. */
export interface ExecutedBlock {
  readonly kind: 'blockEnd';
  readonly block: Block;
  readonly digest: Digest;
  readonly fromSlot: Slot;
  readonly toSlot: Slot;
}

type QueuedExecution = QueuedEntry | ExecutedBlock;

export interface ExecutionParts {
  readonly batches: BatchStore;
  readonly supply: BatchSupply;
  /** Sends a notice to the batch's collector, by its key (hex): the client connections proven to
   *  hold it, or the gateway replica whose key it is (a peer, or this replica). */
  readonly notify: (collectorKey: string, notice: ExecutedMsg) => void;
  /** Execution is through this block (its entries and every one before). */
  readonly onBlockExecuted: (block: ExecutedBlock) => void;
}

/** Where execution starts: a checkpoint's state and the end of its block's range. */
export interface ExecutionStart {
  readonly executor: ExecutorState;
  readonly executedThroughSlot: Slot;
}

/** An Executed notice kept for its collector, which may ask for it again. */
export interface KeptNotice {
  readonly notice: ExecutedMsg;
  /** The batch's collector key (hex): only it may have the notice again. */
  readonly collectorKey: string;
}

export class ExecutionPipeline {
  readonly executor: Executor;
  private readonly queue: QueuedExecution[] = [];
  private head = 0;
  /** Queue index up to which missing bytes have been asked for ahead of the head. */
  private prefetchedTo = 0;
  /** Keys of batches queued for execution (their bytes must stay in memory). */
  private readonly queued = new Set<string>();
  private readonly notices = new Map<string, KeptNotice>();
  private noticeBytes = 0;
  /** The end of the last block whose entries have all been through execution (see executedSlot). */
  private executedThroughSlot: Slot = GENESIS_SLOT;
  private replaying = false;
  /** What the current replay executed (returned by the replay, for checkers and logs). */
  private readonly replayed: ExecutionRecord[] = [];

  constructor(
    private readonly ctx: CoreContext,
    private readonly parts: ExecutionParts,
    stateMachine: StateMachine,
    start: ExecutionStart | null,
  ) {
    this.executor = new Executor(stateMachine, start?.executor ?? null);
    if (start !== null) this.executedThroughSlot = start.executedThroughSlot;
  }

  get waiting(): number {
    return this.queue.length - this.head;
  }

  get isReplaying(): boolean {
    return this.replaying;
  }

  isQueued(key: string): boolean {
    return this.queued.has(key);
  }

  notice(key: string): KeptNotice | undefined {
    return this.notices.get(key);
  }

  /** Queues a committed block's entries, each digest once at its lowest timestamp, then its end. */
  enqueue(block: Block, digest: Digest, payload: BlockPayload): void {
    const holders = holdersOf(payload);
    const height = block.height;
    for (const { entry, oc } of effectiveEntries(payload)) {
      const key = toHex(entry.digest);
      this.queue.push({ kind: 'entry', entry, oc, key, height, holders: holders.get(key) ?? [] });
      this.queued.add(key);
    }
    this.queue.push({ kind: 'blockEnd', block, digest, fromSlot: payload.fromSlot, toSlot: payload.toSlot });
  }

  /** Executes queued entries in order while their bytes are here; fetches the first missing one,
   *  and the missing ones just after it, and waits for it (never skips). */
  drain(): void {
    const queue = this.queue;
    while (this.head < queue.length) {
      const item = queue[this.head]!;
      if (item.kind === 'blockEnd') {
        this.head++;
        this.executedThroughSlot = item.toSlot;
        this.parts.onBlockExecuted(item);
        continue;
      }
      if (!this.executor.isExecuted(item.key)) {
        const bytes = this.parts.batches.get(item.key);
        if (bytes === undefined) {
          this.parts.supply.wantForExecution(item.entry.digest, item.holders);
          this.prefetchAfterHead();
          break;
        }
        this.executeOne(item, bytes);
      }
      this.queued.delete(item.key);
      this.head++;
    }
    if (this.head > QUEUE_COMPACT_AT && this.head * 2 > queue.length) {
      queue.splice(0, this.head);
      this.prefetchedTo = Math.max(0, this.prefetchedTo - this.head);
      this.head = 0;
    }
  }

  /** Asks for the missing bytes of the entries queued just after the head (each index once). */
  private prefetchAfterHead(): void {
    if (this.parts.batches.bytesInMemory >= EXECUTION_PREFETCH_MAX_MEMORY_BYTES) return;
    const queue = this.queue;
    const end = Math.min(queue.length, this.head + 1 + EXECUTION_PREFETCH_ENTRIES);
    for (let i = Math.max(this.head + 1, this.prefetchedTo); i < end; i++) {
      const item = queue[i]!;
      if (item.kind === 'blockEnd' || this.executor.isExecuted(item.key) || this.parts.batches.get(item.key) !== undefined) continue;
      this.parts.supply.wantForExecution(item.entry.digest, item.holders);
    }
    this.prefetchedTo = Math.max(this.prefetchedTo, end);
  }

  /** Every committed slot up to here has been through execution. */
  executedSlot(committedSlot: Slot): Slot {
    return this.head >= this.queue.length ? committedSlot : this.executedThroughSlot;
  }

  /** The end of the last block execution is through. */
  get executedThrough(): Slot {
    return this.executedThroughSlot;
  }

  /** Runs `body` (which commits and drains) as a replay: silent, its executions collected. */
  replay(body: () => void): readonly ExecutionRecord[] {
    this.replaying = true;
    try {
      body();
    } finally {
      this.replaying = false;
    }
    return this.replayed.splice(0);
  }

  private executeOne(item: QueuedEntry, bytes: Uint8Array): void {
    const { ctx } = this;
    const header = readBatchHeader(bytes);
    const expiresSlot = header.ok ? ctx.slots.slotOf(header.value.expiresAtUs) : GENESIS_SLOT;
    const done = this.executor.execute(item.entry.digest, item.key, item.entry.ts, bytes, expiresSlot, item.height);
    this.parts.batches.release(item.key);
    if (done === null) return;
    const collectorKey = header.ok ? toHex(header.value.collectorKey) : '';
    const record: ExecutionRecord = {
      position: done.position,
      digest: item.entry.digest,
      ts: item.entry.ts,
      ocHash: item.entry.ocHash,
      blockHeight: item.height,
      commands: done.commands,
      collectorKey,
      results: done.results,
      oc: item.oc,
      batch: bytes,
      failure: done.failure === null ? null : describeThrown(done.failure),
    };
    // A replay re-executes silently: its notices went out before the restart, or are owed by no one.
    if (this.replaying) {
      this.replayed.push(record);
      return;
    }
    const resultsHash = ctx.crypto.sha256(done.results);
    const notice: ExecutedMsg = {
      type: 'executed',
      digest: item.entry.digest,
      position: done.position,
      ts: item.entry.ts,
      results: done.results,
      replica: ctx.self,
      sig: ctx.signer.sign(executedMessage(ctx.config.clusterId, item.entry.digest, done.position, item.entry.ts, resultsHash)),
    };
    ctx.out.executed.push(record);
    if (collectorKey === '') return;
    this.keepNotice(item.key, { notice, collectorKey });
    this.parts.notify(collectorKey, notice);
  }

  /** Keeps a notice for its collector, dropping the oldest past either bound of the cache. */
  private keepNotice(key: string, kept: KeptNotice): void {
    const old = this.notices.get(key);
    if (old !== undefined) {
      this.notices.delete(key);
      this.noticeBytes -= old.notice.results.length;
    }
    this.notices.set(key, kept);
    this.noticeBytes += kept.notice.results.length;
    while (this.notices.size > EXECUTED_NOTICE_CACHE || (this.noticeBytes > EXECUTED_NOTICE_CACHE_BYTES && this.notices.size > 1)) {
      const [oldestKey, oldest] = this.notices.entries().next().value as [string, KeptNotice];
      this.notices.delete(oldestKey);
      this.noticeBytes -= oldest.notice.results.length;
    }
  }

  /** Bytes of results held by the notice cache. */
  get noticeCacheBytes(): number {
    return this.noticeBytes;
  }
}

/** What a state machine threw, as one line for the log. */
function describeThrown(thrown: unknown): string {
  return thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
}

/** Which replicas' seals list each entry (they hold its bytes), from the include bitmaps. */
function holdersOf(payload: BlockPayload): Map<string, ReplicaId[]> {
  const holders = new Map<string, ReplicaId[]>();
  for (const seal of payload.seals) {
    for (let i = 0; i < payload.entries.length; i++) {
      if (!bitmapGet(seal.include, i)) continue;
      const key = toHex(payload.entries[i]!.digest);
      const list = holders.get(key);
      if (list === undefined) holders.set(key, [seal.replica]);
      else list.push(seal.replica);
    }
  }
  return holders;
}
