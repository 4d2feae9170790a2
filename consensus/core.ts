/**
 * Chained HotStuff as a pure state machine (see types.ts for the contract and safety.ts for the
 * voting and commit rules). One entry point, `step(input, nowUs)`; no I/O, no clock, no randomness.
 *
 * Leaders: a replica enters view v+1 on a QC or a TC for view v. After a QC the leader stays: the
 * proposer of the certified block leads the next view too (votes go to it). After a TC the leader
 * of view v+1 is replica (v+1) mod n, so consecutive failed views visit distinct replicas and a
 * faulty leader costs one timeout. (Rotating every view would let a single silent replica swallow
 * every n-th QC, and with the consecutive-view commit rules 3-chain at n=4 would never commit.)
 * Neither voting rule depends on who proposes, so this choice affects liveness only.
 *
 * Pacemaker: a view that makes no progress ends with signed timeouts (broadcast, re-sent while
 * stuck, joined by a replica that sees f+1 of them) forming a TC; view timeouts back off
 * exponentially while views keep ending by timeout, capped, and reset on the first QC.
 */
import { assert } from '../common/assert.js';
import { bytesEqual, toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId, View } from '../common/ids.js';
import { MAX_SYNC_BLOCKS, MAX_SYNC_RESPONSE_BYTES, MAX_VIEW_LOOKAHEAD } from '../common/limits.js';
import type {
  Block,
  BlockRequestMsg,
  BlockResponseMsg,
  ConsensusMsg,
  ProposalMsg,
  QuorumCert,
  TimeoutCert,
  TimeoutMsg,
  VoteMsg,
} from '../common/messages.js';
import { timeoutMessage, voteMessage } from '../common/signing.js';
import { blockDigest, type Genesis, makeGenesis } from './block.js';
import { type BlockNode, BlockTree } from './blockTree.js';
import { buildQc, buildTc, CertVerifier, maxHighQcView } from './certs.js';
import { initialSafety, SafetyRules } from './safety.js';
import type {
  App,
  Attachment,
  ConsensusInput,
  ConsensusOptions,
  ConsensusOutput,
  Destination,
  PeerFaultKind,
  SafetyState,
} from './types.js';

/** Proposals held while their parent is being fetched; a correct leader sends one per view. */
const MAX_PENDING_PROPOSALS = 32;
/** Block requests in flight at once; each names the newest missing block of one chain. */
const MAX_OUTSTANDING_SYNC = 16;
/** Blocks fetched by sync that do not yet connect to the tree (a replica catching up walks back
 *  MAX_SYNC_BLOCKS at a time). Beyond this the replica is too far behind for block sync. */
const MAX_SYNC_BUFFER_BLOCKS = 16_384;
/** Payload bytes those blocks may hold: at peak a block is tens of KB, so 16,384 of them could be
 *  hundreds of MB. A replica further behind than this installs a checkpoint instead (the ordering
 *  layer's state transfer). */
const MAX_SYNC_BUFFER_BYTES = 64 * 1024 * 1024;
/** Exponent cap for the view-timeout backoff (2^20 × base is beyond any sane cap anyway). */
const MAX_BACKOFF_EXPONENT = 20;
/** Estimated bytes of a block besides its payload, for sync response budgets. */
const BLOCK_OVERHEAD_BYTES = 512;

interface VoteBucket {
  readonly sigs: Map<ReplicaId, Uint8Array>;
  readonly attachments: Attachment[];
  qc: QuorumCert | null;
}

interface ViewVotes {
  readonly byBlock: Map<string, VoteBucket>;
  /** Which block each replica voted for in this view (a second, different vote is equivocation). */
  readonly voterBlock: Map<ReplicaId, string>;
}

interface TimeoutEntry {
  readonly highQcView: View;
  readonly sig: Uint8Array;
  readonly attachment: Attachment;
}

interface SyncRequest {
  readonly digest: Digest;
  peer: ReplicaId;
  deadlineUs: number;
  attempts: number;
}

export interface ConsensusStatus {
  readonly view: View;
  readonly highQcView: View;
  readonly lockedView: View;
  readonly lastVotedView: View;
  readonly committedHeight: number;
  readonly committedDigest: Digest;
  readonly pendingBlocks: number;
  readonly consecutiveTimeouts: number;
  readonly viewTimeoutUs: number;
}

function emptyOutput(): ConsensusOutput {
  return { persist: [], send: [], commits: [], serveFromStorage: [], faults: [], voted: false, proposalNeedsThisStep: false };
}

export class HotStuff {
  private readonly config: ClusterConfig;
  private readonly self: ReplicaId;
  private readonly crypto: CryptoBackend;
  private readonly signer: Signer;
  private readonly app: App;
  readonly genesis: Genesis;
  private readonly certs: CertVerifier;
  private readonly safety: SafetyRules;
  private readonly tree: BlockTree;

