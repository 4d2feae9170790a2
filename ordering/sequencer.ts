/**
 * Phase 1 and phase 2 at a replica (DESIGN.md "Phase 1 — timestamps", "Phase 2 — sequencing"):
 * signed timestamps for submitted batches whose sender, keys and signatures pass (batchCheck.ts),
 * kept pending; acks for sequenced ones, made durable before they leave and kept in the ack log
 * until a committed block covers their slot. A repeated Sequence of an executed batch gets its
 * Executed notice again, but only with a valid OC and only from the batch's collector.
 */
import { readBatchHeader, type BatchHeader } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import { MAX_BATCH_LIFETIME_US, MAX_BLOCK_ENTRIES } from '../common/limits.js';
import type { Message, RefusalReason, ReplicaToCollectorMsg, SealEntry, SequenceMsg } from '../common/messages.js';
import { RefusalReason as Refusal } from '../common/messages.js';
import { ackMessage, timestampMessage } from '../common/signing.js';
import { AckLog } from './ackLog.js';
import type { Admission } from './admission.js';
import type { BatchChecker, BatchOrigin } from './batchCheck.js';
import type { ClientIdentity } from './clientKeys.js';
import type { KeptNotice } from './execution.js';
import type { BatchStore } from './batchStore.js';
import type { CoreContext } from './context.js';
import type { SealedFrontier } from './frontier.js';
import type { OcVerifier } from './oc.js';
import { PendingBatches } from './pending.js';
import { SlotShares } from './slotShares.js';
import { Timestamper } from './timestamper.js';
import type { ClientTriage, QueuedSubmissions, RecoveredOrdering, Source } from './types.js';

export interface SequencerParts {
  readonly frontier: SealedFrontier;
  readonly batches: BatchStore;
  readonly ocs: OcVerifier;
  /** Sends a reply back the way its request came. */
  readonly reply: (to: Source, msg: ReplicaToCollectorMsg) => void;
  /** The Executed notice of a batch this replica executed, if it still has it. */
  readonly executedNotice: (digestKey: string) => KeptNotice | undefined;
  readonly checker: BatchChecker;
  /** Per-key budgets of phase-1 work. */
  readonly admission: Admission;
  /** The key a client connection proved (undefined: none yet). */
  readonly identityOf: (conn: number) => ClientIdentity | undefined;
  /** Called when a slot gets its first ack here. */
  readonly onFirstAckInSlot: (slot: Slot) => void;
}

const sourceKey = (s: Source): string => (s.kind === 'client' ? `c${s.conn}` : s.kind === 'peer' ? `p${s.replica}` : 'l');

export class Sequencer {
  readonly pending = new PendingBatches();
  readonly acks = new AckLog();
  private readonly timestamper: Timestamper;
  /** A block cannot end inside a slot, and q seals may list different entries of one slot, so a
   *  slot's acks are capped (the protocol's maxAcksPerSlot) such that q full seals of one slot
   *  still fit MAX_BLOCK_ENTRIES. */
  readonly maxAcksPerSlot: number;
  /** Each source's part of the slots' ack capacity. */
  readonly shares: SlotShares;
  private readonly refusalCounts: Record<string, number> = {};

  constructor(
    private readonly ctx: CoreContext,
    private readonly parts: SequencerParts,
    recovered: RecoveredOrdering,
  ) {
    this.maxAcksPerSlot = Math.min(ctx.config.protocol.maxAcksPerSlot, Math.floor(MAX_BLOCK_ENTRIES / ctx.config.q));
    this.shares = new SlotShares(this.maxAcksPerSlot);
    this.timestamper = new Timestamper(ctx.slots.firstTimestampUs, recovered.tsReservationUs);
    for (const a of recovered.acks) this.acks.add({ entry: a.entry, slot: ctx.slots.slotOf(a.entry.ts), oc: a.oc, sig: a.sig });
  }

  get refusals(): Readonly<Record<string, number>> {
    return this.refusalCounts;
  }

