/**
 * A replica's durable store: the consensus part (consensus/storage.ts, whose contract applies here
 * too) plus the ordering phase's records. Same contract: `apply` is atomic and durable when it
 * resolves; `load` returns what a restarted replica needs.
 */
import { toHex } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import type { Block, OrderingCert, SealEntry } from '../common/messages.js';
import { MemoryConsensusStorage } from '../consensus/storage.js';
import type { ConsensusPersistOp, RecoveredConsensus } from '../consensus/types.js';
import type { RecoveredOrdering, ReplicaPersistOp } from './types.js';

export interface ReplicaRecovery {
  readonly consensus: RecoveredConsensus;
  readonly ordering: RecoveredOrdering;
}

export interface ReplicaStorage {
  load(): Promise<ReplicaRecovery>;
  apply(ops: readonly ReplicaPersistOp[]): Promise<void>;
  readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]>;
  /** The stored batches among `digests` (unknown ones are skipped). */
  readBatches(digests: readonly Digest[]): Promise<Uint8Array[]>;
}

const CONSENSUS_KINDS = new Set(['safety', 'block', 'committed']);

export function isConsensusOp(op: ReplicaPersistOp): op is ConsensusPersistOp {
  return CONSENSUS_KINDS.has(op.kind);
}

/** Memory store for tests and the simulator: it survives a simulated crash because the simulator
 *  keeps it while dropping the core. */
export class MemoryReplicaStorage implements ReplicaStorage {
  readonly consensus = new MemoryConsensusStorage();
  private tsReservationUs = 0;
  private frontier = 0 as Slot;
  private readonly acks = new Map<string, { entry: SealEntry; slot: Slot; oc: OrderingCert; sig: Uint8Array }>();
  private readonly batches = new Map<string, { digest: Digest; bytes: Uint8Array }>();

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
        case 'batch':
          this.batches.set(toHex(op.digest), { digest: op.digest, bytes: op.bytes });
          break;
        case 'ack':
          this.acks.set(toHex(op.entry.digest) + toHex(op.entry.ocHash), { entry: op.entry, slot: op.slot, oc: op.oc, sig: op.sig });
          break;
        case 'pruneAcks':
          for (const [key, ack] of this.acks) if (ack.slot <= op.throughSlot) this.acks.delete(key);
          break;
      }
    }
    this.consensus.applySync(consensusOps);
  }

  loadSync(): ReplicaRecovery {
    const acks = [...this.acks.values()];
    const acked = new Set(acks.map((a) => toHex(a.entry.digest)));
    return {
      consensus: this.consensus.loadSync(),
      ordering: {
        tsReservationUs: this.tsReservationUs,
        frontier: this.frontier,
        acks,
        batches: [...this.batches.values()].filter((b) => acked.has(toHex(b.digest))),
      },
    };
  }

  /** The committed chain from genesis (excluded) to the tip, oldest first, and every stored batch:
   *  what ReplicaCore.replayCommitted needs (the memory store keeps every block). */
  committedChainSync(): { blocks: Block[]; batches: { digest: Digest; bytes: Uint8Array }[] } {
    const tip = this.consensus.committedDigest();
    const blocks = tip === null ? [] : this.consensus.readBlocksSync(tip, Number.MAX_SAFE_INTEGER).reverse();
    return { blocks, batches: [...this.batches.values()] };
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
}
