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
 * range, in bounded unsynced batches. Batches are kept: a restarted replica replays the committed
 * chain from genesis, which needs every committed batch (until checkpoints exist).
 */
import { assert } from '../../common/assert.js';
import { bytesEqual, toHex } from '../../common/bytes.js';
import { decodeBlock, decodeBlockPayload, type DecodeContext } from '../../common/codec.js';
import { DIGEST_BYTES, type Digest, type Slot } from '../../common/ids.js';
import type { Block } from '../../common/messages.js';
import { isConsensusOp, type ReplicaRecovery, type ReplicaStorage } from '../../ordering/storage.js';
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
import { decodeCommittedRecord } from './records.js';
import { WriteBatcher } from './writeBatcher.js';

/** Ack keys deleted per background prune batch: bounds each batch (one ~73-byte delete per ack)
 *  and lets the replica's own writes through between chunks. */
const PRUNE_BATCH_ACKS = 1_024;

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
const UNSYNCED = { sync: false } as const;

export interface ReplicaStoreOptions extends DbOptions {
  readonly replicaCount: number;
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
  private pruneTask: Promise<void> = Promise.resolve();
  private pruneBatches = 0;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly db: Db,
    private readonly writer: WriteBatcher,
    replicaCount: number,
  ) {
    this.consensus = new LevelConsensusStorage(db, writer, replicaCount);
    this.ctx = { replicaCount };
  }

  /** Opens the store at `path` (StoreOpenError on environment problems or a foreign store). */
  static async open(path: string, options: ReplicaStoreOptions): Promise<LevelReplicaStorage> {
    const db = await Db.open(path, options);
    try {
      const storage = new LevelReplicaStorage(db, new WriteBatcher(db), options.replicaCount);
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
        case 'batch':
          assert(op.digest.length === DIGEST_BYTES, 'batch op needs a 32-byte digest');
          dbOps.push({ type: 'put', key: bucketKey(Bucket.Batches, op.digest), value: op.bytes });
          sync = true;
          break;
        case 'ack':
          dbOps.push({ type: 'put', key: ackKey(op.slot, op.entry.digest, op.entry.ocHash), value: encodeAckRecord(op) });
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
    await Promise.all(written);
  }

  private metaPut(key: Uint8Array, value: number): DbOp {
    return { type: 'put', key: bucketKey(Bucket.OrderingMeta, key), value: encodeU64Record(value) };
  }

  /** Deletes the ack keys at or below `through` in the background, one prune at a time. */
  private schedulePrune(through: number): void {
    this.pruneTask = this.pruneTask.then(() => this.deleteAcksThrough(through));
  }

  private async deleteAcksThrough(through: number): Promise<void> {
    if (this.closing !== null) return;
    const lt = u64Bytes(through + 1);
    for (;;) {
      const ops: DbOp[] = [];
      for await (const key of this.db.iterateKeys(Bucket.Acks, { lt, limit: PRUNE_BATCH_ACKS })) ops.push({ type: 'del', key: bucketKey(Bucket.Acks, key) });
      if (ops.length === 0) return;
      // Awaited, so the next scan no longer sees these keys. A failed write fails the batcher for
      // good, and the replica's next apply reports it.
      await this.writer.enqueue(ops, UNSYNCED);
      this.pruneBatches++;
      if (this.closing !== null) return;
    }
  }

  async load(): Promise<ReplicaRecovery> {
    const consensus = await this.consensus.load();
    const acks: StoredAck[] = [];
    for await (const [key, value] of this.db.iterate(Bucket.Acks, { gte: u64Bytes(this.prunedThrough + 1) })) acks.push(decodeAckRecord(key, value));
    const digests = new Map<string, Digest>();
    for (const a of acks) digests.set(toHex(a.entry.digest), a.entry.digest);
    const wanted = [...digests.values()];
    const values = await this.db.getMany(Bucket.Batches, wanted);
    const batches = wanted.map((digest, i) => {
      const bytes = values[i];
      // The bytes were written with the ack, or before it: an ack is only given for bytes held.
      assert(bytes !== undefined, `store corrupted: an ack for batch ${toHex(digest)} is stored without the batch`);
      return { digest, bytes };
    });
    return {
      consensus,
      ordering: {
        tsReservationUs: this.reservationUs,
        frontier: this.frontier as Slot,
        acks: acks.map(({ entry, oc, sig }) => ({ entry, oc, sig })),
        batches,
      },
    };
  }

  readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]> {
    return this.consensus.readBlocks(digest, maxBlocks);
  }

  async readBatches(digests: readonly Digest[]): Promise<Uint8Array[]> {
    const values = await this.db.getMany(Bucket.Batches, digests);
    return values.filter((v): v is Uint8Array => v !== undefined);
  }

  /**
   * The committed chain from genesis (excluded) to the durable committed tip, oldest first, in
   * chunks of `chunkBlocks`, each with the stored bytes of its blocks' effective entries (a batch
   * not held is left out: the core fetches it after start). Walks the parents back from the tip
   * first, keeping only 32 bytes per block, then reads forward.
   */
  async *committedChain(chunkBlocks = DEFAULT_REPLAY_CHUNK_BLOCKS): AsyncGenerator<CommittedChunk> {
    assert(Number.isSafeInteger(chunkBlocks) && chunkBlocks > 0, `chunkBlocks must be a positive integer, got ${chunkBlocks}`);
    const tipBytes = await this.db.get(Bucket.Meta, COMMITTED_KEY);
    if (tipBytes === undefined) return;
    const tip = decodeCommittedRecord(tipBytes);
    const chain = new DigestStack(tip.height);
    let next: Digest = tip.digest;
    for (let height = tip.height; height > 0; height--) {
      const block = await this.readBlock(next);
      assert(block.height === height, `store corrupted: block ${toHex(next)} has height ${block.height}, expected ${height} on the committed chain`);
      chain.push(next);
      next = block.parent;
    }
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

  stats(): ReplicaStoreStats {
    return { writer: { ...this.writer.stats }, queuedBytes: this.writer.queuedBytes, acksPrunedThrough: this.prunedThrough, pruneBatches: this.pruneBatches };
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
