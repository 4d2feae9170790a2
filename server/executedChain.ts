/**
 * A fingerprint of the executed sequence, to compare replicas from outside (/status): a hash chain
 * h' = SHA-256(h ‖ digest ‖ position u64) over every batch the state machine executes, starting
 * from 32 zero bytes. Two replicas that report the same position and hash executed the same
 * batches in the same order.
 *
 * It wraps the state machine rather than reading the core's `executed` outputs because those are
 * silent while a restarted replica replays its committed chain; the state machine sees replayed
 * batches too, so a restarted replica's chain continues exactly where the others' is. (A batch
 * whose commands are all duplicates, or malformed, never reaches the state machine; it leaves no
 * link, the same at every replica.) Its head is part of the state machine's snapshot (a first chunk
 * before the application's), so a replica restored from a checkpoint goes on with the same chain.
 */
import type { Command } from '../common/batch.js';
import { ByteReader, ByteWriter, toHex } from '../common/bytes.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { u64Bytes } from './store/db.js';
import type { ExecutionContext, SnapshotRestore, StateMachine } from '../ordering/stateMachine.js';

/** The head chunk: hash (32), position + 1 (u64: −1 before any batch), length (u64). */
const HEAD_CHUNK_BYTES = 48;

export interface ExecutedChainHead {
  /** Position of the last batch folded in, -1 before any. */
  readonly position: number;
  /** Batches folded in. */
  readonly length: number;
  readonly hash: string;
}

export class ExecutedChain implements StateMachine {
  private hash: Uint8Array = new Uint8Array(32);
  private position = -1;
  private length = 0;

  constructor(
    private readonly inner: StateMachine,
    private readonly crypto: CryptoBackend,
  ) {}

  execute(commands: readonly Command[], ctx: ExecutionContext): Uint8Array[] {
    const results = this.inner.execute(commands, ctx);
    this.hash = this.crypto.sha256Parts([this.hash, ctx.digest, u64Bytes(ctx.position)]);
    this.position = ctx.position;
    this.length++;
    return results;
  }

  snapshot(): Iterable<Uint8Array> {
    const head = new ByteWriter(HEAD_CHUNK_BYTES).bytes(this.hash).u64(this.position + 1).u64(this.length).finish();
    const inner = this.inner.snapshot();
    return (function* () {
      yield head;
      yield* inner;
    })();
  }

  restore(): SnapshotRestore {
    let inner: SnapshotRestore | null = null;
    return {
      add: (chunk) => {
        if (inner !== null) return inner.add(chunk);
        const r = new ByteReader(chunk);
        const hash = r.bytes(32).slice();
        const position = r.u64() - 1;
        const length = r.u64();
        if (r.failed || chunk.length !== HEAD_CHUNK_BYTES) throw new Error(`the executed chain's head chunk is ${chunk.length} bytes, expected ${HEAD_CHUNK_BYTES}`);
        this.hash = hash;
        this.position = position;
        this.length = length;
        inner = this.inner.restore();
      },
      finish: () => {
        if (inner === null) throw new Error("a snapshot without the executed chain's head chunk");
        inner.finish();
      },
    };
  }

  head(): ExecutedChainHead {
    return { position: this.position, length: this.length, hash: toHex(this.hash) };
  }
}
