/**
 * A replica of the full simulation: the real ReplicaCore (ordering + consensus) with in-memory
 * durable storage, on its own clock (offset and drift from the world's true time), driven as
 * server/drive.ts drives it, with every message through the codec. Writes take time, as a disk
 * does: each output's persist group becomes durable `writeLatencyUs()` after the previous one (in
 * order), its messages leave once the groups they rely on are durable (ReplicaOutput.sendAfter),
 * and a crash loses the writes still in flight and the messages waiting for them — so a message
 * that left too early shows up as a broken promise after the restart.
 * Clients are nodes with ids n and up, each proving its key once (registerClient: the transport's
 * handshake, done directly — a node can register only its own key); a restarted replica sees every
 * client authenticate again, as clients reconnecting would. A Byzantine behaviour may rewrite or
 * add messages.
 *
 * Checkpoints as the server writes them: a captured checkpoint is written at once (the state
 * machine's chunks pulled then) and fed back as 'checkpointWritten' in an event of its own; a
 * restart restores the latest held checkpoint and replays only the blocks above it; an install
 * (a checkpoint fetched from peers) rebuilds the core from the store once its group is durable.
 */
import { bitmapGet } from '../common/bitmap.js';
import { toHex } from '../common/bytes.js';
import { decodeMessage, decodeSealAttachment, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import type { ClientIdentity } from '../ordering/clientKeys.js';
import type { AdmissionLimits } from '../ordering/admission.js';
import { CheckpointRestorer, type CheckpointCapture, type RestoredCheckpoint, type StoredCheckpoint } from '../ordering/checkpointFormat.js';
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
  /** A checkpoint the replica took (written, about to be signed). */
  onCheckpoint?(replica: number, checkpoint: StoredCheckpoint, atUs: number): void;
  /** The replica now starts from this checkpoint, fetched from its peers: every position below
   *  its position counts as executed there. */
  onInstall?(replica: number, checkpoint: StoredCheckpoint, atUs: number): void;
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
  /** How long the next write group takes to become durable (µs); omitted: writes are instant. */
  readonly writeLatencyUs?: () => number;
  /** Admission budgets other than the defaults (see sim/coalitions.ts, withholdCoalition). */
  readonly admissionLimits?: AdmissionLimits;
}

interface InFlightWrite {
  readonly seq: number;
  readonly ops: ReplicaOutput['persist'];
  readonly durableAtUs: number;
}

export class ReplicaNode implements SimNode {
  readonly id: ReplicaId;
  storage: MemoryReplicaStorage;
  core: ReplicaCore | null = null;
  rejectedFrames = 0;
  faults = new Map<string, number>();
  restarts = 0;
  /** Checkpoints fetched from peers and installed, and restores from a checkpoint at start. */
  installs = 0;
  restores = 0;
  /** Views up to which this replica's votes and timeouts were lost with a wiped store. */
  private forgottenThroughView = 0;
  /** Bumped by every crash or rebuild: events scheduled for an older core are dropped. */
  private incarnation = 0;
  /** Captured checkpoints, each written once the persist group of its step is durable (its block's
   *  commit among them: a held checkpoint never lies above the durable committed tip). */
  private readonly captures: { readonly after: number; readonly capture: CheckpointCapture }[] = [];
  /** A pending install and the persist group that holds it: once durable, the core is rebuilt. */
  private pendingInstall: { readonly after: number; readonly checkpoint: StoredCheckpoint } | null = null;
  /** Messages this replica sent before what they promise was durable (see checkPromises). */
  readonly durabilityViolations: string[] = [];
  private lastLocalUs = 0;
  /** Write groups started, and those durable (in order), for the current incarnation. */
  private persistCount = 0;
  private durableThrough = 0;
  private readonly writes: InFlightWrite[] = [];
  /** Client connections (node ids) and the key each proved. */
  private readonly clients = new Map<number, ClientIdentity>();
  /** Outputs whose messages wait for writes, in step order. */
  private readonly waiting: ReplicaOutput[] = [];

