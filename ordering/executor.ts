/**
 * Execution of committed batches (DESIGN.md "Execution"): each batch once by digest, each command
 * once by (client key, sequence number), through the application's StateMachine, in the committed
 * order. All its state derives from the executed sequence, so every correct replica holds the same.
 *
 * A client is its public key, authenticated at phase 1 (ordering/batchCheck.ts): no one else can
 * put a command under it, so only the client itself moves its window, and by at most
 * MAX_WINDOW_ADVANCE_PER_BATCH per batch. A command also runs only within its deadline (the
 * batch's, or a thin client's own): ts ≤ expiresAtUs ≤ ts + MAX_BATCH_LIFETIME_US, which is what
 * lets a client's record be forgotten safely (a forgotten command can no longer run again).
 *
 * Results: one entry per command, a status byte then the state machine's result:
 * 0 = executed, 1 = duplicate (executed earlier, or below the client's window: skipped),
 * 2 = the batch's commands are malformed (then the batch has a single entry), 3 = executed but its
 * result exceeded MAX_RESULT_BYTES or the batch's results exceeded MAX_RESULTS_BLOB_BYTES (the
 * result is dropped, the same way at every replica), 4 = its sequence number is too far above the
 * client's window (not executed), 5 = its timestamp is past its deadline, or the deadline too far
 * ahead of it (not executed), 6 = the client is new and MAX_TRACKED_CLIENTS clients are still too
 * recent to forget (not executed; retry later), 7 = the state machine threw while executing it
 * (stateMachine.ts: an outcome that must be deterministic; every command of that call gets it).
 * The blob is common/batch.ts's results format.
 *
 * The exactly-once state (position, executed digests, per-key windows) is part of every
 * checkpoint (executorState.ts), so a replica restored from one makes the same duplicate decisions
 * as one that never stopped.
 */
import { decodeBatchCommands, encodeResults } from '../common/batch.js';
import type { BatchCommand } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import { MAX_BATCH_LIFETIME_US, MAX_RESULT_BYTES, MAX_RESULTS_BLOB_BYTES } from '../common/limits.js';
import type { StateMachine } from './stateMachine.js';

export const ResultStatus = { Executed: 0, Duplicate: 1, MalformedBatch: 2, ResultTooLarge: 3, SeqTooFar: 4, Expired: 5, TooManyClients: 6, StateMachineError: 7 } as const;

/** How long a client's dedup record outlives its last executed command (by agreed timestamps).
 *  Longer than MAX_BATCH_LIFETIME_US, so a command it remembered is past its deadline once it is
 *  forgotten; kept at minutes so that a client restarted with its key finds its window. */
export const CLIENT_DEDUP_RETENTION_US = 600_000_000;
/** Clients tracked at once; beyond it the least recently executed are forgotten first, but only
 *  those idle for MAX_BATCH_LIFETIME_US (see TooManyClients). */
export const MAX_TRACKED_CLIENTS = 1_000_000;
/** Sequence numbers tracked one by one below a client's highest. A client's commands execute out
 *  of order only across its concurrent batches; beyond this the lowest gaps count as done. */
export const MAX_SEQUENCE_WINDOW = 65_536;
/** How far one batch may raise its client's window: a command numbered further above the window's
 *  top than this is refused (SeqTooFar), and the top moves up by this much. A client's commands in
 *  flight stay well within it (client/options.ts bounds them), so only a client that skipped this
 *  many numbers (its commands failing for a long time) is refused, and it catches up in a few
 *  batches. It keeps a client's window, and the work of tracking it, moving in bounded steps. */
export const MAX_WINDOW_ADVANCE_PER_BATCH = 65_536;

const DUPLICATE = Uint8Array.of(ResultStatus.Duplicate);
const TOO_LARGE = Uint8Array.of(ResultStatus.ResultTooLarge);
const TOO_FAR = Uint8Array.of(ResultStatus.SeqTooFar);
const EXPIRED = Uint8Array.of(ResultStatus.Expired);
const TOO_MANY_CLIENTS = Uint8Array.of(ResultStatus.TooManyClients);
/** Bytes of one results-blob entry besides the result: its u32 length and the status byte. */
const RESULT_ENTRY_OVERHEAD = 5;
/** The blob's own header (u32 count). */
const RESULTS_HEADER = 4;
const EXECUTED_EMPTY = Uint8Array.of(ResultStatus.Executed);
const STATE_MACHINE_ERROR = Uint8Array.of(ResultStatus.StateMachineError);

export interface ClientWindow {
  /** Every sequence number ≤ low has executed (or is too old to tell). */
  low: number;
  /** Executed sequence numbers above low + 1. */
  above: Set<number> | null;
  /** The highest sequence number the window has reached (≥ low). */
  top: number;
  /** The batch position whose advance bound `cap` is (top at its start + the bound). */
  capPosition: number;
  cap: number;
  lastTs: number;
}

