/**
 * The replica's metrics: one prom-client registry with the process defaults, the transport's
 * metrics (transport/metrics.ts) and the replica's own `pompe_*` metrics. Names carry their unit
 * (`_seconds`, `_bytes`, `_total`). Hot-path metrics (per step, per persist) are updated by the
 * drive loop through pre-resolved children; state the core already counts (view, heights, queue
 * sizes, refusals) is read from it when Prometheus scrapes, not on every step.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PeerFaultKind } from '../consensus/types.js';
import type { ReplicaInput } from '../ordering/types.js';
import type { ReplicaStatus } from '../ordering/replica.js';
import { PHASE_BUCKETS_S } from './phaseLatency.js';
import type { ReplicaStoreStats } from './store/replicaStore.js';
import { PromTransportMetrics } from './transport/metrics.js';

/** Step durations: most steps take microseconds; a commit that executes a large block, or a
 *  proposal with many seals to verify, takes milliseconds. */
const STEP_BUCKETS_S = [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1];
/** Persist latency: one synced LevelDB batch, ~0.2 ms on a fast disk, tens of ms on a slow one. */
const PERSIST_BUCKETS_S = [1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1];

/** What the scrape-time metrics read. */
export interface MetricsSource {
  /** Null while the core is being built (restore, replay, install). */
  coreStatus(): ReplicaStatus | null;
  storeStats(): ReplicaStoreStats;
  /** Outputs whose sends wait for a persist. */
  sendBacklog(): number;
  executedChainPosition(): number;
  /** Bytes of the store on disk (sampled). */
  storeDiskBytes(): number;
  /** The core's clock (µs), for ages. */
  clockUs(): number;
}

export type InputKind = ReplicaInput['kind'];
/** Every input kind, each with its step histogram (the Record makes a new kind a compile error here). */
const INPUT_KINDS = Object.keys({ start: 0, peer: 0, clientAuthenticated: 0, client: 0, clientClosed: 0, tick: 0, timeoutNow: 0, checkpointWritten: 0 } satisfies Record<InputKind, 0>) as InputKind[];

export class ReplicaMetrics {
  readonly registry = new Registry();
  readonly transport: PromTransportMetrics;
  private readonly stepSeconds: Record<InputKind, Histogram.Internal<'input'>>;
  private readonly persistSeconds: Histogram;
  private readonly executedBatches: Counter;
  private readonly executedCommands: Counter;
  private readonly committedBlocks: Counter;
  private readonly peerFaults: Counter<'kind'>;
  private readonly errors: Counter<'kind'>;
  /** Replica-side batch latency by phase (phaseLatency.ts observes it). */
  readonly phaseSeconds: Histogram<'phase'>;
  private readonly info: Gauge<'replica' | 'cluster_id' | 'version'>;
  private source: MetricsSource | null = null;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.transport = new PromTransportMetrics(this.registry);
    const steps = new Histogram({ name: 'pompe_step_seconds', help: 'Time of one ReplicaCore.step, by input kind', labelNames: ['input'], buckets: STEP_BUCKETS_S, registers });
    this.stepSeconds = Object.fromEntries(INPUT_KINDS.map((k) => [k, steps.labels(k)])) as Record<InputKind, Histogram.Internal<'input'>>;
    this.persistSeconds = new Histogram({ name: 'pompe_persist_seconds', help: 'Time from storage.apply to durable, per output with persist ops', buckets: PERSIST_BUCKETS_S, registers });
    this.executedBatches = new Counter({ name: 'pompe_executed_batches_total', help: 'Batches executed since this process started (replayed ones excluded)', registers });
    this.executedCommands = new Counter({
      name: 'pompe_executed_commands_total',
      help: 'Commands in the batches executed since this process started (duplicates included)',
      registers,
    });
    this.committedBlocks = new Counter({ name: 'pompe_committed_blocks_total', help: 'Blocks committed since this process started', registers });
    this.peerFaults = new Counter({ name: 'pompe_peer_faults_total', help: 'Faults caused by peers (bad signatures, invalid proposals…), by kind', labelNames: ['kind'], registers });
    this.errors = new Counter({ name: 'pompe_errors_total', help: 'Problems of this replica that it survives (failed reads, refused serve requests), by kind', labelNames: ['kind'], registers });
    this.phaseSeconds = new Histogram({
      name: 'pompe_batch_phase_seconds',
      help: 'Time a batch spends in each phase at this replica: stamp_to_ack, ack_to_commit, commit_to_execute, stamp_to_execute',
      labelNames: ['phase'],
      buckets: [...PHASE_BUCKETS_S],
      registers,
    });
    this.info = new Gauge({ name: 'pompe_replica_info', help: 'Always 1; the labels say which replica of which cluster runs which version', labelNames: ['replica', 'cluster_id', 'version'], registers });