  constructor(readonly opts: ReplicaNodeOptions) {
    this.id = opts.id;
    this.storage = new MemoryReplicaStorage(opts.crypto, opts.config.n);
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
    this.persistCount = 0;
    this.durableThrough = 0;
    this.pendingInstall = null;
    this.incarnation++;
    const recovered = this.storage.loadSync();
    const stateMachine = new KvStore();
    let restored: RestoredCheckpoint | null = null;
    if (recovered.checkpoint !== null) {
      const restorer = new CheckpointRestorer(this.opts.crypto, { replicaCount: this.opts.config.n }, recovered.checkpoint, stateMachine.restore());
      for (const chunk of this.storage.checkpointChunksSync(recovered.checkpoint)) restorer.add(chunk);
      restored = restorer.finish();
      this.restores++;
    }
    this.core = new ReplicaCore({
      config: this.opts.config,
      self: this.id,
      crypto: this.opts.crypto,
      signer: this.opts.signer,
      stateMachine,
      recovered,
      restored,
      ...(this.opts.admissionLimits === undefined ? {} : { admissionLimits: this.opts.admissionLimits }),
    });
    const chain = this.storage.committedChainSync(restored?.checkpoint.manifest.height ?? 0);
    // What the replay executes is checked like any execution: a batch committed but not yet
    // executed before a crash first executes here (simulation seed 640, n=4 2-chain direct).
    const replayed = this.core.replayCommitted(chain.blocks, chain.batches);
    if (replayed.length > 0) this.opts.observer.onExecuted(this.id, replayed, this.opts.world.nowUs);
    this.step({ kind: 'start' });
    for (const [conn, identity] of this.clients) this.step({ kind: 'clientAuthenticated', conn, identity });
  }

  /** Client node `conn` proved it holds `signer`'s key (it can only register its own). */
  registerClient(conn: number, publicKey: Uint8Array): void {
    if (this.clients.has(conn)) return;
    const handle = this.opts.crypto.parsePublicKey(publicKey);
    if (handle === null) return;
    const identity: ClientIdentity = { hex: toHex(publicKey), handle };
    this.clients.set(conn, identity);
    if (this.core !== null) this.step({ kind: 'clientAuthenticated', conn, identity });
  }

  /** Client connection `conn` closed. */
  unregisterClient(conn: number): void {
    if (!this.clients.delete(conn)) return;
    if (this.core !== null) this.step({ kind: 'clientClosed', conn });
  }

  /** Client connections this replica has open (each proved a key): what its core must hold. */
  get openClientConnections(): number {
    return this.clients.size;
  }

  /** Loses everything, durable or not (a new disk): the replica restarts empty. */
  wipe(): void {
    this.crash();
    // Certificates formed before the wipe count votes its new store knows nothing of.
    this.forgottenThroughView = Math.max(this.forgottenThroughView, this.storage.durable().lastVotedView);
    this.storage = new MemoryReplicaStorage(this.opts.crypto, this.opts.config.n);
  }

