/**
 * Block payloads (DESIGN.md "Consensus phase — seals ride on HotStuff"): a block covers the slot
 * range (from, to]; it carries q seals from q distinct replicas, each covering the whole range;
 * the union of their entries within it (sorted, each OC once), each seal as a bitmap over the union
 * plus its entries above `to` (its tail). Every validator recomputes all of it.
 *
 * A block may cover no new slot (a filler: to = from, no seals, no entries), so commits never wait
 * for time to pass, or many slots at once (after an outage: one seal per replica covers any gap).
 */
import { bitmapGet, bitmapSet, newBitmap } from '../common/bitmap.js';
import { assert } from '../common/assert.js';
import { toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId, Slot } from '../common/ids.js';
import { MAX_BLOCK_ENTRIES } from '../common/limits.js';
import type { BlockPayload, OrderingCert, PayloadSeal, Seal, SealEntry } from '../common/messages.js';
import type { OcVerifier } from './oc.js';
import { compareEntries, strictlySorted, type SealVerifier } from './seal.js';
import type { SlotClock } from './slots.js';

/** A seal the leader checked, with the OCs of its entries by ocHash (hex). */
export interface VerifiedSeal {
  readonly seal: Seal;
  readonly ocs: ReadonlyMap<string, OrderingCert>;
}

const entryKey = (e: SealEntry): string => toHex(e.digest) + e.ts.toString(36) + toHex(e.ocHash);

export function fillerPayload(from: Slot): BlockPayload {
  return { fromSlot: from, toSlot: from, entries: [], ocs: [], seals: [] };
}

/**
 * The leader's payload from the seals it received, all starting at `from`. It uses the q seals that
 * reach furthest, a reach beyond `reachCap` counting as `reachCap` (see OrderingApp.propose); the
 * block ends where the shortest of them ends, and earlier if the union would exceed
 * MAX_BLOCK_ENTRIES. Fewer than q seals, or no new slot: a filler.
 */
export function buildPayload(from: Slot, seals: readonly VerifiedSeal[], q: number, slots: SlotClock, reachCap: Slot = Infinity as Slot): BlockPayload {
  if (seals.length < q) return fillerPayload(from);
  const rank = (s: VerifiedSeal): number => Math.min(s.seal.toSlot, reachCap);
  const chosen = [...seals].sort((a, b) => rank(b) - rank(a) || a.seal.replica - b.seal.replica).slice(0, q);
  let to = Math.min(...chosen.map((c) => c.seal.toSlot)) as Slot;
  if (to <= from) return fillerPayload(from);

  const union = new Map<string, SealEntry>();
  for (const { seal } of chosen) {
    for (const e of seal.entries) if (slots.slotOf(e.ts) <= to) union.set(entryKey(e), e);
  }
  let entries = [...union.values()].sort(compareEntries);
  if (entries.length > MAX_BLOCK_ENTRIES) {
    // End the block before the slot of the first entry that does not fit, keeping whole slots.
    to = Math.max(from + 1, slots.slotOf(entries[MAX_BLOCK_ENTRIES]!.ts) - 1) as Slot;
    entries = entries.filter((e) => slots.slotOf(e.ts) <= to);
    // The replica caps acks per slot (and drops seals over it) so that one slot always fits.
    assert(entries.length <= MAX_BLOCK_ENTRIES, `one slot holds ${entries.length} entries, more than a block takes`);
  }
  const index = new Map<string, number>(entries.map((e, i) => [entryKey(e), i]));
  const ocs: OrderingCert[] = [];
  for (const e of entries) {
    const ocKey = toHex(e.ocHash);
    const oc = chosen.map((c) => c.ocs.get(ocKey)).find((x) => x !== undefined);
    ocs.push(oc!);
  }
  const payloadSeals: PayloadSeal[] = chosen.map(({ seal }) => {
    const include = newBitmap(entries.length);
    const tail: SealEntry[] = [];
    for (const e of seal.entries) {
      if (slots.slotOf(e.ts) > to) tail.push(e);
      else bitmapSet(include, index.get(entryKey(e))!);
    }
    return { replica: seal.replica, fromSlot: seal.fromSlot, toSlot: seal.toSlot, include, tail, sig: seal.sig };
  });
  return { fromSlot: from, toSlot: to, entries, ocs, seals: payloadSeals };
}

export interface ValidPayload {
  readonly payload: BlockPayload;
  /** What executes: each digest once, at its lowest (ts, ocHash), in (ts, digest) order. */
  readonly effective: readonly EffectiveEntry[];
  /** Replicas whose seals list each entry (by digest hex): they hold its bytes. */
  readonly holders: ReadonlyMap<string, readonly ReplicaId[]>;
}

