/**
 * ConsensusStorage (consensus/storage.ts) on the replica's LevelDB, through the WriteBatcher.
 *
 * Layout (buckets in db.ts): Meta 'safety' and Meta 'committed' hold the records of records.ts;
 * Blocks[digest] = encodeBlock(block); BlockHeights[height ‖ digest] indexes every stored block by
 * height, so load() reads the blocks at or above the committed height and prune() finds the old
 * ones with one range scan each, without decoding any block.
 *
 * Sync policy: every apply() is written with sync, block-only ones included. Why not leave blocks
 * unsynced and count on the next synced write to carry them to disk:
 *  - The contract (storage.ts, point 2) promises durability on resolve, against machine crashes too.
 *  - Later records depend on earlier blocks: 'committed' names a block written by an earlier apply,
 *    and load() must then return it (the core asserts it does); highQc names a block the replica
 *    needs in order to lead from it. A synced write covers earlier unsynced ones only within one
 *    LevelDB log file: when the memtable fills, LevelDB (1.20, db_impl.cc MakeRoomForWrite) closes
 *    the old log without fsync and later syncs only the new one. Across that switch (every second
 *    or two at the peak write rate) a power loss could keep the synced 'committed' record and lose
 *    the unsynced block it names.
 *  - It is cheap: nearly every consensus apply carries a safety op anyway (a vote or a timeout);
 *    the others are rare (blocks learnt by block sync, a commit without a vote); and the batcher
 *    folds them into the turn's batch, which at peak is synced anyway for the ordering phase's
 *    acks. bench-store measured an fsync of a small write at ~0.2 ms p50 on the dev machine.
 * prune() is the exception: losing a deletion costs only disk space, and the next prune redoes it.
 */
import { assert } from '../../common/assert.js';
import { bytesEqual, toHex } from '../../common/bytes.js';
import { decodeBlock, encodeBlock, type DecodeContext } from '../../common/codec.js';
import { DIGEST_BYTES, type Digest } from '../../common/ids.js';
import { MAX_SYNC_BLOCKS, MAX_SYNC_RESPONSE_BYTES } from '../../common/limits.js';
import type { Block } from '../../common/messages.js';
import type { ConsensusStorage } from '../../consensus/storage.js';
import type { ConsensusPersistOp, RecoveredConsensus } from '../../consensus/types.js';
import { Bucket, U64_BYTES, bucketKey, bucketKeyU64, nameKey, readU64, u64Bytes, type Db, type DbOp } from './db.js';
import { decodeCommittedRecord, decodeSafetyRecord, encodeCommittedRecord, encodeSafetyRecord, type CommittedTip } from './records.js';
import type { WriteBatcher } from './writeBatcher.js';

/** Committed blocks kept at and below the committed tip by prune(), so that block sync can serve a
 *  peer that lags (a restart, a short partition) without a checkpoint. 4096 blocks are 64 sync
 *  responses of MAX_SYNC_BLOCKS, and seconds of history even at one view per millisecond (loopback,
 *  pipeline fillers); a peer further behind needs a checkpoint, which is what calls prune(). The
 *  disk cost is modest: blocks carry digests and certificates, the batch bytes live in Batches. */
export const RETAIN_COMMITTED_BLOCKS = 4096;

/** Blocks deleted per prune batch: bounds the batch (2 small deletes per block) and lets the
 *  consensus writes queued behind it through between chunks. */
const PRUNE_BATCH_BLOCKS = 512;

const SAFETY_KEY = nameKey('safety');
const COMMITTED_KEY = nameKey('committed');
const INDEX_KEY_BYTES = U64_BYTES + DIGEST_BYTES;
const EMPTY = new Uint8Array(0);

/** See the sync policy above. */
const CONSENSUS_WRITE = { sync: true } as const;
const PRUNE_WRITE = { sync: false } as const;

export class LevelConsensusStorage implements ConsensusStorage {
  private readonly ctx: DecodeContext;

  constructor(
    private readonly db: Db,
    private readonly writer: WriteBatcher,
    replicaCount: number,
    /** Committed blocks prune() keeps below the tip whatever it is asked (tests lower it). */
    private readonly retainBlocks = RETAIN_COMMITTED_BLOCKS,
  ) {
    this.ctx = { replicaCount };
  }

  /** One atomic, synced batch (shared with the other writes of this event-loop turn). */
  async apply(ops: readonly ConsensusPersistOp[]): Promise<void> {
    if (ops.length === 0) return;
    const dbOps: DbOp[] = [];
    for (const op of ops) {
      switch (op.kind) {
        case 'safety':
          dbOps.push({ type: 'put', key: bucketKey(Bucket.Meta, SAFETY_KEY), value: encodeSafetyRecord(op.state) });
          break;
        case 'block':
          assert(op.digest.length === DIGEST_BYTES, 'block op needs a 32-byte digest');
          dbOps.push(
            { type: 'put', key: bucketKey(Bucket.Blocks, op.digest), value: encodeBlock(op.block) },
            { type: 'put', key: bucketKeyU64(Bucket.BlockHeights, op.block.height, op.digest), value: EMPTY },
          );
          break;
        case 'committed':
          dbOps.push({ type: 'put', key: bucketKey(Bucket.Meta, COMMITTED_KEY), value: encodeCommittedRecord(op) });
          break;
      }
    }
    return this.writer.enqueue(dbOps, CONSENSUS_WRITE);
  }

