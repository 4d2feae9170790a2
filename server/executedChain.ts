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
 * link, the same at every replica.)
 */
import type { Command } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { u64Bytes } from './store/db.js';
import type { ExecutionContext, StateMachine } from '../ordering/stateMachine.js';

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

  head(): ExecutedChainHead {
    return { position: this.position, length: this.length, hash: toHex(this.hash) };
  }
}
