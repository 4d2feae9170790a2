/**
 * Checkers for every property in DESIGN.md "What must hold", fed by the replicas and clients of a
 * full simulation run:
 *  - agreement: correct replicas commit the same blocks and execute the same sequence (position →
 *    digest and results);
 *  - ordering linearizability: if every correct replica's timestamp for a is below every correct
 *    replica's timestamp for b and both execute, a executes before b;
 *  - no loss, no duplicates: every batch with a sequencing certificate (q acks on one OC) executes,
 *    and every command executes exactly once;
 *  - no impersonation: a command executed under a recorded client's key is one that client wrote
 *    (same number, same payload);
 *  - timestamp soundness: an executed batch's timestamp lies within the correct replicas'
 *    timestamps in its OC, and not past the batch's expiry (executed digests are forgotten by
 *    expiry); a correct replica's timestamps strictly increase, across restarts;
 *  - liveness: after stabilisation, a correct client's command executes within a bound;
 *  - checkpoints: correct replicas that take a checkpoint at the same height take the same one
 *    (the same state digest), and a replica that installs one from its peers counts every batch
 *    below its position as executed.
 * Plus the fairness summary: pairs checked, inversions among pairs whose correct timestamps
 * overlap (information, not an error), late retries, the largest median shift a Byzantine
 * collector achieved.
 */
import { decodeBatchCommands, decodeResults, readBatchHeader } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { Message } from '../common/messages.js';
import { ResultStatus } from '../ordering/executor.js';
import type { StoredCheckpoint } from '../ordering/checkpointFormat.js';
import type { ExecutionRecord, ReplicaOutput } from '../ordering/types.js';
import type { ClientRecord } from './clientNode.js';
import type { ReplicaObserver } from './replicaNode.js';

interface Executed {
  readonly digest: string;
  readonly resultsHex: string;
  readonly ts: number;
  readonly record: ExecutionRecord;
  /** When the first correct replica executed it. */
  readonly atUs: number;
}

export interface FairnessSummary {
  readonly executedBatches: number;
  readonly pairsChecked: number;
  readonly linearizabilityViolations: number;
  readonly overlappingPairs: number;
  readonly overlappingInversions: number;
  readonly lateRetries: number;
  readonly maxByzantineMedianShiftUs: number;
}

/** Liveness: a command submitted in [fromUs, untilUs − boundUs] executes within boundUs — for the
 *  clients `clients` accepts (correct ones; Byzantine clients are owed nothing). */
export interface LivenessBound {
  readonly fromUs: number;
  readonly untilUs: number;
  readonly boundUs: number;
  readonly clients?: (client: number) => boolean;
}

/** Pairs examined for inversions at most (the count is information; a sample is enough). */
const MAX_INVERSION_SAMPLE = 4_000;

export class OrderingChecker implements ReplicaObserver {
  readonly violations: string[] = [];
  private readonly committed = new Map<number, string>();
  private readonly executedAt = new Map<number, Executed>();
  private readonly executedByReplica: Set<string>[];
  /** Correct replicas' timestamps per digest. */
  private readonly correctTs = new Map<string, number[]>();
  /** Ackers per digest+ocHash (all replicas: an SC may hold up to f Byzantine acks). */
  private readonly ackers = new Map<string, Set<number>>();
  private readonly sequenced = new Set<string>();
  /** Per correct replica: its highest timestamp so far, and every (digest, ts) it gave. */
  private readonly lastTs = new Map<number, number>();
  private readonly given = new Map<number, Set<string>>();
  maxByzantineMedianShiftUs = 0;
  lateRetries = 0;
  /** The state digest correct replicas took at each checkpoint height, and who took it first. */
  private readonly checkpointStates = new Map<number, { readonly state: string; readonly replica: number }>();
  checkpointsTaken = 0;
  /** Per replica, the highest position below which a checkpoint it installed counts as executed. */
  private readonly installedBelow = new Map<number, number>();

  constructor(
    private readonly n: number,
    private readonly q: number,
    private readonly isCorrect: (replica: number) => boolean,
    /** Hashes payloads for the impersonation check (the run's backend). */
    private readonly sha256: (data: Uint8Array) => Uint8Array = nodeCrypto.sha256,
  ) {
    this.executedByReplica = Array.from({ length: n }, () => new Set<string>());
  }

