/**
 * The consensus core's contract with its driver (sim/ or server/) and with the App above it.
 *
 * The core is a synchronous state machine in the etcd-raft style: one entry point,
 * `step(input, nowUs)`, for every input (a peer message, a timer tick, a payload becoming ready),
 * returning an Output that says what to persist, then what to send, then which blocks committed —
 * and the driver must act in that order: a vote or timeout leaves only after the safety state it
 * depends on is durable.
 */
import type { ClusterConfig, CommitRule } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, Height, ReplicaId, View } from '../common/ids.js';
import type { Block, ConsensusMsg, QuorumCert, TimeoutCert } from '../common/messages.js';

export type { CommitRule };

/** What must survive a crash so that the replica never votes twice in conflicting ways. */
export interface SafetyState {
  /** Highest view in which this replica voted or timed out; it never votes at or below it again. */
  readonly lastVotedView: View;
  /** 3-chain: the preferred view — the highest view of a QC found inside a certified block; a vote
   *  needs the proposal's QC at or above it. 2-chain: the highest QC view found in a block this
   *  replica voted for; its timeouts never carry a lower QC. */
  readonly lockedView: View;
  /** Highest QC known; carried in timeouts so the next leader extends it. */
  readonly highQc: QuorumCert;
  /** Certificate that ended the highest view that ended by timeout; helps laggards after a restart. */
  readonly lastTc: TimeoutCert | null;
}

/** Durable writes requested by the core, applied atomically in order by the driver. */
export type ConsensusPersistOp =
  | { readonly kind: 'safety'; readonly state: SafetyState }
  | { readonly kind: 'block'; readonly digest: Digest; readonly block: Block }
  | { readonly kind: 'committed'; readonly height: Height; readonly digest: Digest };

export type Destination = ReplicaId | 'all';

export interface Outbound<M> {
  /** 'all' means every replica except this one. */
  readonly to: Destination;
  readonly msg: M;
}

export interface CommittedBlock {
  readonly digest: Digest;
  readonly block: Block;
}

/** A request the core cannot answer from memory: the driver reads the blocks from storage and
 *  sends the BlockResponse itself (a read, so it needs no ordering with the core's writes). */
export interface ServeBlocksRequest {
  readonly to: ReplicaId;
  readonly digest: Digest;
  readonly maxBlocks: number;
}

export interface ConsensusOutput {
  readonly persist: ConsensusPersistOp[];
  readonly send: Outbound<ConsensusMsg>[];
  readonly commits: CommittedBlock[];
  readonly serveFromStorage: ServeBlocksRequest[];
  /** Problems caused by peers (bad signatures, invalid proposals), for logs and counters. */
  readonly faults: PeerFault[];
  /** A vote or timeout of this replica was recorded in this step (its safety state is among
   *  `persist`): anything that counts that vote must wait for this step's write. */
  voted: boolean;
  /** The proposal in `send`, if any, carries a certificate that counts a vote or timeout recorded
   *  earlier in this same step, so it must wait for this step's write. Otherwise a proposal relies
   *  only on earlier steps' writes (its certificate counts an older vote of this replica): its own
   *  block and the vote on it need not be on disk before followers see it, since a QC on it needs
   *  that vote, which leaves only inside the next proposal. */
  proposalNeedsThisStep: boolean;
}

export interface PeerFault {
  readonly peer: ReplicaId;
  readonly kind: PeerFaultKind;
  readonly detail: string;
}
export type PeerFaultKind =
  | 'badSignature'
  | 'badCertificate'
  | 'invalidProposal'
  | 'invalidPayload'
  | 'wrongLeader'
  | 'equivocation'
  | 'badSyncResponse'
  | 'farFutureView'
  /** A checkpoint chunk (or manifest) that does not match the certified digest. */
  | 'badCheckpointChunk'
  /** Reported by a replica about itself: its checkpoint's state differs from the one q replicas
   *  certify at that height (a non-deterministic state machine); it installs the certified one. */
  | 'stateDiverged';

export type ConsensusInput =
  | { readonly kind: 'message'; readonly from: ReplicaId; readonly msg: ConsensusMsg }
  /** Deliver at (or after) the core's `nextWakeUs()`; the core checks all its deadlines. */
  | { readonly kind: 'tick' }
  /** The App has everything it needs to validate this block's payload (after it said 'pending'). */
  | { readonly kind: 'payloadReady'; readonly block: Digest }
  /** The App has new content and would like the leader to reconsider proposing now. */
  | { readonly kind: 'proposeHint' }
  /** The App sees no progress (e.g. a leader that keeps its slots from committing): time out the
   *  current view now. f+1 replicas doing so end the view for everyone. */
  | { readonly kind: 'timeoutNow' }
  /** The App is installing a checkpoint from its peers and will replace this core: from now on it
   *  follows certificates but never votes, times out, proposes or fetches blocks. */
  | { readonly kind: 'suspend' }
  /** The App gave up the install (it caught up by executing the blocks it had): take part again,
   *  with a fresh view deadline. */
  | { readonly kind: 'resume' };

/** A vote's or timeout's attachment, as the next leader receives it. */
export interface Attachment {
  readonly from: ReplicaId;
  /** The block the attachment was made for: the voted block, or the timeout's high-QC block. */
  readonly base: Digest;
  readonly bytes: Uint8Array;
}

export interface ProposeContext {
  readonly view: View;
  readonly parent: Block;
  readonly parentDigest: Digest;
  /** Digests of the uncommitted blocks from the parent back to (excluding) the committed tip. */
  readonly uncommitted: readonly Digest[];
  /** Attachments of the votes (or timeouts) that let this replica lead, at most one per replica. */
  readonly attachments: readonly Attachment[];
  readonly nowUs: number;
}

export type ProposeDecision = { readonly payload: Uint8Array } | { readonly retryAtUs: number };

export type Validity = 'valid' | 'invalid' | 'pending';

/**
 * What consensus needs from the layer above (the ordering phase; a trivial app in tests).
 * All calls are synchronous and deterministic; an app that must wait for data answers 'pending'
 * and later feeds a `payloadReady` input.
 */
export interface App {
  /** Called when this replica leads `ctx.view` and may propose; may ask to be called again later. */
  propose(ctx: ProposeContext): ProposeDecision;
  /** Is this payload acceptable as a child of `parent`? 'pending' means: data is being fetched. */
  validate(block: Block, digest: Digest, parent: Block, nowUs: number): Validity;
  /** Bytes to attach to a vote for `block`, or to a timeout whose high QC certifies `block`. */
  attachment(block: Block, digest: Digest, nowUs: number): Uint8Array;
}

export interface ConsensusOptions {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly crypto: CryptoBackend;
  readonly signer: Signer;
  readonly app: App;
  /** What the storage held at start (fresh replica: all empty). */
  readonly recovered: RecoveredConsensus;
}

export interface RecoveredConsensus {
  readonly safety: SafetyState | null;
  readonly committed: { readonly height: Height; readonly digest: Digest } | null;
  /** Stored blocks from the committed tip upward (the tip included), any order. */
  readonly blocks: readonly Block[];
}

export const EMPTY_RECOVERY: RecoveredConsensus = { safety: null, committed: null, blocks: [] };
