/**
 * A replica's durable store: the consensus part (consensus/storage.ts, whose contract applies here
 * too) plus the ordering phase's records. Same contract: `apply` is atomic and durable when it
 * resolves; `load` returns what a restarted replica needs.
 */
import { assert } from '../common/assert.js';
import { readBatchHeader } from '../common/batch.js';
import { bytesEqual, toHex } from '../common/bytes.js';
import { decodeBlockPayload, encodeCheckpointManifest } from '../common/codec.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, Height, Slot } from '../common/ids.js';
import type { Block, CheckpointCert, OrderingCert, SealEntry } from '../common/messages.js';
import { MemoryConsensusStorage } from '../consensus/storage.js';
import type { ConsensusPersistOp, RecoveredConsensus } from '../consensus/types.js';
import { captureChunks, ManifestBuilder, type CheckpointCapture, type LocalCheckpoint, type StoredCheckpoint } from './checkpointFormat.js';
import { effectiveEntries } from './payload.js';
import type { RecoveredOrdering, ReplicaPersistOp } from './types.js';

export type { LocalCheckpoint };

export interface ReplicaRecovery {
  readonly consensus: RecoveredConsensus;
  readonly ordering: RecoveredOrdering;
  /** The latest checkpoint held at or below the committed height (a restart restores it and
   *  replays only the committed blocks above it). A checkpoint above the committed height exists
   *  after an install moved the committed tip back below checkpoints this replica took before it
   *  (it went on executing while it fetched): restoring one of those and then committing again
   *  the blocks it already covers would execute them twice (simulation seed 352, n=4 2-chain
   *  gateway). */
  readonly checkpoint: LocalCheckpoint | null;
}

export interface ReplicaStorage {
  load(): Promise<ReplicaRecovery>;
  apply(ops: readonly ReplicaPersistOp[]): Promise<void>;
  readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]>;
  /** The stored batches among `digests` (unknown ones are skipped). */
  readBatches(digests: readonly Digest[]): Promise<Uint8Array[]>;
  /** Writes a checkpoint this replica took, pulling the app's chunks one at a time; durable when
   *  it resolves. Rejects with CheckpointError if the state machine's chunks break the limits. */
  writeCheckpoint(capture: CheckpointCapture): Promise<StoredCheckpoint>;
  /** Piece `index` of a held checkpoint with this digest, for a peer: 0 its encoded manifest,
   *  1.. its chunks; undefined if not held (pruned, or never). */
  readCheckpointPiece(height: Height, state: Digest, index: number): Promise<Uint8Array | undefined>;
  /** The chunks of a held checkpoint, in order (to restore it). */
  checkpointChunks(checkpoint: StoredCheckpoint): AsyncIterable<Uint8Array>;
  /** The latest stable checkpoint's certificate, null if none (answers a peer asking for blocks
   *  that were pruned). */
  latestStableCert(): CheckpointCert | null;
}

/** Where a held checkpoint came from: chunks are keyed by it, so a replica whose own checkpoint
 *  diverged can still install the certified one at the same height. */
export const CheckpointSource = { Taken: 0, Installed: 1 } as const;
export type CheckpointSource = (typeof CheckpointSource)[keyof typeof CheckpointSource];

const CONSENSUS_KINDS = new Set(['safety', 'block', 'committed']);

export function isConsensusOp(op: ReplicaPersistOp): op is ConsensusPersistOp {
  return CONSENSUS_KINDS.has(op.kind);
}

interface MemoryCheckpoint extends LocalCheckpoint {
  readonly source: CheckpointSource;
  readonly chunks: readonly Uint8Array[];
}

/** Memory store for tests and the simulator: it survives a simulated crash because the simulator
 *  keeps it while dropping the core. */
export class MemoryReplicaStorage implements ReplicaStorage {
  readonly consensus = new MemoryConsensusStorage();
  private tsReservationUs = 0;
  private frontier = 0 as Slot;
  private readonly acks = new Map<string, { entry: SealEntry; slot: Slot; oc: OrderingCert; sig: Uint8Array }>();
  private readonly batches = new Map<string, { digest: Digest; bytes: Uint8Array; expiresAtUs: number }>();
  private checkpoints: MemoryCheckpoint[] = [];
  /** Chunks of a checkpoint being fetched, by `height:state:index`. */
  private readonly fetching = new Map<string, Uint8Array>();

  constructor(
    private readonly crypto: CryptoBackend,
    private readonly replicaCount: number,
  ) {}

