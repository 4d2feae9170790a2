/**
 * The consensus App of the ordering layer (DESIGN.md "Consensus phase — seals ride on HotStuff"):
 * the seal each vote and timeout carries, the leader's payload built from q seals, and the checks a
 * validator makes before it votes (holding every entry's bytes durably included). It also keeps the
 * decoded payload and range end of recent blocks.
 */
import { toHex } from '../common/bytes.js';
import { decodeBlockPayload, decodeSealAttachment, encodeBlockPayload, encodeSealAttachment } from '../common/codec.js';
import type { Digest, Slot } from '../common/ids.js';
import type { Block, BlockPayload, OrderingCert } from '../common/messages.js';
import type { App, Attachment, ProposeContext, ProposeDecision, Validity } from '../consensus/types.js';
import type { AckLog } from './ackLog.js';
import type { BatchStore } from './batchStore.js';
import type { BatchSupply, Wanted } from './batchSupply.js';
import type { CoreContext } from './context.js';
import type { Executor } from './executor.js';
import type { SealedFrontier } from './frontier.js';
import type { OcVerifier } from './oc.js';
import { buildPayload, validatePayload, type PayloadContext, type VerifiedSeal } from './payload.js';
import { checkSeal, SealVerifier } from './seal.js';
import { GENESIS_SLOT } from './slots.js';

/** Blocks whose decoded payload and range end are remembered (the uncommitted chain plus recent). */
const BLOCK_INFO_CACHE = 1_024;
/** A leader whose seals list batches it lacks asks their sealers and waits at most this share of
 *  the view timeout for them before it proposes from the seals it can vouch for; meanwhile it looks
 *  again every minBlockIntervalUs (more votes may bring seals it can use). A quarter leaves the
 *  view three quarters for the votes. */
const PROPOSAL_BYTES_WAIT_SHARE = 0.25;

interface BlockInfo {
  readonly toSlot: Slot;
  readonly payload: BlockPayload | null;
  readonly hasEntries: boolean;
}

export interface OrderingAppParts {
  readonly frontier: SealedFrontier;
  readonly acks: AckLog;
  readonly batches: BatchStore;
  readonly executor: Executor;
  readonly supply: BatchSupply;
  readonly ocs: OcVerifier;
  /** Most acks a correct replica gives into one slot (Sequencer.maxAcksPerSlot). */
  readonly maxAcksPerSlot: number;
}

export class OrderingApp implements App {
  private readonly payloadCtx: PayloadContext;
  private readonly blockInfo = new Map<string, BlockInfo>();
  private readonly verifiedAttachments = new WeakMap<Attachment, VerifiedSeal | null>();
  private lastProposalUs = -Infinity;
  /** A block with entries committed here since this replica last proposed. */
  private entriesCommittedUnannounced = false;
  /** Since when the next proposal (on the parent named) waits for batch bytes its seals list. */
  private bytesWait: { readonly parent: string; readonly sinceUs: number } | null = null;

  constructor(
    private readonly ctx: CoreContext,
    private readonly parts: OrderingAppParts,
  ) {
    this.payloadCtx = { config: ctx.config, crypto: ctx.crypto, slots: ctx.slots, ocs: parts.ocs, seals: new SealVerifier(ctx.config, ctx.crypto) };
  }

  /** A block with entries committed; the next proposal announces it (followers learn of commits
   *  from the QC it carries). */
  noteCommittedEntries(): void {
    this.entriesCommittedUnannounced = true;
  }

  get commitUnannounced(): boolean {
    return this.entriesCommittedUnannounced;
  }

  /** The seal for the range after `block`, up to this replica's frontier. */
  attachment(block: Block, digest: Digest): Uint8Array {
    const { ctx, parts } = this;
    const from = this.rangeEnd(block, digest);
    if (from === null) return new Uint8Array(0);
    parts.frontier.advance(ctx.nowUs);
    if (parts.frontier.slot < from) return new Uint8Array(0);
    const content = parts.acks.sealContent(from, parts.frontier.slot);
    // Durable before the seal that relies on it leaves (persist precedes send).
    if (parts.frontier.needsPersist(content.toSlot)) ctx.out.persist.push({ kind: 'frontier', slot: content.toSlot });
    const seal = this.payloadCtx.seals.signOwn(ctx.signer, ctx.self, from, content.toSlot, content.entries);
    return encodeSealAttachment({ seal, ocs: content.ocs });
  }