export type PayloadCheck = { readonly ok: true; readonly value: ValidPayload } | { readonly ok: false; readonly reason: string };

const invalid = (reason: string): PayloadCheck => ({ ok: false, reason });

export interface PayloadContext {
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly slots: SlotClock;
  readonly ocs: OcVerifier;
  readonly seals: SealVerifier;
}

/** Every check a replica makes before voting for a payload, except holding the batch bytes. */
export function validatePayload(ctx: PayloadContext, payload: BlockPayload, parentTo: Slot): PayloadCheck {
  const { config, slots } = ctx;
  const { fromSlot: from, toSlot: to, entries, ocs, seals } = payload;
  if (from !== parentTo) return invalid(`range starts at ${from}, parent ended at ${parentTo}`);
  if (to === from) {
    if (seals.length + entries.length + ocs.length > 0) return invalid('a filler carries seals or entries');
    return { ok: true, value: { payload, effective: [], holders: new Map() } };
  }
  if (seals.length !== config.q) return invalid(`${seals.length} seals, quorum is ${config.q}`);
  if (!strictlySorted(entries)) return invalid('entries are not strictly sorted');
  for (const e of entries) {
    const s = slots.slotOf(e.ts);
    if (s <= from || s > to) return invalid(`entry at slot ${s} outside the block's range (${from}, ${to}]`);
  }

  // OCs: exactly one per entry (an ocHash covers the digest), each valid with median = ts.
  if (ocs.length !== entries.length) return invalid(`${ocs.length} OCs for ${entries.length} entries`);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const oc = ocs[i]!;
    const check = ctx.ocs.check(oc);
    if (!check.ok) return invalid(`entry ${i}: ${check.reason}`);
    if (toHex(check.ocHash) !== toHex(e.ocHash)) return invalid(`entry ${i}: OC does not match its ocHash`);
    if (check.ts !== e.ts) return invalid(`entry ${i}: timestamp ${e.ts} is not the OC's median ${check.ts}`);
    if (toHex(oc.digest) !== toHex(e.digest)) return invalid(`entry ${i}: OC is for another digest`);
  }

  // Seals: q distinct replicas, each covering the whole range, signature over its full entry list.
  const covered = new Uint8Array(entries.length);
  const holders = new Map<string, ReplicaId[]>();
  const sealers = new Set<number>();
  for (const ps of seals) {
    if (sealers.has(ps.replica)) return invalid(`two seals from replica ${ps.replica}`);
    sealers.add(ps.replica);
    if (ps.fromSlot !== from || ps.toSlot < to) return invalid(`seal of ${ps.replica} does not cover (${from}, ${to}]`);
    const listed: SealEntry[] = [];
    for (let i = 0; i < entries.length; i++) {
      if (!bitmapGet(ps.include, i)) continue;
      listed.push(entries[i]!);
      covered[i] = 1;
      const key = toHex(entries[i]!.digest);
      const list = holders.get(key);
      if (list === undefined) holders.set(key, [ps.replica]);
      else list.push(ps.replica);
    }
    for (const e of ps.tail) {
      const s = slots.slotOf(e.ts);
      if (s <= to || s > ps.toSlot) return invalid(`seal of ${ps.replica}: tail entry at slot ${s} outside (${to}, ${ps.toSlot}]`);
    }
    if (!strictlySorted(ps.tail)) return invalid(`seal of ${ps.replica}: tail is not strictly sorted`);
    listed.push(...ps.tail);
    if (!ctx.seals.verify(ps.replica, ps.fromSlot, ps.toSlot, listed, ps.sig)) return invalid(`bad seal signature of replica ${ps.replica}`);
  }
  // The union: nothing the seals do not list.
  const stray = covered.indexOf(0);
  if (stray >= 0) return invalid(`entry ${stray} is listed by no seal`);

  return { ok: true, value: { payload, effective: effectiveEntries(payload), holders } };
}

export interface EffectiveEntry {
  readonly entry: SealEntry;
  readonly oc: OrderingCert;
}

/** Each digest once, at its lowest (ts, ocHash), with its OC (a payload's OCs follow its entries
 *  one to one); entries are sorted, so the first occurrence of a digest wins. */
export function effectiveEntries(payload: BlockPayload): EffectiveEntry[] {
  const seen = new Set<string>();
  const out: EffectiveEntry[] = [];
  payload.entries.forEach((entry, i) => {
    const key = toHex(entry.digest);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ entry, oc: payload.ocs[i]! });
  });
  return out;
}