  applySync(ops: readonly ReplicaPersistOp[]): void {
    const consensusOps: ConsensusPersistOp[] = [];
    for (const op of ops) {
      if (isConsensusOp(op)) {
        consensusOps.push(op);
        continue;
      }
      switch (op.kind) {
        case 'tsReservation':
          this.tsReservationUs = Math.max(this.tsReservationUs, op.untilUs);
          break;
        case 'frontier':
          if (op.slot > this.frontier) this.frontier = op.slot;
          break;
        case 'batch': {
          const header = readBatchHeader(op.bytes);
          this.batches.set(toHex(op.digest), { digest: op.digest, bytes: op.bytes, expiresAtUs: header.ok ? header.value.expiresAtUs : 0 });
          break;
        }
        case 'ack':
          this.acks.set(toHex(op.entry.digest) + toHex(op.entry.ocHash), { entry: op.entry, slot: op.slot, oc: op.oc, sig: op.sig });
          break;
        case 'pruneAcks':
          for (const [key, ack] of this.acks) if (ack.slot <= op.throughSlot) this.acks.delete(key);
          break;
        case 'checkpointChunk':
          this.fetching.set(`${op.height}:${toHex(op.state)}:${op.index}`, op.bytes);
          break;
        case 'checkpointInstalled': {
          const { manifest } = op.checkpoint;
          const prefix = `${manifest.height}:${toHex(op.checkpoint.state)}:`;
          const chunks = manifest.chunkHashes.map((_, i) => this.fetching.get(prefix + (i + 1))!);
          assert(chunks.every((c) => c !== undefined), `checkpoint at height ${manifest.height} installed without all its chunks`);
          for (const key of [...this.fetching.keys()]) if (key.startsWith(prefix)) this.fetching.delete(key);
          this.checkpoints = this.checkpoints.filter((c) => !(c.manifest.height === manifest.height && c.source === CheckpointSource.Installed));
          this.checkpoints.push({ ...op.checkpoint, cert: op.cert, source: CheckpointSource.Installed, chunks });
          break;
        }
        case 'checkpointStable':
          this.checkpoints = this.checkpoints.map((c) => (c.manifest.height === op.cert.height && bytesEqual(c.state, op.cert.state) ? { ...c, cert: op.cert } : c));
          break;
        case 'pruneBelowCheckpoint':
          this.pruneBelow(op.height, op.expiredBeforeUs);
          break;
      }
    }
    this.consensus.applySync(consensusOps);
  }

  private pruneBelow(height: number, expiredBeforeUs: number): void {
    this.checkpoints = this.checkpoints.filter((c) => c.manifest.height >= height);
    for (const key of [...this.fetching.keys()]) if (Number(key.split(':')[0]) < height) this.fetching.delete(key);
    for (const block of this.consensus.pruneSync(height)) {
      const payload = block.height === 0 ? null : decodeBlockPayload(block.payload, { replicaCount: this.replicaCount });
      if (payload?.ok === true) for (const { entry } of effectiveEntries(payload.value)) this.batches.delete(toHex(entry.digest));
    }
    for (const [key, b] of this.batches) if (b.expiresAtUs < expiredBeforeUs) this.batches.delete(key);
  }

  loadSync(): ReplicaRecovery {
    const acks = [...this.acks.values()];
    const acked = new Set(acks.map((a) => toHex(a.entry.digest)));
    // A fetch that a crash interrupted starts over.
    this.fetching.clear();
    const consensus = this.consensus.loadSync();
    return {
      consensus,
      ordering: {
        tsReservationUs: this.tsReservationUs,
        frontier: this.frontier,
        acks,
        batches: [...this.batches.values()].filter((b) => acked.has(toHex(b.digest))).map(({ digest, bytes }) => ({ digest, bytes })),
      },
      checkpoint: this.latest(consensus.committed?.height ?? 0),
    };
  }

  /** The committed chain above `fromHeight` (a checkpoint's; 0: from genesis) to the tip, oldest
   *  first, and every stored batch: what ReplicaCore.replayCommitted needs. */
  committedChainSync(fromHeight = 0): { blocks: Block[]; batches: { digest: Digest; bytes: Uint8Array }[] } {
    const tip = this.consensus.committedDigest();
    const blocks = tip === null ? [] : this.consensus.readBlocksSync(tip, Number.MAX_SAFE_INTEGER).filter((b) => b.height > fromHeight).reverse();
    return { blocks, batches: [...this.batches.values()].map(({ digest, bytes }) => ({ digest, bytes })) };
  }

