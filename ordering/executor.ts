/**
 * Execution of committed batches (DESIGN.md "Execution"): each batch once by digest, each command
 * once by (client id, sequence number), through the application's StateMachine, in the committed
 * order. All its state derives from the executed sequence, so every correct replica holds the same.
 *
 * Results: one entry per command, a status byte then the state machine's result:
 * 0 = executed, 1 = duplicate (executed earlier, skipped), 2 = the batch's commands are malformed
 * (then the batch has a single entry), 3 = executed but its result exceeded MAX_RESULT_BYTES or
 * the batch's results exceeded MAX_RESULTS_BLOB_BYTES (the result is dropped, the same way at every
 * replica). The blob is common/batch.ts's results format.
 */
import { decodeBatchCommands, encodeResults } from '../common/batch.js';
import type { Command } from '../common/batch.js';
import type { Digest, Slot } from '../common/ids.js';
import { MAX_RESULT_BYTES, MAX_RESULTS_BLOB_BYTES } from '../common/limits.js';
import type { StateMachine } from './stateMachine.js';

export const ResultStatus = { Executed: 0, Duplicate: 1, MalformedBatch: 2, ResultTooLarge: 3 } as const;

/** How long a client's dedup record outlives its last executed command (by agreed timestamps):
 *  a command retried later than this after the client's last execution may execute again. */
export const CLIENT_DEDUP_RETENTION_US = 600_000_000;
/** Clients tracked at once; beyond it the least recently executed are forgotten first. */
export const MAX_TRACKED_CLIENTS = 1_000_000;
/** Out-of-order sequence numbers remembered per client. A client's commands execute out of order
 *  only across its concurrent batches; beyond this the lowest gaps are treated as executed. */
export const MAX_SEQUENCE_WINDOW = 65_536;

const DUPLICATE = Uint8Array.of(ResultStatus.Duplicate);
const TOO_LARGE = Uint8Array.of(ResultStatus.ResultTooLarge);
/** Bytes of one results-blob entry besides the result: its u32 length and the status byte. */
const RESULT_ENTRY_OVERHEAD = 5;
/** The blob's own header (u32 count). */
const RESULTS_HEADER = 4;
const EXECUTED_EMPTY = Uint8Array.of(ResultStatus.Executed);

interface ClientWindow {
  /** Every sequence number ≤ low has executed. */
  low: number;
  /** Executed sequence numbers above low + 1. */
  above: Set<number> | null;
  lastTs: number;
}

export interface ExecutedBatch {
  readonly position: number;
  readonly results: Uint8Array;
  readonly commands: number;
}

export class Executor {
  private position = 0;
  private readonly executedDigests = new Map<string, Slot>();
  private readonly clients = new Map<number, ClientWindow>();
  commandsExecuted = 0;
  duplicatesSkipped = 0;

  constructor(private readonly stateMachine: StateMachine) {}

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
    if (!decoded.ok) return { position, results: encodeResults([Uint8Array.of(ResultStatus.MalformedBatch)]), commands: 0 };

    const commands = decoded.value;
    const fresh: Command[] = [];
    const freshIndex: number[] = [];
    const results: Uint8Array[] = new Array(commands.length);
    // A batch's commands mostly come from one client (direct mode): look its window up once per run.
    let window: ClientWindow | null = null;
    let windowClient = -1;
    for (let i = 0; i < commands.length; i++) {
      const c = commands[i]!;
      if (window === null || c.clientId !== windowClient) {
        window = this.touchClient(c.clientId, ts);
        windowClient = c.clientId;
      }
      if (firstTime(window, c.seq)) {
        fresh.push(c);
        freshIndex.push(i);
      } else {
        results[i] = DUPLICATE;
        this.duplicatesSkipped++;
      }
    }
    if (fresh.length > 0) {
      const out = this.stateMachine.execute(fresh, { position, ts, digest, blockHeight });
      // Budget for results: what every entry would take at its smallest, then the rest in order.
      let budget = MAX_RESULTS_BLOB_BYTES - RESULTS_HEADER - commands.length * RESULT_ENTRY_OVERHEAD;
      for (let k = 0; k < fresh.length; k++) {
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
    return { position, results: encodeResults(results), commands: commands.length };
  }

  /** Forgets executed digests whose expiry slot a committed block has passed. */
  pruneDigests(committedThrough: Slot): void {
    for (const [key, expiresSlot] of this.executedDigests) if (expiresSlot < committedThrough) this.executedDigests.delete(key);
  }

  /** The client's window, moved to the most recently executed end of the map. */
  private touchClient(clientId: number, ts: number): ClientWindow {
    let w = this.clients.get(clientId);
    if (w === undefined) {
      w = { low: 0, above: null, lastTs: ts };
    } else {
      // Re-insert to keep the map in least-recently-executed order.
      this.clients.delete(clientId);
    }
    w.lastTs = ts;
    this.clients.set(clientId, w);
    return w;
  }

  private forgetIdleClients(ts: number): void {
    for (const [id, w] of this.clients) {
      if (this.clients.size <= MAX_TRACKED_CLIENTS && w.lastTs >= ts - CLIENT_DEDUP_RETENTION_US) break;
      this.clients.delete(id);
    }
  }
}

/** Records `seq` as executed in the client's window; false if it had executed before. */
function firstTime(w: ClientWindow, seq: number): boolean {
  if (seq <= w.low || w.above?.has(seq) === true) return false;
  if (seq === w.low + 1) {
    w.low = seq;
    if (w.above !== null) {
      while (w.above.delete(w.low + 1)) w.low++;
      if (w.above.size === 0) w.above = null;
    }
    return true;
  }
  if (w.above === null) w.above = new Set();
  w.above.add(seq);
  if (w.above.size > MAX_SEQUENCE_WINDOW) {
    let highest = 0;
    for (const s of w.above) if (s > highest) highest = s;
    w.low = highest - MAX_SEQUENCE_WINDOW / 2;
    for (const s of w.above) if (s <= w.low) w.above.delete(s);
  }
  return true;
}
