/**
 * What a checkpoint is made of, and its digest (docs/protocol.md "Checkpoints").
 *
 * A checkpoint is a sequence of chunks of at most MAX_CHECKPOINT_CHUNK_BYTES in three sections:
 * the encoded checkpoint block (the last block executed, which a replica installing the checkpoint
 * needs as the root of its block tree), the executor's exactly-once state (executorState.ts), and
 * the state machine's snapshot. Its manifest lists the sections' sizes and every chunk's SHA-256;
 * the checkpoint's state digest is the hash of the manifest (signing.ts). So a digest that q
 * replicas signed fixes every chunk, and a replica fetching one from its peers checks each chunk
 * on arrival: a Byzantine peer serving garbage costs a retry, never a wrong state.
 */
import { assert } from '../common/assert.js';
import { bytesEqual, concatBytes } from '../common/bytes.js';
import { decodeBlock, encodeBlock, type DecodeContext } from '../common/codec.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, Height, Slot } from '../common/ids.js';
import { MAX_CHECKPOINT_CHUNK_BYTES, MAX_CHECKPOINT_CHUNKS } from '../common/limits.js';
import type { Block, CheckpointCert, CheckpointManifest, CheckpointStatement } from '../common/messages.js';
import { checkpointManifestHashInput } from '../common/signing.js';
import { blockDigest } from '../consensus/block.js';
import { decodeExecutorState } from './executorState.js';
import type { ExecutorState } from './executor.js';
import type { SnapshotRestore } from './stateMachine.js';

/** Everything a checkpoint holds, as the core captures it between two executions: the app's
 *  chunks are pulled afterwards (stateMachine.ts snapshot()). */
export interface CheckpointCapture {
  readonly height: Height;
  readonly toSlot: Slot;
  readonly position: number;
  readonly block: Block;
  readonly blockDigest: Digest;
  readonly executorChunks: readonly Uint8Array[];
  readonly appChunks: Iterable<Uint8Array>;
}

/** A checkpoint written, or installed: its manifest and state digest. */
export interface StoredCheckpoint {
  readonly manifest: CheckpointManifest;
  readonly state: Digest;
}

/** A checkpoint a replica holds, taken by itself or installed from its peers, with the
 *  certificate that made it stable if it is. */
export interface LocalCheckpoint extends StoredCheckpoint {
  readonly cert: CheckpointCert | null;
}

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

export function checkpointDigest(crypto: CryptoBackend, manifest: CheckpointManifest): Digest {
  return crypto.sha256(checkpointManifestHashInput(manifest));
}

export function statementOf(checkpoint: StoredCheckpoint): CheckpointStatement {
  const { height, toSlot, position, block } = checkpoint.manifest;
  return { height, toSlot, position, block, state: checkpoint.state };
}

/** The encoded block cut into chunks. */
export function blockChunks(block: Block): Uint8Array[] {
  const bytes = encodeBlock(block);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += MAX_CHECKPOINT_CHUNK_BYTES) chunks.push(bytes.subarray(at, at + MAX_CHECKPOINT_CHUNK_BYTES));
  return chunks;
}

/**
 * Writing a checkpoint: hand it every chunk of captureChunks(), in order, and store each under the
 * index add() returns (1-based: index 0 is the manifest on the wire); finish() gives the manifest
 * and digest. Throws CheckpointError on a chunk above MAX_CHECKPOINT_CHUNK_BYTES (a state machine
 * bug) or too many chunks.
 */
export class ManifestBuilder {
  private readonly hashes: Digest[] = [];
  private readonly blockChunks: number;

  constructor(
    private readonly crypto: CryptoBackend,
    private readonly capture: CheckpointCapture,
  ) {
    this.blockChunks = blockChunks(capture.block).length;
  }

  add(chunk: Uint8Array): number {
    if (chunk.length > MAX_CHECKPOINT_CHUNK_BYTES) throw new CheckpointError(`the state machine's snapshot yielded a chunk of ${chunk.length} bytes, above ${MAX_CHECKPOINT_CHUNK_BYTES}`);
    if (this.hashes.length >= MAX_CHECKPOINT_CHUNKS) throw new CheckpointError(`a checkpoint of more than ${MAX_CHECKPOINT_CHUNKS} chunks`);
    this.hashes.push(this.crypto.sha256(chunk));
    return this.hashes.length;
  }

