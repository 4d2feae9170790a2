/**
 * What a full-simulation run reports besides its violations (THREATS.md "What the run summary
 * shows"): commits, timeouts and views, refusals by reason, and the pending-store bound under a
 * phase-1 flood. RunStats sits in front of the checker as the replicas' observer and passes every
 * event on to it.
 */
import { toHex } from '../common/bytes.js';
import { MAX_PENDING_BATCHES_PER_CONNECTION, MAX_PENDING_BYTES } from '../common/limits.js';
import type { Message } from '../common/messages.js';
import type { StoredCheckpoint } from '../ordering/checkpointFormat.js';
import type { ExecutionRecord, ReplicaOutput } from '../ordering/types.js';
import type { ReplicaNode, ReplicaObserver } from './replicaNode.js';
import type { World } from './world.js';

export class RunStats implements ReplicaObserver {
  /** Distinct (replica, view) timeouts signed by correct replicas (re-sends not counted). */
  private readonly timeoutKeys = new Set<string>();
  /** Refusals sent by any replica, by reason (what collectors were told). */
  readonly refusalsSent: Record<string, number> = {};
  /** Digests of the batches replicas' gateways submitted (each a pending entry at most, per replica). */
  readonly gatewayBatches = new Set<string>();
  /** Per replica: committed height, and the height it had at GST. */
  private readonly height = new Map<number, number>();
  private readonly heightAtGst = new Map<number, number>();

  constructor(
    private readonly inner: ReplicaObserver,
    private readonly isCorrect: (replica: number) => boolean,
    private readonly gstUs: number,
    private readonly sha256: (bytes: Uint8Array) => Uint8Array,
  ) {}

  get timeouts(): number {
    return this.timeoutKeys.size;
  }

  onExecuted(replica: number, records: readonly ExecutionRecord[], atUs: number): void {
    this.inner.onExecuted(replica, records, atUs);
  }

  onCommit(replica: number, commits: ReplicaOutput['commits'], atUs: number): void {
    this.inner.onCommit(replica, commits, atUs);
    const top = commits.at(-1)!.height;
    this.height.set(replica, top);
    if (atUs <= this.gstUs) this.heightAtGst.set(replica, top);
  }

  onSent(replica: number, msg: Message, atUs: number): void {
    this.inner.onSent(replica, msg, atUs);
    if (msg.type === 'timeout' && msg.voter === replica && this.isCorrect(replica)) this.timeoutKeys.add(`${replica}:${msg.view}`);
    else if (msg.type === 'refused' && msg.replica === replica) this.refusalsSent[msg.reason] = (this.refusalsSent[msg.reason] ?? 0) + 1;
    else if (msg.type === 'submit') this.gatewayBatches.add(toHex(this.sha256(msg.batch)));
  }

  onRestart(replica: number): void {
    this.inner.onRestart?.(replica);
  }

  onCheckpoint(replica: number, checkpoint: StoredCheckpoint, atUs: number): void {
    this.inner.onCheckpoint?.(replica, checkpoint, atUs);
  }

  onInstall(replica: number, checkpoint: StoredCheckpoint, atUs: number): void {
    this.inner.onInstall?.(replica, checkpoint, atUs);
  }

  /** Blocks committed per virtual second after GST by the slowest of `replicas`. */
  commitsPerSecondAfterGst(replicas: readonly number[], endUs: number): number {
    const seconds = (endUs - this.gstUs) / 1e6;
    if (replicas.length === 0 || seconds <= 0) return 0;
    return Math.min(...replicas.map((r) => ((this.height.get(r) ?? 0) - (this.heightAtGst.get(r) ?? 0)) / seconds));
  }

  maxHeight(replicas: readonly number[]): number {
    return Math.max(0, ...replicas.map((r) => this.height.get(r) ?? 0));
  }
}

/** What correct replicas report at the end of a run: sums of counters, and the most any one
 *  executed (a replica that restarted late may trail). */
export function replicaTotals(correct: readonly ReplicaNode[]): {
  refusals: Record<string, number>;
  faultsReported: Record<string, number>;
  rejectedFrames: number;
  batchesExecuted: number;
  commandsExecuted: number;
  duplicateCommands: number;
  maxView: number;
} {
  const t = { refusals: {} as Record<string, number>, faultsReported: {} as Record<string, number>, rejectedFrames: 0, batchesExecuted: 0, commandsExecuted: 0, duplicateCommands: 0, maxView: 0 };
  for (const r of correct) {
    for (const [k, v] of r.faults) t.faultsReported[k] = (t.faultsReported[k] ?? 0) + v;
    t.rejectedFrames += r.rejectedFrames;
    const status = r.core?.status();
    if (status === undefined) continue;
    for (const [k, v] of Object.entries(status.refusals)) t.refusals[k] = (t.refusals[k] ?? 0) + v;
    t.batchesExecuted = Math.max(t.batchesExecuted, status.executedBatches);
    t.commandsExecuted = Math.max(t.commandsExecuted, status.executedCommands);
    t.duplicateCommands = Math.max(t.duplicateCommands, status.duplicateCommands);
    t.maxView = Math.max(t.maxView, status.view);
  }
  return t;
}

/**
 * Samples correct replicas' phase-1 pending stores while flooders run. Each flooding connection may
 * hold at most MAX_PENDING_BATCHES_PER_CONNECTION, and every other distinct batch submitted so far at
 * most one entry (pending is keyed by digest); bytes stay under MAX_PENDING_BYTES. A store without
 * its bound would exceed this as soon as a flooder has sent more than the bound plus the honest
 * batches. (Counting client submissions instead would be wrong: a thin client's command that the
 * network delivers twice can land in two gateway batches.)
 */
export class PendingMonitor {
  maxBatches = 0;
  maxBytes = 0;
  readonly violations: string[] = [];

  constructor(
    private readonly world: World,
    private readonly replicas: readonly ReplicaNode[],
    private readonly isCorrect: (replica: number) => boolean,
    /** Connections that flood phase 1 (flooders, and withholdCoalition clients evicting hostages). */
    private readonly flooders: number,
    /** Distinct batches submitted so far by every other collector. */
    private readonly otherBatches: () => number,
  ) {}

  /** Samples every `everyUs` until `untilUs`. */
  schedule(everyUs: number, untilUs: number): void {
    for (let t = everyUs; t <= untilUs; t += everyUs) this.world.at(t, () => this.sample());
  }

  private sample(): void {
    const bound = this.flooders * MAX_PENDING_BATCHES_PER_CONNECTION + this.otherBatches();
    for (const r of this.replicas) {
      if (!this.isCorrect(r.id) || r.core === null) continue;
      const { pendingBatches, pendingBytes } = r.core.status();
      this.maxBatches = Math.max(this.maxBatches, pendingBatches);
      this.maxBytes = Math.max(this.maxBytes, pendingBytes);
      if (this.violations.length > 0) continue;
      if (pendingBatches > bound) this.violations.push(`bounds: replica ${r.id} holds ${pendingBatches} pending batches, bound ${bound} (at ${this.world.nowUs} µs)`);
      if (pendingBytes > MAX_PENDING_BYTES) this.violations.push(`bounds: replica ${r.id} holds ${pendingBytes} pending bytes, bound ${MAX_PENDING_BYTES}`);
    }
  }
}
