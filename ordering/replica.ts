/**
 * The Pompe replica as a pure state machine (DESIGN.md "The protocol"): the composition root of
 * its parts — phase 1 and 2 (Sequencer), the sealed frontier, the consensus App that turns seals
 * into block payloads and checks them (OrderingApp), batch bytes between replicas (BatchSupply),
 * execution in (ts, digest) order (ExecutionPipeline), gateway mode (GatewayHost), the client
 * keys its connections proved (ClientRegistry), checkpoints (CheckpointKeeper) and fetching a
 * stable checkpoint from peers (StateTransfer). It owns the HotStuff core and routes every input
 * to the part it concerns; one entry point, `step(input, nowUs)`; no I/O, no clock, no randomness.
 */
import { toHex } from '../common/bytes.js';
import { ErrorCode } from '../common/errors.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { Block, CheckpointCert, ExecutedMsg, Message, ReplicaToCollectorMsg } from '../common/messages.js';
import { blockDigest } from '../consensus/block.js';
import { HotStuff } from '../consensus/core.js';
import type { ConsensusOutput } from '../consensus/types.js';
import { Admission } from './admission.js';
import { BatchChecker } from './batchCheck.js';
import { BatchStore } from './batchStore.js';
import { BatchSupply } from './batchSupply.js';
import { CheckpointKeeper, type CheckpointStatus } from './checkpoints.js';
import { ClientKeyCache, type ClientIdentity } from './clientKeys.js';
import { ClientRegistry } from './clientRegistry.js';
import { OrderingApp } from './consensusApp.js';
import { CoreContext } from './context.js';
import { ExecutionPipeline } from './execution.js';
import { SealedFrontier } from './frontier.js';
import { GatewayHost } from './gatewayHost.js';
import { OcVerifier } from './oc.js';
import { Sequencer } from './sequencer.js';
import { GENESIS_SLOT, SlotClock } from './slots.js';
import { StateTransfer, type StateTransferStatus } from './stateTransfer.js';
import type { ClientTriage, QueuedSubmissions, ExecutionRecord, ReplicaInput, ReplicaOptions, ReplicaOutput, Source } from './types.js';

/** Whole-map expiry prunes (pending batches, durable records, executed digests) run when the
 *  committed range has moved this many slots: per commit they would cost O(map) each time. */
const EXPIRY_PRUNE_EVERY_SLOTS = 64;
/** Slots the committed range may trail this replica's frontier while it still counts as keeping
 *  up; beyond it, a whole view timeout without the committed range advancing means the leader holds
 *  slots back (proposing fillers only), and this replica times the view out. */
const PROGRESS_LAG_SLOTS = 2;
const NONE_QUEUED: QueuedSubmissions = { batches: 0, bytes: 0 };

/** Messages whose meaning relies on this replica's durable writes up to and including their own
 *  step's: a vote or timeout on its safety state, the seal riding on it on the frontier and the
 *  acks it lists, an ack on the ack record and bytes, a gateway's "ordered" report to a thin
 *  client on the gateway's own ack among the q. */
const DURABLE_THROUGH_OWN: ReadonlySet<string> = new Set(['vote', 'timeout', 'ack', 'commandOrdered']);
/** Messages carrying a timestamp this replica gave (its reply, or a gateway's OC holding its own
 *  stamp): they wait for the reservation that timestamp was given under. */
const RESERVATION_BOUND: ReadonlySet<string> = new Set(['tsReply', 'sequence']);

export interface ReplicaStatus {
  readonly view: number;
  readonly leading: boolean;
  readonly committedHeight: number;
  readonly committedSlot: number;
  readonly frontier: number;
  readonly executedBatches: number;
  readonly executedCommands: number;
  readonly duplicateCommands: number;
  readonly pendingBatches: number;
  readonly pendingBytes: number;
  readonly ackedUncommitted: number;
  readonly executionQueue: number;
  readonly fetching: number;
  readonly batchBytesInMemory: number;
  /** Bytes of results in the Executed notices kept for collectors that ask again. */
  readonly noticeBytes: number;
  readonly refusals: Readonly<Record<string, number>>;
  /** The end of the last block execution is through. */
  readonly executedSlot: number;
  readonly checkpoints: CheckpointStatus;
  /** A stable checkpoint being fetched from peers, or null. */
  readonly stateTransfer: StateTransferStatus | null;
}

