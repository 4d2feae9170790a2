/**
 * Seals: a replica's signed statement "I have sealed up to slot T; these are all my acks with ts
 * in slots (from, T]", entries sorted by (ts, digest, ocHash). The signature covers a hash of the
 * entries, so a block can carry the entries once and each seal as a bitmap over them.
 */
import { compareBytes, toHex } from '../common/bytes.js';
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

/** Seal signatures remembered as verified: a leader checks each seal when its vote arrives and
 *  again inside its own block, and forgetting only costs a re-verification. A few views' worth. */
const VERIFIED_SEAL_CACHE_ENTRIES = 1_024;

/**
 * Verifies seal signatures once per replica (DESIGN.md "no signature checked twice"). The key
 * holds every byte the verification depends on (the signing message names the sealer, the range
 * and the entries' hash; the signature), so a seal with other entries or another signature is a
 * miss. Only successes are remembered.
 */
export class SealVerifier {
  private readonly verified = new Set<string>();

  constructor(
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
  ) {}

  verify(replica: ReplicaId, fromSlot: Slot, toSlot: Slot, entries: readonly SealEntry[], sig: Uint8Array): boolean {
    const key = this.config.replicas[replica]?.key;
    if (key === undefined) return false;
    const message = sealSigningMessage(this.config, this.crypto, replica, fromSlot, toSlot, entries);
    const memo = toHex(message) + toHex(sig);
    if (this.verified.has(memo)) return true;
    if (!this.crypto.verify(key, message, sig)) return false;
    this.remember(memo);
    return true;
  }

  /**
   * Signs this replica's own seal and remembers it as verified: it comes back inside the blocks
   * that use it, and a signature this replica made over exactly these bytes needs no check (any
   * other signature or content is a different memo, and is verified).
   */
  signOwn(signer: Signer, replica: ReplicaId, fromSlot: Slot, toSlot: Slot, entries: readonly SealEntry[]): Seal {
    const message = sealSigningMessage(this.config, this.crypto, replica, fromSlot, toSlot, entries);
    const sig = signer.sign(message);
    this.remember(toHex(message) + toHex(sig));
    return { replica, fromSlot, toSlot, entries, sig };
  }

  private remember(memo: string): void {
    if (this.verified.size >= VERIFIED_SEAL_CACHE_ENTRIES) this.verified.clear();
    this.verified.add(memo);
  }
}

/**
 * A seal is well formed when its entries are strictly sorted and each lies in (fromSlot, toSlot],
 * and valid when its signer's signature covers exactly these entries and range.
 */
export function checkSeal(config: ClusterConfig, verifier: SealVerifier, slots: SlotClock, seal: Seal): string | null {
  if (seal.toSlot < seal.fromSlot) return 'seal range is reversed';
  if (!strictlySorted(seal.entries)) return 'seal entries are not strictly sorted';
  for (const e of seal.entries) {
    const s = slots.slotOf(e.ts);
    if (s <= seal.fromSlot || s > seal.toSlot) return `seal entry at slot ${s} outside (${seal.fromSlot}, ${seal.toSlot}]`;
  }
  if (config.replicas[seal.replica] === undefined) return `seal by unknown replica ${seal.replica}`;
  return verifier.verify(seal.replica, seal.fromSlot, seal.toSlot, seal.entries, seal.sig) ? null : `bad seal signature of replica ${seal.replica}`;
}
