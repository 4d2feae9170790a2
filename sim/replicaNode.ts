/**
 * A replica of the full simulation: the real ReplicaCore (ordering + consensus) with in-memory
 * durable storage, on its own clock (offset and drift from the world's true time), driven as
 * server/ drives it — persist, then send, then report — with every message through the codec.
 * Clients are nodes with ids n and up; a Byzantine behaviour may rewrite or add messages.
 */
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { KvStore } from '../ordering/kvStore.js';
import { ReplicaCore } from '../ordering/replica.js';
import { MemoryReplicaStorage } from '../ordering/storage.js';
import type { ExecutionRecord, ReplicaInput, ReplicaOutput } from '../ordering/types.js';
import type { SimNode, World } from './world.js';

/** What the run's checkers learn from a replica. */
export interface ReplicaObserver {
  onExecuted(replica: number, records: readonly ExecutionRecord[], atUs: number): void;
  onCommit(replica: number, commits: ReplicaOutput['commits'], atUs: number): void;
  /** Every message a replica sends (for timestamps, acks and OCs the checkers need). */
  onSent(replica: number, msg: Message, atUs: number): void;
  onRestart?(replica: number): void;
}

/** A replica's clock: true time plus an offset, running fast or slow by `driftPpm`. */
export interface ClockModel {
  readonly offsetUs: number;
  readonly driftPpm: number;
}

/** A Byzantine replica's changes to the honest core's behaviour. */
export interface ReplicaBehaviour {
  readonly name: string;
  /** Rewrites (or drops, or multiplies) one message before it is encoded and sent. */
  outgoing?(node: ReplicaNode, to: number | 'all', msg: Message): void;
  /** Sees every incoming message first; returning false hides it from the core. */
  incoming?(node: ReplicaNode, from: number, msg: Message): boolean;
}

export interface ReplicaNodeOptions {
  readonly id: ReplicaId;
  readonly world: World;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly signer: Signer;
  readonly clock: ClockModel;
  readonly observer: ReplicaObserver;
  readonly behaviour: ReplicaBehaviour | null;
}

export class ReplicaNode implements SimNode {
  readonly id: ReplicaId;
  readonly storage = new MemoryReplicaStorage();
  core: ReplicaCore | null = null;
  rejectedFrames = 0;
  faults = new Map<string, number>();
  restarts = 0;
  private lastLocalUs = 0;

  constructor(readonly opts: ReplicaNodeOptions) {
    this.id = opts.id;
  }

  get up(): boolean {
    return this.core !== null;
  }

  get byzantine(): boolean {
    return this.opts.behaviour !== null;
  }

  /** This replica's clock reading now (monotone, as a real monotonic clock would be). */
  localNowUs(): number {
    const t = this.opts.world.nowUs;
    const { offsetUs, driftPpm } = this.opts.clock;
    const local = Math.round(t + offsetUs + (t * driftPpm) / 1e6);
    this.lastLocalUs = Math.max(this.lastLocalUs, local);
    return this.lastLocalUs;
  }

  /** True time at which this replica's clock reads `localUs` (to schedule its wake-ups). */
  private trueTimeOf(localUs: number): number {
    const { offsetUs, driftPpm } = this.opts.clock;
    return Math.ceil((localUs - offsetUs) / (1 + driftPpm / 1e6));
  }

  start(): void {
    this.core = new ReplicaCore({
      config: this.opts.config,
      self: this.id,
      crypto: this.opts.crypto,
      signer: this.opts.signer,
      stateMachine: new KvStore(),
      recovered: this.storage.loadSync(),
    });
    const chain = this.storage.committedChainSync();
    this.core.replayCommitted(chain.blocks, chain.batches);
    this.step({ kind: 'start' });
  }

  crash(): void {
    this.core = null;
    this.opts.world.setWake(this.id, null);
  }

  restart(): void {
    this.restarts++;
    this.opts.observer.onRestart?.(this.id);
    this.start();
  }

  onDeliver(from: number, bytes: Uint8Array): void {
    if (this.core === null) return;
    const decoded = decodeMessage(bytes, { replicaCount: this.opts.config.n });
    if (!decoded.ok) {
      this.rejectedFrames++;
      return;
    }
    const msg = decoded.value;
    if (this.opts.behaviour?.incoming !== undefined && !this.opts.behaviour.incoming(this, from, msg)) return;
    if (this.core === null) return;
    const n = this.opts.config.n;
    this.step(from < n ? { kind: 'peer', from: from as ReplicaId, msg } : { kind: 'client', conn: from, msg });
  }

  onWake(): void {
    if (this.core !== null) this.step({ kind: 'tick' });
  }

  step(input: ReplicaInput): void {
    this.apply(this.core!.step(input, this.localNowUs()));
  }

  /** Sends as this replica; `to` is a replica, a client node id, or 'all' replicas. */
  send(to: number | 'all', msg: Message): void {
    this.opts.observer.onSent(this.id, msg, this.opts.world.nowUs);
    this.sendRaw(to, encodeMessage(msg));
  }

  sendRaw(to: number | 'all', bytes: Uint8Array): void {
    const { world, config } = this.opts;
    if (to === 'all') {
      for (let r = 0; r < config.n; r++) if (r !== this.id) world.send(this.id, r, bytes);
    } else {
      world.send(this.id, to, bytes);
    }
  }

  private dispatch(to: number | 'all', msg: Message): void {
    if (this.opts.behaviour?.outgoing !== undefined) this.opts.behaviour.outgoing(this, to, msg);
    else this.send(to, msg);
  }

  private apply(out: ReplicaOutput): void {
    const { world, observer } = this.opts;
    this.storage.applySync(out.persist);
    for (const { to, msg } of out.toPeers) this.dispatch(to, msg);
    for (const { conn, msg } of out.toClients) this.dispatch(conn, msg);
    for (const req of out.serveBlocks) {
      const blocks = this.storage.consensus.readBlocksSync(req.digest, req.maxBlocks);
      if (blocks.length > 0) this.dispatch(req.to, { type: 'blockResponse', blocks });
    }
    for (const req of out.serveBatches) {
      const batches = this.storage.readBatchesSync(req.digests);
      if (batches.length > 0) this.dispatch(req.to, { type: 'batchResponse', batches });
    }
    if (out.commits.length > 0) observer.onCommit(this.id, out.commits, world.nowUs);
    if (out.executed.length > 0) observer.onExecuted(this.id, out.executed, world.nowUs);
    for (const f of out.faults) this.faults.set(f.kind, (this.faults.get(f.kind) ?? 0) + 1);
    const wake = this.core?.nextWakeUs() ?? null;
    world.setWake(this.id, wake === null ? null : this.trueTimeOf(wake));
  }
}