  private currentView: View;
  private started = false;
  private viewDeadlineUs = 0;
  private consecutiveTimeouts = 0;
  private proposedView = 0;
  private proposeRetryAtUs: number | null = null;
  private myTimeout: TimeoutMsg | null = null;
  /** The newest proposal this replica accepted into its tree: sent to laggards as a catch-up. */
  private latestProposal: ProposalMsg | null = null;
  private readonly helpedLaggard = new Map<ReplicaId, number>();

  private readonly votes = new Map<number, ViewVotes>();
  private readonly timeouts = new Map<number, Map<ReplicaId, TimeoutEntry>>();
  private readonly pendingProposals = new Map<string, { readonly from: ReplicaId; readonly msg: ProposalMsg }>();
  /** QCs for blocks being fetched, applied once the block arrives. */
  private readonly awaitingQc = new Map<string, QuorumCert>();
  private readonly outstandingSync = new Map<string, SyncRequest>();
  private readonly syncBuffer = new Map<string, { readonly block: Block; readonly digest: Digest }>();
  private syncBufferBytes = 0;
  /** Set while the App installs a checkpoint from its peers: this core follows certificates (views,
   *  high QC) but votes, times out, proposes and block-syncs no more; it is replaced after. */
  private suspended = false;
  /** Buffered synced blocks by parent key, so a block's arrival connects its descendants. */
  private readonly syncChildren = new Map<string, string[]>();

  private out: ConsensusOutput = emptyOutput();
  private nowUs = 0;

  constructor(opts: ConsensusOptions) {
    this.config = opts.config;
    this.self = opts.self;
    this.crypto = opts.crypto;
    this.signer = opts.signer;
    this.app = opts.app;
    assert(opts.self >= 0 && opts.self < opts.config.n, `replica ${opts.self} is not in the cluster`);
    this.genesis = makeGenesis(opts.crypto, opts.config.n);
    this.certs = new CertVerifier(opts.config, opts.crypto, this.genesis, opts.self);
    const { recovered } = opts;
    this.safety = new SafetyRules(opts.config.protocol.commitRule, recovered.safety ?? initialSafety(this.genesis.qc));

    let root: { block: Block; digest: Digest } = { block: this.genesis.block, digest: this.genesis.digest };
    if (recovered.committed !== null) {
      const tip = recovered.blocks.find((b) => bytesEqual(blockDigest(this.crypto, b), recovered.committed!.digest));
      assert(tip !== undefined, 'storage holds a committed height but not the committed block');
      root = { block: tip, digest: recovered.committed.digest };
    }
    this.tree = new BlockTree(root.block, root.digest, root.digest === this.genesis.digest ? this.genesis.qc : null);
    const above = recovered.blocks.filter((b) => b.height > root.block.height).sort((a, b) => a.height - b.height);
    for (const block of above) {
      const digest = blockDigest(this.crypto, block);
      if (this.tree.insert(block, digest, null) !== 'inserted') continue;
      const parent = this.tree.get(block.parent);
      if (parent !== undefined && parent.qc === null) parent.qc = block.justify;
    }
    const highQcNode = this.tree.get(this.safety.highQc.block);
    if (highQcNode !== undefined && highQcNode.qc === null) highQcNode.qc = this.safety.highQc;

    const lastTcView = this.safety.lastTc === null ? 0 : this.safety.lastTc.view + 1;
    this.currentView = Math.max(this.safety.votedView, this.safety.highQc.view + 1, lastTcView, 1) as View;
    // A restarted leader may have proposed in its current view before the crash, with its own vote
    // on that block not yet durable: proposing again there would be an equivocation (a second
    // block for one view), honest or not. It waits for the next view.
    this.proposedView = recovered.safety === null ? this.safety.votedView : this.currentView;
  }

  // ------------------------------------------------------------------------------------------
  // The entry point

  step(input: ConsensusInput | { readonly kind: 'start' }, nowUs: number): ConsensusOutput {
    assert(nowUs >= this.nowUs, 'time went backwards');
    this.nowUs = nowUs;
    this.out = emptyOutput();
    switch (input.kind) {
      case 'start':
        assert(!this.started, 'started twice');
        this.started = true;
        this.viewDeadlineUs = nowUs + this.viewTimeoutUs();
        this.tryPropose();
        break;
      case 'message':
        if (this.started) this.onMessage(input.from, input.msg);
        break;
      case 'tick':
        if (this.started) this.onTick();
        break;
      case 'payloadReady':
        this.onPayloadReady(input.block);
        break;
      case 'proposeHint':
        this.proposeRetryAtUs = null;
        this.tryPropose();
        break;
      case 'timeoutNow':
        if (this.started && this.myTimeout?.view !== this.currentView) this.localTimeout();
        break;
      case 'suspend':
        this.suspended = true;
        this.outstandingSync.clear();
        this.proposeRetryAtUs = null;
        break;
      case 'resume':
        if (!this.suspended) break;
        this.suspended = false;
        // The deadline passed while suspended says nothing about the current view's leader.
        this.viewDeadlineUs = this.nowUs + this.viewTimeoutUs();
        this.tryPropose();
        break;
    }
    if (this.safety.dirty) {
      this.safety.dirty = false;
      // Persist ops are applied before any send of this output, so the vote or timeout that
      // changed the safety state leaves only after the state is durable.
      this.out.persist.push({ kind: 'safety', state: this.safety.state() });
    }
    const out = this.out;
    this.out = emptyOutput();
    return out;
  }

