/**
 * ReplicaStorage (ordering/storage.ts) on the replica's LevelDB: the consensus part through
 * LevelConsensusStorage, the ordering part in the ordering buckets (db.ts):
 *
 *   Batches[digest]                    batch bytes, as received (hashed to the digest)
 *   Acks[slot ‖ digest ‖ ocHash]       the ack given: ts, ack signature, OC (orderingRecords.ts)
 *   OrderingMeta 'tsReservation'       timestamps up to this may be given (the next start is above)
 *   OrderingMeta 'frontier'            the sealed frontier
 *   OrderingMeta 'acksPrunedThrough'   acks at or below this slot are dead (see pruning below)
 *   OrderingMeta 'identity'            the cluster id and replica id that own this store
 *
 * Atomicity: one apply() is one write group. Its consensus ops go through LevelConsensusStorage
 * .apply and its ordering ops through the same WriteBatcher, both enqueued synchronously within
 * this call; the batcher collects everything enqueued in one event-loop turn into one LevelDB
 * batch, so they land together or not at all.
 *
 * Sync policy (see consensusStore.ts for the consensus half): every group that carries an ack, a
 * batch, a timestamp reservation or a frontier is synced — an ack must survive because later seals
 * list it; held batch bytes are what a vote promises; the reservation keeps timestamps increasing
 * across restarts; the frontier must be durable before a seal relying on it leaves. Only the ack
 * pruning is written without sync: losing a deletion costs disk space, never safety.
 *
 * Pruning: `pruneAcks` writes the new 'acksPrunedThrough' mark in the group itself (so load() never
 * returns a pruned ack, even before the deletion runs), then deletes the keys in the background by
 * range, in bounded unsynced batches. `pruneBelowCheckpoint` (a stable checkpoint: nothing below it
 * is needed to restart or by a peer that lags less than a checkpoint interval) deletes in the
 * background, in bounded unsynced batches: older checkpoints, the blocks below it with the batches
 * they committed, and batches that expired before it (found through BatchExpiry). A deletion lost
 * in a crash costs disk space until the next prune, never safety.
 *
 * Checkpoints (checkpointRecords.ts): the chunks of one this replica took are written synced, then
 * its meta record; one fetched from peers arrives as synced `checkpointChunk` groups and becomes
 * held with the `checkpointInstalled` group. Chunks without a meta record (a fetch cut short by a
 * crash) are deleted at open.
 */
import { assert } from '../../common/assert.js';
import { readBatchHeader } from '../../common/batch.js';
import { bytesEqual, toHex } from '../../common/bytes.js';
import { decodeBlock, decodeBlockPayload, encodeCheckpointManifest, type DecodeContext } from '../../common/codec.js';
import type { CryptoBackend } from '../../common/crypto/types.js';
import { DIGEST_BYTES, type Digest, type Height, type Slot } from '../../common/ids.js';
import type { Block, CheckpointCert } from '../../common/messages.js';
import { captureChunks, ManifestBuilder, type CheckpointCapture, type StoredCheckpoint } from '../../ordering/checkpointFormat.js';
import { CheckpointSource, isConsensusOp, type LocalCheckpoint, type ReplicaRecovery, type ReplicaStorage } from '../../ordering/storage.js';
import type { ConsensusPersistOp } from '../../consensus/types.js';
import { effectiveEntries } from '../../ordering/payload.js';
import type { ReplicaPersistOp } from '../../ordering/types.js';
import { LevelConsensusStorage } from './consensusStore.js';
import { Bucket, Db, bucketKey, nameKey, u64Bytes, type DbOp, type DbOptions } from './db.js';
import { StoreOpenError } from './errors.js';
import {
  ackKey,
  decodeAckRecord,
  decodeIdentityRecord,
  decodeU64Record,
  encodeAckRecord,
  encodeIdentityRecord,
  encodeU64Record,
  type StoreIdentity,
  type StoredAck,
} from './orderingRecords.js';
import {
  batchExpiryDigest,
  batchExpiryKey,
  checkpointChunkKey,
  checkpointKeyOwner,
  checkpointMetaKey,
  decodeCheckpointMeta,
  encodeCheckpointMeta,
} from './checkpointRecords.js';
import { decodeCommittedRecord } from './records.js';
import { WriteBatcher } from './writeBatcher.js';

