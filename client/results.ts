/**
 * Per-command results of an executed batch. A replica's results blob (common/batch.ts) holds one
 * entry per command: a status byte (ordering/executor.ts ResultStatus) then the state machine's
 * result; a malformed batch has a single entry for all its commands.
 */
import { decodeResults } from '../common/batch.js';
import { ResultStatus } from '../ordering/executor.js';

/** executed; duplicate (its key and number ran before); malformed batch; resultTooLarge (ran, result
 *  dropped); and not run: seqTooFar (numbered too far above the client's window), expired (its
 *  deadline passed before its timestamp), tooManyClients (replicas track as many recent clients as
 *  they may: retry later); stateMachineError (the state machine threw on it, ordering/stateMachine.ts:
 *  `submit` rejects with EXECUTION_FAILED instead of resolving with it). */
export type CommandStatus = 'executed' | 'duplicate' | 'malformed' | 'resultTooLarge' | 'seqTooFar' | 'expired' | 'tooManyClients' | 'stateMachineError';

export interface CommandResult {
  readonly status: CommandStatus;
  /** The state machine's result (empty unless executed). */
  readonly result: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const MALFORMED: CommandResult = { status: 'malformed', result: EMPTY };

/** Status byte + result → CommandResult. An empty or unknown entry is reported as malformed. */
export function parseCommandResult(entry: Uint8Array | undefined): CommandResult {
  if (entry === undefined || entry.length === 0) return MALFORMED;
  switch (entry[0]) {
    case ResultStatus.Executed:
      return { status: 'executed', result: entry.subarray(1) };
    case ResultStatus.Duplicate:
      return { status: 'duplicate', result: EMPTY };
    case ResultStatus.ResultTooLarge:
      return { status: 'resultTooLarge', result: EMPTY };
    case ResultStatus.SeqTooFar:
      return { status: 'seqTooFar', result: EMPTY };
    case ResultStatus.Expired:
      return { status: 'expired', result: EMPTY };
    case ResultStatus.TooManyClients:
      return { status: 'tooManyClients', result: EMPTY };
    case ResultStatus.StateMachineError:
      return { status: 'stateMachineError', result: EMPTY };
    default:
      return MALFORMED;
  }
}

/** The results of a batch of `count` commands, in command order. f+1 replicas agreed on the blob,
 *  so one that does not decode or does not match the batch is reported, never trusted blindly. */
export function batchResults(blob: Uint8Array, count: number): CommandResult[] {
  const decoded = decodeResults(blob);
  const entries = decoded.ok ? decoded.value : [];
  // A malformed batch has one entry standing for every command.
  if (entries.length !== count) return new Array<CommandResult>(count).fill(entries.length === 1 ? parseCommandResult(entries[0]) : MALFORMED);
  return entries.map(parseCommandResult);
}

export type StatusCounts = Record<CommandStatus, number>;

export const emptyStatusCounts = (): StatusCounts => ({ executed: 0, duplicate: 0, malformed: 0, resultTooLarge: 0, seqTooFar: 0, expired: 0, tooManyClients: 0, stateMachineError: 0 });

/** Each command's status, without decoding into objects (the benchmark's hot path): walks the
 *  blob's u32 count, then u32 length + bytes per entry. A blob that does not parse, or holds another
 *  number of entries than `count`, makes every (remaining) command malformed. Fills and returns `into`. */
export function commandStatuses(blob: Uint8Array, count: number, into: CommandStatus[] = []): CommandStatus[] {
  into.length = count;
  into.fill('malformed');
  if (blob.length < 4) return into;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (view.getUint32(0) !== count) return into;
  let offset = 4;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > blob.length) return into;
    const length = view.getUint32(offset);
    const status = length > 0 && offset + 4 < blob.length ? blob[offset + 4] : -1;
    offset += 4 + length;
    if (status === ResultStatus.Executed) into[i] = 'executed';
    else if (status === ResultStatus.Duplicate) into[i] = 'duplicate';
    else if (status === ResultStatus.ResultTooLarge) into[i] = 'resultTooLarge';
    else if (status === ResultStatus.SeqTooFar) into[i] = 'seqTooFar';
    else if (status === ResultStatus.Expired) into[i] = 'expired';
    else if (status === ResultStatus.TooManyClients) into[i] = 'tooManyClients';
    else if (status === ResultStatus.StateMachineError) into[i] = 'stateMachineError';
  }
  return into;
}

/** Adds a batch's statuses to `into`. */
export function countStatuses(blob: Uint8Array, count: number, into: StatusCounts): void {
  for (const status of commandStatuses(blob, count)) into[status]++;
}
