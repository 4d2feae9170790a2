/**
 * State transfer (docs/protocol.md "State transfer"): a replica whose store is empty or behind its
 * peers' pruned horizon fetches their latest stable checkpoint instead of the blocks it missed.
 *
 * Started by a certificate (checkpoints.ts) for a checkpoint at least TRANSFER_LAG_INTERVALS
 * checkpoint intervals ahead of what this replica executed (its peers may have pruned the blocks in
 * between), or for another state at a height it holds (its state diverged). It suspends the
 * consensus core (no vote, timeout, proposal or block sync until the install), asks the
 * certificate's signers for the manifest (piece 0), checks it against the certified digest, then
 * asks for the chunks, CHUNKS_IN_FLIGHT at a time, each checked against its hash in the manifest on
 * arrival and written (a 'checkpointChunk' persist op) as it comes: a Byzantine peer that serves
 * garbage or another checkpoint's chunks costs a retry with the next signer and is reported, never
 * a wrong state, and memory holds a few chunks (plus the checkpoint block). When every chunk is
 * written, one persist group makes the checkpoint held, its block the committed tip and the safety
 * state at least what this replica has followed meanwhile; the output's `install` then tells the
 * driver to rebuild the core from the store, as after a restart.
 *
 * A fetch started because this replica was behind is given up as soon as its execution reaches the
 * checkpoint's end by itself (it had the blocks, and their batches came after all): installing it
 * then would roll the replica back, and its own checkpoints above the target, once stable, prune
 * what the fetch wrote. The consensus core takes part again at once. A fetch for a state that
 * diverged from the certified one is never given up: the replica's own execution is what is wrong.
 */
import { bytesEqual, concatBytes } from '../common/bytes.js';
import { decodeBlock, decodeCheckpointManifest } from '../common/codec.js';
import { bitmapIndexes } from '../common/bitmap.js';
import type { ReplicaId, Slot, View } from '../common/ids.js';
import type { Block, CheckpointCert, CheckpointManifest, ChunkResponseMsg } from '../common/messages.js';
import { blockDigest } from '../consensus/block.js';
import type { SafetyState } from '../consensus/types.js';
import { checkpointDigest } from './checkpointFormat.js';
import type { CertReason } from './checkpoints.js';
import type { CoreContext } from './context.js';

/** Chunk requests outstanding at once: 4 MiB in flight keeps a LAN link busy while bounding what
 *  arrives at once (each response is one frame). */
const CHUNKS_IN_FLIGHT = 4;
/** A chunk request moves on to the next signer after this long: a 1 MiB chunk takes milliseconds
 *  on a LAN, seconds only from a peer that is down or does not answer. */
const CHUNK_TIMEOUT_US = 2_000_000;
/** How many checkpoint intervals behind a certified checkpoint a replica must have executed to
 *  fetch it rather than catch up by block sync: a peer keeps the blocks of one interval below its
 *  latest stable checkpoint, so two intervals behind, what this replica needs may be gone. */
export const TRANSFER_LAG_INTERVALS = 2;

export interface StateTransferParts {
  /** The end of the last block execution is through. */
  readonly executedThrough: () => Slot;
  /** Stops the consensus core from taking part until the install. */
  readonly suspendConsensus: () => void;
  /** Lets it take part again (a fetch given up). */
  readonly resumeConsensus: () => void;
  /** The consensus core's safety state and view now. */
  readonly consensusState: () => { readonly safety: SafetyState; readonly view: View };
}

export interface StateTransferStatus {
  readonly height: number;
  readonly chunks: number;
  readonly chunksDone: number;
  readonly bytes: number;
  readonly installing: boolean;
}

interface Fetch {
  readonly cert: CheckpointCert;
  /** This replica's own state differs from a certified one: the fetch must end in an install. */
  readonly diverged: boolean;
  readonly peers: readonly ReplicaId[];
  manifest: CheckpointManifest | null;
  /** Next piece to ask for (0: the manifest). */
  next: number;
  received: number;
  bytes: number;
  readonly inFlight: Map<number, { peer: ReplicaId; deadlineUs: number }>;
  /** Rotates through `peers`. */
  cursor: number;
  readonly blockParts: Uint8Array[];
}

export class StateTransfer {
  private fetch: Fetch | null = null;
  private installing = false;

  constructor(
    private readonly ctx: CoreContext,
    private readonly parts: StateTransferParts,
  ) {}

  get active(): boolean {
    return this.fetch !== null || this.installing;
  }

  status(): StateTransferStatus | null {
    const f = this.fetch;
    if (f === null) return null;
    return { height: f.cert.height, chunks: f.manifest?.chunkHashes.length ?? 0, chunksDone: f.received, bytes: f.bytes, installing: this.installing };
  }

  nextDueUs(): number | null {
    let next: number | null = null;
    for (const r of this.fetch?.inFlight.values() ?? []) if (next === null || r.deadlineUs < next) next = r.deadlineUs;
    return next;
  }

  /** A certificate for a checkpoint this replica does not hold (checkpoints.ts decides that). */
  consider(cert: CheckpointCert, reason: CertReason): void {
    if (this.installing || (this.fetch !== null && cert.height <= this.fetch.cert.height)) return;
    const lagSlots = TRANSFER_LAG_INTERVALS * this.ctx.config.protocol.checkpointIntervalSlots;
    if (reason === 'ahead' && cert.toSlot < this.parts.executedThrough() + lagSlots) return;
    const peers = bitmapIndexes(cert.signers).filter((r) => r !== this.ctx.self) as ReplicaId[];
    if (peers.length === 0) return;
    if (this.fetch === null) this.parts.suspendConsensus();
    // A newer certificate replaces an older target: its checkpoint will outlive the older one at
    // the peers. Chunks already written under the older height are pruned later.
    const diverged = reason === 'diverged' || this.fetch?.diverged === true;
    this.fetch = { cert, diverged, peers, manifest: null, next: 0, received: 0, bytes: 0, inFlight: new Map(), cursor: 0, blockParts: [] };
    this.fill();
  }