  /** When the driver must deliver the next `tick` (null: no deadline pending). */
  nextWakeUs(): number | null {
    // A suspended core has no deadline of its own (it times nothing out, and fetches nothing).
    if (!this.started || this.suspended) return null;
    let next = this.viewDeadlineUs;
    if (this.proposeRetryAtUs !== null && this.proposeRetryAtUs < next) next = this.proposeRetryAtUs;
    for (const r of this.outstandingSync.values()) if (r.deadlineUs < next) next = r.deadlineUs;
    return next;
  }

  status(): ConsensusStatus {
    return {
      view: this.currentView,
      highQcView: this.safety.highQc.view,
      lockedView: this.safety.locked,
      lastVotedView: this.safety.votedView,
      committedHeight: this.tree.root.block.height,
      committedDigest: this.tree.root.digest,
      pendingBlocks: this.tree.size - 1,
      consecutiveTimeouts: this.consecutiveTimeouts,
      viewTimeoutUs: this.viewTimeoutUs(),
    };
  }

  get view(): View {
    return this.currentView;
  }

  /** The safety state now (for a replacement core after a checkpoint install: views and the high
   *  QC this one has followed). */
  safetyState(): SafetyState {
    return this.safety.state();
  }

  /** Whether this replica may propose in the current view once it has a payload. */
  get leading(): boolean {
    const highQc = this.safety.highQc;
    const v = this.currentView;
    if (highQc.view + 1 === v && this.tree.get(highQc.block)?.block.proposer === this.self) return true;
    const lastTc = this.safety.lastTc;
    return lastTc !== null && lastTc.view + 1 === v && this.roundRobinLeader(v) === this.self;
  }

  /** A block this replica holds (in its tree or among recent commits), for the App and the driver. */
  getBlock(digest: Digest): Block | undefined {
    return this.tree.lookup(digest)?.block;
  }

  get committedTip(): { readonly block: Block; readonly digest: Digest } {
    return { block: this.tree.root.block, digest: this.tree.root.digest };
  }

  // ------------------------------------------------------------------------------------------
  // Inputs

  private onMessage(from: ReplicaId, msg: ConsensusMsg): void {
    switch (msg.type) {
      case 'proposal':
        this.onProposal(from, msg);
        break;
      case 'vote':
        this.onVote(from, msg);
        break;
      case 'timeout':
        this.onTimeout(from, msg);
        break;
      case 'blockRequest':
        this.onBlockRequest(from, msg);
        break;
      case 'blockResponse':
        this.onBlockResponse(from, msg);
        break;
    }
  }

  private onTick(): void {
    if (this.nowUs >= this.viewDeadlineUs && !this.suspended) {
      if (this.myTimeout !== null && this.myTimeout.view === this.currentView) {
        // Still stuck after timing out: send the timeout again, in case it was lost.
        this.out.send.push({ to: 'all', msg: this.myTimeout });
        this.viewDeadlineUs = this.nowUs + this.viewTimeoutUs();
      } else {
        this.localTimeout();
      }
    }
    if (this.proposeRetryAtUs !== null && this.nowUs >= this.proposeRetryAtUs) {
      this.proposeRetryAtUs = null;
      this.tryPropose();
    }
    for (const request of this.outstandingSync.values()) {
      if (this.nowUs < request.deadlineUs) continue;
      request.attempts++;
      request.peer = this.nextPeer(request.peer);
      request.deadlineUs = this.nowUs + this.syncTimeoutUs();
      this.sendTo(request.peer, { type: 'blockRequest', digest: request.digest, maxBlocks: MAX_SYNC_BLOCKS });
    }
  }

  private onPayloadReady(digest: Digest): void {
    const node = this.tree.get(digest);
    if (node === undefined || node.validity !== 'pending') return;
    node.validity = 'unchecked';
    this.tryVote(node);
  }

  // ------------------------------------------------------------------------------------------
  // Proposals and votes

