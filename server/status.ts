/**
 * The /status document: what an operator (or the end-to-end test, or the dashboard) wants to see
 * at a glance. Plain JSON numbers and strings; rates and `latency.recent` are over the last 10 s
 * of this process.
 */
import { toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { ReplicaId } from '../common/ids.js';
import type { ReplicaStatus } from '../ordering/replica.js';
import type { BootProgress, ReplicaPhase } from './coreHost.js';
import type { DriverStats } from './drive.js';
import type { ExecutedChainHead } from './executedChain.js';
import type { Check } from './health.js';
import type { PhaseLatencyJson } from './phaseLatency.js';
import type { ReplicaStoreStats } from './store/replicaStore.js';
import type { Transport } from './transport/transport.js';

export interface StatusInputs {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly core: ReplicaStatus;
  readonly chain: ExecutedChainHead;
  readonly driver: DriverStats;
  readonly transport: Transport;
  readonly store: ReplicaStoreStats;
  readonly dataDir: string;
  readonly startedAtMs: number;
  /** This process's clock (wallClockUs). */
  readonly clockUs: number;
  readonly version: string;
  /** The leader of the current view as this replica knows it (null: not known yet). */
  readonly leader: number | null;
  readonly health: Check;
  readonly ready: Check;
  /** Since the committed height last advanced (or since start), ms. */
  readonly commitAgeMs: number;
  readonly latency: PhaseLatencyJson;
  readonly phase: ReplicaPhase;
  readonly progress: BootProgress | null;
  /** Bytes of the store on disk (sampled). */
  readonly storeBytes: number;
}

export type ReplicaStatusJson = ReturnType<typeof buildStatus>;
export type BootStatusJson = ReturnType<typeof bootStatus>;

/** While the core is not built yet (the store opening, the checkpoint restoring, blocks replaying):
 *  what the replica is doing, so an operator sees a restart progress from its first second. */
export function bootStatus(s: { config: ClusterConfig; self: ReplicaId; dataDir: string; startedAtMs: number; phase: ReplicaPhase; progress: BootProgress | null; storeBytes: number }) {
  return {
    replica: s.self,
    n: s.config.n,
    f: s.config.f,
    q: s.config.q,
    phase: s.phase,
    recovering: true,
    boot: s.progress,
    storage: { dataDir: s.dataDir, sizeBytes: s.storeBytes },
    memoryMiB: memoryMiB(),
    uptimeSeconds: Math.round((Date.now() - s.startedAtMs) / 1000),
    pid: process.pid,
  };
}

export function buildStatus(s: StatusInputs) {
  const { core, driver, chain, store } = s;
  const t = s.transport.stats();
  const writer = store.writer;
  const peersUp = s.transport.peersUp();
  const stable = core.checkpoints.stable;
  const latest = core.checkpoints.latest;
  return {
    replica: s.self,
    clusterId: toHex(s.config.clusterId).slice(0, CLUSTER_ID_HEX_CHARS),
    version: s.version,
    n: s.config.n,
    f: s.config.f,
    q: s.config.q,
    health: s.health,
    ready: s.ready,
    phase: s.phase,
    /** True until the replica has caught up: while it fetches a checkpoint from its peers. */
    recovering: s.phase !== 'running' || core.stateTransfer !== null,
    view: core.view,
    leading: core.leading,
    leader: s.leader,
    committedHeight: core.committedHeight,
    committedSlot: core.committedSlot,
    commitAgeMs: Math.round(s.commitAgeMs),
    frontier: core.frontier,
    executedBatches: core.executedBatches,
    executedCommands: core.executedCommands,
    duplicateCommands: core.duplicateCommands,
    /** Fingerprint of the executed sequence (executedChain.ts): equal at equal positions. */
    executedChainHash: chain.hash,
    executedChainPosition: chain.position,
    executedChainLength: chain.length,
    checkpoint: {
      /** The latest stable checkpoint this replica holds (q signatures), or null. */
      stable:
        stable === null
          ? null
          : {
              height: stable.height,
              position: stable.position,
              toSlot: stable.toSlot,
              state: toHex(stable.state),
              ageSeconds: Math.round((s.clockUs - stable.sinceUs) / 1e5) / 10,
            },
      /** The latest checkpoint it took or installed (stable or not). */
      latestHeight: latest?.height ?? 0,
      latestPosition: latest?.position ?? 0,
      /** The highest certified checkpoint it knows of. */
      certifiedHeight: core.checkpoints.certifiedHeight,
      written: driver.checkpointsWritten,
      lastWriteMs: driver.lastCheckpointWriteMs,
    },
    /** Blocks below this height (and the batches they committed) are pruned. */
    prunedBelowHeight: store.prunedBelowHeight,
    /** A checkpoint being fetched from peers (chunks done of total), or null. */
    stateTransfer: core.stateTransfer,
    boot: s.progress,
    rates: {
      windowSeconds: 10,
      executedCommandsPerSecond: driver.executedCommandsPerSecond,
      stepsPerSecond: driver.stepsPerSecond,
    },
    peersUp,
    /** Every other replica, and whether this one's link to it is up. */
    peers: s.config.replicas.filter((r) => r.id !== s.self).map((r) => ({ id: r.id, up: peersUp.includes(r.id) })),
    /** Replica-side batch latency by phase (phaseLatency.ts). */
    latency: s.latency,
    inboundPeers: t.inboundPeers,
    core: {
      pendingBatches: core.pendingBatches,
      pendingBytes: core.pendingBytes,
      ackedUncommitted: core.ackedUncommitted,
      executionQueue: core.executionQueue,
      fetching: core.fetching,
      batchBytesInMemory: core.batchBytesInMemory,
      noticeBytes: core.noticeBytes,
    },
    loop: {
      steps: driver.steps,
      persists: driver.persists,
      meanPersistMs: driver.meanPersistMs,
      sendBacklog: driver.sendBacklog,
      maxSendBacklog: driver.maxSendBacklog,
      executedBatches: driver.executedBatches,
      executedCommands: driver.executedCommands,
    },
    transport: {
      /** The server library (uws or ws), TLS or not, and why ws when uWS did not load. */
      server: s.transport.serverInfo(),
      peer: t.peer,
      client: t.client,
      clientConnections: t.clientConnections,
      clientQueuedBytes: t.clientQueuedBytes,
      rejectedFrames: t.rejectedFrames,
      handshakeFailures: t.handshakeFailures,
      handshakesThrottled: t.handshakesThrottled,
      clientsShed: t.clientsShed,
      connectionsRefused: t.connectionsRefused,
      errorRepliesSuppressed: t.errorRepliesSuppressed,
      errorNoticesReceived: t.errorNoticesReceived,
      droppedFrames: t.droppedFrames,
      reconnects: t.reconnects,
      peerQueuedBytes: Object.fromEntries(t.peers.map((p) => [p.peer, p.queuedBytes + p.inflightBytes])),
    },
    storage: {
      dataDir: s.dataDir,
      writeBatches: writer.batches,
      syncBatches: writer.syncBatches,
      writtenOps: writer.ops,
      writtenBytes: writer.bytes,
      meanBatchLatencyMs: writer.batches === 0 ? 0 : Math.round(writer.totalBatchLatencyUs / writer.batches) / 1000,
      queuedBytes: store.queuedBytes,
      acksPrunedThrough: store.acksPrunedThrough,
      sizeBytes: s.storeBytes,
      blocksPruned: store.blocksPruned,
      batchesPruned: store.batchesPruned,
      checkpointsHeld: store.checkpoints.length,
    },
    faults: driver.peerFaults,
    refusals: core.refusals,
    errors: {
      servesRefused: driver.servesRefused,
      readErrors: driver.readErrors,
      clientsGone: driver.clientsGone,
    },
    /** This replica's timestamp clock minus the system clock (Date.now, 1 ms resolution): a large
     *  value means its anchor is off, and its timestamps with it. */
    clockOffsetUs: s.clockUs - Date.now() * 1000,
    /** Process memory in MiB: resident, the JS heap in use, and memory outside it (buffers). */
    memoryMiB: memoryMiB(),
    uptimeSeconds: Math.round((Date.now() - s.startedAtMs) / 1000),
    pid: process.pid,
  };
}

/** 64 bits of the cluster id: enough to tell clusters apart on a dashboard or in a metric label. */
export const CLUSTER_ID_HEX_CHARS = 16;

const MIB = 1024 * 1024;

/** Resident memory and where it is: the JavaScript heap V8 reserved and uses, and memory outside it
 *  (`external`, of which `arrayBuffers` is Buffer contents) — what tells a native leak or allocator
 *  fragmentation (rss grows, the rest does not) from a JavaScript one. */
function memoryMiB(): {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
} {
  const m = process.memoryUsage();
  const mib = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;
  return { rss: mib(m.rss), heapTotal: mib(m.heapTotal), heapUsed: mib(m.heapUsed), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers) };
}