export class ReplicaCore {
  private readonly ctx: CoreContext;
  private readonly frontier: SealedFrontier;
  private readonly batches: BatchStore;
  private readonly sequencer: Sequencer;
  private readonly supply: BatchSupply;
  private readonly execution: ExecutionPipeline;
  private readonly app: OrderingApp;
  private readonly gateway: GatewayHost;
  private readonly clients: ClientRegistry;
  private readonly clientKeys: ClientKeyCache;
  private readonly admission: Admission;
  /** Each replica's key (hex): the collector key of its gateway batches. */
  private readonly replicaByKey: ReadonlyMap<string, ReplicaId>;
  private readonly checkpoints: CheckpointKeeper;
  private readonly transfer: StateTransfer;
  readonly consensus: HotStuff;
  /** Set once a fetched checkpoint's install is in an output: this core takes no more input. */
  private installed = false;

  private committedSlot: Slot = GENESIS_SLOT;
  /** The consensus view when the last step ended. */
  private lastView = 0;
  private committedHeight = 0;
  private lastCommitAdvanceUs = 0;
  private progressTimeoutView = -1;
  private lastExpiryPruneSlot = 0;

  /** Outputs with persist ops so far (see ReplicaOutput.persistSeq). */
  private persistCount = 0;
  /** The persistSeq of the output that wrote the timestamp reservation in use. */
  private reservationSeq = 0;
  /** The persistSeq of the latest output holding a vote or timeout of this replica (what its next
   *  proposal's certificate counts), and this step's part in that (see sequence()). */
  private voteGroup = 0;
  private stepVoted = false;
  private stepProposalNeedsOwn = false;

  constructor(opts: ReplicaOptions) {
    const { config, self, crypto } = opts;
    const slots = new SlotClock(config.protocol);
    const ctx = new CoreContext(config, self, crypto, opts.signer, slots);
    this.ctx = ctx;
    const { ordering } = opts.recovered;
    this.frontier = new SealedFrontier(slots, ordering.frontier);
    this.batches = new BatchStore(slots);
    for (const b of ordering.batches) this.batches.putRecovered(toHex(b.digest), b.bytes);
    const ocs = new OcVerifier(config, crypto);
    this.clients = new ClientRegistry(config);
    this.clientKeys = new ClientKeyCache(crypto);
    this.admission = new Admission(opts.admissionLimits);
    this.replicaByKey = new Map(config.replicas.map((r) => [toHex(r.publicKey), r.id]));
    this.sequencer = new Sequencer(
      ctx,
      {
        frontier: this.frontier,
        batches: this.batches,
        ocs,
        reply: (to, msg) => this.reply(to, msg),
        executedNotice: (key) => this.execution.notice(key),
        checker: new BatchChecker(config, crypto, this.clientKeys),
        admission: this.admission,
        identityOf: (conn) => this.clients.identityOf(conn),
        // A leader waiting out an idle interval reconsiders when to propose (see OrderingApp.propose).
        onFirstAckInSlot: () => {
          if (this.consensus.leading) this.mergeConsensus(this.consensus.step({ kind: 'proposeHint' }, this.ctx.nowUs));
        },
      },
      ordering,
    );
    this.supply = new BatchSupply(ctx, {
      batches: this.batches,
      pendingBytes: (key) => this.sequencer.pending.get(key)?.bytes,
      onBlockReady: (block) => this.mergeConsensus(this.consensus.step({ kind: 'payloadReady', block }, this.ctx.nowUs)),
      onProposalBytes: () => {
        if (this.consensus.leading) this.mergeConsensus(this.consensus.step({ kind: 'proposeHint' }, this.ctx.nowUs));
      },
      onExecutionUnblocked: () => this.execution.drain(),
    });
    const restored = opts.restored ?? null;
    this.execution = new ExecutionPipeline(
      ctx,
      {
        batches: this.batches,
        supply: this.supply,
        notify: (id, notice) => this.notifyCollector(id, notice),
        onBlockExecuted: (block) => {
          this.checkpoints.onBlockExecuted(block);
          this.transfer.onExecuted();
        },
      },
      opts.stateMachine,
      restored === null ? null : { executor: restored.executor, executedThroughSlot: restored.checkpoint.manifest.toSlot },
    );
    if (restored !== null) {
      this.committedHeight = restored.checkpoint.manifest.height;
      this.committedSlot = restored.checkpoint.manifest.toSlot;
      this.lastExpiryPruneSlot = this.committedSlot;
    }
    this.transfer = new StateTransfer(ctx, {
      executedThrough: () => this.execution.executedThrough,
      suspendConsensus: () => this.mergeConsensus(this.consensus.step({ kind: 'suspend' }, this.ctx.nowUs)),
      resumeConsensus: () => this.mergeConsensus(this.consensus.step({ kind: 'resume' }, this.ctx.nowUs)),
      consensusState: () => ({ safety: this.consensus.safetyState(), view: this.consensus.view }),
    });
    this.checkpoints = new CheckpointKeeper(
      ctx,
      { executor: this.execution.executor, onCert: (cert, reason) => this.transfer.consider(cert, reason) },
      restored?.checkpoint ?? null,
    );
    this.app = new OrderingApp(ctx, {
      frontier: this.frontier,
      acks: this.sequencer.acks,
      batches: this.batches,
      executor: this.execution.executor,
      supply: this.supply,
      ocs,
      maxAcksPerSlot: this.sequencer.maxAcksPerSlot,
    });
    this.gateway = new GatewayHost(ctx, (msg) => this.onCollectorRequest({ kind: 'local' }, msg), this.admission, opts.gateway);
    this.consensus = new HotStuff({ config, self, crypto, signer: opts.signer, app: this.app, recovered: opts.recovered.consensus });
  }

