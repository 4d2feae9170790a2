/**
 * The Pompe replica as a pure state machine (DESIGN.md "The protocol"): timestamps (phase 1),
 * acks (phase 2), the sealed frontier, seals riding on consensus votes and timeouts, the consensus
 * App that turns seals into block payloads and checks them, fetching of missing batch bytes, and
 * execution in (ts, digest) order. It owns the HotStuff core and routes to it; one entry point,
 * `step(input, nowUs)`, for everything; no I/O, no clock, no randomness.
 */
import { MIN_COMMAND_SEQ, readBatchHeader, type BatchHeader } from '../common/batch.js';
import { bitmapGet } from '../common/bitmap.js';
import { toHex } from '../common/bytes.js';
import { decodeBlockPayload, decodeSealAttachment, encodeBlockPayload, encodeSealAttachment } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import { MAX_ACKS_PER_SLOT, MAX_BATCH_LIFETIME_US, MAX_BLOCK_ENTRIES, MAX_REPLICAS, MAX_SYNC_RESPONSE_BYTES } from '../common/limits.js';
import type {
  Block,
  BlockPayload,
  CommandMsg,
  ExecutedMsg,
  Message,
  OrderingCert,
  RefusalReason,
  ReplicaToCollectorMsg,
  SealEntry,
  SequenceMsg,
} from '../common/messages.js';
import { RefusalReason as Refusal } from '../common/messages.js';
import { ackMessage, executedMessage, timestampMessage } from '../common/signing.js';
import { blockDigest } from '../consensus/block.js';
import { HotStuff } from '../consensus/core.js';
import type { App, Attachment, ConsensusOutput, ProposeContext, ProposeDecision, Validity } from '../consensus/types.js';
import { AckLog } from './ackLog.js';
import { BatchStore } from './batchStore.js';
import { Collector, type CollectorEvent, type CollectorOutput } from './collector.js';
import { Executor } from './executor.js';
import { Fetcher } from './fetcher.js';
import { Gateway, type GatewayBatch } from './gateway.js';
import { OcVerifier } from './oc.js';
import { buildPayload, effectiveEntries, validatePayload, type PayloadContext, type VerifiedSeal } from './payload.js';
import { PendingBatches } from './pending.js';
import { checkSeal, SealVerifier, signSeal } from './seal.js';
import { GENESIS_SLOT, SlotClock } from './slots.js';
import { Timestamper } from './timestamper.js';
import type { ExecutionRecord, ReplicaInput, ReplicaOptions, ReplicaOutput, Source } from './types.js';

/** Executed notices kept to answer a collector that asks again (a repeated Sequence): each holds
 *  its batch's results (~2 KB for 1000 puts), so a few thousand cover seconds of peak traffic. */
const EXECUTED_NOTICE_CACHE = 4_096;
/** Whole-map expiry prunes (pending batches, durable records, executed digests) run when the
 *  committed range has moved this many slots: per commit they would cost O(map) each time. */
const EXPIRY_PRUNE_EVERY_SLOTS = 64;
/** Blocks whose decoded payload and range end are remembered (the uncommitted chain plus recent). */
const BLOCK_INFO_CACHE = 1_024;
/** A batch fetch moves on to the next holder after this long. */
const FETCH_RETRY_US = 200_000;
/** Gateway defaults: a batch leaves at this many commands or after this delay. */
const DEFAULT_GATEWAY_BATCH_COMMANDS = 1_000;
const DEFAULT_GATEWAY_DELAY_US = 1_000;
/** Collector re-send timing for the gateway (replica-to-replica links are fast). */
const GATEWAY_RETRY_US = 100_000;
const GATEWAY_MAX_RETRY_US = 2_000_000;
/** Slots the committed range may trail this replica's frontier while it still counts as keeping
 *  up; beyond it, a whole view timeout without the committed range advancing means the leader holds
 *  slots back (proposing fillers only), and this replica times the view out. */
const PROGRESS_LAG_SLOTS = 2;

interface BlockInfo {
  readonly toSlot: Slot;
  readonly payload: BlockPayload | null;
  readonly hasEntries: boolean;
}

interface QueuedExecution {
  readonly entry: SealEntry;
  readonly oc: OrderingCert;
  readonly key: string;
  readonly height: number;
  readonly holders: readonly ReplicaId[];
  /** The end of its block's range, and whether it is the block's last entry: once that one is
   *  through execution, so is every slot up to there. */
  readonly blockToSlot: Slot;
  readonly lastOfBlock: boolean;
}

function emptyOutput(): ReplicaOutput {
  return { persist: [], persistSeq: 0, sendAfter: 0, toPeers: [], toClients: [], serveBlocks: [], serveBatches: [], executed: [], commits: [], faults: [] };
}

/** Messages whose meaning relies on this replica's durable writes up to and including their own
 *  step's: a vote or timeout on its safety state, the seal riding on it on the frontier and the
 *  acks it lists, an ack on the ack record and bytes, a gateway's "ordered" report to a thin
 *  client on the gateway's own ack among the q. */
const DURABLE_THROUGH_OWN: ReadonlySet<string> = new Set(['vote', 'timeout', 'ack', 'commandOrdered']);
/** Messages carrying a timestamp this replica gave (its reply, or a gateway's OC holding its own
 *  stamp): they wait for the reservation that timestamp was given under. */