  refuse(to: Source, digest: Digest, reason: RefusalReason, frontier = 0): void {
    this.refusalCounts[reason] = (this.refusalCounts[reason] ?? 0) + 1;
    this.parts.reply(to, { type: 'refused', digest, replica: this.ctx.self, reason, frontier });
  }

  /** Forgets what concerns slots at or below a committed one. */
  pruneThrough(slot: Slot): ReturnType<AckLog['pruneThrough']> {
    this.shares.pruneThrough(slot);
    return this.acks.pruneThrough(slot);
  }

  /** What a client connection's message asks of phase 1 or 2 before it is stepped (see
   *  ClientTriage): answered from maps and budgets, without hashing or verifying anything. */
  triage(conn: number, msg: Message, nowUs: number, queued: QueuedSubmissions): ClientTriage {
    if (msg.type === 'sequence') return this.pending.get(toHex(msg.oc.digest)) === undefined ? 'normal' : 'urgent';
    if (msg.type !== 'submit') return 'normal';
    const key = this.parts.identityOf(conn)?.hex;
    if (key === undefined) return 'normal';
    return this.parts.admission.wouldAdmitBatches(key, queued.batches + 1, queued.bytes + msg.batch.length, nowUs) ? 'normal' : 'overBudget';
  }

  onSubmit(source: Source, batch: Uint8Array): void {
    const { ctx } = this;
    const digest = ctx.crypto.sha256(batch);
    if (batch.length > ctx.config.protocol.maxBatchBytes) return this.refuse(source, digest, Refusal.BadBatch);
    const header = readBatchHeader(batch);
    if (!header.ok) return this.refuse(source, digest, Refusal.BadBatch);
    const { expiresAtUs } = header.value;
    if (expiresAtUs <= ctx.nowUs || expiresAtUs > ctx.nowUs + MAX_BATCH_LIFETIME_US) return this.refuse(source, digest, Refusal.Expired);
    const key = toHex(digest);
    const budgetKey = this.budgetKeyOf(source);
    if (budgetKey !== null && !this.parts.admission.admitBatch(budgetKey, batch.length, ctx.nowUs, source.kind === 'peer')) {
      return this.refuse(source, digest, Refusal.Overloaded);
    }
    const refusal = this.parts.checker.check(batch, key, header.value, this.originOf(source), ctx.nowUs);
    if (refusal !== null) return this.refuse(source, digest, refusal);
    const existing = this.pending.get(key);
    if (existing !== undefined && ctx.slots.slotOf(existing.ts) > this.parts.frontier.slot) {
      // The same batch again (a lost reply): the same timestamp, not a second one.
      this.parts.reply(source, { type: 'tsReply', digest, stamp: { replica: ctx.self, ts: existing.ts, sig: existing.tsSig } });
      return;
    }
    // After a restart the next timestamp may lie ahead of the clock (its durable reservation): a
    // timestamp past the expiry would let an OC's median pass it, and executed digests are
    // forgotten by expiry (ordering/execution.ts), so none is given.
    if (this.timestamper.peek(ctx.nowUs) >= expiresAtUs) return this.refuse(source, digest, Refusal.Expired);
    const { ts, reserveUntilUs } = this.timestamper.next(ctx.nowUs);
    if (reserveUntilUs !== null) ctx.out.persist.push({ kind: 'tsReservation', untilUs: reserveUntilUs });
    const sig = ctx.signer.sign(timestampMessage(ctx.config.clusterId, digest, ts, ctx.self));
    this.pending.add({
      key,
      digest,
      bytes: batch,
      header: header.value,
      source: sourceKey(source),
      ts,
      tsSig: sig,
      expiresSlot: ctx.slots.slotOf(expiresAtUs),
    });
    this.parts.reply(source, { type: 'tsReply', digest, stamp: { replica: ctx.self, ts, sig } });
  }