  async load(): Promise<RecoveredConsensus> {
    const safetyBytes = await this.db.get(Bucket.Meta, SAFETY_KEY);
    const safety = safetyBytes === undefined ? null : decodeSafetyRecord(safetyBytes, this.ctx.replicaCount);
    const committed = await this.committedTip();
    const index: { height: number; digest: Digest }[] = [];
    for await (const key of this.db.iterateKeys(Bucket.BlockHeights, { gte: u64Bytes(committed?.height ?? 0) })) {
      index.push(indexEntry(key));
    }
    const values = await this.db.getMany(Bucket.Blocks, index.map((e) => e.digest));
    const blocks = index.map((e, i) => {
      const raw = values[i];
      assert(raw !== undefined, `store corrupted: BlockHeights lists block ${toHex(e.digest)} at height ${e.height}, but Blocks does not hold it`);
      const block = this.decode(raw, e.digest);
      assert(block.height === e.height, `store corrupted: block ${toHex(e.digest)} has height ${block.height}, indexed at ${e.height}`);
      return block;
    });
    if (committed !== null) {
      assert(
        index.some((e) => bytesEqual(e.digest, committed.digest)),
        `store corrupted: the committed block ${toHex(committed.digest)} at height ${committed.height} is missing`,
      );
    }
    return { safety, committed, blocks };
  }

  /** The block `digest` and its ancestors, newest first, stopping at a block not held (pruned or
   *  never stored) or at genesis. `maxBlocks` comes from a peer's request, so it is capped at
   *  MAX_SYNC_BLOCKS, and reading stops once MAX_SYNC_RESPONSE_BYTES are read (one block at least):
   *  the response must fit a frame, and this bounds the memory one request can make us use. */
  async readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]> {
    const max = Math.min(maxBlocks, MAX_SYNC_BLOCKS);
    const out: Block[] = [];
    let next: Digest = digest;
    let bytes = 0;
    while (out.length < max) {
      const raw = await this.db.get(Bucket.Blocks, next);
      if (raw === undefined) break;
      const block = this.decode(raw, next);
      if (block.height === 0) break;
      bytes += raw.length;
      if (out.length > 0 && bytes > MAX_SYNC_RESPONSE_BYTES) break;
      out.push(block);
      next = block.parent;
    }
    return out;
  }

  /**
   * Deletes the stored blocks below `belowHeight`, but never any of the RETAIN_COMMITTED_BLOCKS
   * newest committed ones, nor anything at or above the durable committed height. Forks below that
   * height are dead and go too. `alsoDelete` may add deletions of what a pruned block alone
   * referenced (its batches), written with it. Returns the number of blocks deleted.
   */
  async prune(belowHeight: number, alsoDelete?: (block: Block) => DbOp[]): Promise<number> {
    // The durable committed tip, not one still queued: pruning against it only errs on keeping.
    const committed = await this.committedTip();
    if (committed === null) return 0;
    const cutoff = Math.min(belowHeight, committed.height - this.retainBlocks + 1);
    if (cutoff <= 0) return 0;
    let deleted = 0;
    for await (const keys of this.db.keyBatches(Bucket.BlockHeights, { lt: u64Bytes(cutoff) }, PRUNE_BATCH_BLOCKS)) {
      const ops: DbOp[] = [];
      const pruned = keys.map(indexEntry);
      keys.forEach((key, i) => ops.push({ type: 'del', key: bucketKey(Bucket.Blocks, pruned[i]!.digest) }, { type: 'del', key: bucketKey(Bucket.BlockHeights, key) }));
      if (alsoDelete !== undefined) {
        const raws = await this.db.getMany(Bucket.Blocks, pruned.map((e) => e.digest));
        raws.forEach((raw, i) => {
          if (raw !== undefined) ops.push(...alsoDelete(this.decode(raw, pruned[i]!.digest)));
        });
      }
      await this.writer.enqueue(ops, PRUNE_WRITE);
      deleted += pruned.length;
    }
    return deleted;
  }

  private async committedTip(): Promise<CommittedTip | null> {
    const bytes = await this.db.get(Bucket.Meta, COMMITTED_KEY);
    return bytes === undefined ? null : decodeCommittedRecord(bytes);
  }

  private decode(raw: Uint8Array, digest: Digest): Block {
    const result = decodeBlock(raw, this.ctx);
    if (!result.ok) assert(false, `store corrupted: block ${toHex(digest)} does not decode: ${result.error.message}`);
    return result.value;
  }
}

function indexEntry(key: Uint8Array): { height: number; digest: Digest } {
  assert(key.length === INDEX_KEY_BYTES, `store corrupted: a BlockHeights key of ${key.length} bytes, expected ${INDEX_KEY_BYTES}`);
  return { height: readU64(key, 0), digest: key.slice(U64_BYTES) as Digest };
}