const RESERVATION_BOUND: ReadonlySet<string> = new Set(['tsReply', 'sequence']);

const sourceKey = (s: Source): string => (s.kind === 'client' ? `c${s.conn}` : s.kind === 'peer' ? `p${s.replica}` : 'l');

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
  readonly refusals: Readonly<Record<string, number>>;
}

export class ReplicaCore implements App {
  private readonly config: ClusterConfig;
  private readonly self: ReplicaId;
  private readonly crypto: CryptoBackend;
  private readonly signer: Signer;
  private readonly slots: SlotClock;
  private readonly ocs: OcVerifier;
  private readonly payloadCtx: PayloadContext;
  readonly consensus: HotStuff;
  private readonly timestamper: Timestamper;
  private readonly pending = new PendingBatches();
  private readonly acks = new AckLog();
  private readonly batches = new BatchStore();
  private readonly fetcher: Fetcher;
  private readonly executor: Executor;
  private readonly gateway: Gateway;
  private readonly gatewayCollector: Collector;

  private frontier: Slot;
  private persistedFrontier: Slot;
  private committedSlot: Slot = GENESIS_SLOT;
  private committedHeight = 0;
  /** The end of the last block whose entries have all been through execution (see executedSlot). */
  private executedThroughSlot: Slot = GENESIS_SLOT;
  private lastCommitAdvanceUs = 0;
  private progressTimeoutView = -1;
  private lastProposalUs = -Infinity;
  /** A block with entries committed here since this replica last proposed. */
  private entriesCommittedUnannounced = false;
  private readonly blockInfo = new Map<string, BlockInfo>();
  /** Blocks waiting for batch bytes before this replica votes: block key → missing count. */
  private readonly blockWaits = new Map<string, { digest: Digest; missing: number }>();
  private readonly executionQueue: QueuedExecution[] = [];
  private executionHead = 0;
  /** Keys of batches queued for execution (their bytes must stay in memory). */
  private readonly queued = new Set<string>();
  private lastExpiryPruneSlot = 0;
  private readonly executedNotices = new Map<string, ExecutedMsg>();
  private readonly collectorConns = new Map<number, number>();
  /** Inputs for the gateway collector produced while it is stepping (its own replies to itself). */
  private readonly gatewayInbox: Parameters<Collector['step']>[0][] = [];
  private gatewayBusy = false;
  private readonly verifiedAttachments = new WeakMap<Attachment, VerifiedSeal | null>();
  /** A block cannot end inside a slot, and q seals may list different entries of one slot, so a
   *  slot's acks are capped such that q full seals of one slot still fit MAX_BLOCK_ENTRIES. */
  private readonly maxAcksPerSlot: number;
  private readonly refusals: Record<string, number> = {};
  private replaying = false;
  /** What the current replay chunk executed (returned by replayCommitted, for checkers and logs). */
  private readonly replayed: ExecutionRecord[] = [];

  private out: ReplicaOutput = emptyOutput();
  private nowUs = 0;
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
    this.config = opts.config;
    this.self = opts.self;
    this.crypto = opts.crypto;
    this.signer = opts.signer;
    this.slots = new SlotClock(opts.config.protocol);
    this.ocs = new OcVerifier(opts.config, opts.crypto);
    this.payloadCtx = { config: opts.config, crypto: opts.crypto, slots: this.slots, ocs: this.ocs, seals: new SealVerifier(opts.config, opts.crypto) };
    this.maxAcksPerSlot = Math.min(MAX_ACKS_PER_SLOT, Math.floor(MAX_BLOCK_ENTRIES / opts.config.q));
    this.fetcher = new Fetcher(opts.self, opts.config.n, FETCH_RETRY_US);
    this.executor = new Executor(opts.stateMachine);
    this.gateway = new Gateway({
      collectorId: opts.self,
      crypto: opts.crypto,
      maxBatchCommands: opts.gateway?.maxBatchCommands ?? DEFAULT_GATEWAY_BATCH_COMMANDS,
      maxBatchBytes: opts.config.protocol.maxBatchBytes,
      maxDelayUs: opts.gateway?.maxDelayUs ?? DEFAULT_GATEWAY_DELAY_US,
      batchLifetimeUs: opts.config.protocol.batchLifetimeUs,
    });
    this.gatewayCollector = new Collector({
      config: opts.config,
      crypto: opts.crypto,
      verifySignatures: true,
      retryUs: GATEWAY_RETRY_US,
      maxRetryUs: GATEWAY_MAX_RETRY_US,
    });

