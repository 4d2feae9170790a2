/**
 * Every message on the wire, as the typed values the cores see after decoding and validation
 * (codec.ts turns frames into these, or into a typed error). Field layout and limits are checked
 * by the codec; signatures and certificates are checked by the cores, which know the cluster.
 *
 * Conventions: integers are non-negative safe integers (u64 ≤ 2^53 − 1); timestamps are µs;
 * signatures are 64-byte Ed25519; digests are 32-byte SHA-256; signer bitmaps are ⌈n/8⌉ bytes,
 * bit i = byte ⌊i/8⌋, bit (i mod 8) from the least significant.
 */
import type { Digest, Height, ReplicaId, Slot, View } from './ids.js';

// ---------------------------------------------------------------------------------------------
// Consensus (HotStuff) data

/** q votes on one block in one view. The QC of the genesis block has view 0 and no signers. */
export interface QuorumCert {
  readonly view: View;
  readonly block: Digest;
  readonly signers: Uint8Array;
  /** One signature per set bit of `signers`, in increasing replica order. */
  readonly sigs: readonly Uint8Array[];
}

/** q timeout messages for one view; each signer signed (view, the view of its highest QC). */
export interface TimeoutCert {
  readonly view: View;
  readonly signers: Uint8Array;
  /** Per signer, in increasing replica order: the view of the highest QC it reported. */
  readonly highQcViews: readonly View[];
  readonly sigs: readonly Uint8Array[];
}

