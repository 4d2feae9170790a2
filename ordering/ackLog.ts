/**
 * The acks a replica has given, by slot, kept until a committed block covers their slot: every seal
 * lists every ack in its range, whenever it was given (DESIGN.md "Consensus phase"). Also answers
 * a repeated Sequence for the same OC with the same ack.
 */
import { toHex } from '../common/bytes.js';
import type { Slot } from '../common/ids.js';
import { MAX_SEAL_ENTRIES } from '../common/limits.js';
import type { OrderingCert, SealEntry } from '../common/messages.js';
import { compareEntries } from './seal.js';

export interface AckRecord {
  readonly entry: SealEntry;
  readonly slot: Slot;
  readonly oc: OrderingCert;
  /** This replica's signature on the ack, to answer a repeated Sequence identically. */
  readonly sig: Uint8Array;
}

export interface SealContent {
  readonly toSlot: Slot;
  readonly entries: SealEntry[];
  readonly ocs: OrderingCert[];
}

export class AckLog {
  private readonly bySlot = new Map<number, AckRecord[]>();
  /** Slots that hold acks, ascending. */
  private slots: number[] = [];
  private readonly byKey = new Map<string, AckRecord>();

  get size(): number {
    return this.byKey.size;
  }

  countInSlot(slot: Slot): number {
    return this.bySlot.get(slot)?.length ?? 0;
  }

  find(digestHex: string, ocHashHex: string): AckRecord | undefined {
    return this.byKey.get(digestHex + ocHashHex);
  }

  add(record: AckRecord): void {
    const key = toHex(record.entry.digest) + toHex(record.entry.ocHash);
    if (this.byKey.has(key)) return;
    this.byKey.set(key, record);
    let list = this.bySlot.get(record.slot);
    if (list === undefined) {
      list = [];
      this.bySlot.set(record.slot, list);
      this.insertSlot(record.slot);
    }
    list.push(record);
  }

  /**
   * The seal content for (fromSlot, upTo]: every ack in that range, sorted. If they exceed
   * MAX_SEAL_ENTRIES the range is cut at a slot boundary (a seal for a shorter range is still
   * complete for that range); a single slot always fits, since acks per slot are capped lower.
   */
  sealContent(fromSlot: Slot, upTo: Slot): SealContent {
    const entries: SealEntry[] = [];
    const ocs: OrderingCert[] = [];
    let toSlot = upTo;
    let i = this.firstSlotAbove(fromSlot);
    for (; i < this.slots.length && this.slots[i]! <= upTo; i++) {
      const records = this.bySlot.get(this.slots[i]!)!;
      if (entries.length + records.length > MAX_SEAL_ENTRIES && entries.length > 0) {
        toSlot = (this.slots[i]! - 1) as Slot;
        break;
      }
      for (const r of records) {
        entries.push(r.entry);
        ocs.push(r.oc);
      }
    }
    // Each entry has its own OC (an ocHash covers the digest), so the OCs follow the entries' order.
    const order = entries.map((_, k) => k).sort((a, b) => compareEntries(entries[a]!, entries[b]!));
    return { toSlot, entries: order.map((k) => entries[k]!), ocs: order.map((k) => ocs[k]!) };
  }

  /** The lowest slot above `slot` holding an ack, or null: where this replica's next seal will
   *  list something new. */
  lowestSlotAbove(slot: Slot): Slot | null {
    const i = this.firstSlotAbove(slot);
    return i < this.slots.length ? (this.slots[i]! as Slot) : null;
  }

  /** Forgets acks at or below a slot that a committed block covers; returns the forgotten ones. */
  pruneThrough(slot: Slot): AckRecord[] {
    const pruned: AckRecord[] = [];
    let cut = 0;
    while (cut < this.slots.length && this.slots[cut]! <= slot) {
      for (const r of this.bySlot.get(this.slots[cut]!)!) {
        this.byKey.delete(toHex(r.entry.digest) + toHex(r.entry.ocHash));
        pruned.push(r);
      }
      this.bySlot.delete(this.slots[cut]!);
      cut++;
    }
    if (cut > 0) this.slots = this.slots.slice(cut);
    return pruned;
  }

  private firstSlotAbove(slot: number): number {
    let lo = 0;
    let hi = this.slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.slots[mid]! <= slot) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insertSlot(slot: number): void {
    const at = this.firstSlotAbove(slot);
    this.slots.splice(at, 0, slot);
  }
}
