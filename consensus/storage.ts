/**
 * The consensus part of a replica's durable store, behind a narrow interface.
 *
 * Contract (every implementation — memory for tests and simulation, LevelDB in server/):
 *  1. `apply(ops)` is atomic: after a crash either every op of one call is visible or none is.
 *  2. When `apply` resolves, its ops survive a crash of the process and of the machine. The driver
 *     applies a step's ops before it sends that step's messages, so a vote or timeout never leaves
 *     before the safety state it depends on is durable.
 *  3. `load()` returns the last safety state written, the last committed (height, digest), and every
 *     block written at or above the committed height — the committed block itself included.
 *  4. Blocks below the committed height may be pruned, but `readBlocks` serves at least the most
 *     recent ones so that lagging peers can catch up by block sync.
 */
import { bytesEqual, toHex } from '../common/bytes.js';
import type { Digest } from '../common/ids.js';
import type { Block } from '../common/messages.js';
import type { ConsensusPersistOp, RecoveredConsensus, SafetyState } from './types.js';

export interface ConsensusStorage {
  load(): Promise<RecoveredConsensus>;
  apply(ops: readonly ConsensusPersistOp[]): Promise<void>;
  /** The block `digest` and up to maxBlocks − 1 of its ancestors, newest first (empty if unknown). */
  readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]>;
}

/** In-memory store: synchronous methods for the simulator, async ones for the interface. */
export class MemoryConsensusStorage implements ConsensusStorage {
  private safety: SafetyState | null = null;
  private committed: { height: number; digest: Digest } | null = null;
  private readonly blocks = new Map<string, Block>();

  applySync(ops: readonly ConsensusPersistOp[]): void {
    for (const op of ops) {
      switch (op.kind) {
        case 'safety':
          this.safety = op.state;
          break;
        case 'block':
          this.blocks.set(toHex(op.digest), op.block);
          break;
        case 'committed':
          this.committed = { height: op.height, digest: op.digest };
          break;
      }
    }
  }

  loadSync(): RecoveredConsensus {
    const committed = this.committed;
    const blocks = [...this.blocks.values()].filter((b) => committed === null || b.height >= committed.height);
    return {
      safety: this.safety,
      committed: committed === null ? null : { height: committed.height as Block['height'], digest: committed.digest },
      blocks,
    };
  }

  readBlocksSync(digest: Digest, maxBlocks: number): Block[] {
    const out: Block[] = [];
    let block = this.blocks.get(toHex(digest));
    while (block !== undefined && out.length < maxBlocks && block.height > 0) {
      out.push(block);
      block = this.blocks.get(toHex(block.parent));
    }
    return out;
  }

  /** Deletes the stored blocks below `belowHeight` (never the committed tip) and returns them. */
  pruneSync(belowHeight: number): Block[] {
    const tipHeight = this.committed?.height ?? 0;
    const pruned: Block[] = [];
    for (const [key, block] of this.blocks) {
      if (block.height < belowHeight && block.height < tipHeight) {
        this.blocks.delete(key);
        pruned.push(block);
      }
    }
    return pruned;
  }

  /** The committed block at a height, walking down from the committed tip (tests and checkers). */
  committedDigest(): Digest | null {
    return this.committed?.digest ?? null;
  }

  blockCount(): number {
    return this.blocks.size;
  }

  hasBlock(digest: Digest): boolean {
    return this.blocks.has(toHex(digest));
  }

  isCommitted(digest: Digest): boolean {
    return this.committed !== null && bytesEqual(this.committed.digest, digest);
  }

  async load(): Promise<RecoveredConsensus> {
    return this.loadSync();
  }

  async apply(ops: readonly ConsensusPersistOp[]): Promise<void> {
    this.applySync(ops);
  }

  async readBlocks(digest: Digest, maxBlocks: number): Promise<Block[]> {
    return this.readBlocksSync(digest, maxBlocks);
  }
}
