/**
 * Seals: a replica's signed "these are all my acks in (from, to]". A leader uses only seals that
 * check, so a seal that lies about its range, order or entries must not.
 */
import { describe, expect, it } from 'vitest';
import type { ReplicaId, Slot } from '../common/ids.js';
import type { Seal, SealEntry } from '../common/messages.js';
import { checkSeal, SealVerifier } from './seal.js';
import { SlotClock } from './slots.js';
import { makeBatch, makeSeal, testCrypto, testKeys } from './testHarness.js';

const keys = testKeys(4);
const slots = new SlotClock(keys.config.protocol);
const SLOT = keys.config.protocol.slotUs;
const entry = (nonce: number, ts: number): SealEntry => {
  const { digest } = makeBatch({ nonce, expiresAtUs: 1e9 });
  return { digest, ts, ocHash: testCrypto.sha256(digest) };
};
const a = entry(1, 3 * SLOT + 1);
const b = entry(2, 4 * SLOT + 1);
const valid = makeSeal(keys, 1, 2, 4, [a, b]);
// One verifier for every case: a seal remembered as valid must not let its altered copies pass.
const verifier = new SealVerifier(keys.config, testCrypto);

describe('checkSeal', () => {
  it('accepts a signed seal whose sorted entries lie in its range, and an empty one', () => {
    expect(checkSeal(keys.config, verifier, slots, valid)).toBeNull();
    expect(checkSeal(keys.config, verifier, slots, makeSeal(keys, 2, 4, 9, []))).toBeNull();
  });

  it.each<[string, Seal, RegExp]>([
    ['entries other than those signed', { ...valid, entries: [a] }, /bad seal signature of replica 1/],
    ['a range other than the one signed', { ...valid, toSlot: 5 as Slot }, /bad seal signature/],
    ['another replica’s name', { ...valid, replica: 2 as ReplicaId }, /bad seal signature of replica 2/],
    ['an unknown replica', { ...valid, replica: 9 as ReplicaId }, /unknown replica 9/],
    ['a reversed range', makeSeal(keys, 1, 4, 2, []), /reversed/],
    ['unsorted entries', makeSeal(keys, 1, 2, 4, [b, a]), /not strictly sorted/],
    ['a duplicate entry', makeSeal(keys, 1, 2, 4, [a, a]), /not strictly sorted/],
    ['an entry at its from slot', makeSeal(keys, 1, 3, 4, [a, b]), /slot 3 outside \(3, 4\]/],
    ['an entry beyond its to slot', makeSeal(keys, 1, 2, 3, [a, b]), /slot 4 outside \(2, 3\]/],
  ])('rejects a seal with %s', (_, seal, reason) => {
    expect(checkSeal(keys.config, verifier, slots, seal)).toMatch(reason);
  });

  it('takes its own seal as verified when it comes back unchanged, and checks any altered copy', () => {
    const counting = { ...testCrypto, verifies: 0, verify(...args: Parameters<typeof testCrypto.verify>) { this.verifies++; return testCrypto.verify(...args); } };
    const memo = new SealVerifier(keys.config, counting);
    const own = memo.signOwn(keys.signers[1]!, 1 as ReplicaId, 2 as Slot, 4 as Slot, [a, b]);
    expect(own.sig).toEqual(valid.sig);
    expect(checkSeal(keys.config, memo, slots, own)).toBeNull();
    expect(counting.verifies).toBe(0);
    expect(checkSeal(keys.config, memo, slots, { ...own, entries: [a] })).toMatch(/bad seal signature/);
    expect(checkSeal(keys.config, memo, slots, { ...own, toSlot: 5 as Slot })).toMatch(/bad seal signature/);
    expect(counting.verifies).toBe(2);
  });

  it('remembers a verified seal, and still rejects the same seal with another signature', () => {
    const counting = { ...testCrypto, verifies: 0, verify(...args: Parameters<typeof testCrypto.verify>) { this.verifies++; return testCrypto.verify(...args); } };
    const memo = new SealVerifier(keys.config, counting);
    expect(checkSeal(keys.config, memo, slots, valid)).toBeNull();
    expect(checkSeal(keys.config, memo, slots, valid)).toBeNull();
    expect(counting.verifies).toBe(1);
    const forged = { ...valid, sig: valid.sig.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    expect(checkSeal(keys.config, memo, slots, forged)).toMatch(/bad seal signature/);
    const otherSigner = makeSeal(keys, 2, 2, 4, [a, b]);
    expect(checkSeal(keys.config, memo, slots, { ...otherSigner, replica: 1 as ReplicaId })).toMatch(/bad seal signature/);
  });
});
