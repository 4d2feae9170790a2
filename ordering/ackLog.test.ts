/**
 * The ack log answers "every ack I gave with ts in slots (from, to]", sorted, for a seal — cut at a
 * slot boundary when too long — and forgets acks once a committed block covers their slot.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import { MAX_SEAL_ENTRIES } from '../common/limits.js';
import type { SealEntry } from '../common/messages.js';
import { AckLog, type AckRecord } from './ackLog.js';
import { compareEntries } from './seal.js';

const SLOT = 5_000;

function digestOf(n: number, tag = 0): Digest {
  const d = new Uint8Array(32);
  d[0] = tag;
  d[1] = (n >>> 16) & 0xff;
  d[2] = (n >>> 8) & 0xff;
  d[3] = n & 0xff;
  return d as Digest;
}

function ack(n: number, ts: number, ocTag = 1): AckRecord {
  const digest = digestOf(n);
  const entry: SealEntry = { digest, ts, ocHash: digestOf(n, ocTag) };
  return { entry, slot: Math.floor(ts / SLOT) as Slot, oc: { digest, stamps: [] }, sig: new Uint8Array(64) };
}

const tsOf = (entries: readonly SealEntry[]): number[] => entries.map((e) => e.ts);

describe('AckLog', () => {
  it('lists exactly the acks in (from, upTo], sorted by (ts, digest, ocHash), each with its own OC', () => {
    const log = new AckLog();
    const records = [ack(1, 4 * SLOT + 7), ack(2, 2 * SLOT + 1), ack(3, 3 * SLOT + 9), ack(4, 3 * SLOT + 2), ack(5, 6 * SLOT), ack(6, 5 * SLOT - 1)];
    for (const r of records) log.add(r);
    const content = log.sealContent(2 as Slot, 4 as Slot);
    expect(content.toSlot).toBe(4);
    expect(tsOf(content.entries)).toEqual([3 * SLOT + 2, 3 * SLOT + 9, 4 * SLOT + 7, 5 * SLOT - 1]);
    content.entries.forEach((e, i) => expect(content.ocs[i]!.digest).toBe(e.digest));
    // Ties on ts are broken by digest, then ocHash.
    const tie = new AckLog();
    for (const r of [ack(9, 3 * SLOT, 2), ack(8, 3 * SLOT), ack(9, 3 * SLOT, 1)]) tie.add(r);
    const sorted = tie.sealContent(0 as Slot, 9 as Slot).entries;
    expect([...sorted].sort(compareEntries)).toEqual(sorted);
    expect(sorted).toHaveLength(3);
  });

  it('keeps one record per (digest, ocHash), and both OCs of a re-timestamped batch', () => {
    const log = new AckLog();
    log.add(ack(1, 3 * SLOT));
    log.add(ack(1, 3 * SLOT));
    log.add(ack(1, 4 * SLOT, 2));
    expect(log.size).toBe(2);
    expect(log.countInSlot(3 as Slot)).toBe(1);
    expect(log.sealContent(0 as Slot, 9 as Slot).entries).toHaveLength(2);
  });

  it('cuts a seal that would exceed MAX_SEAL_ENTRIES at a slot boundary, and the next seal continues from there', () => {
    const log = new AckLog();
    const perSlot = 1_500; // 3 slots of 1500: the third does not fit in 4096
    let n = 0;
    for (const slot of [3, 4, 8]) for (let i = 0; i < perSlot; i++) log.add(ack(n++, slot * SLOT + i));
    const first = log.sealContent(2 as Slot, 10 as Slot);
    // It reaches up to the slot that does not fit (slots 5..7 hold no acks: complete as they are).
    expect(first.toSlot).toBe(7);
    expect(first.entries).toHaveLength(2 * perSlot);
    expect(first.entries.length).toBeLessThanOrEqual(MAX_SEAL_ENTRIES);
    expect(first.entries.every((e) => Math.floor(e.ts / SLOT) <= 4)).toBe(true);
    const next = log.sealContent(first.toSlot, 10 as Slot);
    expect(next.toSlot).toBe(10);
    expect(next.entries).toHaveLength(perSlot);
  });

  it('forgets acks at or below a committed slot and returns them', () => {
    const log = new AckLog();
    for (const r of [ack(1, 3 * SLOT), ack(2, 4 * SLOT), ack(3, 5 * SLOT)]) log.add(r);
    const pruned = log.pruneThrough(4 as Slot);
    expect(tsOf(pruned.map((r) => r.entry)).sort()).toEqual([3 * SLOT, 4 * SLOT]);
    expect(tsOf(log.sealContent(0 as Slot, 9 as Slot).entries)).toEqual([5 * SLOT]);
    expect(log.find(toHex(digestOf(1)), toHex(digestOf(1, 1)))).toBeUndefined();
    expect(log.find(toHex(digestOf(3)), toHex(digestOf(3, 1)))?.entry.ts).toBe(5 * SLOT);
    expect(log.size).toBe(1);
  });
});
