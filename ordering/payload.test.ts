/**
 * Block payloads: what a leader builds from q seals and what every validator accepts. A wrong
 * union — anything but exactly the entries the q seals list in the block's range — must fail.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bitmapSet, newBitmap } from '../common/bitmap.js';
import { compareBytes, toHex } from '../common/bytes.js';
import { decodeBlockPayload, encodeBlockPayload } from '../common/codec.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import { MAX_ACKS_PER_SLOT, MAX_BLOCK_ENTRIES } from '../common/limits.js';
import type { BlockPayload, OrderingCert, PayloadSeal, SealEntry } from '../common/messages.js';
import { OcVerifier, ocHash } from './oc.js';
import { buildPayload, validatePayload, type PayloadContext, type VerifiedSeal } from './payload.js';
import { compareEntries, SealVerifier } from './seal.js';
import { SlotClock } from './slots.js';
import { certified, makeBatch, makeOc, makeSeal, testCrypto, testKeys } from './testHarness.js';

const keys = testKeys(4);
const { config } = keys;
const slots = new SlotClock(config.protocol);
const SLOT = config.protocol.slotUs;
const FROM = 2 as Slot;
/** A timestamp inside slot s. */
const inSlot = (s: number, offset = 1): number => s * SLOT + offset;
const ctx = (): PayloadContext => ({ config, crypto: testCrypto, slots, ocs: new OcVerifier(config, testCrypto), seals: new SealVerifier(config, testCrypto) });

interface Acked {
  readonly entry: SealEntry;
  readonly oc: OrderingCert;
}

function acked(nonce: number, ts: number): Acked {
  return certified(keys, makeBatch({ nonce, expiresAtUs: 1e9 }).digest, ts);
}

function verifiedSeal(replica: number, from: number, to: number, list: readonly Acked[]): VerifiedSeal {
  const sorted = [...list].sort((a, b) => compareEntries(a.entry, b.entry));
  const seal = makeSeal(keys, replica, from, to, sorted.map((a) => a.entry));
  return { seal, ocs: new Map(sorted.map((a) => [toHex(a.entry.ocHash), a.oc])) };
}

// The fixture: block (2, 4]. A (slot 3) and B (slot 4) are in range, C (slot 5) lies beyond it.
const A = acked(1, inSlot(3));
const B = acked(2, inSlot(4));
const C = acked(3, inSlot(5));
const D = acked(4, inSlot(4, 7));
const seals = [verifiedSeal(0, 2, 4, [A, B]), verifiedSeal(1, 2, 5, [A, C]), verifiedSeal(2, 2, 4, [B])];
const good = buildPayload(FROM, seals, config.q, slots);

type Edit = (p: BlockPayload) => BlockPayload;
/** Changes the seal of one replica. */
const editSeal = (replica: number, change: (s: PayloadSeal) => PayloadSeal): Edit => (p) => ({
  ...p,
  seals: p.seals.map((s) => (s.replica === replica ? change(s) : s)),
});
const withBit = (include: Uint8Array, index: number, on: boolean): Uint8Array => {
  const out = include.slice();
  if (on) bitmapSet(out, index);
  else out[index >>> 3]! &= ~(1 << (index & 7));
  return out;
};