  onSequence(source: Source, msg: SequenceMsg): void {
    const { ctx, parts } = this;
    const { oc } = msg;
    const digest = oc.digest;
    const key = toHex(digest);
    const own = this.pending.get(key);
    const check = parts.ocs.check(oc, own === undefined ? undefined : { replica: ctx.self, ts: own.ts, sig: own.tsSig });
    if (!check.ok) return this.refuse(source, digest, Refusal.BadCert);
    // Executed already: the notice again, to its collector only (issue 11, finding 6).
    const kept = parts.executedNotice(key);
    if (kept !== undefined && this.isCollector(source, kept.collectorKey)) {
      parts.reply(source, kept.notice);
      return;
    }
    const ocHashHex = toHex(check.ocHash);
    const previous = this.acks.find(key, ocHashHex);
    if (previous !== undefined) {
      parts.reply(source, { type: 'ack', digest, ocHash: check.ocHash, replica: ctx.self, sig: previous.sig });
      return;
    }
    let bytes = own?.bytes ?? parts.batches.get(key);
    let header: BatchHeader | undefined = own?.header;
    if (bytes === undefined && msg.batch !== null && toHex(ctx.crypto.sha256(msg.batch)) === key) bytes = msg.batch;
    if (bytes === undefined) return this.refuse(source, digest, Refusal.NeedBytes);
    if (header === undefined) {
      const parsed = readBatchHeader(bytes);
      if (!parsed.ok) return this.refuse(source, digest, Refusal.BadBatch);
      header = parsed.value;
    }
    const median = check.ts;
    const slot = ctx.slots.slotOf(median);
    const frontier = parts.frontier.slot;
    if (slot <= frontier) return this.refuse(source, digest, Refusal.Late, frontier);
    if (median > ctx.nowUs + ctx.config.protocol.deltaUs) return this.refuse(source, digest, Refusal.Early);
    if (median > header.expiresAtUs) return this.refuse(source, digest, Refusal.Expired);
    const from = sourceKey(source);
    if (this.acks.countInSlot(slot) >= this.maxAcksPerSlot || this.shares.full(slot, from)) return this.refuse(source, digest, Refusal.Busy);

    if (parts.batches.putDurable(key, bytes, header.expiresAtUs)) {
      ctx.out.persist.push({ kind: 'batch', digest, bytes });
    }
    const entry: SealEntry = { digest, ts: median, ocHash: check.ocHash };
    const sig = ctx.signer.sign(ackMessage(ctx.config.clusterId, digest, check.ocHash, ctx.self));
    this.acks.add({ entry, slot, oc, sig });
    this.shares.add(slot, from);
    ctx.out.persist.push({ kind: 'ack', entry, slot, oc, sig });
    this.pending.remove(key);
    parts.reply(source, { type: 'ack', digest, ocHash: check.ocHash, replica: ctx.self, sig });
    if (this.acks.countInSlot(slot) === 1) parts.onFirstAckInSlot(slot);
  }

  /** Whose budget a submission spends: the key its connection proved, or the gateway replica's;
   *  null for this replica's own gateway batches (their thin commands were budgeted one by one),
   *  and for an unauthenticated connection (refused anyway). */
  private budgetKeyOf(source: Source): string | null {
    if (source.kind === 'client') return this.parts.identityOf(source.conn)?.hex ?? null;
    if (source.kind === 'peer') return toHex(this.ctx.config.replicas[source.replica]!.publicKey);
    return null;
  }

  /** Phase 1's view of where a request came from. */
  private originOf(source: Source): BatchOrigin {
    if (source.kind === 'client') return { kind: 'client', identity: this.parts.identityOf(source.conn) ?? null };
    return source;
  }

  /** The source speaks for this collector key: a connection proven to hold it, or the replica whose key it is. */
  private isCollector(source: Source, collectorKey: string): boolean {
    const { ctx, parts } = this;
    if (source.kind === 'client') return parts.identityOf(source.conn)?.hex === collectorKey;
    const replica = source.kind === 'peer' ? source.replica : ctx.self;
    return toHex(ctx.config.replicas[replica]!.publicKey) === collectorKey;
  }
}
