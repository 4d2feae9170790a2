/**
 * Batch bytes a replica holds: in memory until executed (or until they can no longer be), and a
 * record of which it holds durably, with each batch's expiry — a replica votes for a block only if
 * it durably holds the bytes of every entry, and only if no entry's timestamp lies past its batch's
 * expiry. Durable records are forgotten once the batch's expiry slot is committed, since a digest
 * cannot enter a block after that.
 */
import { readBatchHeader } from '../common/batch.js';
import type { Slot } from '../common/ids.js';
import { ExpiryHeap } from './expiryHeap.js';
import type { SlotClock } from './slots.js';

/** The expiry of a batch, from its header; 0 (long past) for bytes whose header does not parse. */
export function batchExpiryUs(bytes: Uint8Array): number {
  const header = readBatchHeader(bytes);
  return header.ok ? header.value.expiresAtUs : 0;
}

export class BatchStore {
  private readonly memory = new Map<string, Uint8Array>();
  /** Durably held batches, with their expiry (µs). */
  private readonly durable = new Map<string, number>();
  /** The durable records by expiry slot, for pruning (one entry per record). */
  private readonly byExpiry = new ExpiryHeap();
  private memoryBytes = 0;

  constructor(private readonly slots: SlotClock) {}

  get bytesInMemory(): number {
    return this.memoryBytes;
  }

  get countInMemory(): number {
    return this.memory.size;
  }

  get(key: string): Uint8Array | undefined {
    return this.memory.get(key);
  }

  isDurable(key: string): boolean {
    return this.durable.has(key);
  }

  /** The expiry of a durably held batch, or undefined. */
  expiresAtUs(key: string): number | undefined {
    return this.durable.get(key);
  }

  /** Records bytes that are (about to be) durable; true if the caller must persist them. */
  putDurable(key: string, bytes: Uint8Array, expiresAtUs: number = batchExpiryUs(bytes)): boolean {
    if (!this.memory.has(key)) {
      this.memory.set(key, bytes);
      this.memoryBytes += bytes.length;
    }
    if (this.durable.has(key)) return false;
    this.durable.set(key, expiresAtUs);
    this.byExpiry.push(this.slots.slotOf(expiresAtUs), key);
    return true;
  }

  /** Keeps bytes in memory only (the replica already has them durably, e.g. after a restart). */
  putRecovered(key: string, bytes: Uint8Array): void {
    this.putDurable(key, bytes);
  }

  /** Drops the in-memory copy (the durable copy stays in storage). */
  release(key: string): void {
    const bytes = this.memory.get(key);
    if (bytes === undefined) return;
    this.memory.delete(key);
    this.memoryBytes -= bytes.length;
  }

  /** Forgets durable records whose expiry slot is committed; returns their keys. */
  pruneDurable(committedThrough: Slot): string[] {
    const pruned: string[] = [];
    while (this.byExpiry.peekSlot() <= committedThrough) {
      const key = this.byExpiry.pop();
      this.durable.delete(key);
      pruned.push(key);
    }
    return pruned;
  }
}