  crash(): void {
    this.incarnation++;
    this.core = null;
    this.captures.length = 0;
    // What had not reached the disk is gone, and so is everything that waited for it.
    this.writes.length = 0;
    this.waiting.length = 0;
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
    if (this.core === null) return;
    this.completeWrites();
    if (this.writeCheckpoints()) return;
    if (this.pendingInstall !== null) {
      if (this.durableThrough >= this.pendingInstall.after) this.reinstall(this.pendingInstall.checkpoint);
      else this.scheduleWake();
      return;
    }
    const wake = this.core.nextWakeUs();
    if (wake !== null && this.trueTimeOf(wake) <= this.opts.world.nowUs) this.step({ kind: 'tick' });
    else this.scheduleWake();
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
    const { world, observer, writeLatencyUs } = this.opts;
    if (out.persist.length > 0) {
      const seq = ++this.persistCount;
      if (out.persistSeq !== seq) throw new Error(`replica ${this.id}: core numbered persist ${out.persistSeq}, the node ${seq}`);
      if (writeLatencyUs === undefined) {
        this.storage.applySync(out.persist);
        this.durableThrough = seq;
      } else {
        const previous = this.writes.at(-1)?.durableAtUs ?? world.nowUs;
        this.writes.push({ seq, ops: out.persist, durableAtUs: Math.max(previous, world.nowUs) + writeLatencyUs() });
      }
    }
    if (out.sendAfter > this.persistCount) throw new Error(`replica ${this.id}: sends wait for persist ${out.sendAfter}, only ${this.persistCount} started`);
    // As the driver does: an output leaves as soon as what it relies on is durable, whatever waits.
    if (out.sendAfter <= this.durableThrough) this.sendOutput(out);
    else this.waiting.push(out);
    // Reads of durable data: served at once (a block not yet written is simply not found).
    for (const req of out.serveBlocks) {
      const blocks = this.storage.consensus.readBlocksSync(req.digest, req.maxBlocks);
      if (blocks.length > 0) this.dispatch(req.to, { type: 'blockResponse', blocks });
      else this.answerPruned(req.to);
    }
    for (const req of out.serveBatches) {
      const batches = this.storage.readBatchesSync(req.digests);
      if (batches.length > 0) this.dispatch(req.to, { type: 'batchResponse', batches });
    }
    for (const req of out.serveChunks) {
      const bytes = this.storage.readCheckpointPieceSync(req.height, req.state, req.index);
      if (bytes !== undefined) this.dispatch(req.to, { type: 'chunkResponse', height: req.height, state: req.state, index: req.index, bytes });
      else this.answerPruned(req.to);
    }
    for (const capture of out.checkpoints) this.captures.push({ after: this.persistCount, capture });
    if (out.checkpoints.length > 0) {
      const incarnation = this.incarnation;
      world.at(world.nowUs, () => {
        if (this.core !== null && this.incarnation === incarnation) this.onWake();
      });
    }
    if (out.install !== null) {
      // As the driver: rebuilt once the install's group is durable, in an event of its own.
      this.pendingInstall = { after: this.persistCount, checkpoint: out.install };
      const incarnation = this.incarnation;
      world.at(world.nowUs, () => {
        if (this.incarnation === incarnation) this.onWake();
      });
    }
    if (out.commits.length > 0) observer.onCommit(this.id, out.commits, world.nowUs);
    if (out.executed.length > 0) observer.onExecuted(this.id, out.executed, world.nowUs);
    for (const f of out.faults) this.faults.set(f.kind, (this.faults.get(f.kind) ?? 0) + 1);
    this.scheduleWake();
  }

  private sendOutput(out: ReplicaOutput): void {
    if (this.opts.behaviour === null) {
      for (const { msg } of out.toPeers) this.checkPromises(msg);
      for (const { msg } of out.toClients) this.checkPromises(msg);
    }
    for (const { to, msg } of out.toPeers) this.dispatch(to, msg);
    for (const { conn, msg } of out.toClients) this.dispatch(conn, msg);
  }