    const { ordering } = opts.recovered;
    this.timestamper = new Timestamper(this.slots.firstTimestampUs, ordering.tsReservationUs);
    this.frontier = ordering.frontier;
    this.persistedFrontier = ordering.frontier;
    for (const b of ordering.batches) {
      const header = readBatchHeader(b.bytes);
      const expiresSlot = header.ok ? this.slots.slotOf(header.value.expiresAtUs) : GENESIS_SLOT;
      this.batches.putRecovered(toHex(b.digest), b.bytes, expiresSlot);
    }
    for (const a of ordering.acks) {
      this.acks.add({ entry: a.entry, slot: this.slots.slotOf(a.entry.ts), oc: a.oc, sig: a.sig });
    }
    this.consensus = new HotStuff({
      config: opts.config,
      self: opts.self,
      crypto: opts.crypto,
      signer: opts.signer,
      app: this,
      recovered: opts.recovered.consensus,
    });
  }

  // ------------------------------------------------------------------------------------------
  // The entry point

  step(input: ReplicaInput, nowUs: number): ReplicaOutput {
    this.nowUs = Math.max(this.nowUs, nowUs);
    this.out = emptyOutput();
    this.advanceFrontier();
    switch (input.kind) {
      case 'start':
        this.lastCommitAdvanceUs = this.nowUs;
        this.mergeConsensus(this.consensus.step({ kind: 'start' }, this.nowUs));
        break;
      case 'peer':
        this.onPeer(input.from, input.msg);
        break;
      case 'client':
        this.onClient(input.conn, input.msg);
        break;
      case 'clientClosed':
        for (const [collectorId, conn] of this.collectorConns) if (conn === input.conn) this.collectorConns.delete(collectorId);
        break;
      case 'tick':
        this.onTick();
        break;
    }
    this.flushFetches();
    const out = this.out;
    this.out = emptyOutput();
    this.sequence(out);
    return out;
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
    const candidates = [
      this.consensus.nextWakeUs(),
      this.fetcher.nextDueUs(),
      this.gateway.nextWakeUs(),
      this.gatewayCollector.nextWakeUs(),
    ].filter((t): t is number => t !== null);
    return candidates.length === 0 ? null : Math.min(...candidates);
  }

  status(): ReplicaStatus {
    return {
      view: this.consensus.view,
      leading: this.consensus.leading,
      committedHeight: this.committedHeight,
      committedSlot: this.committedSlot,
      frontier: this.frontier,
      executedBatches: this.executor.nextPosition,
      executedCommands: this.executor.commandsExecuted,
      duplicateCommands: this.executor.duplicatesSkipped,
      pendingBatches: this.pending.size,
      pendingBytes: this.pending.bytes,
      ackedUncommitted: this.acks.size,
      executionQueue: this.executionQueue.length - this.executionHead,
      fetching: this.fetcher.size,
      batchBytesInMemory: this.batches.bytesInMemory,
      refusals: { ...this.refusals },
    };
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
        this.mergeConsensus(this.consensus.step({ kind: 'message', from, msg }, this.nowUs));
        break;
      case 'batchRequest':
        this.serveBatches(from, msg.digests);
        break;
      case 'batchResponse':
        for (const bytes of msg.batches) this.onBatchBytes(bytes);
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
        this.feedGatewayCollector({ kind: 'reply', from, msg });
        break;
      default:
        break;
    }
  }

  private onClient(conn: number, msg: Message): void {
    switch (msg.type) {
      case 'clientHello':
        if (msg.collectorId < MAX_REPLICAS) {
          this.out.toClients.push({ conn, msg: { type: 'error', code: 'INVALID_FIELD', message: `collector ids below ${MAX_REPLICAS} belong to replicas` } });
        } else {
          this.collectorConns.set(msg.collectorId, conn);
        }
        break;
      case 'submit':
      case 'sequence':
        this.onCollectorRequest({ kind: 'client', conn }, msg);
        break;
      case 'command':
        this.onThinCommand(conn, msg);
        break;
      default:
        this.out.toClients.push({ conn, msg: { type: 'error', code: 'UNKNOWN_MESSAGE', message: `${msg.type} is not a client message` } });
        break;
    }
  }

  private reply(to: Source, msg: ReplicaToCollectorMsg): void {
    if (to.kind === 'client') this.out.toClients.push({ conn: to.conn, msg });
    else if (to.kind === 'peer') this.out.toPeers.push({ to: to.replica, msg });
    else this.feedGatewayCollector({ kind: 'reply', from: this.self, msg });
  }

  private refuse(to: Source, digest: Digest, reason: RefusalReason, frontier = 0): void {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    this.reply(to, { type: 'refused', digest, replica: this.self, reason, frontier });
  }

  private mergeConsensus(out: ConsensusOutput): void {
    if (out.proposalNeedsThisStep || (this.stepVoted && out.send.some((s) => s.msg.type === 'proposal'))) this.stepProposalNeedsOwn = true;
    if (out.voted) this.stepVoted = true;
    this.out.persist.push(...out.persist);
    for (const s of out.send) this.out.toPeers.push(s);
    this.out.serveBlocks.push(...out.serveFromStorage);
    this.out.faults.push(...out.faults);
    if (out.commits.length > 0) this.onCommits(out.commits.map((c) => ({ block: c.block, digest: c.digest })));
  }

  // ------------------------------------------------------------------------------------------
  // Phase 1 and phase 2

  private onCollectorRequest(source: Source, msg: Message): void {
    if (msg.type === 'submit') this.onSubmit(source, msg.batch);
    else if (msg.type === 'sequence') this.onSequence(source, msg);
  }

  private onSubmit(source: Source, batch: Uint8Array): void {
    const digest = this.crypto.sha256(batch);
    if (batch.length > this.config.protocol.maxBatchBytes) return this.refuse(source, digest, Refusal.BadBatch);
    const header = readBatchHeader(batch);
    if (!header.ok) return this.refuse(source, digest, Refusal.BadBatch);
    const { expiresAtUs } = header.value;
    if (expiresAtUs <= this.nowUs || expiresAtUs > this.nowUs + MAX_BATCH_LIFETIME_US) return this.refuse(source, digest, Refusal.Expired);
    const key = toHex(digest);
    const existing = this.pending.get(key);
    if (existing !== undefined && this.slots.slotOf(existing.ts) > this.frontier) {
      // The same batch again (a lost reply): the same timestamp, not a second one.
      this.reply(source, { type: 'tsReply', digest, stamp: { replica: this.self, ts: existing.ts, sig: existing.tsSig } });
      return;
    }
    const { ts, reserveUntilUs } = this.timestamper.next(this.nowUs);
    if (reserveUntilUs !== null) this.out.persist.push({ kind: 'tsReservation', untilUs: reserveUntilUs });
    const sig = this.signer.sign(timestampMessage(this.config.clusterId, digest, ts, this.self));
    this.pending.add({
      key,
      digest,
      bytes: batch,
      header: header.value,
      source: sourceKey(source),
      ts,
      tsSig: sig,
      expiresSlot: this.slots.slotOf(expiresAtUs),
    });
    this.reply(source, { type: 'tsReply', digest, stamp: { replica: this.self, ts, sig } });
  }

  private onSequence(source: Source, msg: SequenceMsg): void {
    const { oc } = msg;
    const digest = oc.digest;
    const key = toHex(digest);
    const notice = this.executedNotices.get(key);
    if (notice !== undefined) {
      this.reply(source, notice);
      return;
    }
    const own = this.pending.get(key);
    const check = this.ocs.check(oc, own === undefined ? undefined : { replica: this.self, ts: own.ts, sig: own.tsSig });
    if (!check.ok) return this.refuse(source, digest, Refusal.BadCert);
    const ocHashHex = toHex(check.ocHash);
    const previous = this.acks.find(key, ocHashHex);
    if (previous !== undefined) {
      this.reply(source, { type: 'ack', digest, ocHash: check.ocHash, replica: this.self, sig: previous.sig });
      return;
    }
    let bytes = own?.bytes ?? this.batches.get(key);
    let header: BatchHeader | undefined = own?.header;
    if (bytes === undefined && msg.batch !== null && toHex(this.crypto.sha256(msg.batch)) === key) bytes = msg.batch;
    if (bytes === undefined) return this.refuse(source, digest, Refusal.NeedBytes);
    if (header === undefined) {
      const parsed = readBatchHeader(bytes);
      if (!parsed.ok) return this.refuse(source, digest, Refusal.BadBatch);
      header = parsed.value;
    }
    const median = check.ts;
    const slot = this.slots.slotOf(median);
    if (slot <= this.frontier) return this.refuse(source, digest, Refusal.Late, this.frontier);
    if (median > this.nowUs + this.config.protocol.deltaUs) return this.refuse(source, digest, Refusal.Early);
    if (median > header.expiresAtUs) return this.refuse(source, digest, Refusal.Expired);
    if (this.acks.countInSlot(slot) >= this.maxAcksPerSlot) return this.refuse(source, digest, Refusal.Busy);

    if (this.batches.putDurable(key, bytes, this.slots.slotOf(header.expiresAtUs))) {
      this.out.persist.push({ kind: 'batch', digest, bytes });
    }
    const entry: SealEntry = { digest, ts: median, ocHash: check.ocHash };
    const sig = this.signer.sign(ackMessage(this.config.clusterId, digest, check.ocHash, this.self));
    this.acks.add({ entry, slot, oc, sig });
    this.out.persist.push({ kind: 'ack', entry, slot, oc, sig });
    this.pending.remove(key);
    this.reply(source, { type: 'ack', digest, ocHash: check.ocHash, replica: this.self, sig });
    // A leader waiting out an idle interval reconsiders when to propose (see propose): once per
    // slot that gets its first ack.
    if (this.consensus.leading && this.acks.countInSlot(slot) === 1) this.mergeConsensus(this.consensus.step({ kind: 'proposeHint' }, this.nowUs));
  }

  // ------------------------------------------------------------------------------------------
  // The sealed frontier

  /** The frontier follows the clock (slot(now − Δ) − 1) and never moves back. */
  private advanceFrontier(): void {
    const byClock = this.slots.clockFrontier(this.nowUs);
    if (byClock > this.frontier) this.frontier = byClock;
  }

  /** Seals early up to a slot that q valid seals in a block already cover. */
  private sealThrough(slot: Slot): void {
    if (slot > this.frontier) this.frontier = slot;
  }

  private onTick(): void {
    this.mergeConsensus(this.consensus.step({ kind: 'tick' }, this.nowUs));
    const batch = this.gateway.tick(this.nowUs);
    if (batch !== null) this.submitGatewayBatch(batch);
    this.feedGatewayCollector({ kind: 'tick' });
    this.checkProgress();
  }

  /** A leader that keeps its blocks from covering sealed slots stalls ordering without stalling
   *  consensus; if the committed range trails this replica's frontier for a whole view timeout,
   *  it votes (by timing out) to move to the next leader. */
  private checkProgress(): void {
    if (this.frontier - this.committedSlot <= PROGRESS_LAG_SLOTS) {
      this.lastCommitAdvanceUs = this.nowUs;
      return;
    }
    const stalledUs = this.nowUs - this.lastCommitAdvanceUs;
    const view = this.consensus.view;
    if (stalledUs < this.consensus.status().viewTimeoutUs || this.progressTimeoutView === view) return;
    this.progressTimeoutView = view;
    this.lastCommitAdvanceUs = this.nowUs;
    this.mergeConsensus(this.consensus.step({ kind: 'timeoutNow' }, this.nowUs));
  }

  // ------------------------------------------------------------------------------------------
  // The consensus App

  /** The seal for the range after `block`, up to this replica's frontier. */
  attachment(block: Block, digest: Digest): Uint8Array {
    const from = this.rangeEnd(block, digest);
    if (from === null) return new Uint8Array(0);
    this.advanceFrontier();
    if (this.frontier < from) return new Uint8Array(0);
    const content = this.acks.sealContent(from, this.frontier);
    if (content.toSlot > this.persistedFrontier) {
      // Durable before the seal that relies on it leaves (persist precedes send).
      this.persistedFrontier = content.toSlot;
      this.out.persist.push({ kind: 'frontier', slot: content.toSlot });
    }
    const seal = signSeal(this.config, this.crypto, this.signer, this.self, from, content.toSlot, content.entries);
    return encodeSealAttachment({ seal, ocs: content.ocs });
  }

  propose(ctx: ProposeContext): ProposeDecision {
    const from = this.rangeEnd(ctx.parent, ctx.parentDigest);
    if (from === null) return { retryAtUs: this.nowUs + this.config.protocol.idleBlockIntervalUs };
    const seals: VerifiedSeal[] = [];
    for (const a of ctx.attachments) {
      if (!(a.base.length === ctx.parentDigest.length && toHex(a.base) === toHex(ctx.parentDigest))) continue;
      const verified = this.verifyAttachment(a, from);
      if (verified !== null) seals.push(verified);
    }
    const payload = buildPayload(from, seals, this.config.q, this.slots);
    const hasNew = payload.entries.length > 0;
    const pendingCommit = ctx.uncommitted.some((d) => this.blockInfo.get(toHex(d))?.hasEntries === true);
    const { minBlockIntervalUs, idleBlockIntervalUs } = this.config.protocol;
    // Followers learn of a commit from the QC in the next proposal: a commit of entries here must
    // reach them without an idle wait.
    const busy = hasNew || pendingCommit || this.entriesCommittedUnannounced;
    // Seals reach the leader only on votes, so an entry sealed while the cluster is idle would
    // wait for the next idle filler. This replica acked it too: propose one filler as soon as its
    // own frontier passes that ack's slot (the others' do at about the same time), and the votes
    // on it bring the seals that let the next block carry the entry. One, not one per block
    // interval: acks sealable at the last proposal already rode on the votes for it, and if those
    // did not give q seals (a replica withholding its seal), more fillers at once would not
    // either, while waiting lets the slower votes arrive.
    const sealedAtLastProposal = Math.max(from, this.slots.clockFrontier(this.lastProposalUs)) as Slot;
    const ownAckSlot = busy ? null : this.acks.lowestSlotAbove(sealedAtLastProposal);
    const promptUs = ownAckSlot === null ? Infinity : Math.max(this.slots.sealTimeUs(ownAckSlot), this.lastProposalUs + minBlockIntervalUs);
    const dueUs = busy ? this.lastProposalUs + minBlockIntervalUs : Math.min(this.lastProposalUs + idleBlockIntervalUs, promptUs);
    if (ctx.nowUs < dueUs) return { retryAtUs: dueUs };
    this.lastProposalUs = ctx.nowUs;
    this.entriesCommittedUnannounced = false;
    return { payload: encodeBlockPayload(payload) };
  }

  private verifyAttachment(a: Attachment, from: Slot): VerifiedSeal | null {
    const cached = this.verifiedAttachments.get(a);
    if (cached !== undefined) return cached;
    // An empty attachment is honest: the voter's frontier had not reached the block's end yet.
    const result = a.bytes.length === 0 ? null : this.checkAttachment(a, from);
    if (result === null && a.bytes.length > 0) this.out.faults.push({ peer: a.from, kind: 'invalidPayload', detail: 'seal attachment does not verify' });
    this.verifiedAttachments.set(a, result);
    return result;
  }

  /** A usable seal: from the sender, starting at `from`, signed, every entry with a valid OC whose
   *  median is the entry's ts — a leader that used anything less would propose an invalid block. */
  private checkAttachment(a: Attachment, from: Slot): VerifiedSeal | null {
    const decoded = decodeSealAttachment(a.bytes, { replicaCount: this.config.n });
    if (!decoded.ok || decoded.value === null) return null;
    const { seal, ocs } = decoded.value;
    if (seal.replica !== a.from || seal.fromSlot !== from) return null;
    if (checkSeal(this.config, this.payloadCtx.seals, this.slots, seal) !== null) return null;
    const medians = new Map<string, number>();
    const byHash = new Map<string, OrderingCert>();
    for (const oc of ocs) {
      const check = this.ocs.check(oc);
      if (!check.ok) return null;
      const key = toHex(check.ocHash);
      medians.set(key, check.ts);
      byHash.set(key, oc);
    }
    const perSlot = new Map<number, number>();
    for (const e of seal.entries) {
      if (medians.get(toHex(e.ocHash)) !== e.ts) return null;
      // More acks in one slot than a correct replica gives: a Byzantine seal that could make
      // the block exceed MAX_BLOCK_ENTRIES (a block cannot end inside a slot).
      const slot = this.slots.slotOf(e.ts);
      const count = (perSlot.get(slot) ?? 0) + 1;
      if (count > this.maxAcksPerSlot) return null;
      perSlot.set(slot, count);
    }
    return { seal, ocs: byHash };
  }

  validate(block: Block, digest: Digest, parent: Block): Validity {
    const parentTo = this.rangeEnd(parent, block.parent);
    if (parentTo === null) return 'invalid';
    const decoded = decodeBlockPayload(block.payload, { replicaCount: this.config.n });
    if (!decoded.ok) return 'invalid';
    const check = validatePayload(this.payloadCtx, decoded.value, parentTo);
    if (!check.ok) {
      this.out.faults.push({ peer: block.proposer, kind: 'invalidPayload', detail: check.reason });
      return 'invalid';
    }
    const key = toHex(digest);
    this.rememberBlock(key, { toSlot: decoded.value.toSlot, payload: decoded.value, hasEntries: decoded.value.entries.length > 0 });
    // q valid seals reach `to`: at least f+1 correct replicas sealed it; acking into it is useless.
    this.sealThrough(decoded.value.toSlot);
    let missing = 0;
    for (const { entry: e } of check.value.effective) {
      const batchKey = toHex(e.digest);
      if (this.batches.isDurable(batchKey) || this.executor.isExecuted(batchKey)) continue;
      missing++;
      this.fetcher.want(e.digest, check.value.holders.get(batchKey) ?? [], `b${key}`);
    }
    if (missing === 0) return 'valid';
    this.blockWaits.set(key, { digest, missing });
    return 'pending';
  }

  /** The slot a block's range ends at (genesis: the genesis slot); null if undecodable. */
  private rangeEnd(block: Block, digest: Digest): Slot | null {
    if (block.height === 0) return GENESIS_SLOT;
    const key = toHex(digest);
    const known = this.blockInfo.get(key);
    if (known !== undefined) return known.toSlot;
    const decoded = decodeBlockPayload(block.payload, { replicaCount: this.config.n });
    if (!decoded.ok) return null;
    this.rememberBlock(key, { toSlot: decoded.value.toSlot, payload: decoded.value, hasEntries: decoded.value.entries.length > 0 });
    return decoded.value.toSlot;
  }

  private rememberBlock(key: string, info: BlockInfo): void {
    this.blockInfo.set(key, info);
    if (this.blockInfo.size > BLOCK_INFO_CACHE) this.blockInfo.delete(this.blockInfo.keys().next().value as string);
  }

  // ------------------------------------------------------------------------------------------
  // Batch bytes: serving and fetching

  private serveBatches(to: ReplicaId, digests: readonly Digest[]): void {
    const found: Uint8Array[] = [];
    const fromStorage: Digest[] = [];
    let bytes = 0;
    for (const d of digests) {
      const key = toHex(d);
      const held = this.batches.get(key) ?? this.pending.get(key)?.bytes;
      if (held === undefined) {
        fromStorage.push(d);
        continue;
      }
      if (found.length > 0 && bytes + held.length > MAX_SYNC_RESPONSE_BYTES) {
        this.out.toPeers.push({ to, msg: { type: 'batchResponse', batches: found.splice(0) } });
        bytes = 0;
      }
      found.push(held);
      bytes += held.length;
    }
    if (found.length > 0) this.out.toPeers.push({ to, msg: { type: 'batchResponse', batches: found } });
    if (fromStorage.length > 0) this.out.serveBatches.push({ to, digests: fromStorage });
  }

  private onBatchBytes(bytes: Uint8Array): void {
    const digest = this.crypto.sha256(bytes);
    const key = toHex(digest);
    if (!this.fetcher.isWanted(key)) return;
    const header = readBatchHeader(bytes);
    const expiresSlot = header.ok ? this.slots.slotOf(header.value.expiresAtUs) : GENESIS_SLOT;
    if (this.batches.putDurable(key, bytes, expiresSlot)) this.out.persist.push({ kind: 'batch', digest, bytes });
    let execute = false;
    for (const waiter of this.fetcher.arrived(key)) {
      if (waiter === 'x') {
        execute = true;
        continue;
      }
      const blockKey = waiter.slice(1);
      const wait = this.blockWaits.get(blockKey);
      if (wait === undefined) continue;
      if (--wait.missing > 0) continue;
      this.blockWaits.delete(blockKey);
      this.mergeConsensus(this.consensus.step({ kind: 'payloadReady', block: wait.digest }, this.nowUs));
    }
    if (execute) this.drainExecution();
  }

  private flushFetches(): void {
    for (const r of this.fetcher.due(this.nowUs)) this.out.toPeers.push({ to: r.to, msg: { type: 'batchRequest', digests: r.digests } });
  }

  // ------------------------------------------------------------------------------------------
  // Commit and execution

  private onCommits(commits: readonly { block: Block; digest: Digest }[]): void {
    for (const { block, digest } of commits) {
      const payload = this.payloadOf(block, digest);
      const holders = payload === null ? new Map<string, ReplicaId[]>() : holdersOf(payload);
      if (payload !== null && payload.entries.length > 0 && !this.replaying) this.entriesCommittedUnannounced = true;
      const effective = payload === null ? [] : effectiveEntries(payload);
      effective.forEach(({ entry, oc }, i) => {
        const key = toHex(entry.digest);
        const blockToSlot = payload!.toSlot;
        this.executionQueue.push({ entry, oc, key, height: block.height, holders: holders.get(key) ?? [], blockToSlot, lastOfBlock: i === effective.length - 1 });
        this.queued.add(key);
      });
      this.committedHeight = block.height;
      const toSlot = payload?.toSlot ?? this.committedSlot;
      if (toSlot > this.committedSlot) {
        this.committedSlot = toSlot;
        this.lastCommitAdvanceUs = this.nowUs;
      }
      if (!this.replaying) this.out.commits.push({ height: block.height, digest, toSlot: this.committedSlot });
      this.sealThrough(this.committedSlot);
    }
    this.drainExecution();
    this.pruneBelowCommitted();
    // Consensus tells the App of commits after its step, so a leader may have just chosen an idle
    // wait for the proposal that announces these.
    if (this.entriesCommittedUnannounced && this.consensus.leading) this.mergeConsensus(this.consensus.step({ kind: 'proposeHint' }, this.nowUs));
  }

  private payloadOf(block: Block, digest: Digest): BlockPayload | null {
    if (block.height === 0) return null;
    const info = this.blockInfo.get(toHex(digest));
    if (info?.payload !== undefined && info.payload !== null) return info.payload;
    const decoded = decodeBlockPayload(block.payload, { replicaCount: this.config.n });
    // A committed block was validated by f+1 correct replicas; undecodable means our bug.
    if (!decoded.ok) throw new Error(`committed block ${toHex(digest)} has an undecodable payload: ${decoded.error.message}`);
    return decoded.value;
  }

  /** Executes queued committed entries in order while their bytes are here; fetches the first
   *  missing one and waits for it (never skips). */
  private drainExecution(): void {
    const queue = this.executionQueue;
    while (this.executionHead < queue.length) {
      const item = queue[this.executionHead]!;
      if (!this.executor.isExecuted(item.key)) {
        const bytes = this.batches.get(item.key);
        if (bytes === undefined) {
          this.fetcher.want(item.entry.digest, item.holders, 'x');
          break;
        }
        this.executeOne(item, bytes);
      }
      this.queued.delete(item.key);
      this.executionHead++;
      if (item.lastOfBlock) this.executedThroughSlot = item.blockToSlot;
    }
    if (this.executionHead > 4096 && this.executionHead * 2 > queue.length) {
      queue.splice(0, this.executionHead);
      this.executionHead = 0;
    }
  }

  private executeOne(item: QueuedExecution, bytes: Uint8Array): void {
    const header = readBatchHeader(bytes);
    const expiresSlot = header.ok ? this.slots.slotOf(header.value.expiresAtUs) : GENESIS_SLOT;
    const done = this.executor.execute(item.entry.digest, item.key, item.entry.ts, bytes, expiresSlot, item.height);
    this.batches.release(item.key);
    if (done === null) return;
    const collectorId = header.ok ? header.value.collectorId : -1;
    const record: ExecutionRecord = {
      position: done.position,
      digest: item.entry.digest,
      ts: item.entry.ts,
      ocHash: item.entry.ocHash,
      blockHeight: item.height,
      commands: done.commands,
      collectorId,
      results: done.results,
      oc: item.oc,
      batch: bytes,
    };
    // A replay re-executes silently: its notices went out before the restart, or are owed by no one.
    if (this.replaying) {
      this.replayed.push(record);
      return;
    }
    const resultsHash = this.crypto.sha256(done.results);
    const notice: ExecutedMsg = {
      type: 'executed',
      digest: item.entry.digest,
      position: done.position,
      ts: item.entry.ts,
      results: done.results,
      replica: this.self,
      sig: this.signer.sign(executedMessage(this.config.clusterId, item.entry.digest, done.position, item.entry.ts, resultsHash)),
    };
    this.executedNotices.set(item.key, notice);
    if (this.executedNotices.size > EXECUTED_NOTICE_CACHE) this.executedNotices.delete(this.executedNotices.keys().next().value as string);
    this.out.executed.push(record);
    this.notifyCollector(collectorId, notice);
  }

  private notifyCollector(collectorId: number, notice: ExecutedMsg): void {
    if (collectorId < 0) return;
    if (collectorId < MAX_REPLICAS) {
      if (collectorId === this.self) this.feedGatewayCollector({ kind: 'reply', from: this.self, msg: notice });
      else if (collectorId < this.config.n) this.out.toPeers.push({ to: collectorId as ReplicaId, msg: notice });
      return;
    }
    const conn = this.collectorConns.get(collectorId);
    if (conn !== undefined) this.out.toClients.push({ conn, msg: notice });
  }

  private pruneBelowCommitted(): void {
    const through = this.committedSlot;
    // Acks below the committed range are listed by no future seal. Their bytes are needed only if
    // a committed block took them (then they are queued); otherwise they can never execute now.
    const pruned = this.acks.pruneThrough(through);
    for (const r of pruned) this.releaseUnlessQueued(toHex(r.entry.digest));
    if (through < this.lastExpiryPruneSlot + EXPIRY_PRUNE_EVERY_SLOTS) return;
    this.lastExpiryPruneSlot = through;
    this.pending.pruneExpired(through);
    for (const key of this.batches.pruneDurable(through)) this.releaseUnlessQueued(key);
    // By executed slots, not committed ones: a committed block still waiting for bytes may hold a
    // digest that executed before and has expired since; forgetting that digest first would run
    // it twice here and once elsewhere (found by simulation seed 3020, n=4 2-chain direct).
    this.executor.pruneDigests(this.executedSlot());
    this.out.persist.push({ kind: 'pruneAcks', throughSlot: through });
  }

  /** Every committed slot up to here has been through execution. */
  private executedSlot(): Slot {
    return this.executionHead >= this.executionQueue.length ? this.committedSlot : this.executedThroughSlot;
  }

  private releaseUnlessQueued(key: string): void {
    if (!this.queued.has(key)) this.batches.release(key);
  }

  /**
   * Rebuilds the state machine after a restart: executes committed blocks again, silently, oldest
   * first, from genesis up to the committed tip. The driver streams them from storage in chunks
   * (with the batches they need) before `start`; a batch missing here is fetched after start.
   * Returns what this chunk executed, so a checker can compare it with the other replicas.
   */
  replayCommitted(blocks: readonly Block[], batches: readonly { readonly digest: Digest; readonly bytes: Uint8Array }[]): readonly ExecutionRecord[] {
    for (const b of batches) {
      const header = readBatchHeader(b.bytes);
      this.batches.putRecovered(toHex(b.digest), b.bytes, header.ok ? this.slots.slotOf(header.value.expiresAtUs) : GENESIS_SLOT);
    }
    if (blocks.length === 0) return [];
    this.replaying = true;
    this.onCommits(blocks.map((block) => ({ block, digest: blockDigest(this.crypto, block) })));
    this.replaying = false;
    this.out = emptyOutput();
    return this.replayed.splice(0);
  }

  // ------------------------------------------------------------------------------------------
  // Gateway mode

  private onThinCommand(conn: number, msg: CommandMsg): void {
    if (msg.seq < MIN_COMMAND_SEQ) {
      this.out.toClients.push({ conn, msg: { type: 'error', code: 'INVALID_FIELD', message: `command sequence numbers start at ${MIN_COMMAND_SEQ}` } });
      return;
    }
    const batch = this.gateway.add(conn, msg, this.nowUs);
    if (batch !== null) this.submitGatewayBatch(batch);
  }

  private submitGatewayBatch(batch: GatewayBatch): void {
    this.feedGatewayCollector({ kind: 'submit', batch: batch.bytes, digest: batch.digest, expiresAtUs: batch.expiresAtUs });
  }

  /** Steps the gateway collector. Its messages to this replica are handled right away, and their
   *  replies come back through the inbox after the current step (the collector is not reentrant). */
  private feedGatewayCollector(input: Parameters<Collector['step']>[0]): void {
    this.gatewayInbox.push(input);
    if (this.gatewayBusy) return;
    this.gatewayBusy = true;
    try {
      for (let next = this.gatewayInbox.shift(); next !== undefined; next = this.gatewayInbox.shift()) {
        const out: CollectorOutput = this.gatewayCollector.step(next, this.nowUs);
        for (const { to, msg } of out.send) {
          if (to === 'all' || to !== this.self) this.out.toPeers.push({ to, msg });
          if (to === 'all' || to === this.self) this.onCollectorRequest({ kind: 'local' }, msg);
        }
        for (const event of out.events) this.onGatewayEvent(event);
      }
    } finally {
      this.gatewayBusy = false;
    }
  }

  private onGatewayEvent(event: CollectorEvent): void {
    for (const { conn, msg } of this.gateway.onCollectorEvent(event)) this.out.toClients.push({ conn, msg });
  }
}

/** Which replicas' seals list each entry (they hold its bytes), from the include bitmaps. */
function holdersOf(payload: BlockPayload): Map<string, ReplicaId[]> {
  const holders = new Map<string, ReplicaId[]>();
  for (const seal of payload.seals) {
    for (let i = 0; i < payload.entries.length; i++) {
      if (!bitmapGet(seal.include, i)) continue;
      const key = toHex(payload.entries[i]!.digest);
      const list = holders.get(key);
      if (list === undefined) holders.set(key, [seal.replica]);
      else list.push(seal.replica);
    }
  }
  return holders;
}