  private onProposal(from: ReplicaId, msg: ProposalMsg): void {
    const { block, tc } = msg;
    const problem = this.checkProposal(block, tc);
    if (problem !== null) {
      this.fault(from, problem.kind, problem.detail);
      return;
    }
    // Certificates first: they move this replica to the proposal's view.
    this.processQc(block.justify, from);
    if (tc !== null) this.processTc(tc);
    // A proposal relayed by another replica (catch-up help) is not authenticated as the leader's:
    // its certificates count, the block itself is neither stored nor voted for.
    if (from !== block.proposer) return;
    const digest = blockDigest(this.crypto, block);
    const parent = this.tree.lookup(block.parent);
    if (parent === undefined) {
      // The proposer's right to lead is checked once the parent is here.
      this.holdProposal(from, msg, digest);
      this.requestBlocks(block.parent, from);
      return;
    }
    const expected = this.expectedProposer(block, tc, parent.block);
    if (block.proposer !== expected) {
      this.fault(from, 'wrongLeader', `proposal for view ${block.view} by ${block.proposer}, leader is ${expected}`);
      return;
    }

    if (block.height <= this.tree.root.block.height || (parent !== this.tree.root && this.tree.get(block.parent) === undefined)) {
      // Extends a block at or below the committed tip: a leader that had not heard of the latest
      // commits (one that just restarted). Stale, not invalid.
      return;
    }
    const existing = this.tree.get(digest);
    if (existing !== undefined) {
      if (existing.entryTc === null && tc !== null) existing.entryTc = tc;
      this.tryVote(existing);
      return;
    }
    this.noteEquivocation(from, block, digest);
    const result = this.tree.insert(block, digest, tc);
    if (result === 'missingParent') {
      this.holdProposal(from, msg, digest);
      this.requestBlocks(block.parent, from);
      return;
    }
    if (result === 'invalid') {
      this.fault(from, 'invalidProposal', `block at height ${block.height} does not extend its parent`);
      return;
    }
    if (result === 'known') return;
    const node = this.tree.get(digest)!;
    this.out.persist.push({ kind: 'block', digest, block });
    if (this.latestProposal === null || block.view > this.latestProposal.block.view) this.latestProposal = msg;
    this.afterInsert(node);
    this.insertSyncedChildren(node.key);
    this.tryVote(node);
  }

  /** A view entered by TC is led by view mod n; one entered by QC by the certified block's proposer. */
  private expectedProposer(block: Block, tc: TimeoutCert | null, parent: Block): ReplicaId {
    if (tc !== null && tc.view + 1 === block.view) return this.roundRobinLeader(block.view);
    return parent.proposer;
  }

  private roundRobinLeader(v: number): ReplicaId {
    return (v % this.config.n) as ReplicaId;
  }

  /** Checks that need no parent: structure, certificates and how the view was entered. */
  private checkProposal(block: Block, tc: TimeoutCert | null): { kind: PeerFaultKind; detail: string } | null {
    if (!bytesEqual(block.parent, block.justify.block)) {
      return { kind: 'invalidProposal', detail: 'parent is not the block its QC certifies' };
    }
    if (block.view <= block.justify.view) return { kind: 'invalidProposal', detail: 'view not above its QC' };
    const qcCheck = this.certs.checkQc(block.justify);
    if (!qcCheck.ok) return { kind: 'badCertificate', detail: qcCheck.reason };
    // An attached TC is always checked: it moves views, names the leader and is stored durably.
    if (tc !== null) {
      if (tc.view + 1 !== block.view) return { kind: 'invalidProposal', detail: 'TC is not for the previous view' };
      const tcCheck = this.certs.checkTc(tc);
      if (!tcCheck.ok) return { kind: 'badCertificate', detail: tcCheck.reason };
    }
    if (block.justify.view + 1 === block.view) return null;
    if (tc === null) return { kind: 'invalidProposal', detail: `view ${block.view} entered without a certificate` };
    if (block.justify.view < maxHighQcView(tc)) {
      return { kind: 'invalidProposal', detail: 'QC is below the highest QC reported in the TC' };
    }
    return null;
  }

  private noteEquivocation(from: ReplicaId, block: Block, digest: Digest): void {
    for (const node of this.tree.pending()) {
      if (node.block.view === block.view && node.block.proposer === block.proposer && !bytesEqual(node.digest, digest)) {
        this.fault(from, 'equivocation', `two proposals in view ${block.view}`);
        return;
      }
    }
  }

  private holdProposal(from: ReplicaId, msg: ProposalMsg, digest: Digest): void {
    if (this.pendingProposals.size >= MAX_PENDING_PROPOSALS) {
      let oldestKey: string | null = null;
      let oldestView = Infinity;
      for (const [key, p] of this.pendingProposals) {
        if (p.msg.block.view < oldestView) {
          oldestView = p.msg.block.view;
          oldestKey = key;
        }
      }
      if (oldestView >= msg.block.view) return;
      this.pendingProposals.delete(oldestKey!);
    }
    this.pendingProposals.set(toHex(digest), { from, msg });
  }