    // collect() runs with `this` bound to the metric, so the replica is reached through closures.
    const source = (): MetricsSource | null => this.source;
    const status = (): ReplicaStatus | null => source()?.coreStatus() ?? null;
    const gauge = (name: string, help: string, read: (s: ReplicaStatus) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = status();
          if (s !== null) this.set(read(s));
        },
      });
    };
    gauge('pompe_view', 'Current HotStuff view', (s) => s.view);
    gauge('pompe_leading', '1 while this replica leads the current view', (s) => (s.leading ? 1 : 0));
    gauge('pompe_committed_height', 'Height of the committed tip', (s) => s.committedHeight);
    gauge('pompe_committed_slot', 'Last slot covered by a committed block', (s) => s.committedSlot);
    gauge('pompe_frontier_slot', 'Sealed frontier (last sealed slot)', (s) => s.frontier);
    gauge('pompe_executed_position', 'Batches executed in all (replayed ones included)', (s) => s.executedBatches);
    gauge('pompe_pending_batches', 'Phase-1 batches held (timestamped, not yet acked)', (s) => s.pendingBatches);
    gauge('pompe_pending_bytes', 'Bytes of the phase-1 batches held', (s) => s.pendingBytes);
    gauge('pompe_acked_uncommitted', 'Acks given that no committed block covers yet', (s) => s.ackedUncommitted);
    gauge('pompe_execution_queue_batches', 'Committed batches waiting to execute', (s) => s.executionQueue);
    gauge('pompe_fetching_batches', 'Batches being fetched from peers', (s) => s.fetching);
    gauge('pompe_batch_memory_bytes', 'Batch bytes the core holds in memory', (s) => s.batchBytesInMemory);
    gauge('pompe_checkpoint_stable_height', 'Height of the latest stable checkpoint held (0: none)', (s) => s.checkpoints.stable?.height ?? 0);
    gauge('pompe_checkpoint_stable_position', 'Executed position of the latest stable checkpoint held', (s) => s.checkpoints.stable?.position ?? 0);
    gauge('pompe_checkpoint_certified_height', 'Height of the highest certified checkpoint known', (s) => s.checkpoints.certifiedHeight);
    gauge('pompe_state_transfer_chunks', 'Chunks of the checkpoint being fetched from peers (0: no transfer)', (s) => s.stateTransfer?.chunks ?? 0);
    gauge('pompe_state_transfer_chunks_done', 'Chunks of that checkpoint fetched and written so far', (s) => s.stateTransfer?.chunksDone ?? 0);
    new Gauge({
      name: 'pompe_checkpoint_stable_age_seconds',
      help: 'Time since the latest stable checkpoint held became stable (absent before the first)',
      registers,
      collect() {
        const src = source();
        const stable = src?.coreStatus()?.checkpoints.stable ?? null;
        if (src !== null && stable !== null) this.set((src.clockUs() - stable.sinceUs) / 1e6);
      },
    });
    new Gauge({
      name: 'pompe_pruned_below_height',
      help: 'Blocks below this height, and the batches they committed, are pruned from the store',
      registers,
      collect() {
        const src = source();
        if (src !== null) this.set(src.storeStats().prunedBelowHeight);
      },
    });
    new Gauge({
      name: 'pompe_store_disk_bytes',
      help: 'Bytes of the store on disk (sampled every second)',
      registers,
      collect() {
        const src = source();
        if (src !== null) this.set(src.storeDiskBytes());
      },
    });
    new Gauge({
      name: 'pompe_send_backlog_outputs',
      help: 'Step outputs whose sends wait for a persist',
      registers,
      collect() {
        const src = source();
        if (src !== null) this.set(src.sendBacklog());
      },
    });
    new Gauge({
      name: 'pompe_executed_chain_position',
      help: 'Position of the last batch folded into the executed-chain hash (-1: none)',
      registers,
      collect() {
        const src = source();
        if (src !== null) this.set(src.executedChainPosition());
      },
    });
    // Cumulative counts kept elsewhere, exported as counters by adding what changed since the last scrape.
    const refusalsSeen: Record<string, number> = {};
    new Counter({
      name: 'pompe_refusals_total',
      help: 'Collector requests this replica refused, by reason (late, early, busy, …)',
      labelNames: ['reason'],
      registers,
      collect() {
        const s = status();
        if (s === null) return;
        for (const [reason, count] of Object.entries(s.refusals)) {
          const delta = count - (refusalsSeen[reason] ?? 0);
          if (delta > 0) this.labels(reason).inc(delta);
          refusalsSeen[reason] = count;
        }
      },
    });
    const storeSeen = { batches: 0, syncBatches: 0, bytes: 0 };
    const storeCounter = (name: string, help: string, field: keyof typeof storeSeen): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          const src = source();
          if (src === null) return;
          const now = src.storeStats().writer[field];
          if (now > storeSeen[field]) this.inc(now - storeSeen[field]);
          storeSeen[field] = now;
        },
      });
    };
    storeCounter('pompe_store_write_batches_total', 'LevelDB batches written', 'batches');
    storeCounter('pompe_store_sync_batches_total', 'LevelDB batches written with fsync', 'syncBatches');
    storeCounter('pompe_store_written_bytes_total', 'Key and value bytes written to LevelDB', 'bytes');
  }

  /** Sets the info metric's labels (once, at start). */
  identify(replica: number, clusterIdHex: string, version: string): void {
    this.info.labels(String(replica), clusterIdHex, version).set(1);
  }

  /** Connects the scrape-time metrics to the running replica. */
  bind(source: MetricsSource): void {
    this.source = source;
  }

  step(kind: InputKind, seconds: number): void {
    this.stepSeconds[kind].observe(seconds);
  }

  persisted(seconds: number): void {
    this.persistSeconds.observe(seconds);
  }

  executed(batches: number, commands: number): void {
    this.executedBatches.inc(batches);
    this.executedCommands.inc(commands);
  }

  committed(blocks: number): void {
    this.committedBlocks.inc(blocks);
  }

  peerFault(kind: PeerFaultKind): void {
    this.peerFaults.labels(kind).inc();
  }

  error(kind: string): void {
    this.errors.labels(kind).inc();
  }
}

/**
 * A rate over a sliding window, from samples of a cumulative count taken once a second: cheap to
 * keep, and what an operator wants from /status ("commands per second over the last 10 s").
 */
export class RateWindow {
  private readonly samples: { atMs: number; count: number }[] = [];

  constructor(private readonly windowMs: number) {}

  sample(atMs: number, count: number): void {
    this.samples.push({ atMs, count });
    while (this.samples.length > 2 && this.samples[1]!.atMs <= atMs - this.windowMs) this.samples.shift();
  }

  /** Per second over the window (0 until two samples exist). */
  perSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.atMs <= first.atMs) return 0;
    return ((last.count - first.count) * 1000) / (last.atMs - first.atMs);
  }
}
