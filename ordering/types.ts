/**
 * The replica core's contract with its driver (sim/ or server/): like consensus/types.ts, one
 * entry point `step(input, nowUs)` whose output the driver applies in order — persist (durably),
 * then send, then report — so an ack, a timestamp or a seal never leaves before what it relies on
 * is durable.
 */
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, Height, ReplicaId, Slot } from '../common/ids.js';
import type { CheckpointCert, Message, OrderingCert, SealEntry } from '../common/messages.js';
import type { CheckpointCapture, LocalCheckpoint, RestoredCheckpoint, StoredCheckpoint } from './checkpointFormat.js';

import type { ConsensusPersistOp, PeerFault, RecoveredConsensus, ServeBlocksRequest } from '../consensus/types.js';
import type { AdmissionLimits } from './admission.js';
import type { ClientIdentity } from './clientKeys.js';
import type { StateMachine } from './stateMachine.js';

/** Durable writes of the ordering phase. */
export type OrderingPersistOp =
  /** Timestamps up to this value may be given; the next start begins above it. */
  | { readonly kind: 'tsReservation'; readonly untilUs: number }
  /** The sealed frontier (written before a seal reaching it leaves). */
  | { readonly kind: 'frontier'; readonly slot: Slot }
  /** Batch bytes this replica holds durably (acked, or fetched to vote or execute). */
  | { readonly kind: 'batch'; readonly digest: Digest; readonly bytes: Uint8Array }
  /** An ack given: listed by every later seal over its slot, so it must survive a restart. */
  | { readonly kind: 'ack'; readonly entry: SealEntry; readonly slot: Slot; readonly oc: OrderingCert; readonly sig: Uint8Array }
  /** Acks at or below this slot are covered by a committed block and no longer needed. */
  | { readonly kind: 'pruneAcks'; readonly throughSlot: Slot }
  /** A chunk (1-based index) of the stable checkpoint being fetched from peers, checked against
   *  its manifest (stateTransfer.ts). */
  | { readonly kind: 'checkpointChunk'; readonly height: Height; readonly state: Digest; readonly index: number; readonly bytes: Uint8Array }
  /** Every chunk of that checkpoint is written: it becomes this replica's latest checkpoint (its
   *  block is the committed tip, written in the same group). */
  | { readonly kind: 'checkpointInstalled'; readonly checkpoint: StoredCheckpoint; readonly cert: CheckpointCert }
  /** q replicas signed this replica's checkpoint at cert.height: it is stable. */
  | { readonly kind: 'checkpointStable'; readonly cert: CheckpointCert }
  /** Everything below this checkpoint height is no longer needed: blocks, the batches they
   *  committed, batches that expired before `expiredBeforeUs` (none can be committed again), and
   *  older checkpoints. */
  | { readonly kind: 'pruneBelowCheckpoint'; readonly height: Height; readonly expiredBeforeUs: number };

export type ReplicaPersistOp = ConsensusPersistOp | OrderingPersistOp;

/** Where a client request came from: a client connection, a peer replica acting as a gateway, or
 *  this replica's own gateway. Replies go back the same way. */
export type Source =
  | { readonly kind: 'client'; readonly conn: number }
  | { readonly kind: 'peer'; readonly replica: ReplicaId }
  | { readonly kind: 'local' };

/** How the driver treats a client message before stepping it (ReplicaCore.triageClient, a query
 *  that changes nothing): `urgent` — phase 2 of a batch this replica stamped and holds, due within
 *  Δ; `overBudget` — a submission its key's admission budget would refuse now; `normal` — the rest. */
export type ClientTriage = 'urgent' | 'normal' | 'overBudget';

/** A client connection's submissions waiting in the driver, not yet stepped (their budget is not
 *  spent yet): what triage counts on top of the one it looks at. */
export interface QueuedSubmissions {
  readonly batches: number;
  readonly bytes: number;
}

export type ReplicaInput =
  | { readonly kind: 'start' }
  | { readonly kind: 'peer'; readonly from: ReplicaId; readonly msg: Message }
  | { readonly kind: 'client'; readonly conn: number; readonly msg: Message }
  /** The connection proved it holds this client key (the transport checked a signed challenge);
   *  comes before any of the connection's messages, once per connection. */
  | { readonly kind: 'clientAuthenticated'; readonly conn: number; readonly identity: ClientIdentity }
  | { readonly kind: 'clientClosed'; readonly conn: number }
  | { readonly kind: 'tick' }
  /** Leave the current view now (sign a timeout), as a replica does that sees no progress: for an
   *  operator's tooling, and for simulated replicas that time out early on purpose. */
  | { readonly kind: 'timeoutNow' }
  /** The driver wrote a checkpoint the core captured (ReplicaOutput.checkpoints). */
  | { readonly kind: 'checkpointWritten'; readonly checkpoint: StoredCheckpoint };