  onCommit(replica: number, commits: ReplicaOutput['commits'], atUs: number): void {
    if (!this.isCorrect(replica)) return;
    for (const c of commits) {
      const hex = toHex(c.digest);
      const known = this.committed.get(c.height);
      if (known === undefined) this.committed.set(c.height, hex);
      else if (known !== hex) this.violations.push(`agreement: replica ${replica} committed a different block at height ${c.height} (at ${atUs} µs)`);
    }
  }

  onExecuted(replica: number, records: readonly ExecutionRecord[], atUs: number): void {
    if (!this.isCorrect(replica)) return;
    for (const r of records) {
      const digest = toHex(r.digest);
      const resultsHex = toHex(r.results);
      const known = this.executedAt.get(r.position);
      if (known === undefined) {
        this.executedAt.set(r.position, { digest, resultsHex, ts: r.ts, record: r, atUs });
        this.checkSoundness(r, digest);
        // A gateway's own timestamp reaches its collector inside the replica, never on the wire:
        // the executed OC's correct stamps complete what onSent saw.
        for (const s of r.oc.stamps) if (this.isCorrect(s.replica)) this.addCorrectTs(digest, s.ts);
      } else if (known.digest !== digest || known.resultsHex !== resultsHex) {
        this.violations.push(`agreement: replica ${replica} executed a different batch or result at position ${r.position} (at ${atUs} µs)`);
      }
      this.executedByReplica[replica]!.add(digest);
    }
  }

  onCheckpoint(replica: number, checkpoint: StoredCheckpoint, atUs: number): void {
    if (!this.isCorrect(replica)) return;
    this.checkpointsTaken++;
    const { height } = checkpoint.manifest;
    const state = toHex(checkpoint.state);
    const known = this.checkpointStates.get(height);
    if (known === undefined) this.checkpointStates.set(height, { state, replica });
    else if (known.state !== state) this.violations.push(`checkpoints: replica ${replica} took state ${state.slice(0, 12)} at height ${height}, replica ${known.replica} took ${known.state.slice(0, 12)} (at ${atUs} µs)`);
  }

  onInstall(replica: number, checkpoint: StoredCheckpoint, atUs: number): void {
    if (!this.isCorrect(replica)) return;
    const { height, position } = checkpoint.manifest;
    const known = this.checkpointStates.get(height);
    if (known !== undefined && known.state !== toHex(checkpoint.state)) this.violations.push(`checkpoints: replica ${replica} installed a state at height ${height} that no correct replica took (at ${atUs} µs)`);
    this.installedBelow.set(replica, Math.max(this.installedBelow.get(replica) ?? 0, position));
  }

  onSent(replica: number, msg: Message, atUs = 0): void {
    if (msg.type === 'tsReply' && this.isCorrect(replica) && msg.stamp.replica === replica) {
      const digest = toHex(msg.digest);
      this.checkIncreasing(replica, digest, msg.stamp.ts, atUs);
      this.addCorrectTs(digest, msg.stamp.ts);
    } else if (msg.type === 'ack' && msg.replica === replica) {
      const key = toHex(msg.digest) + toHex(msg.ocHash);
      let set = this.ackers.get(key);
      if (set === undefined) this.ackers.set(key, (set = new Set()));
      set.add(replica);
      if (set.size >= this.q) this.sequenced.add(toHex(msg.digest));
    }
  }

  /** A correct replica's timestamps strictly increase, across restarts too; only a repeated reply
   *  for the same batch may repeat its timestamp. */
  private checkIncreasing(replica: number, digest: string, ts: number, atUs: number): void {
    let given = this.given.get(replica);
    if (given === undefined) this.given.set(replica, (given = new Set()));
    const key = `${digest}:${ts}`;
    if (given.has(key)) return;
    given.add(key);
    const last = this.lastTs.get(replica) ?? -1;
    if (ts <= last) this.violations.push(`timestamps: replica ${replica} gave ${ts} µs to batch ${digest.slice(0, 12)} after giving ${last} µs (at ${atUs} µs)`);
    else this.lastTs.set(replica, ts);
  }

  private addCorrectTs(digest: string, ts: number): void {
    const list = this.correctTs.get(digest);
    if (list === undefined) this.correctTs.set(digest, [ts]);
    else list.push(ts);
  }

