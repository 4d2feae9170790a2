/**
 * What every part of the replica core shares: the cluster, this replica's identity and keys, the
 * slot clock, and the output of the step in progress. ReplicaCore makes one and hands it to each
 * part it composes; a part appends to `out` and reads `nowUs`, and never keeps an output across
 * steps.
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { SlotClock } from './slots.js';
import type { ReplicaOutput } from './types.js';

export function emptyOutput(): ReplicaOutput {
  return {
    persist: [],
    persistSeq: 0,
    sendAfter: 0,
    toPeers: [],
    toClients: [],
    serveBlocks: [],
    serveBatches: [],
    serveChunks: [],
    checkpoints: [],
    install: null,
    executed: [],
    commits: [],
    faults: [],
  };
}

export class CoreContext {
  /** The output of the step in progress. */
  out: ReplicaOutput = emptyOutput();
  /** The step's time: the largest clock reading seen, so it never goes back. */
  nowUs = 0;

  constructor(
    readonly config: ClusterConfig,
    readonly self: ReplicaId,
    readonly crypto: CryptoBackend,
    readonly signer: Signer,
    readonly slots: SlotClock,
  ) {}

  /** Hands the finished output over and starts a fresh one. */
  takeOutput(): ReplicaOutput {
    const out = this.out;
    this.out = emptyOutput();
    return out;
  }
}