  private tryVote(node: BlockNode): void {
    if (this.suspended) return;
    const { block } = node;
    if (block.view !== this.currentView) return;
    if (!this.safety.canVote(block, node.entryTc)) return;
    const parent = this.tree.parentOf(node);
    if (parent === undefined) return;
    if (node.validity === 'unchecked') node.validity = this.app.validate(block, node.digest, parent.block, this.nowUs);
    if (node.validity === 'invalid') {
      this.fault(block.proposer, 'invalidPayload', `payload of view ${block.view} rejected`);
      return;
    }
    if (node.validity !== 'valid') return;
    this.safety.recordVote(block, parent.block);
    this.out.voted = true;
    const vote: VoteMsg = {
      type: 'vote',
      view: block.view,
      block: node.digest,
      voter: this.self,
      sig: this.signer.sign(voteMessage(this.config.clusterId, block.view, node.digest)),
      attachment: this.app.attachment(block, node.digest, this.nowUs),
    };
    this.certs.noteOwnVote(block.view, node.digest, vote.sig);
    // The proposer leads the next view if this block gets certified, so the votes go to it.
    this.sendTo(block.proposer, vote);
  }

  private onVote(from: ReplicaId, vote: VoteMsg): void {
    if (vote.voter !== from) {
      this.fault(from, 'badSignature', `vote claims voter ${vote.voter}`);
      return;
    }
    if (vote.view + 1 < this.currentView) return;
    const voted = this.tree.get(vote.block);
    if (voted === undefined || voted.block.proposer !== this.self) return;
    if (vote.view > this.currentView + MAX_VIEW_LOOKAHEAD) {
      this.fault(from, 'farFutureView', `vote for view ${vote.view} while in ${this.currentView}`);
      return;
    }
    const blockKey = toHex(vote.block);
    let viewVotes = this.votes.get(vote.view);
    const previous = viewVotes?.voterBlock.get(from);
    if (previous !== undefined) {
      if (previous !== blockKey) this.fault(from, 'equivocation', `two votes in view ${vote.view}`);
      return;
    }
    if (from !== this.self && !this.crypto.verify(this.config.replicas[from]!.key, voteMessage(this.config.clusterId, vote.view, vote.block), vote.sig)) {
      this.fault(from, 'badSignature', `vote for view ${vote.view}`);
      return;
    }
    if (viewVotes === undefined) {
      viewVotes = { byBlock: new Map(), voterBlock: new Map() };
      this.votes.set(vote.view, viewVotes);
    }
    viewVotes.voterBlock.set(from, blockKey);
    let bucket = viewVotes.byBlock.get(blockKey);
    if (bucket === undefined) {
      bucket = { sigs: new Map(), attachments: [], qc: null };
      viewVotes.byBlock.set(blockKey, bucket);
    }
    bucket.sigs.set(from, vote.sig);
    bucket.attachments.push({ from, base: vote.block, bytes: vote.attachment });
    if (bucket.qc === null && bucket.sigs.size >= this.config.q) {
      const qc = buildQc(vote.view, vote.block, bucket.sigs, this.config.n);
      this.certs.trustBuiltQc(qc);
      bucket.qc = qc;
      this.processQc(qc, null);
    }
  }

  private tryPropose(): void {
    const v = this.currentView;
    if (!this.started || this.suspended || this.proposedView >= v) return;
    if (this.proposeRetryAtUs !== null && this.nowUs < this.proposeRetryAtUs) return;
    const highQc = this.safety.highQc;
    const parent = this.tree.get(highQc.block);
    if (parent === undefined) return; // being fetched; afterInsert retries
    let tc: TimeoutCert | null = null;
    if (highQc.view + 1 !== v || parent.block.proposer !== this.self) {
      const lastTc = this.safety.lastTc;
      if (lastTc === null || lastTc.view + 1 !== v || this.roundRobinLeader(v) !== this.self) return;
      if (highQc.view < maxHighQcView(lastTc)) return;
      tc = lastTc;
    }
    const uncommitted = this.tree.pathFromRoot(parent).map((n) => n.digest).reverse();
    const decision = this.app.propose({
      view: v,
      parent: parent.block,
      parentDigest: parent.digest,
      uncommitted,
      attachments: this.attachmentsFor(v, parent, tc),
      nowUs: this.nowUs,
    });
    if ('retryAtUs' in decision) {
      this.proposeRetryAtUs = Math.max(decision.retryAtUs, this.nowUs + 1);
      return;
    }
    const block: Block = {
      parent: parent.digest,
      view: v,
      height: (parent.block.height + 1) as Block['height'],
      proposer: this.self,
      justify: highQc,
      payload: decision.payload,
    };
    this.proposedView = v;
    const msg: ProposalMsg = { type: 'proposal', block, tc };
    if (this.out.voted) this.out.proposalNeedsThisStep = true;
    this.out.send.push({ to: 'all', msg });
    this.onProposal(this.self, msg);
  }

  private attachmentsFor(v: View, parent: BlockNode, tc: TimeoutCert | null): readonly Attachment[] {
    if (tc === null) return this.votes.get(v - 1)?.byBlock.get(parent.key)?.attachments ?? [];
    const entries = this.timeouts.get(tc.view);
    if (entries === undefined) return [];
    return [...entries.values()].map((e) => e.attachment);
  }

