/**
 * The replica core's life inside the process: built from the store (the latest checkpoint
 * restored, then the committed blocks above it replayed), driven by a Driver, and rebuilt the same
 * way when it installs a checkpoint fetched from its peers (state transfer). Between those, inputs
 * from the network are dropped: the peers retry what matters.
 *
 * Client identities are per connection, not replica state (no checkpoint holds them): the host
 * remembers which open connection proved which key, and tells every core it builds, as the
 * transport told the first one.
 *
 * Phases, as /status reports them: starting → restoring (the checkpoint's chunks into the state
 * machine) → replaying (blocks above it) → running; installing (a fetched checkpoint: back to
 * restoring); stopped.
 */
import type { Logger } from 'pino';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import type { ClientIdentity } from '../ordering/clientKeys.js';
import { CheckpointRestorer, type LocalCheckpoint, type RestoredCheckpoint } from '../ordering/checkpointFormat.js';
import { ReplicaCore } from '../ordering/replica.js';
import type { StateMachine } from '../ordering/stateMachine.js';
import type { ReplicaInput } from '../ordering/types.js';
import { Driver, type DrivenCore, type Sender } from './drive.js';
import type { ReplicaStorage } from '../ordering/storage.js';
import type { ReplicaMetrics } from './metrics.js';
import type { LevelReplicaStorage } from './store/replicaStore.js';

export type ReplicaPhase = 'starting' | 'restoring' | 'replaying' | 'running' | 'installing' | 'stopped';

export interface BootProgress {
  /** The checkpoint restored from (height), and its chunks restored so far of how many. */
  readonly checkpointHeight: number;
  readonly restoredChunks: number;
  readonly checkpointChunks: number;
  readonly replayedBlocks: number;
  readonly restoreMs: number;
  readonly replayMs: number;
  /** Checkpoints installed from peers by this process. */
  readonly installs: number;
}

export interface CoreHostOptions {
  readonly config: ClusterConfig;
  readonly self: ReplicaId;
  readonly crypto: CryptoBackend;
  readonly secretKey: Uint8Array;
  /** What the core is built from (load, restore, replay). */
  readonly storage: LevelReplicaStorage;
  /** What the drive loop writes through (the same store, possibly watched). */
  readonly driverStorage: ReplicaStorage;
  readonly stateMachine: StateMachine;
  readonly sender: Sender;
  readonly metrics: ReplicaMetrics;
  readonly logger: Logger;
  readonly clockUs: () => number;
  readonly onFatal: (error: unknown) => void;
  /** What the drive loop steps for a core (the core itself, possibly observed or wrapped). */
  readonly drive: (core: ReplicaCore) => DrivenCore;
  readonly replayChunkBlocks: number;
  /** How long a replacement waits for the old loop's persists and sends. */
  readonly drainTimeoutMs: number;
}

export class CoreHost {
  private phaseNow: ReplicaPhase = 'starting';
  /** Set by stop(): a boot in progress gives up at its next step. */
  private stopped = false;
  private coreNow: ReplicaCore | null = null;
  private driverNow: Driver | null = null;
  private progressNow: BootProgress = { checkpointHeight: 0, restoredChunks: 0, checkpointChunks: 0, replayedBlocks: 0, restoreMs: 0, replayMs: 0, installs: 0 };
  /** Open client connections that proved a key, and from where. Bounded by the transport's client
   *  connection limit: an entry leaves when its connection closes. */
  private readonly authenticated = new Map<number, { readonly identity: ClientIdentity; readonly address: string }>();

  constructor(private readonly opts: CoreHostOptions) {}

  get phase(): ReplicaPhase {
    return this.phaseNow;
  }

  get core(): ReplicaCore | null {
    return this.coreNow;
  }

  get driver(): Driver | null {
    return this.driverNow;
  }

  get progress(): BootProgress {
    return this.progressNow;
  }