  /**
   * A correct replica's message may leave only once what it promises is durable (DESIGN.md: a vote
   * or timeout after its safety state, a seal after its frontier and the acks it lists, an ack
   * after its record, a timestamp after its reservation). Checked against the store at the moment
   * of sending, so an early send is caught whether or not a crash happens to expose it.
   */
  private checkPromises(msg: Message): void {
    const durable = this.storage.durable();
    const broken = (what: string): void => void this.durabilityViolations.push(`durability: replica ${this.id} sent ${what} at ${this.opts.world.nowUs} µs`);
    const self = this.id;
    const seal = (attachment: Uint8Array): void => {
      if (attachment.length === 0) return;
      const decoded = decodeSealAttachment(attachment, { replicaCount: this.opts.config.n });
      if (!decoded.ok || decoded.value === null) return;
      const { seal: s } = decoded.value;
      if (durable.frontier < s.toSlot) broken(`a seal to slot ${s.toSlot} with frontier ${durable.frontier} durable`);
      for (const e of s.entries) if (!durable.hasAck(e.digest, e.ocHash)) broken(`a seal listing an ack not yet durable (${toHex(e.digest).slice(0, 12)})`);
    };
    switch (msg.type) {
      case 'vote':
      case 'timeout':
        if (msg.voter === self && durable.lastVotedView < msg.view) broken(`a ${msg.type} for view ${msg.view} with view ${durable.lastVotedView} durable`);
        seal(msg.attachment);
        break;
      case 'proposal': {
        const { justify } = msg.block;
        if (justify.view > this.forgottenThroughView && bitmapGet(justify.signers, self) && durable.lastVotedView < justify.view) {
          broken(`a proposal whose QC counts its vote in view ${justify.view} with view ${durable.lastVotedView} durable`);
        }
        if (msg.tc !== null && msg.tc.view > this.forgottenThroughView && bitmapGet(msg.tc.signers, self) && durable.lastVotedView < msg.tc.view) {
          broken(`a proposal whose TC counts its timeout in view ${msg.tc.view} with view ${durable.lastVotedView} durable`);
        }
        break;
      }
      case 'ack':
        if (msg.replica === self && !durable.hasAck(msg.digest, msg.ocHash)) broken(`an ack before its record (${toHex(msg.digest).slice(0, 12)})`);
        break;
      case 'tsReply':
        if (msg.stamp.replica === self && durable.tsReservationUs < msg.stamp.ts) broken(`timestamp ${msg.stamp.ts} above its durable reservation ${durable.tsReservationUs}`);
        break;
      case 'sequence':
        for (const st of msg.oc.stamps) {
          if (st.replica === self && durable.tsReservationUs < st.ts) broken(`an OC with its timestamp ${st.ts} above its durable reservation ${durable.tsReservationUs}`);
        }
        break;
      default:
        break;
    }
  }

  /** What a driver answers for blocks or checkpoint pieces it no longer holds: its latest stable
   *  checkpoint, from which the asker can catch up instead. */
  private answerPruned(to: number): void {
    const cert = this.storage.latestStableCert();
    if (cert !== null) this.dispatch(to, { type: 'checkpointCert', cert });
  }

  /** Writes the captured checkpoints whose step is durable, feeding each back; true if the core
   *  was stepped (the caller's view of it is stale). */
  private writeCheckpoints(): boolean {
    let stepped = false;
    while (this.captures.length > 0 && this.captures[0]!.after <= this.durableThrough && this.core !== null) {
      const { capture } = this.captures.shift()!;
      const stored = this.storage.writeCheckpointSync(capture);
      this.opts.observer.onCheckpoint?.(this.id, stored, this.opts.world.nowUs);
      this.step({ kind: 'checkpointWritten', checkpoint: stored });
      stepped = true;
    }
    return stepped;
  }

  /** The installed checkpoint's group is durable: the core is rebuilt from the store. */
  private reinstall(checkpoint: StoredCheckpoint): void {
    this.installs++;
    this.opts.observer.onInstall?.(this.id, checkpoint, this.opts.world.nowUs);
    this.writes.length = 0;
    this.waiting.length = 0;
    this.captures.length = 0;
    this.core = null;
    this.start();
  }

  /** Makes due writes durable, in order, and sends what waited for them. */
  private completeWrites(): void {
    const now = this.opts.world.nowUs;
    while (this.writes.length > 0 && this.writes[0]!.durableAtUs <= now) {
      const w = this.writes.shift()!;
      this.storage.applySync(w.ops);
      this.durableThrough = w.seq;
    }
    for (let i = 0; i < this.waiting.length; ) {
      const out = this.waiting[i]!;
      if (out.sendAfter <= this.durableThrough) {
        this.waiting.splice(i, 1);
        this.sendOutput(out);
      } else {
        i++;
      }
    }
  }

  /** The next wake-up: the core's, or the next write becoming durable, whichever is first. */
  private scheduleWake(): void {
    const wake = this.core?.nextWakeUs() ?? null;
    const coreAt = wake === null ? Infinity : this.trueTimeOf(wake);
    const writeAt = this.writes[0]?.durableAtUs ?? Infinity;
    const at = Math.min(coreAt, writeAt);
    this.opts.world.setWake(this.id, at === Infinity ? null : at);
  }
}
