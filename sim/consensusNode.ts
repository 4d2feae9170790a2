/**
 * A replica of the consensus-only simulation: the real HotStuff core with the trivial test App and
 * in-memory durable storage, driven the way server/ drives it (persist, then send, then commit),
 * every message going through the real wire codec. A Byzantine behaviour may rewrite what the
 * honest core sends and add messages of its own.
 */
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { ConsensusMsg } from '../common/messages.js';
import { HotStuff } from '../consensus/core.js';
import { MemoryConsensusStorage } from '../consensus/storage.js';
import { TestApp } from '../consensus/testApp.js';
import type { CommittedBlock, ConsensusInput, ConsensusOutput, Destination } from '../consensus/types.js';
import type { Rng } from './rng.js';
import type { SimNode, World } from './world.js';

export interface CommitObserver {
  onCommit(replica: number, commits: readonly CommittedBlock[], atUs: number): void;
}

/** What a Byzantine replica does differently from the honest core. */
export interface Behaviour {
  readonly name: string;
  /** Rewrites one message the honest core wants to send (default: send it unchanged). */
  outgoing?(node: ConsensusSimNode, to: Destination, msg: ConsensusMsg): void;
  /** Runs when a message arrives, before the core sees it. */
  incoming?(node: ConsensusSimNode, from: number, msg: ConsensusMsg): void;
}

export interface ConsensusNodeOptions {
  readonly id: ReplicaId;
  readonly world: World;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly signer: Signer;
  readonly rng: Rng;
  readonly observer: CommitObserver;
  readonly blockIntervalUs: number;
  readonly fillerBytes: number;
  readonly behaviour: Behaviour | null;
}

export interface NodeCounters {
  rejectedFrames: number;
  faultsReported: Map<string, number>;
  restarts: number;
}

export class ConsensusSimNode implements SimNode {
  readonly id: ReplicaId;
  readonly storage = new MemoryConsensusStorage();
  readonly counters: NodeCounters = { rejectedFrames: 0, faultsReported: new Map(), restarts: 0 };
  core: HotStuff | null = null;
  app: TestApp;

  constructor(readonly opts: ConsensusNodeOptions) {
    this.id = opts.id;
    this.app = this.newApp();
  }

  get up(): boolean {
    return this.core !== null;
  }

  get byzantine(): boolean {
    return this.opts.behaviour !== null;
  }

  start(): void {
    this.app = this.newApp();
    this.core = new HotStuff({
      config: this.opts.config,
      self: this.id,
      crypto: this.opts.crypto,
      signer: this.opts.signer,
      app: this.app,
      recovered: this.storage.loadSync(),
    });
    this.step({ kind: 'start' });
  }

  /** Loses everything not in storage, as a killed process does. */
  crash(): void {
    this.core = null;
    this.opts.world.setWake(this.id, null);
  }

  restart(): void {
    this.counters.restarts++;
    this.start();
  }

  onDeliver(from: number, bytes: Uint8Array): void {
    if (this.core === null) return;
    const decoded = decodeMessage(bytes, { replicaCount: this.opts.config.n });
    if (!decoded.ok) {
      this.counters.rejectedFrames++;
      return;
    }
    const msg = decoded.value;
    if (!isConsensusMsg(msg)) {
      this.counters.rejectedFrames++;
      return;
    }
    this.opts.behaviour?.incoming?.(this, from, msg);
    if (this.core === null) return;
    this.step({ kind: 'message', from: from as ReplicaId, msg });
  }

  onWake(): void {
    if (this.core !== null) this.step({ kind: 'tick' });
  }

  step(input: ConsensusInput | { kind: 'start' }): void {
    const core = this.core!;
    this.apply(core.step(input, this.opts.world.nowUs));
  }

  /** Sends bytes as this replica (Byzantine behaviours use it for their own messages). */
  sendRaw(to: Destination, bytes: Uint8Array): void {
    const { world, config } = this.opts;
    if (to === 'all') {
      for (let r = 0; r < config.n; r++) if (r !== this.id) world.send(this.id, r, bytes);
    } else {
      world.send(this.id, to, bytes);
    }
  }

  send(to: Destination, msg: ConsensusMsg): void {
    this.sendRaw(to, encodeMessage(msg));
  }

  private apply(out: ConsensusOutput): void {
    // The driver's order: persist, then send, then apply commits.
    this.storage.applySync(out.persist);
    for (const { to, msg } of out.send) {
      if (this.opts.behaviour?.outgoing !== undefined) this.opts.behaviour.outgoing(this, to, msg);
      else this.send(to, msg);
    }
    for (const req of out.serveFromStorage) {
      const blocks = this.storage.readBlocksSync(req.digest, req.maxBlocks);
      if (blocks.length > 0) this.send(req.to, { type: 'blockResponse', blocks });
    }
    if (out.commits.length > 0) this.opts.observer.onCommit(this.id, out.commits, this.opts.world.nowUs);
    for (const f of out.faults) this.counters.faultsReported.set(f.kind, (this.counters.faultsReported.get(f.kind) ?? 0) + 1);
    this.opts.world.setWake(this.id, this.core?.nextWakeUs() ?? null);
  }

  private newApp(): TestApp {
    return new TestApp({ self: this.id, blockIntervalUs: this.opts.blockIntervalUs, fillerBytes: this.opts.fillerBytes });
  }
}

const CONSENSUS_TYPES = new Set(['proposal', 'vote', 'timeout', 'blockRequest', 'blockResponse']);
function isConsensusMsg(msg: { readonly type: string }): msg is ConsensusMsg {
  return CONSENSUS_TYPES.has(msg.type);
}
