/**
 * What the embedding application supplies: a deterministic state machine that executes the
 * commands of each batch, in the agreed order, identically at every correct replica, and that can
 * hand its whole state over as a snapshot and take one back (checkpoints, docs/protocol.md).
 *
 * Calls are synchronous. `execute` runs inside a step of the replica core, between two inputs, and
 * a checkpoint is defined as a point between two batches; a Promise returned from either call would
 * let other inputs run in the middle of it, so the replica would need a second, asynchronous
 * execution pipeline for no deterministic gain: everything an execution may depend on is already
 * in the command and the state. An application that keeps its state in a database can write
 * behind (the replica rebuilds the state after a crash from its checkpoint and the committed
 * chain), and do I/O that does not decide results after execution.
 *
 * Errors. A throw from `execute` is an outcome, not a crash: the commands of that call get status
 * `stateMachineError` (ResultStatus.StateMachineError) at this replica, their clients' `submit`
 * rejects with EXECUTION_FAILED, and the replica goes on. It must be deterministic like any result:
 * every correct replica must throw on the same commands, having changed the same part of its state
 * (best: check first, then change). A replica whose state diverged anyway is found at the next
 * checkpoint (its digest does not match the one q replicas certify) and is reported loudly. A throw
 * from `snapshot` or a restore is a broken invariant: the replica stops (an embedded replica stops
 * and reports the error; it never exits the process).
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
  /**
   * The whole state as it is at this call (a checkpoint; called between two `execute` calls), as
   * chunks of at most MAX_CHECKPOINT_CHUNK_BYTES (1 MiB; common/limits.ts). The encoding must be
   * canonical: equal states give equal chunks at every replica, whatever history led to them (sort
   * by key, never by insertion or hash order). The replica pulls the chunks later, while `execute`
   * goes on, so the iterator must keep yielding the state as of the call (copy it, or keep an
   * immutable version).
   */
  snapshot(): Iterable<Uint8Array>;
  /**
   * Starts replacing the whole state with a snapshot's (a replica restarting from its checkpoint,
   * or installing one fetched from its peers): the replica passes every chunk of one `snapshot()`,
   * in order and unchanged, to `add`, then calls `finish`. No `execute` comes in between. A chunk
   * that cannot be read is a bug (the chunks were checked against the certified digest): throw.
   */
  restore(): SnapshotRestore;
}

export interface SnapshotRestore {
  add(chunk: Uint8Array): void;
  finish(): void;
}