  /** Execution moved on: a fetch for a checkpoint this replica has now executed past is given up. */
  onExecuted(): void {
    const f = this.fetch;
    if (f === null || f.diverged || this.parts.executedThrough() < f.cert.toSlot) return;
    this.fetch = null;
    this.parts.resumeConsensus();
  }

  onTick(): void {
    const f = this.fetch;
    if (f === null) return;
    for (const [index, r] of f.inFlight) if (this.ctx.nowUs >= r.deadlineUs) this.ask(f, index);
  }

  onChunk(from: ReplicaId, msg: ChunkResponseMsg): void {
    const f = this.fetch;
    if (f === null || msg.height !== f.cert.height || !bytesEqual(msg.state, f.cert.state) || !f.inFlight.has(msg.index)) return;
    const problem = msg.index === 0 ? this.acceptManifest(f, msg.bytes) : this.acceptChunk(f, msg.index, msg.bytes);
    if (problem !== null) {
      this.ctx.out.faults.push({ peer: from, kind: 'badCheckpointChunk', detail: `piece ${msg.index} of the checkpoint at height ${msg.height}: ${problem}` });
      this.ask(f, msg.index);
      return;
    }
    f.inFlight.delete(msg.index);
    if (f.manifest !== null && f.received === f.manifest.chunkHashes.length) this.install(f, f.manifest);
    else this.fill();
  }

  private acceptManifest(f: Fetch, bytes: Uint8Array): string | null {
    const decoded = decodeCheckpointManifest(bytes, { replicaCount: this.ctx.config.n });
    if (!decoded.ok) return decoded.error.message;
    const m = decoded.value;
    if (!bytesEqual(checkpointDigest(this.ctx.crypto, m), f.cert.state)) return 'the manifest does not hash to the certified digest';
    // The digest covers these fields, and the certificate states them: a mismatch means q
    // replicas signed an inconsistent statement, which correct ones never do.
    if (m.height !== f.cert.height || m.toSlot !== f.cert.toSlot || m.position !== f.cert.position || !bytesEqual(m.block, f.cert.block)) return 'the manifest does not match its certificate';
    f.manifest = { ...m, chunkHashes: m.chunkHashes.map((h) => h.slice() as typeof h) };
    f.next = 1;
    return null;
  }

  private acceptChunk(f: Fetch, index: number, bytes: Uint8Array): string | null {
    const m = f.manifest!;
    if (!bytesEqual(this.ctx.crypto.sha256(bytes), m.chunkHashes[index - 1]!)) return 'does not match its hash in the manifest';
    // The frame's buffer is not ours to keep (codec.ts): the chunk is copied once, to be written.
    const chunk = bytes.slice();
    if (index <= m.blockChunks) f.blockParts[index - 1] = chunk;
    this.ctx.out.persist.push({ kind: 'checkpointChunk', height: f.cert.height, state: f.cert.state, index, bytes: chunk });
    f.received++;
    f.bytes += chunk.length;
    return null;
  }

  /** Asks for pieces until CHUNKS_IN_FLIGHT are outstanding (only the manifest until it is here). */
  private fill(): void {
    const f = this.fetch;
    if (f === null) return;
    if (f.manifest === null) {
      if (!f.inFlight.has(0)) this.ask(f, 0);
      return;
    }
    while (f.inFlight.size < CHUNKS_IN_FLIGHT && f.next <= f.manifest.chunkHashes.length) this.ask(f, f.next++);
  }

  /** Asks the next signer for piece `index`. */
  private ask(f: Fetch, index: number): void {
    const peer = f.peers[f.cursor++ % f.peers.length]!;
    f.inFlight.set(index, { peer, deadlineUs: this.ctx.nowUs + CHUNK_TIMEOUT_US });
    this.ctx.out.toPeers.push({ to: peer, msg: { type: 'chunkRequest', height: f.cert.height, state: f.cert.state, index } });
  }

  private install(f: Fetch, manifest: CheckpointManifest): void {
    const { ctx } = this;
    const decoded = decodeBlock(concatBytes(...f.blockParts), { replicaCount: ctx.config.n });
    // Every chunk matched the certified manifest: a block that does not decode was certified by q
    // replicas, f+1 of them correct, who took it from their own committed chain.
    if (!decoded.ok || !bytesEqual(blockDigest(ctx.crypto, decoded.value), manifest.block)) throw new Error(`the certified checkpoint at height ${manifest.height} holds a block that is not the one it names`);
    const block: Block = decoded.value;
    const { safety, view } = this.parts.consensusState();
    // Never vote again in a view this replica may have voted in before it lost or fell behind its
    // store, nor below the highest QC it has followed (docs/protocol.md, state transfer).
    const installed: SafetyState = {
      ...safety,
      lastVotedView: Math.max(safety.lastVotedView, view) as View,
      lockedView: Math.max(safety.lockedView, safety.highQc.view) as View,
    };
    ctx.out.persist.push(
      { kind: 'block', digest: manifest.block, block },
      { kind: 'committed', height: manifest.height, digest: manifest.block },
      { kind: 'safety', state: installed },
      { kind: 'checkpointInstalled', checkpoint: { manifest, state: f.cert.state }, cert: f.cert },
    );
    ctx.out.install = { manifest, state: f.cert.state, cert: f.cert };
    this.fetch = null;
    this.installing = true;
  }
}