  // ------------------------------------------------------------------------------------------
  // The entry point

  step(input: ReplicaInput, nowUs: number): ReplicaOutput {
    const ctx = this.ctx;
    ctx.nowUs = Math.max(ctx.nowUs, nowUs);
    // After an install the driver replaces this core; anything it did now could write over the
    // installed state (its consensus core's safety state is below the installed one).
    if (this.installed) return ctx.takeOutput();
    this.frontier.advance(ctx.nowUs);
    switch (input.kind) {
      case 'start':
        this.lastCommitAdvanceUs = ctx.nowUs;
        // A replica that was down (or lost its store) learns at once how far the others are.
        ctx.out.toPeers.push({ to: 'all', msg: { type: 'checkpointRequest' } });
        this.mergeConsensus(this.consensus.step({ kind: 'start' }, ctx.nowUs));
        break;
      case 'peer':
        this.onPeer(input.from, input.msg);
        break;
      case 'clientAuthenticated':
        this.onClientAuthenticated(input.conn, input.identity);
        break;
      case 'client':
        this.onClient(input.conn, input.msg);
        break;
      case 'clientClosed':
        this.clients.closed(input.conn);
        break;
      case 'tick':
        this.onTick();
        break;
      case 'timeoutNow':
        this.mergeConsensus(this.consensus.step({ kind: 'timeoutNow' }, ctx.nowUs));
        break;
      case 'checkpointWritten':
        this.checkpoints.onWritten(input.checkpoint);
        break;
    }
    this.onViewChange();
    this.supply.flush();
    const out = ctx.takeOutput();
    if (out.install !== null) this.installed = true;
    this.sequence(out);
    return out;
  }

  /** How the driver should treat a client message before stepping it (ClientTriage): a query,
   *  changing nothing, so the core stays a function of its inputs. */
  triageClient(conn: number, msg: Message, nowUs: number, queued: QueuedSubmissions = NONE_QUEUED): ClientTriage {
    return this.sequencer.triage(conn, msg, Math.max(this.ctx.nowUs, nowUs), queued);
  }

  /** Client connections whose key this replica holds (the transport's open, authenticated ones). */
  get clientConnections(): number {
    return this.clients.size;
  }