  finish(): StoredCheckpoint {
    const c = this.capture;
    const manifest: CheckpointManifest = {
      height: c.height,
      toSlot: c.toSlot,
      position: c.position,
      block: c.blockDigest,
      blockChunks: this.blockChunks,
      executorChunks: c.executorChunks.length,
      chunkHashes: this.hashes,
    };
    return { manifest, state: checkpointDigest(this.crypto, manifest) };
  }
}

/** A capture's chunks in order: block, executor, then the app's, pulled one at a time. */
export function* captureChunks(capture: CheckpointCapture): Generator<Uint8Array> {
  yield* blockChunks(capture.block);
  yield* capture.executorChunks;
  yield* capture.appChunks;
}

/** Which section chunk `index` (1-based) of a manifest belongs to. */
export function sectionOf(manifest: CheckpointManifest, index: number): 'block' | 'executor' | 'app' {
  assert(index >= 1 && index <= manifest.chunkHashes.length, `chunk ${index} of ${manifest.chunkHashes.length}`);
  if (index <= manifest.blockChunks) return 'block';
  return index <= manifest.blockChunks + manifest.executorChunks ? 'executor' : 'app';
}

/** What restoring a checkpoint gives the replica core besides the state machine's state. */
export interface RestoredCheckpoint {
  readonly checkpoint: LocalCheckpoint;
  readonly block: Block;
  readonly executor: ExecutorState;
}

/**
 * Rebuilds a checkpoint from its chunks, given in order: the block and the executor's state are
 * decoded, the app's chunks go to the state machine's restore (`app`). Chunks are checked against
 * the manifest as they come (they may come from a peer, through storage), so a bad one throws
 * CheckpointError before the state machine sees it.
 */
export class CheckpointRestorer {
  private next = 1;
  private readonly blockParts: Uint8Array[] = [];
  private readonly executorParts: Uint8Array[] = [];

  constructor(
    private readonly crypto: CryptoBackend,
    private readonly ctx: DecodeContext,
    readonly checkpoint: LocalCheckpoint,
    private readonly app: SnapshotRestore,
  ) {
    if (!bytesEqual(checkpointDigest(crypto, checkpoint.manifest), checkpoint.state)) throw new CheckpointError('the manifest does not hash to the checkpoint digest');
  }

  add(chunk: Uint8Array): void {
    const { manifest } = this.checkpoint;
    const index = this.next++;
    if (index > manifest.chunkHashes.length) throw new CheckpointError(`a chunk beyond the manifest's ${manifest.chunkHashes.length}`);
    const hash = this.crypto.sha256(chunk);
    if (!bytesEqual(hash, manifest.chunkHashes[index - 1]!)) throw new CheckpointError(`chunk ${index} does not match its hash in the manifest`);
    const section = sectionOf(manifest, index);
    if (section === 'block') this.blockParts.push(chunk);
    else if (section === 'executor') this.executorParts.push(chunk);
    else this.app.add(chunk);
  }

  /** After the last chunk: the block and executor state (the app's restore is finished too). */
  finish(): RestoredCheckpoint {
    const { manifest } = this.checkpoint;
    if (this.next !== manifest.chunkHashes.length + 1) throw new CheckpointError(`${this.next - 1} of ${manifest.chunkHashes.length} chunks`);
    const decoded = decodeBlock(concatBytes(...this.blockParts), this.ctx);
    if (!decoded.ok) throw new CheckpointError(`the checkpoint block does not decode: ${decoded.error.message}`);
    if (!bytesEqual(blockDigest(this.crypto, decoded.value), manifest.block) || decoded.value.height !== manifest.height) {
      throw new CheckpointError('the checkpoint block is not the one the manifest names');
    }
    const executor = decodeExecutorState(this.executorParts);
    if (!executor.ok) throw new CheckpointError(executor.error.message);
    if (executor.value.position !== manifest.position) throw new CheckpointError(`executor state at position ${executor.value.position}, manifest at ${manifest.position}`);
    this.app.finish();
    return { checkpoint: this.checkpoint, block: decoded.value, executor: executor.value };
  }
}
