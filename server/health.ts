/**
 * /health and /ready: what a load balancer, an orchestrator or an operator's script asks.
 *
 * - Healthy: the drive loop runs (it stops for good on a broken invariant or a failed write) and
 *   the store is taking writes (no persist pending for longer than PERSIST_STALL_MS).
 * - Ready: healthy, linked to at least q − 1 peers (with itself, a quorum: fewer and nothing can
 *   commit), and the committed height advancing. A cluster with nothing to do still commits: the
 *   leader proposes an (empty) block every idleBlockIntervalUs, so a height that stands still for
 *   several of those plus view timeouts means the cluster is stuck, not idle.
 *
 * Each answer is 200 or 503 with a one-line reason.
 */
import type { ReplicaPersistOp } from '../ordering/types.js';
import type { ReplicaStorage } from '../ordering/storage.js';

/** A synced LevelDB batch takes milliseconds, a slow disk under load a second or two: a write
 *  pending this long means the disk (or the store) is stuck. */
export const PERSIST_STALL_MS = 10_000;
/** The committed height may stand still at least this long before the replica is not ready: a
 *  few view changes in a row (500 ms, doubling) fit in it. */
export const MIN_COMMIT_STALL_MS = 5_000;
/** ...or this many idle block intervals plus view timeouts, if that is longer. */
const COMMIT_STALL_ROUNDS = 4;

export interface Check {
  readonly ok: boolean;
  /** Why not (empty when ok). */
  readonly reason: string;
}

const OK: Check = { ok: true, reason: '' };
const fail = (reason: string): Check => ({ ok: false, reason });

/**
 * Wraps the store the drive loop writes through, to know how long the oldest write has been
 * pending. Writes resolve in the order they were made (the WriteBatcher keeps order), so the
 * oldest pending write is the first of a FIFO.
 */
export class PersistWatch {
  private readonly startedMs: number[] = [];
  private head = 0;

  constructor(private readonly clockMs: () => number) {}

  wrap(storage: ReplicaStorage): ReplicaStorage {
    return {
      load: () => storage.load(),
      readBlocks: (digest, maxBlocks) => storage.readBlocks(digest, maxBlocks),
      readBatches: (digests) => storage.readBatches(digests),
      writeCheckpoint: (capture) => storage.writeCheckpoint(capture),
      readCheckpointPiece: (height, state, index) => storage.readCheckpointPiece(height, state, index),
      checkpointChunks: (checkpoint) => storage.checkpointChunks(checkpoint),
      latestStableCert: () => storage.latestStableCert(),
      apply: (ops: readonly ReplicaPersistOp[]) => {
        this.startedMs.push(this.clockMs());
        return storage.apply(ops).finally(() => this.done());
      },
    };
  }

  /** How long the oldest write still pending has waited (0: none pending). */
  oldestPendingMs(): number {
    const started = this.startedMs[this.head];
    return started === undefined ? 0 : this.clockMs() - started;
  }

  private done(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.startedMs.length) {
      this.startedMs.splice(0, this.head);
      this.head = 0;
    }
  }
}

export interface HealthInputs {
  /** The drive loop takes input. */
  readonly running: boolean;
  /** Why it stopped, if it did. */
  readonly fatal: string | null;
  readonly oldestPendingWriteMs: number;
}

export function checkHealth(h: HealthInputs): Check {
  if (!h.running) return fail(h.fatal === null ? 'the replica is stopping' : `the replica stopped: ${h.fatal}`);
  if (h.oldestPendingWriteMs > PERSIST_STALL_MS) return fail(`a store write has been pending for ${(h.oldestPendingWriteMs / 1000).toFixed(1)} s`);
  return OK;
}

export interface ReadyInputs {
  readonly health: Check;
  readonly peersUp: number;
  /** q − 1. */
  readonly peersNeeded: number;
  readonly peerCount: number;
  readonly committedHeight: number;
  /** Since the committed height last advanced (or since start). */
  readonly commitAgeMs: number;
  readonly idleBlockIntervalMs: number;
  readonly viewTimeoutMs: number;
}

/** How long the committed height may stand still before the replica is not ready. */
export function commitStallLimitMs(idleBlockIntervalMs: number, viewTimeoutMs: number): number {
  return Math.max(MIN_COMMIT_STALL_MS, COMMIT_STALL_ROUNDS * (idleBlockIntervalMs + viewTimeoutMs));
}

export function checkReady(r: ReadyInputs): Check {
  if (!r.health.ok) return r.health;
  if (r.peersUp < r.peersNeeded) return fail(`connected to ${r.peersUp} of ${r.peerCount} peers; ${r.peersNeeded} needed for a quorum`);
  const limitMs = commitStallLimitMs(r.idleBlockIntervalMs, r.viewTimeoutMs);
  if (r.commitAgeMs > limitMs) {
    return fail(`committed height ${r.committedHeight} has not advanced for ${(r.commitAgeMs / 1000).toFixed(1)} s (limit ${(limitMs / 1000).toFixed(1)} s)`);
  }
  return OK;
}