/** Ack keys deleted per background prune batch: bounds each batch (one ~73-byte delete per ack)
 *  and lets the replica's own writes through between chunks. */
const PRUNE_BATCH_ACKS = 1_024;
/** Expired batches (or checkpoint chunks) deleted per background prune batch, likewise. */
const PRUNE_BATCH_KEYS = 1_024;

/** Blocks per chunk of committedChain() when the caller does not say: a chunk holds the blocks'
 *  batches in memory at once, so at ~1 MB of batches per block at peak this is ~64 MB. */
export const DEFAULT_REPLAY_CHUNK_BLOCKS = 64;

const RESERVATION_KEY = nameKey('tsReservation');
const FRONTIER_KEY = nameKey('frontier');
const PRUNED_KEY = nameKey('acksPrunedThrough');
const IDENTITY_KEY = nameKey('identity');
/** The consensus store's committed-tip record (consensusStore.ts), read to walk the chain. */
const COMMITTED_KEY = nameKey('committed');

const SYNCED = { sync: true } as const;
const EMPTY = new Uint8Array(0);
const UNSYNCED = { sync: false } as const;

export interface ReplicaStoreOptions extends DbOptions {
  readonly replicaCount: number;
  /** Hashes checkpoint chunks as they are written. */
  readonly crypto: CryptoBackend;
  /** Committed blocks kept below the tip by every prune (default RETAIN_COMMITTED_BLOCKS). */
  readonly retainCommittedBlocks?: number;
  /** Checked against (or, in a new store, written as) the store's owner: a store written for
   *  another cluster or replica is refused instead of misread. */
  readonly identity: StoreIdentity;
}

/** Counters for /status and metrics. */
export interface ReplicaStoreStats {
  readonly writer: WriteBatcher['stats'];
  readonly queuedBytes: number;
  readonly acksPrunedThrough: number;
  readonly pruneBatches: number;
  /** Blocks and batches below it have been (or are being) deleted; 0 before the first prune. */
  readonly prunedBelowHeight: number;
  readonly blocksPruned: number;
  readonly batchesPruned: number;
  /** Checkpoints held, newest last: height, whether stable. */
  readonly checkpoints: readonly { readonly height: number; readonly stable: boolean }[];
}

interface HeldCheckpoint extends LocalCheckpoint {
  readonly source: CheckpointSource;
}

/** One step of the committed chain for ReplicaCore.replayCommitted. */
export interface CommittedChunk {
  readonly blocks: Block[];
  readonly batches: { digest: Digest; bytes: Uint8Array }[];
}

export class LevelReplicaStorage implements ReplicaStorage {
  readonly consensus: LevelConsensusStorage;
  private readonly ctx: DecodeContext;
  private reservationUs = 0;
  private frontier = 0;
  private prunedThrough = 0;
  /** The slot the next ack prune scans from: earlier prunes deleted what lay below it (an ack
   *  written since for a lower slot lowers it). A scan from the bucket's start would step over
   *  every tombstone of the prunes before it until LevelDB compacts them: a prune runs at every
   *  commit, and such scans cost ~20× more (scripts/bench-store.ts, "prune scans"). */
  private ackPruneFrom = 0;
  private pruneTask: Promise<void> = Promise.resolve();
  private pruneBatches = 0;
  private prunedBelowHeight = 0;
  /** Indices of the chunks written for each fetched checkpoint not yet installed, by height. Open
   *  deletes a fetch that a crash cut short, so every chunk of a fetch is written by this process;
   *  an install checks that all are still here (a prune below a stable checkpoint deletes a fetch's
   *  chunks like any others) before its meta record can name chunks that are gone. */
  private readonly fetchedChunks = new Map<number, Set<number>>();
  private blocksPruned = 0;
  private batchesPruned = 0;
  /** Checkpoints held (meta records), oldest first. */
  private checkpoints: HeldCheckpoint[] = [];
  private closing: Promise<void> | null = null;