  /** Builds the core from the store and starts driving it. */
  async boot(): Promise<void> {
    const { storage, logger, crypto, config } = this.opts;
    const recovered = await storage.load();
    const restored = recovered.checkpoint === null ? null : await this.restore(recovered.checkpoint);
    if (this.stopped) return;
    const core = new ReplicaCore({
      config,
      self: this.opts.self,
      crypto,
      signer: crypto.signer(this.opts.secretKey),
      stateMachine: this.opts.stateMachine,
      recovered,
      restored,
    });
    this.phaseNow = 'replaying';
    const startedMs = Date.now();
    const from = restored === null ? null : { height: restored.checkpoint.manifest.height, digest: restored.checkpoint.manifest.block };
    for await (const chunk of storage.committedChain(this.opts.replayChunkBlocks, from)) {
      if (this.stopped) return;
      core.replayCommitted(chunk.blocks, chunk.batches);
      this.progressNow = { ...this.progressNow, replayedBlocks: this.progressNow.replayedBlocks + chunk.blocks.length };
    }
    this.progressNow = { ...this.progressNow, replayMs: Date.now() - startedMs };
    const status = core.status();
    logger.info(
      {
        committedHeight: recovered.consensus.committed?.height ?? 0,
        checkpointHeight: restored?.checkpoint.manifest.height ?? 0,
        acks: recovered.ordering.acks.length,
        replayedBlocks: this.progressNow.replayedBlocks,
        executedBatches: status.executedBatches,
        restoreMs: this.progressNow.restoreMs,
        replayMs: this.progressNow.replayMs,
      },
      'store loaded',
    );
    const driver = new Driver({
      core: this.opts.drive(core),
      storage: this.opts.driverStorage,
      sender: this.opts.sender,
      metrics: this.opts.metrics,
      logger,
      clockUs: this.opts.clockUs,
      onFatal: this.opts.onFatal,
      onInstall: (checkpoint) => void this.install(checkpoint),
    });
    if (this.stopped) return;
    this.coreNow = core;
    this.driverNow = driver;
    this.phaseNow = 'running';
    driver.start();
    for (const [conn, { identity, address }] of this.authenticated) driver.clientAuthenticated(conn, identity, address);
  }

  input(input: ReplicaInput): void {
    this.driverNow?.input(input);
  }

  clientAuthenticated(conn: number, identity: ClientIdentity, address: string): void {
    this.authenticated.set(conn, { identity, address });
    this.driverNow?.clientAuthenticated(conn, identity, address);
  }

  clientMessage(conn: number, msg: Message): void {
    this.driverNow?.clientMessage(conn, msg);
  }

  clientClosed(conn: number): void {
    this.authenticated.delete(conn);
    this.driverNow?.clientClosed(conn);
  }

  /** Stops taking input and lets the started persists finish; false if they did not in time. */
  async stop(): Promise<boolean> {
    this.stopped = true;
    const drained = await this.retire();
    this.phaseNow = 'stopped';
    return drained;
  }

  /** Restores the state machine from a held checkpoint, chunk by chunk from the store. */
  private async restore(checkpoint: LocalCheckpoint): Promise<RestoredCheckpoint | null> {
    const { crypto, config, storage } = this.opts;
    this.phaseNow = 'restoring';
    const startedMs = Date.now();
    const total = checkpoint.manifest.chunkHashes.length;
    this.progressNow = { ...this.progressNow, checkpointHeight: checkpoint.manifest.height, restoredChunks: 0, checkpointChunks: total, replayedBlocks: 0 };
    const restorer = new CheckpointRestorer(crypto, { replicaCount: config.n }, checkpoint, this.opts.stateMachine.restore());
    let done = 0;
    for await (const chunk of storage.checkpointChunks(checkpoint)) {
      if (this.stopped) break;
      restorer.add(chunk);
      this.progressNow = { ...this.progressNow, restoredChunks: ++done };
    }
    if (this.stopped) return null;
    const restored = restorer.finish();
    this.progressNow = { ...this.progressNow, restoreMs: Date.now() - startedMs };
    return restored;
  }

  /** A checkpoint fetched from peers is durable: the core is rebuilt from the store. */
  private async install(checkpoint: LocalCheckpoint): Promise<void> {
    const { logger } = this.opts;
    this.phaseNow = 'installing';
    this.progressNow = { ...this.progressNow, installs: this.progressNow.installs + 1 };
    logger.info({ height: checkpoint.manifest.height, position: checkpoint.manifest.position, chunks: checkpoint.manifest.chunkHashes.length }, 'installing a checkpoint fetched from peers');
    try {
      await this.retire();
      if (!this.stopped) await this.boot();
    } catch (error) {
      this.opts.onFatal(error);
    }
  }

  private async retire(): Promise<boolean> {
    const driver = this.driverNow;
    if (driver === null) return true;
    driver.stop();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      driver.drain().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.opts.drainTimeoutMs))),
    ]);
    clearTimeout(timer);
    driver.close();
    this.driverNow = null;
    this.coreNow = null;
    return drained;
  }
}