  /** The latest held checkpoint at or below `maxHeight`, an installed one before a taken one at the
   *  same height. */
  private latest(maxHeight: number): MemoryCheckpoint | null {
    let best: MemoryCheckpoint | null = null;
    for (const c of this.checkpoints) {
      if (c.manifest.height > maxHeight) continue;
      if (best === null || c.manifest.height > best.manifest.height || (c.manifest.height === best.manifest.height && c.source > best.source)) best = c;
    }
    return best;
  }

  private held(height: number, state: Digest): MemoryCheckpoint | undefined {
    return this.checkpoints.find((c) => c.manifest.height === height && bytesEqual(c.state, state));
  }

  writeCheckpointSync(capture: CheckpointCapture): StoredCheckpoint {
    const builder = new ManifestBuilder(this.crypto, capture);
    const chunks: Uint8Array[] = [];
    for (const chunk of captureChunks(capture)) {
      builder.add(chunk);
      chunks.push(chunk);
    }
    const stored = builder.finish();
    this.checkpoints = this.checkpoints.filter((c) => !(c.manifest.height === capture.height && c.source === CheckpointSource.Taken));
    this.checkpoints.push({ ...stored, cert: null, source: CheckpointSource.Taken, chunks });
    return stored;
  }

  readCheckpointPieceSync(height: number, state: Digest, index: number): Uint8Array | undefined {
    const c = this.held(height, state);
    if (c === undefined) return undefined;
    return index === 0 ? encodeCheckpointManifest(c.manifest) : c.chunks[index - 1];
  }

  checkpointChunksSync(checkpoint: StoredCheckpoint): readonly Uint8Array[] {
    const c = this.held(checkpoint.manifest.height, checkpoint.state);
    if (c === undefined) throw new Error(`checkpoint at height ${checkpoint.manifest.height} is not held`);
    return c.chunks;
  }

  latestStableCert(): CheckpointCert | null {
    let best: CheckpointCert | null = null;
    for (const c of this.checkpoints) if (c.cert !== null && (best === null || c.cert.height > best.height)) best = c.cert;
    return best;
  }

  /** Bytes held (blocks not counted): batches and checkpoint chunks, for the simulator's bounds. */
  heldBytes(): { batches: number; checkpoints: number; blocks: number } {
    let batches = 0;
    for (const b of this.batches.values()) batches += b.bytes.length;
    let checkpoints = 0;
    for (const c of this.checkpoints) for (const chunk of c.chunks) checkpoints += chunk.length;
    return { batches, checkpoints, blocks: this.consensus.blockCount() };
  }

  /** What is durable now, for checks that a message never leaves before what it promises (the
   *  simulator's replicas; tests). */
  durable(): { readonly tsReservationUs: number; readonly frontier: Slot; readonly lastVotedView: number; hasAck(digest: Digest, ocHash: Digest): boolean } {
    return {
      tsReservationUs: this.tsReservationUs,
      frontier: this.frontier,
      lastVotedView: this.consensus.loadSync().safety?.lastVotedView ?? 0,
      hasAck: (digest, ocHash) => this.acks.has(toHex(digest) + toHex(ocHash)),
    };
  }

  readBatchesSync(digests: readonly Digest[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const d of digests) {
      const b = this.batches.get(toHex(d));
      if (b !== undefined) out.push(b.bytes);
    }
    return out;
  }

  async load(): Promise<ReplicaRecovery> {
    return this.loadSync();
  }

  async apply(ops: readonly ReplicaPersistOp[]): Promise<void> {
    this.applySync(ops);
  }

  async readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]> {
    return this.consensus.readBlocksSync(digest, maxBlocks);
  }

  async readBatches(digests: readonly Digest[]): Promise<Uint8Array[]> {
    return this.readBatchesSync(digests);
  }

  async writeCheckpoint(capture: CheckpointCapture): Promise<StoredCheckpoint> {
    return this.writeCheckpointSync(capture);
  }

  async readCheckpointPiece(height: Height, state: Digest, index: number): Promise<Uint8Array | undefined> {
    return this.readCheckpointPieceSync(height, state, index);
  }

  async *checkpointChunks(checkpoint: StoredCheckpoint): AsyncIterable<Uint8Array> {
    yield* this.checkpointChunksSync(checkpoint);
  }
}
