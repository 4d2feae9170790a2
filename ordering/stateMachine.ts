/**
 * What the embedding application supplies: a deterministic state machine that executes the
 * commands of each batch, in the agreed order, identically at every correct replica.
 */
import type { Command } from '../common/batch.js';
import type { Digest } from '../common/ids.js';

export interface ExecutionContext {
  /** Index of the batch in the executed sequence (the same at every correct replica). */
  readonly position: number;
  /** The batch's agreed timestamp (the median of its OC), µs. */
  readonly ts: number;
  readonly digest: Digest;
  readonly blockHeight: number;
}

export interface StateMachine {
  /** Executes commands in order and returns one result per command. Must be deterministic:
   *  no clock, no randomness, no I/O whose outcome can differ between replicas. */
  execute(commands: readonly Command[], ctx: ExecutionContext): Uint8Array[];
}
