/**
 * The /status document: what an operator (or the end-to-end test) wants to see at a glance.
 * Plain JSON numbers and strings; rates are over the last 10 s of this process.
 */
import type { ClusterConfig } from '../common/config.js';
import type { ReplicaId } from '../common/ids.js';
import type { ReplicaStatus } from '../ordering/replica.js';
import type { DriverStats } from './drive.js';
import type { ExecutedChainHead } from './executedChain.js';
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
}

export type ReplicaStatusJson = ReturnType<typeof buildStatus>;

export function buildStatus(s: StatusInputs) {
  const { core, driver, chain, store } = s;
  const t = s.transport.stats();
  const server = s.transport.serverBackend();
  const writer = store.writer;
  return {
    replica: s.self,
    n: s.config.n,
    f: s.config.f,
    q: s.config.q,
    view: core.view,
    leading: core.leading,
    committedHeight: core.committedHeight,
    committedSlot: core.committedSlot,
    frontier: core.frontier,
    executedBatches: core.executedBatches,
    executedCommands: core.executedCommands,
    duplicateCommands: core.duplicateCommands,
    /** Fingerprint of the executed sequence (executedChain.ts): equal at equal positions. */
    executedChainHash: chain.hash,
    executedChainPosition: chain.position,
    executedChainLength: chain.length,
    rates: {
      windowSeconds: 10,
      executedCommandsPerSecond: driver.executedCommandsPerSecond,
      stepsPerSecond: driver.stepsPerSecond,
    },
    peersUp: s.transport.peersUp(),
    inboundPeers: t.inboundPeers,
    core: {
      pendingBatches: core.pendingBatches,
      pendingBytes: core.pendingBytes,
      ackedUncommitted: core.ackedUncommitted,
      executionQueue: core.executionQueue,
      fetching: core.fetching,
      batchBytesInMemory: core.batchBytesInMemory,
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
      server,
      uwsNative: server === 'uws',
      peer: t.peer,
      client: t.client,
      clientConnections: t.clientConnections,
      clientQueuedBytes: t.clientQueuedBytes,
      rejectedFrames: t.rejectedFrames,
      handshakeFailures: t.handshakeFailures,
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

const MIB = 1024 * 1024;

function memoryMiB(): { readonly rss: number; readonly heapUsed: number; readonly external: number } {
  const m = process.memoryUsage();
  const mib = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), external: mib(m.external) };
}