export interface ExecutedBatch {
  readonly position: number;
  readonly results: Uint8Array;
  readonly commands: number;
  /** What the state machine threw, if it did (its commands got StateMachineError). */
  readonly failure: unknown;
}

/** Everything execution decides by besides the state machine: what a checkpoint holds of it. */
export interface ExecutorState {
  readonly position: number;
  readonly commandsExecuted: number;
  readonly duplicatesSkipped: number;
  readonly commandsRefused: number;
  /** Executed digest (hex) → the slot after which it can no longer be committed, in execution order. */
  readonly executedDigests: ReadonlyMap<string, Slot>;
  /** Per client key (hex), least recently executed first. A window's cap is per batch, so it is
   *  not state: a restored window gets capPosition -1 (recomputed at its next batch). */
  readonly clients: ReadonlyMap<string, Readonly<ClientWindow>>;
}

export class Executor {
  private position: number;
  private readonly executedDigests: Map<string, Slot>;
  /** By client key (hex), in least-recently-executed order. */
  private readonly clients: Map<string, ClientWindow>;
  commandsExecuted: number;
  duplicatesSkipped: number;
  /** Commands not executed for their number or deadline (statuses 4–6). */
  commandsRefused: number;

  /** A fresh executor, or one that continues from a checkpoint's state (which it then owns). */
  constructor(
    readonly stateMachine: StateMachine,
    from: ExecutorState | null = null,
    /** MAX_TRACKED_CLIENTS unless a test needs a small table. */
    private readonly maxTrackedClients = MAX_TRACKED_CLIENTS,
  ) {
    this.position = from?.position ?? 0;
    this.commandsExecuted = from?.commandsExecuted ?? 0;
    this.duplicatesSkipped = from?.duplicatesSkipped ?? 0;
    this.commandsRefused = from?.commandsRefused ?? 0;
    this.executedDigests = new Map(from?.executedDigests ?? []);
    this.clients = new Map();
    for (const [key, w] of from?.clients ?? []) {
      this.clients.set(key, { low: w.low, above: w.above === null ? null : new Set(w.above), top: w.top, capPosition: -1, cap: 0, lastTs: w.lastTs });
    }
  }

  /** The live state (views of its maps), for a checkpoint to encode before the next execute. */
  state(): ExecutorState {
    const { position, commandsExecuted, duplicatesSkipped, commandsRefused, executedDigests, clients } = this;
    return { position, commandsExecuted, duplicatesSkipped, commandsRefused, executedDigests, clients };
  }

  get nextPosition(): number {
    return this.position;
  }

  isExecuted(digestKey: string): boolean {
    return this.executedDigests.has(digestKey);
  }

  /**
   * Executes one committed batch; null if this digest executed before. `expiresSlot` bounds how
   * long the digest must be remembered: it cannot be committed again after that slot.
   */
  execute(digest: Digest, digestKey: string, ts: number, bytes: Uint8Array, expiresSlot: Slot, blockHeight: number): ExecutedBatch | null {
    if (this.executedDigests.has(digestKey)) return null;
    this.executedDigests.set(digestKey, expiresSlot);
    const position = this.position++;
    const decoded = decodeBatchCommands(bytes);
    if (!decoded.ok) return { position, results: encodeResults([Uint8Array.of(ResultStatus.MalformedBatch)]), commands: 0, failure: null };

    const commands = decoded.value;
    const fresh: BatchCommand[] = [];
    const freshIndex: number[] = [];
    const results: Uint8Array[] = new Array(commands.length);
    // A direct batch's commands share one key view: look its window up once per run of them.
    let window: ClientWindow | null = null;
    let windowKey: Uint8Array | null = null;
    for (let i = 0; i < commands.length; i++) {
      const c = commands[i]!;
      if (c.expiresAtUs < ts || c.expiresAtUs > ts + MAX_BATCH_LIFETIME_US) {
        results[i] = EXPIRED;
        this.commandsRefused++;
        continue;
      }
      if (c.clientKey !== windowKey) {
        window = this.touchClient(toHex(c.clientKey), c.seq, ts, position);
        windowKey = c.clientKey;
      }
      if (window === null) {
        results[i] = TOO_MANY_CLIENTS;
        this.commandsRefused++;
      } else if (c.seq > window.cap) {
        // Not executed; the window still moves up by the bound, so the client catches up.
        raiseTop(window, window.cap);
        results[i] = TOO_FAR;
        this.commandsRefused++;
      } else if (firstTime(window, c.seq)) {
        fresh.push(c);
        freshIndex.push(i);
      } else {
        results[i] = DUPLICATE;
        this.duplicatesSkipped++;
      }
    }
    let failure: unknown = null;
    if (fresh.length > 0) {
      let out: Uint8Array[];
      try {
        out = this.stateMachine.execute(fresh, { position, ts, digest, blockHeight });
      } catch (error) {
        // An outcome (stateMachine.ts), the same at every correct replica.
        failure = error ?? 'undefined thrown';
        out = [];
        for (const i of freshIndex) results[i] = STATE_MACHINE_ERROR;
      }
      // Budget for results: what every entry would take at its smallest, then the rest in order.
      let budget = MAX_RESULTS_BLOB_BYTES - RESULTS_HEADER - commands.length * RESULT_ENTRY_OVERHEAD;
      for (let k = 0; k < fresh.length && failure === null; k++) {
        const r = out[k] ?? new Uint8Array(0);
        if (r.length === 0) {
          results[freshIndex[k]!] = EXECUTED_EMPTY;
        } else if (r.length > MAX_RESULT_BYTES - 1 || r.length > budget) {
          results[freshIndex[k]!] = TOO_LARGE;
        } else {
          budget -= r.length;
          const withStatus = new Uint8Array(r.length + 1);
          withStatus.set(r, 1);
          results[freshIndex[k]!] = withStatus;
        }
      }
    }
    this.commandsExecuted += fresh.length;
    this.forgetIdleClients(ts);
    return { position, results: encodeResults(results), commands: commands.length, failure };
  }

