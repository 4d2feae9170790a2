/**
 * Batch bytes a replica holds: in memory until executed (or until they can no longer be), and a
 * record of which it holds durably — a replica votes for a block only if it durably holds the bytes
 * of every entry. Durable records are forgotten once the batch's expiry slot is committed, since a
 * digest cannot enter a block after that.
 */
import type { Slot } from '../common/ids.js';

export class BatchStore {
  private readonly memory = new Map<string, Uint8Array>();
  private readonly durable = new Map<string, Slot>();
  private memoryBytes = 0;

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

  /** Records bytes that are (about to be) durable; true if the caller must persist them. */
  putDurable(key: string, bytes: Uint8Array, expiresSlot: Slot): boolean {
    if (!this.memory.has(key)) {
      this.memory.set(key, bytes);
      this.memoryBytes += bytes.length;
    }
    if (this.durable.has(key)) return false;
    this.durable.set(key, expiresSlot);
    return true;
  }

  /** Keeps bytes in memory only (the replica already has them durably, e.g. after a restart). */
  putRecovered(key: string, bytes: Uint8Array, expiresSlot: Slot): void {
    this.putDurable(key, bytes, expiresSlot);
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
    for (const [key, expiresSlot] of this.durable) {
      if (expiresSlot > committedThrough) continue;
      this.durable.delete(key);
      pruned.push(key);
    }
    return pruned;
  }
}