  /**
   * Numbers the output's persist group and says how far persists must be durable before its sends
   * leave (ReplicaOutput.sendAfter), by what each message relies on: DURABLE_THROUGH_OWN ones on
   * every write so far; RESERVATION_BOUND ones on their timestamp's reservation; a proposal on the
   * write of this replica's vote or timeout that its certificate counts — an earlier step's,
   * unless this step recorded it (ConsensusOutput.proposalNeedsThisStep) — not on its own block
   * and the vote on it; everything else (refusals, Executed notices, fetches, errors) on nothing.
   */
  private sequence(out: ReplicaOutput): void {
    const before = this.persistCount;
    if (out.persist.length > 0) {
      out.persistSeq = ++this.persistCount;
      if (out.persist.some((op) => op.kind === 'tsReservation')) this.reservationSeq = out.persistSeq;
    }
    const through = this.persistCount;
    const proposalAfter = this.stepProposalNeedsOwn ? through : Math.min(this.voteGroup, before);
    if (this.stepVoted) this.voteGroup = through;
    this.stepVoted = false;
    this.stepProposalNeedsOwn = false;
    let after = 0;
    const consider = (msg: Message): void => {
      if (DURABLE_THROUGH_OWN.has(msg.type)) after = through;
      else if (RESERVATION_BOUND.has(msg.type)) after = Math.max(after, this.reservationSeq);
      else if (msg.type === 'proposal') after = Math.max(after, proposalAfter);
    };
    for (const { msg } of out.toPeers) consider(msg);
    for (const { msg } of out.toClients) consider(msg);
    out.sendAfter = after;
  }

  nextWakeUs(): number | null {
    if (this.installed) return null;
    // Asked after every step: the earliest of four, without building a list.
    return earliest(earliest(this.consensus.nextWakeUs(), this.supply.nextDueUs()), earliest(this.gateway.nextWakeUs(), this.transfer.nextDueUs()));
  }

  status(): ReplicaStatus {
    const { executor } = this.execution;
    const { pending, acks } = this.sequencer;
    return {
      view: this.consensus.view,
      leading: this.consensus.leading,
      committedHeight: this.committedHeight,
      committedSlot: this.committedSlot,
      frontier: this.frontier.slot,
      executedBatches: executor.nextPosition,
      executedCommands: executor.commandsExecuted,
      duplicateCommands: executor.duplicatesSkipped,
      pendingBatches: pending.size,
      pendingBytes: pending.bytes,
      ackedUncommitted: acks.size,
      executionQueue: this.execution.waiting,
      fetching: this.supply.fetching,
      batchBytesInMemory: this.batches.bytesInMemory,
      noticeBytes: this.execution.noticeCacheBytes,
      refusals: { ...this.sequencer.refusals },
      executedSlot: this.execution.executedThrough,
      checkpoints: this.checkpoints.status(),
      stateTransfer: this.transfer.status(),
    };
  }

  /** The highest checkpoint certificate known (answers a peer whose blocks were pruned here). */
  get checkpointCert(): CheckpointCert | null {
    return this.checkpoints.bestCert;
  }

  // ------------------------------------------------------------------------------------------
  // Routing

  private onPeer(from: ReplicaId, msg: Message): void {
    switch (msg.type) {
      case 'proposal':
      case 'vote':
      case 'timeout':
      case 'blockRequest':
      case 'blockResponse':
        this.mergeConsensus(this.consensus.step({ kind: 'message', from, msg }, this.ctx.nowUs));
        break;
      case 'batchRequest':
        this.supply.serve(from, msg.digests);
        break;
      case 'batchResponse':
        for (const bytes of msg.batches) this.supply.onBytes(bytes);
        break;
      case 'checkpoint':
        this.checkpoints.onSignature(from, msg);
        break;
      case 'checkpointRequest':
        this.checkpoints.answer(from);
        break;
      case 'checkpointCert':
        this.checkpoints.onCert(from, msg.cert);
        break;
      case 'chunkRequest':
        this.ctx.out.serveChunks.push({ to: from, height: msg.height, state: msg.state, index: msg.index });
        break;
      case 'chunkResponse':
        this.transfer.onChunk(from, msg);
        break;
      case 'submit':
      case 'sequence':
        this.onCollectorRequest({ kind: 'peer', replica: from }, msg);
        break;
      case 'tsReply':
      case 'ack':
      case 'refused':
      case 'executed':
        // Replies to this replica's gateway collector.
        this.gateway.feed({ kind: 'reply', from, msg });
        break;
      default:
        break;
    }
  }

