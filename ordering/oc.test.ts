/**
 * Ordering certificates: the median a batch is ordered by, and what an OC must be to count.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReplicaId } from '../common/ids.js';
import type { OrderingCert, SignedTimestamp } from '../common/messages.js';
import { OcVerifier } from './oc.js';
import { makeBatch, makeOc, signStamp, testCrypto, testKeys } from './testHarness.js';

const digestA = makeBatch({ nonce: 1, expiresAtUs: 10_000_000 }).digest;
const digestB = makeBatch({ nonce: 2, expiresAtUs: 10_000_000 }).digest;

describe('the OC median (index f of the sorted q stamps)', () => {
  it.each([4, 7, 10])('lies within the correct replicas’ values when up to f stamps are arbitrary (n=%i)', (n) => {
    const keys = testKeys(n);
    const { q, f } = keys.config;
    const verifier = new OcVerifier(keys.config, testCrypto);
    const ts = fc.integer({ min: 1, max: 2 ** 40 });
    const scenario = fc.record({
      // Which q replicas answered first, and which of them are Byzantine (at most f).
      signers: fc.shuffledSubarray([...Array(n).keys()], { minLength: q, maxLength: q }),
      byzantine: fc.integer({ min: 0, max: f }),
      correct: fc.array(ts, { minLength: q, maxLength: q }),
      // Byzantine values range over everything a stamp can carry, extremes included.
      arbitrary: fc.array(fc.oneof(ts, fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER)), { minLength: f, maxLength: f }),
    });
    fc.assert(
      fc.property(scenario, ({ signers, byzantine, correct, arbitrary }) => {
        const values = signers.map((replica, i) => [replica, i < byzantine ? arbitrary[i]! : correct[i]!] as const);
        const correctValues = values.slice(byzantine).map(([, v]) => v);
        const check = verifier.check(makeOc(keys, digestA, values));
        expect(check.ok).toBe(true);
        if (!check.ok) return;
        expect(check.ts).toBeGreaterThanOrEqual(Math.min(...correctValues));
        expect(check.ts).toBeLessThanOrEqual(Math.max(...correctValues));
      }),
      { numRuns: 60 },
    );
  });

  it('is index f because index f+1 (what Pompe-HS takes) lets one fast Byzantine replica choose it at n=4', () => {
    const keys = testKeys(4);
    // Two correct replicas stamp 1000 and 1010; Byzantine replica 3 stamps an hour ahead.
    const oc = makeOc(keys, digestA, [
      [0, 1_000],
      [1, 1_010],
      [3, 3_600_000_000],
    ]);
    const sorted = oc.stamps.map((s) => s.ts).sort((a, b) => a - b);
    const indexFPlus1 = sorted[keys.config.f + 1]!;
    // Pompe-HS's choice is the Byzantine value: outside every correct timestamp.
    expect(indexFPlus1).toBe(3_600_000_000);
    const check = new OcVerifier(keys.config, testCrypto).check(oc);
    expect(check.ok && check.ts).toBe(1_010);
  });
});

describe('OcVerifier.check', () => {
  const keys = testKeys(4);
  const { q } = keys.config;
  const valid = makeOc(keys, digestA, [
    [0, 100],
    [1, 300],
    [2, 200],
  ]);
  const s = (replica: number, ts: number): SignedTimestamp => signStamp(keys, digestA, replica, ts);
  const flipped = (stamp: SignedTimestamp): SignedTimestamp => {
    const sig = stamp.sig.slice();
    sig[10]! ^= 1;
    return { ...stamp, sig };
  };
  const withStamps = (stamps: SignedTimestamp[]): OrderingCert => ({ digest: digestA, stamps });

  it('accepts q valid stamps from distinct replicas in increasing order, with their median', () => {
    const check = new OcVerifier(keys.config, testCrypto).check(valid);
    expect(check).toMatchObject({ ok: true, ts: 200 });
  });

  const rejected: [string, OrderingCert, RegExp][] = [
    ['a duplicate signer', withStamps([s(0, 100), s(0, 100), s(1, 200)]), /distinct replicas/],
    ['stamps not in increasing replica order', withStamps([s(1, 100), s(0, 200), s(2, 300)]), /increasing order/],
    ['too few stamps (q−1)', withStamps([s(0, 100), s(1, 200)]), new RegExp(`has ${q - 1} timestamps`)],
    ['more stamps than q', withStamps([s(0, 100), s(1, 200), s(2, 300), s(3, 400)]), new RegExp(`has ${q + 1} timestamps`)],
    ['a bad signature', withStamps([s(0, 100), flipped(s(1, 200)), s(2, 300)]), /bad timestamp signature of replica 1/],
    ['a stamp signed for another timestamp', withStamps([s(0, 100), { ...s(1, 200), ts: 201 }, s(2, 300)]), /signature of replica 1/],
    ['a stamp from an unknown replica', withStamps([s(0, 100), s(1, 200), { ...s(2, 300), replica: 4 as ReplicaId }]), /names replica 4/],
    ['stamps for another digest', { digest: digestB, stamps: valid.stamps }, /bad timestamp signature/],
  ];
  it.each(rejected)('rejects an OC with %s', (_, oc, reason) => {
    const check = new OcVerifier(keys.config, testCrypto).check(oc);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toMatch(reason);
  });

  it('does not let a verified OC vouch for a forged copy', () => {
    const verifier = new OcVerifier(keys.config, testCrypto);
    expect(verifier.check(valid).ok).toBe(true);
    const forgeries: OrderingCert[] = [
      // The same signatures with a moved timestamp (a later median).
      withStamps([valid.stamps[0]!, valid.stamps[1]!, { ...valid.stamps[2]!, ts: 5_000 }]),
      // The same stamps for another batch.
      { digest: digestB, stamps: valid.stamps },
      // One signature replaced by garbage.
      withStamps([valid.stamps[0]!, flipped(valid.stamps[1]!), valid.stamps[2]!]),
    ];
    for (const forged of forgeries) expect(verifier.check(forged).ok).toBe(false);
    // And the genuine one still passes (from the cache or not).
    expect(verifier.check(valid)).toMatchObject({ ok: true, ts: 200 });
  });

  it('accepts an OC carrying the caller’s own stamp, and still checks the other stamps', () => {
    const own = s(0, 100);
    const verifier = new OcVerifier(keys.config, testCrypto);
    // The caller passes the stamp it made itself; the OC carries exactly that stamp.
    expect(verifier.check(withStamps([own, s(1, 200), s(2, 300)]), own)).toMatchObject({ ok: true, ts: 200 });
    // Other replicas' stamps are still checked.
    expect(verifier.check(withStamps([own, flipped(s(1, 200)), s(2, 300)]), own).ok).toBe(false);
  });

  // BUG (ordering/oc.ts, OcVerifier.check): a stamp is "trusted" when its replica and ts match the
  // caller's own, without comparing the signature; the OC is then cached as verified. A replica
  // therefore acks an OC whose copy of its own stamp carries a garbage signature, lists it in its
  // seals, and every other replica rejects those seals (and blocks built from them).
  it('does not trust a stamp that matches the caller’s (replica, ts) but carries another signature', () => {
    const own = s(0, 100);
    const verifier = new OcVerifier(keys.config, testCrypto);
    const forged = withStamps([flipped(own), s(1, 200), s(2, 300)]);
    expect(verifier.check(forged, own).ok).toBe(false);
    // Nor may the cache vouch for it afterwards.
    expect(verifier.check(forged).ok).toBe(false);
  });
});