  /** Forgets executed digests whose expiry slot a committed block has passed. */
  pruneDigests(committedThrough: Slot): void {
    for (const [key, expiresSlot] of this.executedDigests) if (expiresSlot < committedThrough) this.executedDigests.delete(key);
  }

  /**
   * The client's window, moved to the most recently executed end of the map, with this batch's
   * advance bound; null if the client is new and the table is full of clients too recent to forget.
   * A new window starts half a window below `seq` (the first number seen), so the client's commands
   * still in flight below it run when they arrive, and a client that kept its key across a restart
   * may continue from where it was.
   */
  private touchClient(key: string, seq: number, ts: number, position: number): ClientWindow | null {
    let w = this.clients.get(key);
    if (w === undefined) {
      if (this.clients.size >= this.maxTrackedClients) this.forgetIdleClients(ts, 1);
      if (this.clients.size >= this.maxTrackedClients) return null;
      const low = Math.max(0, seq - 1 - MAX_SEQUENCE_WINDOW / 2);
      w = { low, above: null, top: low, capPosition: -1, cap: 0, lastTs: ts };
    } else {
      // Re-insert to keep the map in least-recently-executed order.
      this.clients.delete(key);
    }
    w.lastTs = ts;
    if (w.capPosition !== position) {
      w.capPosition = position;
      w.cap = w.top + MAX_WINDOW_ADVANCE_PER_BATCH;
    }
    this.clients.set(key, w);
    return w;
  }

  /** Forgets clients idle for CLIENT_DEDUP_RETENTION_US, and while the table (plus `room` new
   *  ones) exceeds MAX_TRACKED_CLIENTS the least recently executed — but never one executed within
   *  MAX_BATCH_LIFETIME_US: a command it ran may still be within its deadline, and forgetting it
   *  would let that command run again. */
  private forgetIdleClients(ts: number, room = 0): void {
    for (const [key, w] of this.clients) {
      const idle = w.lastTs < ts - CLIENT_DEDUP_RETENTION_US;
      const forgettable = w.lastTs < ts - MAX_BATCH_LIFETIME_US;
      if (!idle && !(this.clients.size + room > this.maxTrackedClients && forgettable)) break;
      this.clients.delete(key);
    }
  }
}

/** Records `seq` as executed in the client's window; false if it had executed before (or lies below
 *  the window). The caller checked seq ≤ cap. */
function firstTime(w: ClientWindow, seq: number): boolean {
  if (seq <= w.low || w.above?.has(seq) === true) return false;
  if (seq === w.low + 1) {
    w.low = seq;
    if (w.above !== null) {
      while (w.above.delete(w.low + 1)) w.low++;
      if (w.above.size === 0) w.above = null;
    }
    if (w.low > w.top) w.top = w.low;
    return true;
  }
  if (w.above === null) w.above = new Set();
  w.above.add(seq);
  raiseTop(w, seq);
  return true;
}

/** Moves the window's top up to `seq`; when the tracked span passes MAX_SEQUENCE_WINDOW, the lowest
 *  half counts as done (amortised: the set is walked once per half window). */
function raiseTop(w: ClientWindow, seq: number): void {
  if (seq > w.top) w.top = seq;
  if (w.top - w.low <= MAX_SEQUENCE_WINDOW) return;
  w.low = w.top - MAX_SEQUENCE_WINDOW / 2;
  if (w.above === null) return;
  for (const s of w.above) if (s <= w.low) w.above.delete(s);
  while (w.above.delete(w.low + 1)) w.low++;
  if (w.above.size === 0) w.above = null;
}