  // ------------------------------------------------------------------------------------------
  // Certificates, view changes and commits

  /** Applies a verified QC: high QC, certified block, commit rule, view change. */
  private processQc(qc: QuorumCert, source: ReplicaId | null): void {
    this.safety.observeQc(qc);
    const node = this.tree.get(qc.block);
    if (node !== undefined) {
      this.onCertified(node, qc);
    } else if (this.tree.lookup(qc.block) === undefined && qc.view > this.tree.root.block.view) {
      this.awaitingQc.set(toHex(qc.block), qc);
      this.requestBlocks(qc.block, source ?? this.nextPeer(this.self));
    }
    this.advanceView((qc.view + 1) as View, 'qc');
  }

  private processTc(tc: TimeoutCert): void {
    this.safety.observeTc(tc);
    this.advanceView((tc.view + 1) as View, 'tc');
  }

  private onCertified(node: BlockNode, qc: QuorumCert): void {
    if (node.qc === null) node.qc = qc;
    // The commit rule: the certified block heads a chain of parent-linked blocks with consecutive
    // views; the oldest of them commits.
    let oldest = node;
    for (let linked = 1; linked < this.safety.chainLength; linked++) {
      const parent = this.tree.parentOf(oldest);
      if (parent === undefined || parent.block.view + 1 !== oldest.block.view) return;
      oldest = parent;
    }
    this.commit(oldest);
  }

  private commit(node: BlockNode): void {
    if (node === this.tree.root) return;
    assert(
      this.tree.extendsFrom(node, this.tree.root),
      `SAFETY: block at height ${node.block.height} conflicts with the committed chain`,
    );
    for (const c of this.tree.commit(node)) this.out.commits.push({ digest: c.digest, block: c.block });
    this.out.persist.push({ kind: 'committed', height: node.block.height, digest: node.digest });
    const rootHeight = node.block.height;
    for (const [key, p] of this.pendingProposals) if (p.msg.block.height <= rootHeight) this.pendingProposals.delete(key);
    for (const [key, b] of this.syncBuffer) if (b.block.height <= rootHeight) this.dropSynced(key, b.block);
    for (const [parentKey, children] of this.syncChildren) {
      if (children.every((k) => !this.syncBuffer.has(k))) this.syncChildren.delete(parentKey);
    }
  }

  private advanceView(next: View, reason: 'qc' | 'tc'): void {
    if (next <= this.currentView) return;
    this.currentView = next;
    this.consecutiveTimeouts = reason === 'qc' ? 0 : this.consecutiveTimeouts + 1;
    this.viewDeadlineUs = this.nowUs + this.viewTimeoutUs();
    this.myTimeout = null;
    this.proposeRetryAtUs = null;
    // Votes of view v−1 hold the attachments for proposing in v; anything older is useless now.
    for (const v of this.votes.keys()) if (v < next - 1) this.votes.delete(v);
    for (const v of this.timeouts.keys()) if (v < next - 1) this.timeouts.delete(v);
    this.tryPropose();
    // A proposal for this view may have arrived before its certificate did.
    for (const node of this.tree.pending()) if (node.block.view === next) this.tryVote(node);
  }

  private viewTimeoutUs(): number {
    const { viewTimeoutMs, maxViewTimeoutMs } = this.config.protocol;
    const exponent = Math.min(this.consecutiveTimeouts, MAX_BACKOFF_EXPONENT);
    return Math.min(viewTimeoutMs * 2 ** exponent, maxViewTimeoutMs) * 1000;
  }

  // ------------------------------------------------------------------------------------------
  // Timeouts

  private localTimeout(): void {
    if (this.suspended) return;
    const v = this.currentView;
    this.viewDeadlineUs = this.nowUs + this.viewTimeoutUs();
    if (!this.safety.canTimeout(v)) return;
    this.safety.recordTimeout(v);
    this.out.voted = true;
    const highQc = this.safety.highQc;
    const highQcNode = this.tree.lookup(highQc.block);
    const attachment = highQcNode === undefined ? new Uint8Array(0) : this.app.attachment(highQcNode.block, highQcNode.digest, this.nowUs);
    const msg: TimeoutMsg = {
      type: 'timeout',
      view: v,
      voter: this.self,
      highQc,
      sig: this.signer.sign(timeoutMessage(this.config.clusterId, v, highQc.view)),
      attachment,
      lastTc: this.safety.lastTc,
    };
    this.myTimeout = msg;
    this.out.send.push({ to: 'all', msg });
    this.onTimeout(this.self, msg);
  }