  /**
   * The next block, from the seals on the votes (or timeouts) for its parent. The leader uses only
   * seals whose entries it holds durably (or can make durable from phase 1), within their batches'
   * expiry: an entry whose bytes only a Byzantine sealer holds would leave every correct validator
   * waiting, and q seals listing it would hold the range hostage. Bytes it lacks are asked of their
   * sealers; it waits a bounded time for them before proposing from the seals it can vouch for (a
   * filler if fewer than q).
   */
  propose(pc: ProposeContext): ProposeDecision {
    const { ctx, parts } = this;
    const from = this.rangeEnd(pc.parent, pc.parentDigest);
    if (from === null) return { retryAtUs: ctx.nowUs + ctx.config.protocol.idleBlockIntervalUs };
    const { q } = ctx.config;
    const seals: VerifiedSeal[] = [];
    for (const a of pc.attachments) {
      if (!(a.base.length === pc.parentDigest.length && toHex(a.base) === toHex(pc.parentDigest))) continue;
      const verified = this.verifyAttachment(a, from);
      if (verified !== null) seals.push(verified);
    }
    const { usable, wanted } = this.vouchable(seals);
    // No correct replica can have sealed past the slot before the one this clock is in (its
    // frontier is its clock − Δ, and clocks are apart by less than Δ): a seal claiming more ranks
    // as reaching only that far, so claiming to reach furthest wins no place among the q.
    const reach = ctx.slots.clockFrontier(ctx.nowUs + ctx.config.protocol.deltaUs);
    const payload = buildPayload(from, usable, q, ctx.slots, reach);
    // When to propose follows what the seals offer, whether or not their bytes are here yet.
    const offered = usable.length === seals.length ? payload : buildPayload(from, seals, q, ctx.slots, reach);
    const hasNew = offered.entries.length > 0;
    const pendingCommit = pc.uncommitted.some((d) => this.blockInfo.get(toHex(d))?.hasEntries === true);
    const { minBlockIntervalUs, idleBlockIntervalUs } = ctx.config.protocol;
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
    const sealedAtLastProposal = Math.max(from, ctx.slots.clockFrontier(this.lastProposalUs)) as Slot;
    const ownAckSlot = busy ? null : parts.acks.lowestSlotAbove(sealedAtLastProposal);
    const promptUs = ownAckSlot === null ? Infinity : Math.max(ctx.slots.sealTimeUs(ownAckSlot), this.lastProposalUs + minBlockIntervalUs);
    const dueUs = busy ? this.lastProposalUs + minBlockIntervalUs : Math.min(this.lastProposalUs + idleBlockIntervalUs, promptUs);
    if (pc.nowUs < dueUs) return { retryAtUs: dueUs };
    if (usable.length < seals.length && payload.toSlot < offered.toSlot) {
      const parentKey = toHex(pc.parentDigest);
      if (this.bytesWait?.parent !== parentKey) this.bytesWait = { parent: parentKey, sinceUs: pc.nowUs };
      const untilUs = this.bytesWait.sinceUs + ctx.config.protocol.viewTimeoutMs * 1000 * PROPOSAL_BYTES_WAIT_SHARE;
      if (pc.nowUs < untilUs) {
        parts.supply.wantForProposal(wanted);
        return { retryAtUs: Math.min(untilUs, pc.nowUs + minBlockIntervalUs) };
      }
    }
    this.bytesWait = null;
    parts.supply.endProposalWait();
    this.lastProposalUs = pc.nowUs;
    this.entriesCommittedUnannounced = false;
    return { payload: encodeBlockPayload(payload) };
  }