/** One batch executed, for checkers, logs and metrics. */
export interface ExecutionRecord {
  readonly position: number;
  readonly digest: Digest;
  readonly ts: number;
  readonly ocHash: Digest;
  readonly blockHeight: number;
  readonly commands: number;
  /** The batch's collector key (lowercase hex; empty for a batch whose header does not parse). */
  readonly collectorKey: string;
  /** The results blob sent in the Executed notice (compared across replicas). */
  readonly results: Uint8Array;
  /** The OC the batch executed under, and its bytes (references, for checkers and logs). */
  readonly oc: OrderingCert;
  readonly batch: Uint8Array;
  /** What the state machine threw on this batch (its commands got status 7, StateMachineError), or null. */
  readonly failure: string | null;
}

/** Batches the driver must read from storage and send to a peer (not held in memory). */
export interface ServeBatchesRequest {
  readonly to: ReplicaId;
  readonly digests: readonly Digest[];
}

/** A piece of a held checkpoint (0: its manifest) the driver must read and send to a peer as a
 *  chunkResponse (nothing if it is not held any more). */
export interface ServeChunkRequest {
  readonly to: ReplicaId;
  readonly height: Height;
  readonly state: Digest;
  readonly index: number;
}

export interface ReplicaOutput {
  readonly persist: ReplicaPersistOp[];
  /**
   * Outputs with persist ops are numbered 1, 2, 3, … in step order (0: none here). The driver must
   * make them durable in that order (a write group never becomes durable before an earlier one).
   */
  persistSeq: number;
  /**
   * The sends of this output may leave once persists 1..sendAfter are durable. Everything but a
   * proposal waits for its own output's write, if any; votes, timeouts and acks also for everything
   * before them; a timestamp reply for the write of the reservation it was given under; refusals,
   * Executed notices, fetches and the like for nothing more. A proposal waits only for the write
   * of the vote or timeout its certificate counts (ReplicaCore.sequence). So a message never waits
   * behind an fsync it does not rely on.
   */
  sendAfter: number;
  readonly toPeers: { readonly to: ReplicaId | 'all'; readonly msg: Message }[];
  readonly toClients: { readonly conn: number; readonly msg: Message }[];
  readonly serveBlocks: ServeBlocksRequest[];
  readonly serveBatches: ServeBatchesRequest[];
  readonly serveChunks: ServeChunkRequest[];
  /** Checkpoints captured: the driver writes each (pulling the app's chunks as it goes), then
   *  steps 'checkpointWritten'. */
  readonly checkpoints: CheckpointCapture[];
  /** A checkpoint fetched from peers is in this output's persist group: once that is durable, the
   *  driver replaces the core with one rebuilt from the store (it feeds this one nothing more). */
  install: LocalCheckpoint | null;
  readonly executed: ExecutionRecord[];
  readonly commits: { readonly height: number; readonly digest: Digest; readonly toSlot: Slot }[];
  readonly faults: PeerFault[];
}

export interface RecoveredOrdering {
  readonly tsReservationUs: number;
  readonly frontier: Slot;
  readonly acks: readonly { readonly entry: SealEntry; readonly oc: OrderingCert; readonly sig: Uint8Array }[];
  /** Bytes of acked batches not yet covered by a committed block (later seals list them). The
   *  committed chain and its batches are replayed separately (ReplicaCore.replayCommitted). */
  readonly batches: readonly { readonly digest: Digest; readonly bytes: Uint8Array }[];
}

export const EMPTY_ORDERING_RECOVERY: RecoveredOrdering = {
  tsReservationUs: 0,
  frontier: 0 as Slot,
  acks: [],
  batches: [],
};

export interface ReplicaOptions {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly crypto: CryptoBackend;
  readonly signer: Signer;
  /** Already restored from `recovered.checkpoint`, if there is one (the driver's job). */
  readonly stateMachine: StateMachine;
  readonly recovered: { readonly consensus: RecoveredConsensus; readonly ordering: RecoveredOrdering };
  /** The checkpoint the state machine was restored from: the executor continues from its state,
   *  and replayCommitted takes the blocks above it. */
  readonly restored?: RestoredCheckpoint | null;
  /** Gateway batching for thin clients; defaults suit a LAN. */
  readonly gateway?: { readonly maxBatchCommands: number; readonly maxDelayUs: number };
  /** Per-key admission budgets; the defaults (ordering/admission.ts) unless a simulation models
   *  another deployment. */
  readonly admissionLimits?: AdmissionLimits;
}