  private onTimeout(from: ReplicaId, t: TimeoutMsg): void {
    if (t.voter !== from) {
      this.fault(from, 'badSignature', `timeout claims voter ${t.voter}`);
      return;
    }
    if (t.highQc.view >= t.view) {
      this.fault(from, 'badCertificate', 'timeout reports a high QC at or above its own view');
      return;
    }
    if (from !== this.self) {
      const message = timeoutMessage(this.config.clusterId, t.view, t.highQc.view);
      if (!this.crypto.verify(this.config.replicas[from]!.key, message, t.sig)) {
        this.fault(from, 'badSignature', `timeout for view ${t.view}`);
        return;
      }
      const qcCheck = this.certs.checkQc(t.highQc);
      if (!qcCheck.ok) {
        this.fault(from, 'badCertificate', qcCheck.reason);
        return;
      }
      if (t.lastTc !== null) {
        const tcCheck = this.certs.checkTc(t.lastTc);
        if (!tcCheck.ok) {
          this.fault(from, 'badCertificate', tcCheck.reason);
          return;
        }
      }
    }
    this.processQc(t.highQc, from);
    if (t.lastTc !== null) this.processTc(t.lastTc);
    // Checked after the certificates: an honest timeout is for a view its sender entered by its
    // high QC or last TC, which move a replica that lagged (a restarted one) right up to it.
    if (t.view > this.currentView + MAX_VIEW_LOOKAHEAD) {
      this.fault(from, 'farFutureView', `timeout for view ${t.view} while in ${this.currentView}, with certificates only up to view ${Math.max(t.highQc.view, t.lastTc?.view ?? 0)}`);
      return;
    }
    if (t.view < this.currentView) {
      this.helpLaggard(from, t.view);
      return;
    }
    let entries = this.timeouts.get(t.view);
    if (entries === undefined) {
      entries = new Map();
      this.timeouts.set(t.view, entries);
    }
    if (entries.has(from)) return;
    entries.set(from, {
      highQcView: t.highQc.view,
      sig: t.sig,
      attachment: { from, base: t.highQc.block, bytes: t.attachment },
    });
    // f+1 timeouts include a correct replica's: join them, so a view cannot stall half timed out.
    if (t.view === this.currentView && entries.size >= this.config.f + 1 && this.myTimeout?.view !== t.view) {
      this.localTimeout();
    }
    if (entries.size === this.config.q) {
      const tc = buildTc(t.view, entries, this.config.n);
      this.certs.trustBuiltTc(tc);
      this.processTc(tc);
    }
  }

  /** A replica still timing out in an old view gets the newest proposal, whose certificates move it on. */
  private helpLaggard(peer: ReplicaId, theirView: View): void {
    if (peer === this.self || this.latestProposal === null || this.latestProposal.block.view <= theirView) return;
    if ((this.helpedLaggard.get(peer) ?? -1) >= this.currentView) return;
    this.helpedLaggard.set(peer, this.currentView);
    this.out.send.push({ to: peer, msg: this.latestProposal });
  }

  // ------------------------------------------------------------------------------------------
  // Block sync

  private requestBlocks(digest: Digest, peer: ReplicaId): void {
    if (this.suspended) return;
    const key = toHex(digest);
    if (this.outstandingSync.has(key) || this.outstandingSync.size >= MAX_OUTSTANDING_SYNC) return;
    if (peer === this.self) peer = this.nextPeer(peer);
    this.outstandingSync.set(key, { digest, peer, deadlineUs: this.nowUs + this.syncTimeoutUs(), attempts: 0 });
    this.sendTo(peer, { type: 'blockRequest', digest, maxBlocks: MAX_SYNC_BLOCKS });
  }

  private onBlockRequest(from: ReplicaId, req: BlockRequestMsg): void {
    let node = this.tree.lookup(req.digest);
    if (node === undefined) {
      this.out.serveFromStorage.push({ to: from, digest: req.digest, maxBlocks: req.maxBlocks });
      return;
    }
    const blocks: Block[] = [];
    let bytes = 0;
    const max = Math.min(req.maxBlocks, MAX_SYNC_BLOCKS);
    while (node !== undefined && blocks.length < max && node.block.height > 0) {
      bytes += node.block.payload.length + BLOCK_OVERHEAD_BYTES;
      if (blocks.length > 0 && bytes > MAX_SYNC_RESPONSE_BYTES) break;
      blocks.push(node.block);
      node = this.tree.lookup(node.block.parent);
    }
    if (blocks.length > 0) this.out.send.push({ to: from, msg: { type: 'blockResponse', blocks } });
  }

