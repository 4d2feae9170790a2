/**
 * Seals: a replica's signed statement "I have sealed up to slot T; these are all my acks with ts
 * in slots (from, T]", entries sorted by (ts, digest, ocHash). The signature covers a hash of the
 * entries, so a block can carry the entries once and each seal as a bitmap over them.
 */
import { compareBytes } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { Seal, SealEntry } from '../common/messages.js';
import { sealEntriesHashInput, sealMessage } from '../common/signing.js';
import type { SlotClock } from './slots.js';

/** The order of entries everywhere: by timestamp, then digest, then ocHash. */
export function compareEntries(a: SealEntry, b: SealEntry): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  const byDigest = compareBytes(a.digest, b.digest);
  return byDigest !== 0 ? byDigest : compareBytes(a.ocHash, b.ocHash);
}

/** True when entries are strictly increasing (sorted, no duplicates). */
export function strictlySorted(entries: readonly SealEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) if (compareEntries(entries[i - 1]!, entries[i]!) >= 0) return false;
  return true;
}

export function sealSigningMessage(
  config: ClusterConfig,
  crypto: CryptoBackend,
  replica: ReplicaId,
  fromSlot: Slot,
  toSlot: Slot,
  entries: readonly SealEntry[],
): Uint8Array {
  const entriesHash: Digest = crypto.sha256(sealEntriesHashInput(entries));
  return sealMessage(config.clusterId, replica, fromSlot, toSlot, entries.length, entriesHash);
}

export function signSeal(
  config: ClusterConfig,
  crypto: CryptoBackend,
  signer: Signer,
  replica: ReplicaId,
  fromSlot: Slot,
  toSlot: Slot,
  entries: readonly SealEntry[],
): Seal {
  const sig = signer.sign(sealSigningMessage(config, crypto, replica, fromSlot, toSlot, entries));
  return { replica, fromSlot, toSlot, entries, sig };
}

/**
 * A seal is well formed when its entries are strictly sorted and each lies in (fromSlot, toSlot],
 * and valid when its signer's signature covers exactly these entries and range.
 */
export function checkSeal(config: ClusterConfig, crypto: CryptoBackend, slots: SlotClock, seal: Seal): string | null {
  if (seal.toSlot < seal.fromSlot) return 'seal range is reversed';
  if (!strictlySorted(seal.entries)) return 'seal entries are not strictly sorted';
  for (const e of seal.entries) {
    const s = slots.slotOf(e.ts);
    if (s <= seal.fromSlot || s > seal.toSlot) return `seal entry at slot ${s} outside (${seal.fromSlot}, ${seal.toSlot}]`;
  }
  const key = config.replicas[seal.replica]?.key;
  if (key === undefined) return `seal by unknown replica ${seal.replica}`;
  const message = sealSigningMessage(config, crypto, seal.replica, seal.fromSlot, seal.toSlot, seal.entries);
  return crypto.verify(key, message, seal.sig) ? null : `bad seal signature of replica ${seal.replica}`;
}