  /**
   * The seals whose entries — those a block on q of these seals could hold — this replica holds
   * durably, and the batches the others lack (each asked of its sealer first). A seal listing an
   * entry past its batch's expiry is dropped: no correct replica acks one.
   */
  private vouchable(seals: readonly VerifiedSeal[]): { usable: VerifiedSeal[]; wanted: Wanted[] } {
    const { ctx, parts } = this;
    const { q } = ctx.config;
    if (seals.length < q) return { usable: [...seals], wanted: [] };
    // No block on these seals ends above the q-th furthest reach among them.
    const reach = seals.map((s) => s.seal.toSlot).sort((a, b) => b - a)[q - 1]!;
    const usable: VerifiedSeal[] = [];
    const wanted: Wanted[] = [];
    for (const s of seals) {
      let lacks = false;
      let expired = false;
      for (const e of s.seal.entries) {
        if (ctx.slots.slotOf(e.ts) > reach) break;
        const key = toHex(e.digest);
        if (parts.executor.isExecuted(key)) continue;
        if (!parts.supply.holdDurably(e.digest, key)) {
          lacks = true;
          wanted.push({ digest: e.digest, holders: [s.seal.replica] });
        } else if (e.ts > parts.batches.expiresAtUs(key)!) {
          expired = true;
          break;
        }
      }
      if (expired) ctx.out.faults.push({ peer: s.seal.replica, kind: 'invalidPayload', detail: "seal lists an entry past its batch's expiry" });
      else if (!lacks) usable.push(s);
    }
    return { usable, wanted };
  }

  validate(block: Block, digest: Digest, parent: Block): Validity {
    const { ctx, parts } = this;
    const parentTo = this.rangeEnd(parent, block.parent);
    if (parentTo === null) return 'invalid';
    const decoded = decodeBlockPayload(block.payload, { replicaCount: ctx.config.n });
    if (!decoded.ok) return 'invalid';
    const check = validatePayload(this.payloadCtx, decoded.value, parentTo);
    if (!check.ok) {
      ctx.out.faults.push({ peer: block.proposer, kind: 'invalidPayload', detail: check.reason });
      return 'invalid';
    }
    const key = toHex(digest);
    this.rememberBlock(key, { toSlot: decoded.value.toSlot, payload: decoded.value, hasEntries: decoded.value.entries.length > 0 });
    // q valid seals reach `to`: at least f+1 correct replicas sealed it; acking into it is useless.
    parts.frontier.sealThrough(decoded.value.toSlot);
    // Bytes: held durably (made durable from phase 1 if pending here) or fetched — from the
    // proposer first (a correct leader proposes only entries it holds), then the sealers listing
    // them. No entry may lie past its batch's expiry: no correct replica stamps past it, so no
    // valid OC's median does (executed digests are forgotten by expiry, ordering/execution.ts).
    const missing: Wanted[] = [];
    const seen = new Set<string>();
    for (const e of decoded.value.entries) {
      const batchKey = toHex(e.digest);
      if (parts.executor.isExecuted(batchKey)) continue;
      if (!seen.has(batchKey)) {
        seen.add(batchKey);
        if (!parts.supply.holdDurably(e.digest, batchKey)) {
          missing.push({ digest: e.digest, holders: [block.proposer, ...(check.value.holders.get(batchKey) ?? [])] });
          continue;
        }
      }
      const expiresAtUs = parts.batches.expiresAtUs(batchKey);
      if (expiresAtUs !== undefined && e.ts > expiresAtUs) {
        ctx.out.faults.push({ peer: block.proposer, kind: 'invalidPayload', detail: `entry at ${e.ts} past its batch's expiry ${expiresAtUs}` });
        return 'invalid';
      }
    }
    if (missing.length === 0) return 'valid';
    parts.supply.waitForBlock(digest, key, block.view, missing);
    return 'pending';
  }