  private onClientAuthenticated(conn: number, identity: ClientIdentity): void {
    const outcome = this.clients.authenticate(conn, identity);
    if (outcome === 'ok') {
      this.clientKeys.remember(identity);
      return;
    }
    const message =
      outcome === 'notAllowed'
        ? `client key ${identity.hex} is not on this cluster's allow-list`
        : 'this replica holds as many client connections as it serves; try again later';
    this.ctx.out.toClients.push({ conn, msg: { type: 'error', code: outcome === 'notAllowed' ? ErrorCode.NotAllowed : ErrorCode.Overloaded, message } });
  }

  private onClient(conn: number, msg: Message): void {
    const out = this.ctx.out;
    switch (msg.type) {
      case 'submit':
      case 'sequence':
        this.onCollectorRequest({ kind: 'client', conn }, msg);
        break;
      case 'command':
        this.gateway.onCommand(conn, msg, this.clients.identityOf(conn));
        break;
      default:
        out.toClients.push({ conn, msg: { type: 'error', code: 'UNKNOWN_MESSAGE', message: `${msg.type} is not a client message` } });
        break;
    }
  }

  private onCollectorRequest(source: Source, msg: Message): void {
    if (msg.type === 'submit') this.sequencer.onSubmit(source, msg.batch);
    else if (msg.type === 'sequence') this.sequencer.onSequence(source, msg);
  }

  private reply(to: Source, msg: ReplicaToCollectorMsg): void {
    if (to.kind === 'client') this.ctx.out.toClients.push({ conn: to.conn, msg });
    else if (to.kind === 'peer') this.ctx.out.toPeers.push({ to: to.replica, msg });
    else this.gateway.feed({ kind: 'reply', from: this.ctx.self, msg });
  }

  /** A notice goes to its collector only: the gateway replica whose key it is, or the client
   *  connections that proved the key (issue 11, finding 4). */
  private notifyCollector(collectorKey: string, notice: ExecutedMsg): void {
    const replica = this.replicaByKey.get(collectorKey);
    if (replica === this.ctx.self) this.gateway.feed({ kind: 'reply', from: this.ctx.self, msg: notice });
    else if (replica !== undefined) this.ctx.out.toPeers.push({ to: replica, msg: notice });
    else for (const conn of this.clients.connectionsOf(collectorKey)) this.ctx.out.toClients.push({ conn, msg: notice });
  }

  private mergeConsensus(out: ConsensusOutput): void {
    if (out.proposalNeedsThisStep || (this.stepVoted && out.send.some((s) => s.msg.type === 'proposal'))) this.stepProposalNeedsOwn = true;
    if (out.voted) this.stepVoted = true;
    const mine = this.ctx.out;
    mine.persist.push(...out.persist);
    for (const s of out.send) mine.toPeers.push(s);
    mine.serveBlocks.push(...out.serveFromStorage);
    mine.faults.push(...out.faults);
    if (out.commits.length > 0) this.onCommits(out.commits.map((c) => ({ block: c.block, digest: c.digest })));
  }

  /** Waits tied to a view end with it: a block of an earlier view gets no vote from this replica,
   *  and a proposal it did not make in time is not made. */
  private onViewChange(): void {
    const view = this.consensus.view;
    if (view === this.lastView) return;
    this.lastView = view;
    this.supply.abandonBlocksBefore(view);
    this.supply.endProposalWait();
  }

  // ------------------------------------------------------------------------------------------
  // Time

  private onTick(): void {
    this.mergeConsensus(this.consensus.step({ kind: 'tick' }, this.ctx.nowUs));
    this.gateway.tick();
    this.transfer.onTick();
    this.checkProgress();
  }

