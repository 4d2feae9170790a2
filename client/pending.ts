/**
 * What the client library tracks per submitted command, shared by the direct and gateway engines,
 * and the public result types.
 */
import type { Digest } from '../common/ids.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';
import type { CommandStatus } from './results.js';

export interface OrderedInfo {
  readonly seq: number;
  /** The agreed timestamp (µs) of the command's batch; null when the client learned of the
   *  command's execution before its ordering (gateway mode after a failover, or a lost ack). */
  readonly ts: number | null;
  /** Submission to the sequencing certificate (q acks), ms. */
  readonly latencyMs: number;
  /** The batch's digest (direct mode, and gateway mode when the gateway reported it). */
  readonly digest: Digest | null;
}

export interface SubmitResult {
  readonly seq: number;
  readonly status: CommandStatus;
  /** The state machine's result (status 'executed'), without the status byte. */
  readonly result: Uint8Array;
  /** The timestamp the batch executed at (direct mode: from the f+1 agreeing Executed notices);
   *  gateway mode: the ordered timestamp, or null if the ordering was never reported. */
  readonly ts: number | null;
  /** Submission to ordering, ms (null if ordering was never observed, see OrderedInfo.ts). */
  readonly orderedLatencyMs: number | null;
  /** Submission to execution confirmed by f+1 replicas (direct) or by the gateway, ms. */
  readonly latencyMs: number;
  /** The batch's place in the executed sequence (the same at every correct replica). For status
   *  'duplicate': the batch where this copy was skipped (the command executed earlier). */
  readonly position: number;
  /** The command's index inside its batch; null in gateway mode (the gateway does not say). */
  readonly index: number | null;
}

export interface SubmitHandle {
  readonly seq: number;
  /** Resolves when the command is ordered; rejects like `executed` (never unhandled). */
  readonly ordered: Promise<OrderedInfo>;
  readonly executed: Promise<SubmitResult>;
}

export interface PendingCommand {
  readonly seq: number;
  readonly payload: Uint8Array;
  /** Wall-clock µs of the submit() call (latencies are measured from here). */
  readonly submitUs: number;
  orderedUs: number;
  ts: number | null;
  /** Set once, when the command settles. */
  outcome: 'executed' | 'failed' | null;
  readonly resolveOrdered: (info: OrderedInfo) => void;
  readonly resolveExecuted: (result: SubmitResult) => void;
  readonly reject: (error: PompeClientError) => void;
}

/** Marks a command ordered (once); later calls are ignored. */
export function markOrdered(cmd: PendingCommand, nowUs: number, ts: number | null, digest: Digest | null): void {
  if (cmd.orderedUs >= 0 || cmd.outcome !== null) return;
  cmd.orderedUs = nowUs;
  cmd.ts = ts;
  cmd.resolveOrdered({ seq: cmd.seq, ts, latencyMs: (nowUs - cmd.submitUs) / 1000, digest });
}

export function markExecuted(
  cmd: PendingCommand,
  nowUs: number,
  outcome: { status: CommandStatus; result: Uint8Array; position: number; index: number | null; ts?: number },
): void {
  if (cmd.outcome !== null) return;
  if (cmd.orderedUs < 0) markOrdered(cmd, nowUs, null, null);
  if (outcome.status === 'stateMachineError') {
    markFailed(cmd, new PompeClientError(PompeClientErrorCode.ExecutionFailed, `command ${cmd.seq} executed at position ${outcome.position}, and the state machine threw on it`));
    return;
  }
  cmd.outcome = 'executed';
  cmd.resolveExecuted({
    seq: cmd.seq,
    status: outcome.status,
    result: outcome.result,
    ts: outcome.ts ?? cmd.ts,
    orderedLatencyMs: cmd.ts === null ? null : (cmd.orderedUs - cmd.submitUs) / 1000,
    latencyMs: (nowUs - cmd.submitUs) / 1000,
    position: outcome.position,
    index: outcome.index,
  });
}

export function markFailed(cmd: PendingCommand, error: PompeClientError): void {
  if (cmd.outcome !== null) return;
  cmd.outcome = 'failed';
  cmd.reject(error);
}

/** The part of a client an engine reports to. */
export interface EngineHost {
  /** A command settled (executed or failed): its in-flight slot is free. */
  released(cmd: PendingCommand): void;
}