describe('validatePayload', () => {
  it('accepts what buildPayload builds from q valid seals', () => {
    expect(good).toMatchObject({ fromSlot: 2, toSlot: 4 });
    expect(good.entries.map((e) => e.ts)).toEqual([A.entry.ts, B.entry.ts]);
    const check = validatePayload(ctx(), good, FROM);
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    expect(check.value.effective.map((e) => toHex(e.entry.digest))).toEqual([toHex(A.entry.digest), toHex(B.entry.digest)]);
    // Holders: the replicas whose seals list each entry (they hold its bytes).
    expect([...check.value.holders.get(toHex(A.entry.digest))!].sort()).toEqual([0, 1]);
    expect([...check.value.holders.get(toHex(B.entry.digest))!].sort()).toEqual([0, 2]);
  });

  it('accepts a filler (no new slot) and rejects a filler that carries entries', () => {
    const filler: BlockPayload = { fromSlot: FROM, toSlot: FROM, entries: [], ocs: [], seals: [] };
    expect(validatePayload(ctx(), filler, FROM).ok).toBe(true);
    const stuffed: BlockPayload = { ...filler, entries: [A.entry], ocs: [A.oc] };
    expect(validatePayload(ctx(), stuffed, FROM)).toMatchObject({ ok: false, reason: expect.stringMatching(/filler/) });
  });

  const sealOf2To3 = makeSeal(keys, 2, 2, 3, []);
  const forgedOc: OrderingCert = { ...B.oc, stamps: B.oc.stamps.map((s, i) => (i === 0 ? { ...s, sig: s.sig.map((b, k) => (k === 0 ? b ^ 1 : b)) } : s)) };
  const notMedian = { ...B.entry, ts: B.entry.ts + 1 };

  const cases: [string, Edit, RegExp, Slot?][] = [
    [
      'an entry no seal lists',
      (p) => ({ ...p, entries: [...p.entries, D.entry], ocs: [...p.ocs, D.oc] }),
      /entry 2 is listed by no seal/,
    ],
    [
      'a seal’s in-range entry left out of the union',
      (p) => ({ ...p, entries: p.entries.slice(0, 1), ocs: p.ocs.slice(0, 1), seals: p.seals.map((s) => ({ ...s, include: withBit(s.include, 1, false) })) }),
      /bad seal signature of replica [02]/,
    ],
    [
      'a seal’s bitmap claiming an entry it did not list',
      editSeal(2, (s) => ({ ...s, include: withBit(s.include, 0, true) })),
      /bad seal signature of replica 2/,
    ],
    ['an in-range entry moved into a seal’s tail', editSeal(0, (s) => ({ ...s, include: withBit(s.include, 1, false), tail: [B.entry] })), /tail entry at slot 4 outside/],
    ['a missing seal (q−1)', (p) => ({ ...p, seals: p.seals.slice(0, 2) }), /2 seals, quorum is 3/],
    ['two seals from one replica', (p) => ({ ...p, seals: [p.seals[0]!, p.seals[1]!, p.seals[0]!] }), new RegExp(`two seals from replica ${good.seals[0]!.replica}`)],
    [
      'a seal that ends before the block does',
      editSeal(2, () => ({ replica: 2 as ReplicaId, fromSlot: 2 as Slot, toSlot: 3 as Slot, include: newBitmap(2), tail: [], sig: sealOf2To3.sig })),
      /seal of 2 does not cover \(2, 4\]/,
    ],
    ['a seal that starts elsewhere', editSeal(2, (s) => ({ ...s, fromSlot: 1 as Slot })), /seal of 2 does not cover/],
    ['an entry outside the block’s range', (p) => ({ ...p, entries: [...p.entries, C.entry], ocs: [...p.ocs, C.oc] }), /entry at slot 5 outside the block's range/],
    ['a forged OC', (p) => ({ ...p, ocs: [p.ocs[0]!, forgedOc] }), /entry 1: bad timestamp signature/],
    ['an entry whose ts is not its OC’s median', (p) => ({ ...p, entries: [p.entries[0]!, notMedian] }), /entry 1: timestamp .* is not the OC's median/],
    ['an OC that is not the entry’s', (p) => ({ ...p, ocs: [p.ocs[1]!, p.ocs[0]!] }), /entry 0: OC does not match its ocHash/],
    ['unsorted entries', (p) => ({ ...p, entries: [p.entries[1]!, p.entries[0]!], ocs: [p.ocs[1]!, p.ocs[0]!] }), /not strictly sorted/],
    ['a duplicate entry', (p) => ({ ...p, entries: [p.entries[0]!, p.entries[0]!, p.entries[1]!], ocs: [p.ocs[0]!, p.ocs[0]!, p.ocs[1]!] }), /not strictly sorted/],
    ['fewer OCs than entries', (p) => ({ ...p, ocs: p.ocs.slice(0, 1) }), /1 OCs for 2 entries/],
    ['a slot gap after the parent', (p) => p, /range starts at 2, parent ended at 1/, 1 as Slot],
    ['an overlap with the parent', (p) => p, /range starts at 2, parent ended at 3/, 3 as Slot],
  ];
  it.each(cases)('rejects a payload with %s', (_, edit, reason, parentTo = FROM) => {
    const check = validatePayload(ctx(), edit(good), parentTo);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(reason);
  });
});

describe('buildPayload', () => {
  it('uses the q seals that reach furthest and ends where the shortest of them ends', () => {
    const four = [verifiedSeal(0, 2, 6, [A]), verifiedSeal(1, 2, 5, [A, C]), verifiedSeal(2, 2, 3, [A]), verifiedSeal(3, 2, 7, [C])];
    const payload = buildPayload(FROM, four, config.q, slots);
    expect(payload.toSlot).toBe(5);
    expect(payload.seals.map((s) => s.replica).sort()).toEqual([0, 1, 3]);
    expect(payload.entries.map((e) => e.ts)).toEqual([A.entry.ts, C.entry.ts]);
    expect(validatePayload(ctx(), payload, FROM).ok).toBe(true);
  });

  it('builds a filler from fewer than q seals', () => {
    const payload = buildPayload(FROM, seals.slice(0, 2), config.q, slots);
    expect(payload).toMatchObject({ fromSlot: FROM, toSlot: FROM, entries: [], seals: [] });
    expect(validatePayload(ctx(), payload, FROM).ok).toBe(true);
  });

  // A pool of acked entries in slots 3..6: some digests carry two OCs (a batch re-timestamped after
  // `late`), some at the same median with different stamps (two OCs, one ts).
  const pool: Acked[] = [];
  for (let b = 0; b < 8; b++) {
    const digest = makeBatch({ nonce: 100 + b, expiresAtUs: 1e9 }).digest;
    const ts = inSlot(3 + (b % 4), 10 + b * 37);
    pool.push(certified(keys, digest, ts));
    if (b % 3 === 0) pool.push(certified(keys, digest, ts + SLOT + 5)); // the same batch, later
    if (b % 4 === 1) {
      const oc = makeOc(keys, digest, [
        [1, ts],
        [2, ts],
        [3, ts],
      ]);
      pool.push({ oc, entry: { digest, ts, ocHash: ocHash(testCrypto, oc) } });
    }
  }

  it('builds a valid payload whose effective entries are the seals’ union, each digest once at its lowest ts, sorted', () => {
    const verifier = new OcVerifier(config, testCrypto);
    const sealSpec = fc.record({
      entries: fc.subarray(pool.map((_, i) => i)),
      toSlot: fc.integer({ min: 3, max: 7 }),
    });
    const scenario = fc.record({
      sealers: fc.shuffledSubarray([0, 1, 2, 3], { minLength: config.q, maxLength: config.q }),
      specs: fc.array(sealSpec, { minLength: config.q, maxLength: config.q }),
    });
    fc.assert(
      fc.property(scenario, ({ sealers, specs }) => {
        // Each replica seals (2, toSlot]: every entry of its own in that range, nothing else.
        const verified = sealers.map((replica, i) => {
          const spec = specs[i]!;
          return verifiedSeal(
            replica,
            FROM,
            spec.toSlot,
            spec.entries.map((k) => pool[k]!).filter((a) => slots.slotOf(a.entry.ts) <= spec.toSlot),
          );
        });
        const payload = buildPayload(FROM, verified, config.q, slots);
        const to = Math.min(...specs.map((s) => s.toSlot));
        expect(payload.toSlot).toBe(to);
        const check = validatePayload({ config, crypto: testCrypto, slots, ocs: verifier, seals: new SealVerifier(config, testCrypto) }, payload, FROM);
        expect(check.ok).toBe(true);
        if (!check.ok) return;

        // The expected union, computed independently.
        const lowest = new Map<string, SealEntry>();
        for (const v of verified) {
          for (const e of v.seal.entries) {
            if (slots.slotOf(e.ts) > to) continue;
            const known = lowest.get(toHex(e.digest));
            if (known === undefined || compareEntries(e, known) < 0) lowest.set(toHex(e.digest), e);
          }
        }
        const expected = [...lowest.values()].sort((a, b) => a.ts - b.ts || compareBytes(a.digest, b.digest));
        const show = (e: SealEntry): string => `${e.ts}/${toHex(e.digest)}/${toHex(e.ocHash)}`;
        expect(check.value.effective.map((x) => show(x.entry))).toEqual(expected.map(show));
        // Each effective entry executes under its own OC.
        for (const x of check.value.effective) expect(toHex(x.oc.digest)).toBe(toHex(x.entry.digest));
      }),
      { numRuns: 60 },
    );
  });

  // A leader cannot cut a block inside a slot, and q seals may list different entries of one slot,
  // so replicas cap acks per slot at ⌊MAX_BLOCK_ENTRIES / q⌋ (and leaders drop seals over it): q
  // full seals of one slot then still make a payload every validator's decoder accepts.
  it('never builds a payload the codec refuses when every seal fills one slot to the per-slot cap', () => {
    const big = testKeys(13);
    const q = big.config.q;
    const bigSlots = new SlotClock(big.config.protocol);
    const zeroSig = new Uint8Array(64);
    const oc: OrderingCert = { digest: new Uint8Array(32) as Digest, stamps: Array.from({ length: q }, (_, r) => ({ replica: r as ReplicaId, ts: inSlot(3), sig: zeroSig })) };
    const sealsBig: VerifiedSeal[] = Array.from({ length: q }, (_, r) => {
      const entries: SealEntry[] = Array.from({ length: Math.min(MAX_ACKS_PER_SLOT, Math.floor(MAX_BLOCK_ENTRIES / q)) }, (_, i) => {
        const digest = new Uint8Array(32) as Digest;
        digest[0] = r;
        digest[1] = i >>> 8;
        digest[2] = i & 0xff;
        return { digest, ts: inSlot(3), ocHash: digest };
      });
      return { seal: { replica: r as ReplicaId, fromSlot: FROM, toSlot: 3 as Slot, entries, sig: zeroSig }, ocs: new Map(entries.map((e) => [toHex(e.ocHash), oc])) };
    });
    const payload = buildPayload(FROM, sealsBig, q, bigSlots);
    expect(payload.entries.length).toBeLessThanOrEqual(MAX_BLOCK_ENTRIES);
    expect(decodeBlockPayload(encodeBlockPayload(payload), { replicaCount: big.config.n }).ok).toBe(true);
  });
});