  /** A leader that keeps its blocks from covering sealed slots stalls ordering without stalling
   *  consensus; if the committed range trails this replica's frontier for a whole view timeout,
   *  it votes (by timing out) to move to the next leader. */
  private checkProgress(): void {
    const nowUs = this.ctx.nowUs;
    if (this.frontier.slot - this.committedSlot <= PROGRESS_LAG_SLOTS) {
      this.lastCommitAdvanceUs = nowUs;
      return;
    }
    const stalledUs = nowUs - this.lastCommitAdvanceUs;
    const view = this.consensus.view;
    if (stalledUs < this.consensus.status().viewTimeoutUs || this.progressTimeoutView === view) return;
    this.progressTimeoutView = view;
    this.lastCommitAdvanceUs = nowUs;
    this.mergeConsensus(this.consensus.step({ kind: 'timeoutNow' }, nowUs));
  }

  // ------------------------------------------------------------------------------------------
  // Commit

  private onCommits(commits: readonly { block: Block; digest: Digest }[]): void {
    const replaying = this.execution.isReplaying;
    for (const { block, digest } of commits) {
      const payload = this.app.committedPayload(block, digest);
      if (payload !== null) {
        if (payload.entries.length > 0 && !replaying) this.app.noteCommittedEntries();
        this.execution.enqueue(block, digest, payload);
      }
      this.committedHeight = block.height;
      const toSlot = payload?.toSlot ?? this.committedSlot;
      if (toSlot > this.committedSlot) {
        this.committedSlot = toSlot;
        this.lastCommitAdvanceUs = this.ctx.nowUs;
      }
      if (!replaying) this.ctx.out.commits.push({ height: block.height, digest, toSlot: this.committedSlot });
      this.frontier.sealThrough(this.committedSlot);
    }
    this.execution.drain();
    this.pruneBelowCommitted();
    // Consensus tells the App of commits after its step, so a leader may have just chosen an idle
    // wait for the proposal that announces these.
    if (this.app.commitUnannounced && this.consensus.leading) this.mergeConsensus(this.consensus.step({ kind: 'proposeHint' }, this.ctx.nowUs));
  }

  private pruneBelowCommitted(): void {
    const through = this.committedSlot;
    // Acks below the committed range are listed by no future seal. Their bytes are needed only if
    // a committed block took them (then they are queued); otherwise they can never execute now.
    const pruned = this.sequencer.pruneThrough(through);
    for (const r of pruned) this.releaseUnlessQueued(toHex(r.entry.digest));
    if (through < this.lastExpiryPruneSlot + EXPIRY_PRUNE_EVERY_SLOTS) return;
    this.lastExpiryPruneSlot = through;
    this.sequencer.pending.pruneExpired(through);
    for (const key of this.batches.pruneDurable(through)) this.releaseUnlessQueued(key);
    // By executed slots, not committed ones: a committed block still waiting for bytes may hold a
    // digest that executed before and has expired since; forgetting that digest first would run
    // it twice here and once elsewhere (found by simulation seed 3020, n=4 2-chain direct).
    this.execution.executor.pruneDigests(this.execution.executedSlot(through));
    this.ctx.out.persist.push({ kind: 'pruneAcks', throughSlot: through });
  }

  private releaseUnlessQueued(key: string): void {
    if (!this.execution.isQueued(key)) this.batches.release(key);
  }

  /**
   * Rebuilds the state machine after a restart: executes committed blocks again, silently, oldest
   * first, from the restored checkpoint (or genesis) up to the committed tip. The driver streams
   * them from storage in chunks (with the batches they need) before `start`; a batch missing here
   * is fetched after start. Returns what this chunk executed, so a checker can compare it with the
   * other replicas. Checkpoints the replay crosses are captured (ReplicaOutput.checkpoints of the
   * first step after it).
   */
  replayCommitted(blocks: readonly Block[], batches: readonly { readonly digest: Digest; readonly bytes: Uint8Array }[]): readonly ExecutionRecord[] {
    const { crypto } = this.ctx;
    for (const b of batches) this.batches.putRecovered(toHex(b.digest), b.bytes);
    if (blocks.length === 0) return [];
    const replayed = this.execution.replay(() => this.onCommits(blocks.map((block) => ({ block, digest: blockDigest(crypto, block) }))));
    // Nothing of a replay leaves (its writes are durable, its notices went out before the
    // restart) but the checkpoints it took, which the first step's output carries.
    const { checkpoints } = this.ctx.takeOutput();
    this.ctx.out.checkpoints.push(...checkpoints);
    return replayed;
  }
}

/** The earlier of two optional times. */
function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}