  private onBlockResponse(from: ReplicaId, resp: BlockResponseMsg): void {
    if (resp.blocks.length === 0) return;
    const digests = resp.blocks.map((b) => blockDigest(this.crypto, b));
    const request = this.outstandingSync.get(toHex(digests[0]!));
    if (request === undefined) return; // unsolicited or already answered
    for (let i = 0; i < resp.blocks.length; i++) {
      const block = resp.blocks[i]!;
      const problem = this.checkSyncedBlock(block, i === 0 ? null : resp.blocks[i - 1]!, digests[i]!);
      if (problem !== null) {
        this.fault(from, 'badSyncResponse', problem);
        request.deadlineUs = this.nowUs; // ask someone else at the next tick
        return;
      }
    }
    this.outstandingSync.delete(toHex(digests[0]!));
    let oldest: { block: Block; digest: Digest } | null = null;
    for (let i = 0; i < resp.blocks.length; i++) {
      if (this.tree.lookup(digests[i]!) !== undefined) break;
      if (this.syncBuffer.size >= MAX_SYNC_BUFFER_BLOCKS || this.syncBufferBytes >= MAX_SYNC_BUFFER_BYTES) break;
      oldest = { block: resp.blocks[i]!, digest: digests[i]! };
      this.bufferSynced(oldest.block, oldest.digest);
    }
    if (oldest === null) return;
    const parentKey = toHex(oldest.block.parent);
    if (this.tree.getByKey(parentKey) !== undefined) {
      this.insertSyncedChildren(parentKey);
    } else if (oldest.block.height - 1 > this.tree.root.block.height) {
      this.requestBlocks(oldest.block.parent, from);
    }
    // Otherwise the chain reaches the committed height on another branch: a fork that lost, which
    // an honest peer serves when asked for a stale leader's parent. Every block in it carried a
    // valid QC, so there is nothing to report; it is dropped with the next commit.
  }

  /** `newer` is the block listed before this one (its child), or null for the first. */
  private checkSyncedBlock(block: Block, newer: Block | null, digest: Digest): string | null {
    if (newer !== null && !bytesEqual(newer.parent, digest)) return 'blocks are not a parent chain';
    if (!bytesEqual(block.parent, block.justify.block)) return 'parent is not the block its QC certifies';
    if (block.view <= block.justify.view || block.height === 0) return 'malformed block';
    const check = this.certs.checkQc(block.justify);
    return check.ok ? null : check.reason;
  }

  private bufferSynced(block: Block, digest: Digest): void {
    const key = toHex(digest);
    if (this.syncBuffer.has(key)) return;
    this.syncBuffer.set(key, { block, digest });
    this.syncBufferBytes += block.payload.length + BLOCK_OVERHEAD_BYTES;
    const parentKey = toHex(block.parent);
    const siblings = this.syncChildren.get(parentKey);
    if (siblings === undefined) this.syncChildren.set(parentKey, [key]);
    else siblings.push(key);
  }

  private dropSynced(key: string, block: Block): void {
    if (this.syncBuffer.delete(key)) this.syncBufferBytes -= block.payload.length + BLOCK_OVERHEAD_BYTES;
  }

  /** Inserts the buffered descendants of a block that is now in the tree, oldest first, without
   *  recursion (a replica catching up may connect thousands of blocks at once). */
  private insertSyncedChildren(parentKey: string): void {
    const queue = [parentKey];
    while (queue.length > 0) {
      const key = queue.shift()!;
      const children = this.syncChildren.get(key);
      if (children === undefined) continue;
      this.syncChildren.delete(key);
      for (const childKey of children) {
        const entry = this.syncBuffer.get(childKey);
        if (entry === undefined) continue;
        this.dropSynced(childKey, entry.block);
        if (this.tree.insert(entry.block, entry.digest, null) !== 'inserted') continue;
        this.out.persist.push({ kind: 'block', digest: entry.digest, block: entry.block });
        this.safety.observeQc(entry.block.justify);
        this.afterInsert(this.tree.getByKey(childKey)!);
        queue.push(childKey);
      }
    }
  }

  /** Everything that was waiting for a block to arrive. */
  private afterInsert(node: BlockNode): void {
    const parent = this.tree.parentOf(node);
    if (parent !== undefined) this.onCertified(parent, node.block.justify);
    const qc = this.awaitingQc.get(node.key);
    if (qc !== undefined) {
      this.awaitingQc.delete(node.key);
      this.onCertified(node, qc);
    }
    for (const [key, p] of this.pendingProposals) {
      if (!bytesEqual(p.msg.block.parent, node.digest)) continue;
      this.pendingProposals.delete(key);
      this.onProposal(p.from, p.msg);
    }
    if (this.tree.get(node.digest) !== undefined) this.tryPropose();
  }

  private syncTimeoutUs(): number {
    return (this.config.protocol.viewTimeoutMs * 1000) / 2;
  }

  // ------------------------------------------------------------------------------------------
  // Helpers

  private sendTo(to: Destination, msg: ConsensusMsg): void {
    if (to === this.self) {
      this.onMessage(this.self, msg);
      return;
    }
    this.out.send.push({ to, msg });
  }

  private nextPeer(after: ReplicaId): ReplicaId {
    let next = (after + 1) % this.config.n;
    if (next === this.self) next = (next + 1) % this.config.n;
    return next as ReplicaId;
  }

  private fault(peer: ReplicaId, kind: PeerFaultKind, detail: string): void {
    this.out.faults.push({ peer, kind, detail });
  }
}