export interface Block {
  readonly parent: Digest;
  readonly view: View;
  readonly height: Height;
  readonly proposer: ReplicaId;
  readonly justify: QuorumCert;
  /** Opaque to consensus; the ordering App encodes a BlockPayload here. */
  readonly payload: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Ordering (Pompe) data

/** One replica's signed timestamp for a batch digest. */
export interface SignedTimestamp {
  readonly replica: ReplicaId;
  readonly ts: number;
  readonly sig: Uint8Array;
}

/** Ordering certificate: exactly q signed timestamps from q distinct replicas, in increasing
 *  replica order. The batch's timestamp is the median: index f of the sorted values. */
export interface OrderingCert {
  readonly digest: Digest;
  readonly stamps: readonly SignedTimestamp[];
}

/** One sequenced batch as a seal lists it. */
export interface SealEntry {
  readonly digest: Digest;
  readonly ts: number;
  readonly ocHash: Digest;
}

/** "I have sealed up to slot toSlot; these are all my acks with ts in slots (fromSlot, toSlot]",
 *  entries sorted by (ts, digest, ocHash). The signature covers a hash of the entries. */
export interface Seal {
  readonly replica: ReplicaId;
  readonly fromSlot: Slot;
  readonly toSlot: Slot;
  readonly entries: readonly SealEntry[];
  readonly sig: Uint8Array;
}

/** What a vote or timeout carries for the next leader: the sender's seal and the OC of each of its
 *  entries (one per distinct ocHash, in the order of first appearance), which the leader needs to
 *  build a payload that validators can check. */
export interface SealAttachment {
  readonly seal: Seal;
  readonly ocs: readonly OrderingCert[];
}

/** A seal inside a block payload: its entries within the block's range are given as a bitmap over
 *  the payload's entries (sent once), the rest (slots above the block's toSlot) as `tail`. */
export interface PayloadSeal {
  readonly replica: ReplicaId;
  readonly fromSlot: Slot;
  readonly toSlot: Slot;
  /** Bitmap over BlockPayload.entries, ⌈entries/8⌉ bytes. */
  readonly include: Uint8Array;
  readonly tail: readonly SealEntry[];
  readonly sig: Uint8Array;
}

/** What a block carries: the slot range (fromSlot, toSlot], the q seals that cover it, every
 *  distinct entry they list within it (sorted by (ts, digest, ocHash)) and each entry's OC once. */
export interface BlockPayload {
  readonly fromSlot: Slot;
  readonly toSlot: Slot;
  readonly entries: readonly SealEntry[];
  /** One per distinct ocHash among `entries`, in the order of first appearance. */
  readonly ocs: readonly OrderingCert[];
  readonly seals: readonly PayloadSeal[];
}

/** Why a replica did not timestamp or acknowledge a batch. */
export const RefusalReason = {
  /** slot(median) is at or below the replica's sealed frontier: restart phase 1. */
  Late: 'late',
  /** The median is beyond the replica's clock + Δ. */
  Early: 'early',
  /** The slot already holds MAX_ACKS_PER_SLOT acks. */
  Busy: 'busy',
  /** The replica lacks the batch bytes: resend Sequence with the batch. */
  NeedBytes: 'needBytes',
  /** The batch is past its expiresAtUs, or expires too far in the future. */
  Expired: 'expired',
  /** A budget of the sender (per connection or per client key) or a shared queue is past its mark:
   *  the batch was not stamped; try again later, more slowly. */
  Overloaded: 'overloaded',
  /** The batch header is malformed or the batch too large. */
  BadBatch: 'badBatch',
  /** The OC does not verify. */
  BadCert: 'badCert',
  /** The collector's batch signature, or a thin client's command signature, does not verify (or
   *  the batch came from a source that may not send it: see ordering/batchCheck.ts). */
  BadSignature: 'badSignature',
  /** A client key in the batch is not on the cluster's allow-list (`clientKeys` in cluster.json). */
  NotAllowed: 'notAllowed',
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

// ---------------------------------------------------------------------------------------------
// Messages

// replica ↔ replica, consensus
export interface ProposalMsg {
  readonly type: 'proposal';
  readonly block: Block;
  /** Present when the leader entered the view through a timeout certificate. */
  readonly tc: TimeoutCert | null;
}
export interface VoteMsg {
  readonly type: 'vote';
  readonly view: View;
  readonly block: Digest;
  readonly voter: ReplicaId;
  readonly sig: Uint8Array;
  /** Opaque to consensus: the voter's seal, for the next leader's payload. */
  readonly attachment: Uint8Array;
}
export interface TimeoutMsg {
  readonly type: 'timeout';
  readonly view: View;
  readonly voter: ReplicaId;
  readonly highQc: QuorumCert;
  readonly sig: Uint8Array;
  readonly attachment: Uint8Array;
  /** The certificate that ended the sender's previous view, if it was a timeout: lets laggards catch up. */
  readonly lastTc: TimeoutCert | null;
}
export interface BlockRequestMsg {
  readonly type: 'blockRequest';
  /** The newest block wanted; the response walks its ancestors. */
  readonly digest: Digest;
  readonly maxBlocks: number;
}
export interface BlockResponseMsg {
  readonly type: 'blockResponse';
  /** Newest first; each block is the parent of the one before it. */
  readonly blocks: readonly Block[];
}

// replica ↔ replica, batch bytes
export interface BatchRequestMsg {
  readonly type: 'batchRequest';
  readonly digests: readonly Digest[];
}
export interface BatchResponseMsg {
  readonly type: 'batchResponse';
  /** Batch bytes; the receiver hashes them to find which requests they answer. */
  readonly batches: readonly Uint8Array[];
}

// replica ↔ replica, checkpoints and state transfer (ordering/checkpoints.ts, stateTransfer.ts)

/** What a replica signs at a checkpoint: after executing the committed chain through block
 *  `block` at `height`, whose range ends at `toSlot`, the next executed position is `position` and
 *  the checkpoint (checkpoint manifest, see CheckpointManifest) hashes to `state`. */
export interface CheckpointStatement {
  readonly height: Height;
  readonly toSlot: Slot;
  readonly position: number;
  readonly block: Digest;
  readonly state: Digest;
}
/** q matching signatures on one CheckpointStatement: a stable checkpoint anyone can check. */
export interface CheckpointCert extends CheckpointStatement {
  readonly signers: Uint8Array;
  /** One signature per set bit of `signers`, in increasing replica order. */
  readonly sigs: readonly Uint8Array[];
}
/** A replica's signature on its checkpoint, broadcast when it takes one. */
export interface CheckpointMsg extends CheckpointStatement {
  readonly type: 'checkpoint';
  readonly replica: ReplicaId;
  readonly sig: Uint8Array;
}
/** "Tell me your latest stable checkpoint": sent by a replica that starts or finds itself behind. */
export interface CheckpointRequestMsg {
  readonly type: 'checkpointRequest';
}
/** The sender's latest stable checkpoint (an answer to a checkpointRequest, or to a block request
 *  for a block it has pruned). */
export interface CheckpointCertMsg {
  readonly type: 'checkpointCert';
  readonly cert: CheckpointCert;
}
/** One piece of a stable checkpoint: index 0 is its manifest, 1..chunks its chunks. */
export interface ChunkRequestMsg {
  readonly type: 'chunkRequest';
  readonly height: Height;
  readonly state: Digest;
  readonly index: number;
}
export interface ChunkResponseMsg {
  readonly type: 'chunkResponse';
  readonly height: Height;
  readonly state: Digest;
  readonly index: number;
  readonly bytes: Uint8Array;
}

/** A checkpoint's table of contents: what `state` in a CheckpointStatement is the hash of (see
 *  ordering/checkpointFormat.ts). The chunks hold, in order, the encoded checkpoint block
 *  (`blockChunks` of them), the executor's exactly-once state (`executorChunks`), then the state
 *  machine's snapshot (the rest). */
export interface CheckpointManifest {
  readonly height: Height;
  readonly toSlot: Slot;
  readonly position: number;
  readonly block: Digest;
  readonly blockChunks: number;
  readonly executorChunks: number;
  /** SHA-256 of each chunk, in order. */
  readonly chunkHashes: readonly Digest[];
}

// replica ↔ replica, link authentication (server transport)
export interface HelloChallengeMsg {
  readonly type: 'helloChallenge';
  readonly replica: ReplicaId;
  readonly nonce: Uint8Array;
}
export interface HelloMsg {
  readonly type: 'hello';
  readonly replica: ReplicaId;
  /** The nonce of the challenge this answers. */
  readonly nonce: Uint8Array;
  readonly sig: Uint8Array;
}

// client ↔ replica, link authentication (server transport): the replica sends a helloChallenge
// when a client connection opens, the client answers with its key, proving it holds it.
export interface ClientHelloMsg {
  readonly type: 'clientHello';
  /** The client's Ed25519 public key: its identity on this connection. */
  readonly key: Uint8Array;
  /** The nonce of the challenge this answers. */
  readonly nonce: Uint8Array;
  /** Over clientHelloMessage(clusterId, replica, nonce). */
  readonly sig: Uint8Array;
}

// collector → replica (a client in direct mode, a replica in gateway mode)
export interface SubmitMsg {
  readonly type: 'submit';
  readonly batch: Uint8Array;
}
export interface SequenceMsg {
  readonly type: 'sequence';
  readonly oc: OrderingCert;
  /** Sent again with the bytes when the replica answered `needBytes`. */
  readonly batch: Uint8Array | null;
}

// replica → collector
export interface TsReplyMsg {
  readonly type: 'tsReply';
  readonly digest: Digest;
  readonly stamp: SignedTimestamp;
}
export interface AckMsg {
  readonly type: 'ack';
  readonly digest: Digest;
  readonly ocHash: Digest;
  readonly replica: ReplicaId;
  readonly sig: Uint8Array;
}
export interface RefusedMsg {
  readonly type: 'refused';
  readonly digest: Digest;
  readonly replica: ReplicaId;
  readonly reason: RefusalReason;
  /** For `late`: the replica's sealed frontier; otherwise 0. */
  readonly frontier: number;
}
export interface ExecutedMsg {
  readonly type: 'executed';
  readonly digest: Digest;
  /** Index of the batch in the executed sequence (the same at every correct replica). */
  readonly position: number;
  /** The timestamp it executed at: the median of the OC it was committed under (after a restart
   *  of phase 1 this may be an earlier attempt's, if a correct replica's seal listed that one). */
  readonly ts: number;
  /** The batch's results, encoded by ordering/results; compared byte for byte across replicas. */
  readonly results: Uint8Array;
  readonly replica: ReplicaId;
  readonly sig: Uint8Array;
}

// thin client ↔ gateway replica. A thin client signs each command; the connection it arrives on
// is authenticated as the same key, and the gateway answers on that connection only.
export interface CommandMsg {
  readonly type: 'command';
  readonly clientKey: Uint8Array;
  readonly seq: number;
  /** The client's deadline for it (signed): it never executes at a timestamp past this. */
  readonly expiresAtUs: number;
  readonly payload: Uint8Array;
  /** Over commandMessage(clusterId, clientKey, seq, expiresAtUs, sha256(payload)). */
  readonly sig: Uint8Array;
}
export interface CommandOrderedMsg {
  readonly type: 'commandOrdered';
  readonly seq: number;
  readonly digest: Digest;
  readonly ts: number;
}
export interface CommandExecutedMsg {
  readonly type: 'commandExecuted';
  readonly seq: number;
  readonly position: number;
  readonly result: Uint8Array;
}

/** Sent in answer to a frame that could not be decoded or was not allowed on this link. */
export interface ErrorMsg {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}

export type ConsensusMsg = ProposalMsg | VoteMsg | TimeoutMsg | BlockRequestMsg | BlockResponseMsg;
export type CheckpointPeerMsg = CheckpointMsg | CheckpointRequestMsg | CheckpointCertMsg | ChunkRequestMsg | ChunkResponseMsg;
export type PeerMsg = ConsensusMsg | BatchRequestMsg | BatchResponseMsg | CheckpointPeerMsg;
export type HandshakeMsg = HelloChallengeMsg | HelloMsg | ClientHelloMsg;
export type CollectorToReplicaMsg = SubmitMsg | SequenceMsg;
export type ReplicaToCollectorMsg = TsReplyMsg | AckMsg | RefusedMsg | ExecutedMsg;
export type GatewayMsg = CommandMsg | CommandOrderedMsg | CommandExecutedMsg;

export type Message =
  | PeerMsg
  | HandshakeMsg
  | CollectorToReplicaMsg
  | ReplicaToCollectorMsg
  | GatewayMsg
  | ErrorMsg;
export type MessageType = Message['type'];