  private constructor(
    readonly db: Db,
    private readonly writer: WriteBatcher,
    replicaCount: number,
    private readonly crypto: CryptoBackend,
    retainBlocks: number | undefined,
  ) {
    this.consensus = new LevelConsensusStorage(db, writer, replicaCount, retainBlocks);
    this.ctx = { replicaCount };
  }

  /** Opens the store at `path` (StoreOpenError on environment problems or a foreign store). */
  static async open(path: string, options: ReplicaStoreOptions): Promise<LevelReplicaStorage> {
    const db = await Db.open(path, options);
    try {
      const storage = new LevelReplicaStorage(db, new WriteBatcher(db), options.replicaCount, options.crypto, options.retainCommittedBlocks);
      await storage.init(options.identity);
      return storage;
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  private async init(identity: StoreIdentity): Promise<void> {
    const stored = await this.db.get(Bucket.OrderingMeta, IDENTITY_KEY);
    if (stored === undefined) {
      // A new store, or one written before identities existed: claim it, after checking that it
      // holds no consensus state (that would belong to someone we cannot name).
      const committed = await this.db.get(Bucket.Meta, COMMITTED_KEY);
      const safety = await this.db.get(Bucket.Meta, nameKey('safety'));
      if (committed !== undefined || safety !== undefined) {
        throw new StoreOpenError('incompatible', this.db.path, 'it holds consensus state but no owner record: it was not written by a replica of this version');
      }
      await this.db.batch([{ type: 'put', key: bucketKey(Bucket.OrderingMeta, IDENTITY_KEY), value: encodeIdentityRecord(identity) }], SYNCED);
    } else {
      const owner = decodeIdentityRecord(stored);
      if (!bytesEqual(owner.clusterId, identity.clusterId) || owner.replica !== identity.replica) {
        throw new StoreOpenError(
          'incompatible',
          this.db.path,
          `it belongs to replica ${owner.replica} of cluster ${toHex(owner.clusterId).slice(0, 16)}…, but this is replica ${identity.replica} of cluster ` +
            `${toHex(identity.clusterId).slice(0, 16)}… (a regenerated config, or the wrong --data-dir); move the old store away to start afresh`,
        );
      }
    }
    this.reservationUs = await this.readU64(RESERVATION_KEY, 'tsReservation');
    this.frontier = await this.readU64(FRONTIER_KEY, 'frontier');
    this.prunedThrough = await this.readU64(PRUNED_KEY, 'acksPrunedThrough');
    for await (const [key, value] of this.db.iterate(Bucket.CheckpointMeta)) {
      const { source } = checkpointKeyOwner(key);
      this.checkpoints.push({ ...decodeCheckpointMeta(value, this.ctx), source });
    }
    await this.deleteOrphanChunks();
  }

  /** Chunks of a fetch that a crash cut short (no meta record): the fetch starts over. */
  private async deleteOrphanChunks(): Promise<void> {
    const held = new Set(this.checkpoints.map((c) => `${c.manifest.height}:${c.source}`));
    const ops: DbOp[] = [];
    for await (const key of this.db.iterateKeys(Bucket.Checkpoints)) {
      const { height, source } = checkpointKeyOwner(key);
      if (!held.has(`${height}:${source}`)) ops.push({ type: 'del', key: bucketKey(Bucket.Checkpoints, key) });
    }
    if (ops.length > 0) await this.db.batch(ops, UNSYNCED);
  }

  private async readU64(key: Uint8Array, what: string): Promise<number> {
    const bytes = await this.db.get(Bucket.OrderingMeta, key);
    return bytes === undefined ? 0 : decodeU64Record(bytes, what);
  }

  /** One atomic group (see the header); durable when it resolves (except a lone pruneAcks). */
  async apply(ops: readonly ReplicaPersistOp[]): Promise<void> {
    const consensusOps: ConsensusPersistOp[] = [];
    const dbOps: DbOp[] = [];
    let sync = false;
    let reservation = this.reservationUs;
    let frontier = this.frontier;
    let pruneThrough = this.prunedThrough;
    const prunes: { height: Height; expiredBeforeUs: number }[] = [];
    for (const op of ops) {
      if (isConsensusOp(op)) {
        consensusOps.push(op);
        continue;
      }
      switch (op.kind) {
        case 'tsReservation':
          reservation = Math.max(reservation, op.untilUs);
          break;
        case 'frontier':
          frontier = Math.max(frontier, op.slot);
          break;
        case 'batch': {
          assert(op.digest.length === DIGEST_BYTES, 'batch op needs a 32-byte digest');
          dbOps.push({ type: 'put', key: bucketKey(Bucket.Batches, op.digest), value: op.bytes });
          // A batch the replica holds passed readBatchHeader (it was stamped, acked or committed);
          // one that does not parse is indexed at 0 and goes with the first prune.
          const header = readBatchHeader(op.bytes);
          dbOps.push({ type: 'put', key: bucketKey(Bucket.BatchExpiry, batchExpiryKey(header.ok ? header.value.expiresAtUs : 0, op.digest)), value: EMPTY });
          sync = true;
          break;
        }
        case 'checkpointChunk': {
          dbOps.push({ type: 'put', key: bucketKey(Bucket.Checkpoints, checkpointChunkKey(op.height, CheckpointSource.Installed, op.index)), value: op.bytes });
          let written = this.fetchedChunks.get(op.height);
          if (written === undefined) this.fetchedChunks.set(op.height, (written = new Set()));
          written.add(op.index);
          sync = true;
          break;
        }
        case 'checkpointInstalled': {
          const { height, chunkHashes } = op.checkpoint.manifest;
          const written = this.fetchedChunks.get(height);
          assert(
            chunkHashes.every((_, i) => written?.has(i + 1) === true),
            `checkpoint at height ${height} installed without all its chunks (${written?.size ?? 0} of ${chunkHashes.length} held)`,
          );
          this.fetchedChunks.delete(height);
          const held: HeldCheckpoint = { ...op.checkpoint, cert: op.cert, source: CheckpointSource.Installed };
          dbOps.push(this.checkpointPut(held));
          this.hold(held);
          sync = true;
          break;
        }
        case 'checkpointStable': {
          const local = this.checkpoints.find((c) => c.manifest.height === op.cert.height && bytesEqual(c.state, op.cert.state));
          if (local === undefined) break; // pruned meanwhile
          const stable: HeldCheckpoint = { ...local, cert: op.cert };
          dbOps.push(this.checkpointPut(stable));
          this.hold(stable);
          break;
        }
        case 'pruneBelowCheckpoint':
          // Forgotten here, in op order as the memory store does: an install later in this group
          // must not pass on chunks that the (deferred) prune deletes.
          for (const fetched of [...this.fetchedChunks.keys()]) if (fetched < op.height) this.fetchedChunks.delete(fetched);
          prunes.push(op);
          break;
        case 'ack':
          dbOps.push({ type: 'put', key: ackKey(op.slot, op.entry.digest, op.entry.ocHash), value: encodeAckRecord(op) });
          if (op.slot < this.ackPruneFrom) this.ackPruneFrom = op.slot;
          sync = true;
          break;
        case 'pruneAcks':
          pruneThrough = Math.max(pruneThrough, op.throughSlot);
          break;
      }
    }
    if (reservation > this.reservationUs) {
      this.reservationUs = reservation;
      dbOps.push(this.metaPut(RESERVATION_KEY, reservation));
      sync = true;
    }
    if (frontier > this.frontier) {
      this.frontier = frontier;
      dbOps.push(this.metaPut(FRONTIER_KEY, frontier));
      sync = true;
    }
    const prune = pruneThrough > this.prunedThrough;
    if (prune) {
      this.prunedThrough = pruneThrough;
      dbOps.push(this.metaPut(PRUNED_KEY, pruneThrough));
    }
    // Both enqueues happen before this function first yields: one batch (see the header).
    const written: Promise<void>[] = [];
    if (consensusOps.length > 0) written.push(this.consensus.apply(consensusOps));
    if (dbOps.length > 0) written.push(this.writer.enqueue(dbOps, sync ? SYNCED : UNSYNCED));
    if (prune) this.schedulePrune(pruneThrough);
    for (const p of prunes) this.scheduleCheckpointPrune(p.height, p.expiredBeforeUs);
    await Promise.all(written);
  }

  private checkpointPut(c: HeldCheckpoint): DbOp {
    return { type: 'put', key: bucketKey(Bucket.CheckpointMeta, checkpointMetaKey(c.manifest.height, c.source)), value: encodeCheckpointMeta(c) };
  }

  /** Records a held checkpoint in the index (replacing the same height and source), oldest first. */
  private hold(c: HeldCheckpoint): void {
    this.checkpoints = this.checkpoints.filter((x) => !(x.manifest.height === c.manifest.height && x.source === c.source));
    this.checkpoints.push(c);
    this.checkpoints.sort((a, b) => a.manifest.height - b.manifest.height || a.source - b.source);
  }

  private metaPut(key: Uint8Array, value: number): DbOp {
    return { type: 'put', key: bucketKey(Bucket.OrderingMeta, key), value: encodeU64Record(value) };
  }

  /** Deletes the ack keys at or below `through` in the background, one prune at a time. */
  private schedulePrune(through: number): void {
    const from = this.ackPruneFrom;
    this.ackPruneFrom = Math.max(from, through + 1);
    this.pruneTask = this.pruneTask.then(() => this.deleteAcksThrough(from, through));
  }

  private async deleteAcksThrough(from: number, through: number): Promise<void> {
    if (this.closing !== null) return;
    for await (const keys of this.db.keyBatches(Bucket.Acks, { gte: u64Bytes(from), lt: u64Bytes(through + 1) }, PRUNE_BATCH_ACKS)) {
      // A failed write fails the batcher for good, and the replica's next apply reports it.
      await this.writer.enqueue(keys.map((key) => ({ type: 'del', key: bucketKey(Bucket.Acks, key) })), UNSYNCED);
      this.pruneBatches++;
      if (this.closing !== null) return;
    }
  }

  /** Deletes, in the background after the ack prunes queued before it, what lies below checkpoint
   *  `height` (see the header). */
  private scheduleCheckpointPrune(height: number, expiredBeforeUs: number): void {
    if (height <= this.prunedBelowHeight) return;
    this.prunedBelowHeight = height;
    const dropped = this.checkpoints.filter((c) => c.manifest.height < height);
    this.checkpoints = this.checkpoints.filter((c) => c.manifest.height >= height);
    this.pruneTask = this.pruneTask.then(async () => {
      if (this.closing !== null) return;
      const metaOps: DbOp[] = dropped.map((c) => ({ type: 'del', key: bucketKey(Bucket.CheckpointMeta, checkpointMetaKey(c.manifest.height, c.source)) }));
      if (metaOps.length > 0) await this.writer.enqueue(metaOps, UNSYNCED);
      await this.deleteRange(Bucket.Checkpoints, u64Bytes(height));
      this.blocksPruned += await this.consensus.prune(height, (block) => this.batchesOf(block));
      this.batchesPruned += await this.deleteExpiredBatches(expiredBeforeUs);
    });
  }

  /** Deletions of the batches a pruned block committed (executed before the checkpoint; a later
   *  block carrying one again skips it as executed). */
  private batchesOf(block: Block): DbOp[] {
    if (block.height === 0) return [];
    const decoded = decodeBlockPayload(block.payload, this.ctx);
    if (!decoded.ok) return [];
    const ops: DbOp[] = [];
    for (const { entry } of effectiveEntries(decoded.value)) ops.push({ type: 'del', key: bucketKey(Bucket.Batches, entry.digest) });
    this.batchesPruned += ops.length;
    return ops;
  }

  /** Keys of `bucket` below `lt`, in bounded batches. */
  private async deleteRange(bucket: Bucket, lt: Uint8Array): Promise<void> {
    for await (const keys of this.db.keyBatches(bucket, { lt }, PRUNE_BATCH_KEYS)) {
      if (this.closing !== null) return;
      await this.writer.enqueue(keys.map((key) => ({ type: 'del', key: bucketKey(bucket, key) })), UNSYNCED);
      this.pruneBatches++;
    }
  }

  private async deleteExpiredBatches(expiredBeforeUs: number): Promise<number> {
    let deleted = 0;
    for await (const keys of this.db.keyBatches(Bucket.BatchExpiry, { lt: u64Bytes(expiredBeforeUs) }, PRUNE_BATCH_KEYS)) {
      if (this.closing !== null) break;
      await this.writer.enqueue(
        keys.flatMap((key): DbOp[] => [
          { type: 'del', key: bucketKey(Bucket.BatchExpiry, key) },
          { type: 'del', key: bucketKey(Bucket.Batches, batchExpiryDigest(key)) },
        ]),
        UNSYNCED,
      );
      this.pruneBatches++;
      deleted += keys.length;
    }
    return deleted;
  }

  async load(): Promise<ReplicaRecovery> {
    const consensus = await this.consensus.load();
    const acks: StoredAck[] = [];
    for await (const [key, value] of this.db.iterate(Bucket.Acks, { gte: u64Bytes(this.prunedThrough + 1) })) acks.push(decodeAckRecord(key, value));
    const digests = new Map<string, Digest>();
    for (const a of acks) digests.set(toHex(a.entry.digest), a.entry.digest);
    const wanted = [...digests.values()];
    const values = await this.db.getMany(Bucket.Batches, wanted);
    const batches: { digest: Digest; bytes: Uint8Array }[] = [];
    wanted.forEach((digest, i) => {
      // The bytes were written with the ack, or before it; they are gone only if an earlier block
      // committed the same batch below a stable checkpoint (it executed: a block carrying it again
      // skips it) and the prune deleted them.
      const bytes = values[i];
      if (bytes !== undefined) batches.push({ digest, bytes });
    });
    return {
      consensus,
      ordering: {
        tsReservationUs: this.reservationUs,
        frontier: this.frontier as Slot,
        acks: acks.map(({ entry, oc, sig }) => ({ entry, oc, sig })),
        batches,
      },
      checkpoint: this.latestCheckpoint(consensus.committed?.height ?? 0),
    };
  }

  /** The latest held checkpoint at or below `maxHeight` (the committed height: see
   *  ReplicaRecovery.checkpoint), an installed one before a taken one at the same height. */
  private latestCheckpoint(maxHeight: number): LocalCheckpoint | null {
    for (let i = this.checkpoints.length - 1; i >= 0; i--) if (this.checkpoints[i]!.manifest.height <= maxHeight) return this.checkpoints[i]!;
    return null;
  }

  private held(height: number, state: Digest): HeldCheckpoint | undefined {
    return this.checkpoints.find((c) => c.manifest.height === height && bytesEqual(c.state, state));
  }

  async writeCheckpoint(capture: CheckpointCapture): Promise<StoredCheckpoint> {
    const builder = new ManifestBuilder(this.crypto, capture);
    for (const chunk of captureChunks(capture)) {
      const index = builder.add(chunk);
      // Synced one by one: the meta record below must never outlive a chunk (consensusStore.ts,
      // on LevelDB's log switch); awaiting each also holds one app chunk in memory at a time.
      await this.writer.enqueue([{ type: 'put', key: bucketKey(Bucket.Checkpoints, checkpointChunkKey(capture.height, CheckpointSource.Taken, index)), value: chunk }], SYNCED);
    }
    const stored = builder.finish();
    const held: HeldCheckpoint = { ...stored, cert: null, source: CheckpointSource.Taken };
    await this.writer.enqueue([this.checkpointPut(held)], SYNCED);
    this.hold(held);
    return stored;
  }

  async readCheckpointPiece(height: Height, state: Digest, index: number): Promise<Uint8Array | undefined> {
    const c = this.held(height, state);
    if (c === undefined || index > c.manifest.chunkHashes.length) return undefined;
    if (index === 0) return encodeCheckpointManifest(c.manifest);
    return this.db.get(Bucket.Checkpoints, checkpointChunkKey(height, c.source, index));
  }

  async *checkpointChunks(checkpoint: StoredCheckpoint): AsyncIterable<Uint8Array> {
    const c = this.held(checkpoint.manifest.height, checkpoint.state);
    assert(c !== undefined, `checkpoint at height ${checkpoint.manifest.height} is not held`);
    for (let index = 1; index <= c.manifest.chunkHashes.length; index++) {
      const chunk = await this.db.get(Bucket.Checkpoints, checkpointChunkKey(c.manifest.height, c.source, index));
      assert(chunk !== undefined, `store corrupted: chunk ${index} of the checkpoint at height ${c.manifest.height} is missing`);
      yield chunk;
    }
  }

  latestStableCert(): CheckpointCert | null {
    for (let i = this.checkpoints.length - 1; i >= 0; i--) {
      const cert = this.checkpoints[i]!.cert;
      if (cert !== null) return cert;
    }
    return null;
  }

  readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]> {
    return this.consensus.readBlocks(digest, maxBlocks);
  }

  async readBatches(digests: readonly Digest[]): Promise<Uint8Array[]> {
    const values = await this.db.getMany(Bucket.Batches, digests);
    return values.filter((v): v is Uint8Array => v !== undefined);
  }

  /**
   * The committed chain above `from` (a checkpoint's block; null: from genesis) to the durable
   * committed tip, oldest first, in chunks of `chunkBlocks`, each with the stored bytes of its
   * blocks' effective entries (a batch not held is left out: the core fetches it after start).
   * Walks the parents back from the tip first, keeping only 32 bytes per block, then reads forward.
   */
  async *committedChain(chunkBlocks = DEFAULT_REPLAY_CHUNK_BLOCKS, from: { readonly height: number; readonly digest: Digest } | null = null): AsyncGenerator<CommittedChunk> {
    assert(Number.isSafeInteger(chunkBlocks) && chunkBlocks > 0, `chunkBlocks must be a positive integer, got ${chunkBlocks}`);
    const tipBytes = await this.db.get(Bucket.Meta, COMMITTED_KEY);
    if (tipBytes === undefined) return;
    const tip = decodeCommittedRecord(tipBytes);
    const fromHeight = from?.height ?? 0;
    assert(tip.height >= fromHeight, `store corrupted: the committed tip (height ${tip.height}) is below the checkpoint (height ${fromHeight})`);
    const chain = new DigestStack(tip.height - fromHeight);
    let next: Digest = tip.digest;
    for (let height = tip.height; height > fromHeight; height--) {
      const block = await this.readBlock(next);
      assert(block.height === height, `store corrupted: block ${toHex(next)} has height ${block.height}, expected ${height} on the committed chain`);
      chain.push(next);
      next = block.parent;
    }
    if (from !== null) assert(bytesEqual(next, from.digest), `store corrupted: the committed chain does not pass through the checkpoint block at height ${fromHeight}`);
    while (chain.size > 0) {
      const digests = chain.popMany(chunkBlocks);
      const raws = await this.db.getMany(Bucket.Blocks, digests);
      const blocks = raws.map((raw, i) => {
        assert(raw !== undefined, `store corrupted: committed block ${toHex(digests[i]!)} vanished`);
        return this.decodeBlock(raw, digests[i]!);
      });
      const wanted = new Map<string, Digest>();
      for (let i = 0; i < blocks.length; i++) {
        const decoded = decodeBlockPayload(blocks[i]!.payload, this.ctx);
        assert(decoded.ok, `store corrupted: committed block ${toHex(digests[i]!)} has an undecodable payload`);
        for (const { entry } of effectiveEntries(decoded.value)) wanted.set(toHex(entry.digest), entry.digest);
      }
      const list = [...wanted.values()];
      const values = list.length === 0 ? [] : await this.db.getMany(Bucket.Batches, list);
      const batches: { digest: Digest; bytes: Uint8Array }[] = [];
      values.forEach((bytes, i) => {
        if (bytes !== undefined) batches.push({ digest: list[i]!, bytes });
      });
      yield { blocks, batches };
    }
  }

  private async readBlock(digest: Digest): Promise<Block> {
    const raw = await this.db.get(Bucket.Blocks, digest);
    assert(raw !== undefined, `store corrupted: committed block ${toHex(digest)} is missing (the chain to the committed tip has a hole)`);
    return this.decodeBlock(raw, digest);
  }

  private decodeBlock(raw: Uint8Array, digest: Digest): Block {
    const result = decodeBlock(raw, this.ctx);
    assert(result.ok, `store corrupted: block ${toHex(digest)} does not decode`);
    return result.value;
  }

  /** Resolves when the background prunes scheduled so far are done (tests, shutdown). */
  prunesDone(): Promise<void> {
    return this.pruneTask.catch(() => undefined);
  }

  stats(): ReplicaStoreStats {
    return {
      writer: { ...this.writer.stats },
      queuedBytes: this.writer.queuedBytes,
      acksPrunedThrough: this.prunedThrough,
      pruneBatches: this.pruneBatches,
      prunedBelowHeight: this.prunedBelowHeight,
      blocksPruned: this.blocksPruned,
      batchesPruned: this.batchesPruned,
      checkpoints: this.checkpoints.map((c) => ({ height: c.manifest.height, stable: c.cert !== null })),
    };
  }

  /** Lets a running prune stop, writes what is queued, closes the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.pruneTask.catch(() => undefined); // a failed prune write is reported by the batcher below
      try {
        await this.writer.close();
      } finally {
        await this.db.close();
      }
    })();
    return this.closing;
  }
}

/** Digests pushed newest first and popped oldest first, 32 bytes each in one growing buffer
 *  (a Uint8Array object per block would cost ~100 bytes more each on a long chain). */
class DigestStack {
  private buf: Uint8Array;
  private count = 0;

  constructor(expected: number) {
    this.buf = new Uint8Array(Math.max(1, expected) * DIGEST_BYTES);
  }

  get size(): number {
    return this.count;
  }

  push(digest: Digest): void {
    if ((this.count + 1) * DIGEST_BYTES > this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf.set(digest, this.count * DIGEST_BYTES);
    this.count++;
  }

  /** Up to `max` digests from the oldest end, oldest first. */
  popMany(max: number): Digest[] {
    const out: Digest[] = [];
    while (out.length < max && this.count > 0) {
      this.count--;
      out.push(this.buf.slice(this.count * DIGEST_BYTES, (this.count + 1) * DIGEST_BYTES) as Digest);
    }
    return out;
  }
}