  /** The decoded payload of a committed block (null for genesis). */
  committedPayload(block: Block, digest: Digest): BlockPayload | null {
    if (block.height === 0) return null;
    const info = this.blockInfo.get(toHex(digest));
    if (info?.payload !== undefined && info.payload !== null) return info.payload;
    const decoded = decodeBlockPayload(block.payload, { replicaCount: this.ctx.config.n });
    // A committed block was validated by f+1 correct replicas; undecodable means our bug.
    if (!decoded.ok) throw new Error(`committed block ${toHex(digest)} has an undecodable payload: ${decoded.error.message}`);
    return decoded.value;
  }

  /** The slot a block's range ends at (genesis: the genesis slot); null if undecodable. */
  private rangeEnd(block: Block, digest: Digest): Slot | null {
    if (block.height === 0) return GENESIS_SLOT;
    const key = toHex(digest);
    const known = this.blockInfo.get(key);
    if (known !== undefined) return known.toSlot;
    const decoded = decodeBlockPayload(block.payload, { replicaCount: this.ctx.config.n });
    if (!decoded.ok) return null;
    this.rememberBlock(key, { toSlot: decoded.value.toSlot, payload: decoded.value, hasEntries: decoded.value.entries.length > 0 });
    return decoded.value.toSlot;
  }

  private rememberBlock(key: string, info: BlockInfo): void {
    this.blockInfo.set(key, info);
    if (this.blockInfo.size > BLOCK_INFO_CACHE) this.blockInfo.delete(this.blockInfo.keys().next().value as string);
  }

  private verifyAttachment(a: Attachment, from: Slot): VerifiedSeal | null {
    const cached = this.verifiedAttachments.get(a);
    if (cached !== undefined) return cached;
    // An empty attachment is honest: the voter's frontier had not reached the block's end yet.
    if (a.bytes.length === 0) {
      this.verifiedAttachments.set(a, null);
      return null;
    }
    const result = this.checkAttachment(a, from);
    if (typeof result === 'string') {
      this.ctx.out.faults.push({ peer: a.from, kind: 'invalidPayload', detail: `seal attachment: ${result}` });
      this.verifiedAttachments.set(a, null);
      return null;
    }
    this.verifiedAttachments.set(a, result);
    return result;
  }

  /** A usable seal: from the sender, starting at `from`, signed, every entry with a valid OC whose
   *  median is the entry's ts — a leader that used anything less would propose an invalid block.
   *  Else why not. */
  private checkAttachment(a: Attachment, from: Slot): VerifiedSeal | string {
    const { ctx, parts } = this;
    const decoded = decodeSealAttachment(a.bytes, { replicaCount: ctx.config.n });
    if (!decoded.ok || decoded.value === null) return 'does not decode';
    const { seal, ocs } = decoded.value;
    if (seal.replica !== a.from) return `sealed by ${seal.replica}, sent by ${a.from}`;
    if (seal.fromSlot !== from) return `starts at slot ${seal.fromSlot}, not ${from}`;
    const problem = checkSeal(ctx.config, this.payloadCtx.seals, ctx.slots, seal);
    if (problem !== null) return problem;
    const medians = new Map<string, number>();
    const byHash = new Map<string, OrderingCert>();
    for (const oc of ocs) {
      const check = parts.ocs.check(oc);
      if (!check.ok) return `an OC does not verify: ${check.reason}`;
      const key = toHex(check.ocHash);
      medians.set(key, check.ts);
      byHash.set(key, oc);
    }
    const perSlot = new Map<number, number>();
    for (const e of seal.entries) {
      if (medians.get(toHex(e.ocHash)) !== e.ts) return `entry at ${e.ts} is not its OC's median`;
      // More acks in one slot than a correct replica gives: a Byzantine seal that could make
      // the block exceed MAX_BLOCK_ENTRIES (a block cannot end inside a slot).
      const slot = ctx.slots.slotOf(e.ts);
      const count = (perSlot.get(slot) ?? 0) + 1;
      if (count > parts.maxAcksPerSlot) return `more than ${parts.maxAcksPerSlot} entries in slot ${slot}`;
      perSlot.set(slot, count);
    }
    return { seal, ocs: byHash };
  }
}