  /** The executed timestamp must lie within the correct replicas' timestamps in its OC. */
  private checkSoundness(r: ExecutionRecord, digest: string): void {
    const correct = r.oc.stamps.filter((s) => this.isCorrect(s.replica)).map((s) => s.ts);
    if (correct.length === 0) {
      this.violations.push(`soundness: batch ${digest.slice(0, 12)} executed with an OC holding no correct timestamp`);
      return;
    }
    const lo = Math.min(...correct);
    const hi = Math.max(...correct);
    if (r.ts < lo || r.ts > hi) {
      this.violations.push(`soundness: batch ${digest.slice(0, 12)} executed at ${r.ts}, outside its correct timestamps [${lo}, ${hi}]`);
    }
    const header = readBatchHeader(r.batch);
    if (header.ok && r.ts > header.value.expiresAtUs) {
      this.violations.push(`soundness: batch ${digest.slice(0, 12)} executed at ${r.ts}, past its expiry ${header.value.expiresAtUs}`);
    }
  }

  /** Checks at the end of a run. `upCorrect`: correct replicas that are up and had time to catch up. */
  finish(upCorrect: readonly number[], clients: readonly ClientRecord[], liveness: LivenessBound | null): FairnessSummary {
    const sequence = [...this.executedAt.entries()].sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < sequence.length; i++) {
      if (sequence[i]![0] !== i) {
        this.violations.push(`agreement: executed positions have a gap at ${i}`);
        break;
      }
    }
    this.checkNoLoss(upCorrect, clients);
    this.checkExactlyOnce(sequence.map(([, e]) => e), clients);
    if (liveness !== null) this.checkLiveness(clients, liveness);
    return this.fairness(sequence.map(([pos, e]) => ({ pos, e })), clients);
  }

  /**
   * Every correct replica that is up executes what any executed by `byUs` (committed once, executed
   * everywhere — a partial sequencer's batch included). Counted by the replicas' own executed totals
   * (`executed`), which include what a restarted replica re-executed silently from its storage.
   */
  checkCaughtUp(executed: ReadonlyMap<number, number>, byUs: number): void {
    let due = 0;
    for (const e of this.executedAt.values()) if (e.atUs <= byUs) due++;
    for (const [replica, count] of executed) {
      if (count < due) this.violations.push(`catch-up: replica ${replica} executed ${count} batches, ${due} were executed elsewhere by ${byUs} µs`);
    }
  }

  private checkNoLoss(upCorrect: readonly number[], clients: readonly ClientRecord[]): void {
    const mustExecute = new Set(this.sequenced);
    for (const c of clients) if (c.digest !== null && c.orderedUs !== null) mustExecute.add(c.digest);
    const positionOf = new Map<string, number>();
    for (const [position, e] of this.executedAt) positionOf.set(e.digest, position);
    for (const digest of mustExecute) {
      for (const r of upCorrect) {
        const position = positionOf.get(digest);
        // Below an installed checkpoint a replica executed nothing itself: the checkpoint's state
        // holds those batches (its digest was checked against what correct replicas took).
        if (position !== undefined && position < (this.installedBelow.get(r) ?? 0)) continue;
        if (!this.executedByReplica[r]!.has(digest)) {
          this.violations.push(`no loss: sequenced batch ${digest.slice(0, 12)} never executed at replica ${r}`);
          return;
        }
      }
    }
  }

  private checkExactlyOnce(sequence: readonly Executed[], clients: readonly ClientRecord[]): void {
    // What each recorded client wrote: key:seq → payload hash.
    const written = new Map<string, string>();
    const recordedKeys = new Set<string>();
    for (const c of clients) {
      for (const cmd of c.commands) {
        written.set(`${cmd.clientKey}:${cmd.seq}`, cmd.payloadHash);
        recordedKeys.add(cmd.clientKey);
      }
    }
    const executedCommands = new Set<string>();
    for (const e of sequence) {
      const commands = decodeBatchCommands(e.record.batch);
      const results = decodeResults(e.record.results);
      if (!commands.ok || !results.ok) continue;
      commands.value.forEach((c, i) => {
        if (results.value[i]?.[0] !== ResultStatus.Executed) return;
        const clientKey = toHex(c.clientKey);
        const key = `${clientKey}:${c.seq}`;
        const short = `${clientKey.slice(0, 8)}:${c.seq}`;
        if (executedCommands.has(key)) this.violations.push(`duplicate: command ${short} executed twice`);
        executedCommands.add(key);
        if (!recordedKeys.has(clientKey)) return;
        const payloadHash = written.get(key);
        if (payloadHash !== toHex(this.sha256(c.payload))) {
          this.violations.push(`impersonation: command ${short} executed under a client's key ${payloadHash === undefined ? 'that client never sent' : 'with a payload it never wrote'}`);
        }
      });
    }
  }

  private checkLiveness(clients: readonly ClientRecord[], { fromUs, untilUs, boundUs, clients: owed }: LivenessBound): void {
    for (const c of clients) {
      if (c.submitUs < fromUs || c.submitUs > untilUs - boundUs || (owed !== undefined && !owed(c.client))) continue;
      const done = c.executedUs;
      if (done === null || done - c.submitUs > boundUs) {
        const what = c.digest === null ? `command ${c.commands[0]!.seq}` : `batch ${c.digest.slice(0, 12)}`;
        this.violations.push(
          `liveness: client ${c.client}'s ${what} submitted at ${(c.submitUs / 1e6).toFixed(3)} s ` +
            (done === null ? `never executed${c.failed === null ? '' : ` (${c.failed})`}` : `executed after ${((done - c.submitUs) / 1e6).toFixed(3)} s`),
        );
        return;
      }
    }
  }

  private fairness(sequence: readonly { pos: number; e: Executed }[], clients: readonly ClientRecord[]): FairnessSummary {
    const items: { pos: number; digest: string; ts: number; lo: number; hi: number; submitUs: number }[] = [];
    // A batch was submitted when the first of its commands was (gateway batches hold commands of
    // several thin clients; a retried command counts from its first submission).
    const submitted = new Map<string, number>();
    for (const c of clients) {
      for (const cmd of c.commands) {
        const key = `${cmd.clientKey}:${cmd.seq}`;
        submitted.set(key, Math.min(submitted.get(key) ?? Infinity, c.submitUs));
      }
    }
    const submitUsOf = (batch: Uint8Array): number => {
      const commands = decodeBatchCommands(batch);
      if (!commands.ok) return -1;
      const first = Math.min(...commands.value.map((c) => submitted.get(`${toHex(c.clientKey)}:${c.seq}`) ?? Infinity));
      return Number.isFinite(first) ? first : -1;
    };
    for (const { pos, e } of sequence) {
      const ts = this.correctTs.get(e.digest);
      if (ts === undefined || ts.length === 0) continue;
      items.push({ pos, digest: e.digest, ts: e.ts, lo: Math.min(...ts), hi: Math.max(...ts), submitUs: submitUsOf(e.record.batch) });
    }
    // Linearizability in O(N log N): walking from the last position back, a batch b is violated if
    // some later-executed a has every correct timestamp below all of b's.
    let violations = 0;
    let later: (typeof items)[number] | null = null;
    for (let i = items.length - 1; i >= 0; i--) {
      const b = items[i]!;
      if (later !== null && later.hi < b.lo) {
        violations++;
        if (violations <= 3) {
          const show = (x: (typeof items)[number]): string => `${x.digest.slice(0, 12)} at position ${x.pos} (ts ${x.ts}, correct [${x.lo}, ${x.hi}])`;
          this.violations.push(`linearizability: batch ${show(b)} executed before batch ${show(later)}`);
        }
      }
      if (later === null || b.hi < later.hi) later = b;
    }
    let overlapping = 0;
    let inversions = 0;
    const sample = items.length > MAX_INVERSION_SAMPLE ? items.filter((_, i) => i % Math.ceil(items.length / MAX_INVERSION_SAMPLE) === 0) : items;
    for (let i = 0; i < sample.length; i++) {
      for (let j = i + 1; j < sample.length; j++) {
        const a = sample[i]!;
        const b = sample[j]!;
        if (a.hi < b.lo || b.hi < a.lo) continue;
        overlapping++;
        if (a.submitUs >= 0 && b.submitUs >= 0 && b.submitUs < a.submitUs) inversions++;
      }
    }
    return {
      executedBatches: sequence.length,
      pairsChecked: (items.length * (items.length - 1)) / 2,
      linearizabilityViolations: violations,
      overlappingPairs: overlapping,
      overlappingInversions: inversions,
      lateRetries: this.lateRetries,
      maxByzantineMedianShiftUs: this.maxByzantineMedianShiftUs,
    };
  }
}
