/**
 * Quorum and timeout certificates as a replica checks them: what a Byzantine peer can put in a
 * certificate (a signature moved to another signer's bit, one signature counted twice, too few
 * signers, a bitmap that does not match the signatures, a signature from the other domain, an
 * altered high-QC view) must be refused, and nothing but the genuine genesis QC passes at view 0.
 */
import { describe, expect, it } from 'vitest';
import { bitmapSet, newBitmap } from '../common/bitmap.js';
import { concatBytes } from '../common/bytes.js';
import { generateCluster } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId, View } from '../common/ids.js';
import type { QuorumCert, TimeoutCert } from '../common/messages.js';
import { timeoutMessage, voteMessage } from '../common/signing.js';
import { makeGenesis } from './block.js';
import { buildQc, buildTc, type CertCheck, CertVerifier, maxHighQcView } from './certs.js';

const crypto = nodeCrypto;
const N = 4; // f = 1, q = 3
const { config, keyPairs } = generateCluster({ n: N, keySeed: 'certs-test' }, crypto);
const signers: Signer[] = keyPairs.map((k) => crypto.signer(k.secretKey));
const genesis = makeGenesis(crypto, N);
const BLOCK = crypto.sha256(new Uint8Array([1, 2, 3])) as Digest;
const OTHER_BLOCK = crypto.sha256(new Uint8Array([4, 5, 6])) as Digest;
const V = 7 as View;

/** The verifier of replica 0 (which signs no vote in these tests unless it notes one). */
const verifier = (): CertVerifier => new CertVerifier(config, crypto, genesis, 0 as ReplicaId);
const ids = (...xs: number[]): ReplicaId[] => xs as ReplicaId[];

function voteSig(replica: number, v: View = V, block: Digest = BLOCK): Uint8Array {
  return signers[replica]!.sign(voteMessage(config.clusterId, v, block));
}

function timeoutSig(replica: number, v: View, highQcView: View): Uint8Array {
  return signers[replica]!.sign(timeoutMessage(config.clusterId, v, highQcView));
}

function qcFrom(replicas: readonly ReplicaId[], v: View = V, block: Digest = BLOCK): QuorumCert {
  return buildQc(v, block, new Map(replicas.map((r) => [r, voteSig(r, v, block)])), N);
}

/** A QC whose bitmap names `bits` and whose signature list is exactly `sigs` (no consistency). */
function rawQc(bits: readonly number[], sigs: readonly Uint8Array[], v: View = V, block: Digest = BLOCK, bitmapSize = N): QuorumCert {
  const bitmap = newBitmap(bitmapSize);
  for (const b of bits) bitmapSet(bitmap, b);
  return { view: v, block, signers: bitmap, sigs: [...sigs] };
}

function tcFrom(v: View, highQcViews: ReadonlyMap<ReplicaId, View>): TimeoutCert {
  const entries = new Map([...highQcViews].map(([r, h]) => [r, { highQcView: h, sig: timeoutSig(r, v, h) }] as const));
  return buildTc(v, entries, N);
}

function expectRejected(check: CertCheck, reason: RegExp): void {
  expect(check.ok).toBe(false);
  if (!check.ok) expect(check.reason).toMatch(reason);
}

describe('QC verification', () => {
  it("skips the check of the replica's own vote only when it is byte for byte the one it signed", () => {
    let verifies = 0;
    const counting = { ...crypto, verify: (...args: Parameters<typeof crypto.verify>) => (verifies++, crypto.verify(...args)) };
    const own = new CertVerifier(config, counting, genesis, 0 as ReplicaId);
    own.noteOwnVote(V, BLOCK, voteSig(0));
    expect(own.checkQc(qcFrom(ids(0, 1, 2)))).toEqual({ ok: true });
    expect(verifies).toBe(2);
    // Its bit with another signature (replica 1's), or its vote for another block in that view:
    // checked, and refused.
    expectRejected(own.checkQc(rawQc([0, 1, 2], [voteSig(1), voteSig(1), voteSig(2)])), /bad signature of replica 0/);
    const otherBlock = new CertVerifier(config, counting, genesis, 0 as ReplicaId);
    otherBlock.noteOwnVote(V, OTHER_BLOCK, voteSig(0, V, OTHER_BLOCK));
    expectRejected(otherBlock.checkQc(rawQc([0, 1, 2], [voteSig(0, V, OTHER_BLOCK), voteSig(1), voteSig(2)])), /bad signature of replica 0/);
  });

  it('accepts a QC of q distinct valid signatures, and one of all n', () => {
    expect(verifier().checkQc(qcFrom(ids(0, 1, 2)))).toEqual({ ok: true });
    expect(verifier().checkQc(qcFrom(ids(1, 2, 3)))).toEqual({ ok: true });
    expect(verifier().checkQc(qcFrom(ids(0, 1, 2, 3)))).toEqual({ ok: true });
  });

  it("rejects a signature of replica A placed at replica B's bit", () => {
    // Replicas 0, 1, 2 signed; the bitmap claims 0, 1, 3 and carries replica 2's signature for 3.
    const qc = rawQc([0, 1, 3], [voteSig(0), voteSig(1), voteSig(2)]);
    expectRejected(verifier().checkQc(qc), /bad signature of replica 3/);
    // Two genuine signatures swapped between their owners' bits.
    const swapped = rawQc([0, 1, 2], [voteSig(1), voteSig(0), voteSig(2)]);
    expectRejected(verifier().checkQc(swapped), /bad signature of replica 0/);
  });

  it('rejects the same signature counted for two signers', () => {
    const s0 = voteSig(0);
    expectRejected(verifier().checkQc(rawQc([0, 1, 2], [s0, s0, voteSig(2)])), /bad signature of replica 1/);
  });

  it('rejects q − 1 signers, however valid their signatures', () => {
    expectRejected(verifier().checkQc(qcFrom(ids(0, 1))), /2 signers, quorum is 3/);
    expectRejected(verifier().checkQc(qcFrom(ids(3))), /1 signers, quorum is 3/);
  });

  it('rejects a signature count different from the number of signer bits', () => {
    const sigs = [voteSig(0), voteSig(1), voteSig(2), voteSig(3)];
    expectRejected(verifier().checkQc(rawQc([0, 1, 2], sigs)), /3 signers but 4 signatures/);
    expectRejected(verifier().checkQc(rawQc([0, 1, 2, 3], sigs.slice(0, 3))), /4 signers but 3 signatures/);
  });

  it('rejects a signer bitmap with a bit at or above n, or of the wrong length', () => {
    // n = 4 uses bits 0..3 of one byte; bit 4 names a replica that does not exist.
    const sigs = [voteSig(0), voteSig(1), voteSig(2), voteSig(3)];
    expectRejected(verifier().checkQc(rawQc([0, 1, 2, 4], sigs)), /bitmap does not fit/);
    expectRejected(verifier().checkQc(rawQc([0, 1, 2, 7], sigs)), /bitmap does not fit/);
    // Two bytes for four replicas: the right bits, the wrong shape.
    expectRejected(verifier().checkQc(rawQc([0, 1, 2], sigs.slice(0, 3), V, BLOCK, 16)), /bitmap does not fit/);
  });

  it('rejects signatures over another domain (timeout messages used as votes)', () => {
    const sigs = [0, 1, 2].map((r) => timeoutSig(r, V, 0 as View));
    expectRejected(verifier().checkQc(rawQc([0, 1, 2], sigs)), /bad signature/);
  });

  it('rejects a QC whose view or block differs from what was signed', () => {
    const qc = qcFrom(ids(0, 1, 2));
    expectRejected(verifier().checkQc({ ...qc, view: (V + 1) as View }), /bad signature/);
    expectRejected(verifier().checkQc({ ...qc, block: OTHER_BLOCK }), /bad signature/);
  });

  it('does not let a cached verified QC vouch for a copy with one forged signature', () => {
    const v = verifier();
    const qc = qcFrom(ids(0, 1, 2));
    expect(v.checkQc(qc)).toEqual({ ok: true });
    expect(v.checkQc(qc)).toEqual({ ok: true }); // the cached path
    const forged = Uint8Array.from(qc.sigs[1]!);
    forged[5]! ^= 0x40;
    expectRejected(v.checkQc({ ...qc, sigs: [qc.sigs[0]!, forged, qc.sigs[2]!] }), /bad signature of replica 1/);
    // Nor a copy that keeps the signatures but names another block or view.
    expectRejected(v.checkQc({ ...qc, block: OTHER_BLOCK }), /bad signature/);
    expectRejected(v.checkQc({ ...qc, view: (V + 1) as View }), /bad signature/);
  });

  it('trusts a QC it built itself without re-verifying, and only that exact QC', () => {
    const v = verifier();
    const built = qcFrom(ids(0, 1, 2));
    v.trustBuiltQc(built);
    expect(v.checkQc(built)).toEqual({ ok: true });
    const bad = Uint8Array.from(built.sigs[0]!);
    bad[0]! ^= 1;
    expectRejected(v.checkQc({ ...built, sigs: [bad, built.sigs[1]!, built.sigs[2]!] }), /bad signature of replica 0/);
  });
});

describe('the genesis QC', () => {
  it('is accepted in its exact form', () => {
    expect(verifier().checkQc(genesis.qc)).toEqual({ ok: true });
    expect(verifier().checkQc({ ...genesis.qc, signers: newBitmap(N), sigs: [] })).toEqual({ ok: true });
  });

  it('is the only QC accepted at view 0', () => {
    // View 0 for another block, even with a quorum of valid signatures over (0, block).
    expectRejected(verifier().checkQc({ ...genesis.qc, block: OTHER_BLOCK }), /view 0/);
    expectRejected(verifier().checkQc(qcFrom(ids(0, 1, 2), 0 as View, OTHER_BLOCK)), /view 0/);
    // The genesis block, but signed by a quorum: not the conventional form either.
    expectRejected(verifier().checkQc(qcFrom(ids(0, 1, 2), 0 as View, genesis.digest)), /view 0/);
  });

  // A view-0 QC counts as genesis only with no signer bits at all.
  it('rejects the genesis QC with signer bits set and no signatures', () => {
    const bitmap = newBitmap(N);
    for (const b of [0, 1, 2]) bitmapSet(bitmap, b);
    expect(verifier().checkQc({ ...genesis.qc, signers: bitmap }).ok).toBe(false);
  });

  it('cannot be replayed at a later view without signatures', () => {
    expectRejected(verifier().checkQc({ ...genesis.qc, view: 1 as View }), /0 signers, quorum is 3/);
  });
});

describe('TC verification', () => {
  const TV = 9 as View;
  const views = new Map([
    [0, 4],
    [1, 6],
    [3, 5],
  ] as [ReplicaId, View][]);

  it('accepts q valid timeouts and reports their highest QC view', () => {
    const tc = tcFrom(TV, views);
    expect(verifier().checkTc(tc)).toEqual({ ok: true });
    expect(maxHighQcView(tc)).toBe(6);
  });

  it('rejects a TC whose high-QC view entry was altered', () => {
    const tc = tcFrom(TV, views);
    // Lowering the highest reported QC view would let a leader justify a proposal on an older QC.
    const lowered = { ...tc, highQcViews: [4, 2, 5] as View[] };
    expectRejected(verifier().checkTc(lowered), /bad signature of replica 1/);
    const raised = { ...tc, highQcViews: [4, 6, 8] as View[] };
    expectRejected(verifier().checkTc(raised), /bad signature of replica 3/);
  });

  it('rejects a high-QC view at or above the TC view, and a view count different from the signers', () => {
    const tc = tcFrom(TV, new Map([[0, 4], [1, TV], [2, 5]] as [ReplicaId, View][]));
    expectRejected(verifier().checkTc(tc), /at or above the TC's view/);
    const good = tcFrom(TV, views);
    expectRejected(verifier().checkTc({ ...good, highQcViews: good.highQcViews.slice(0, 2) }), /one high-QC view per signer/);
  });

  it('rejects too few signers, a repeated signature, a bit beyond n and vote signatures', () => {
    expectRejected(verifier().checkTc(tcFrom(TV, new Map([[0, 4], [1, 6]] as [ReplicaId, View][]))), /quorum is 3/);
    const tc = tcFrom(TV, new Map([[0, 4], [1, 4], [2, 4]] as [ReplicaId, View][]));
    expectRejected(verifier().checkTc({ ...tc, sigs: [tc.sigs[0]!, tc.sigs[0]!, tc.sigs[2]!] }), /bad signature of replica 1/);
    const wide = newBitmap(N);
    for (const b of [0, 1, 2, 5]) bitmapSet(wide, b);
    expectRejected(verifier().checkTc({ ...tc, signers: wide, highQcViews: [4, 4, 4, 4] as View[], sigs: [...tc.sigs, tc.sigs[0]!] }), /does not fit/);
    const voteSigs = [0, 1, 2].map((r) => voteSig(r, TV, BLOCK));
    expectRejected(verifier().checkTc({ ...tc, sigs: voteSigs }), /bad signature/);
  });

  it('rejects a TC for view 0', () => {
    expectRejected(verifier().checkTc({ ...tcFrom(TV, views), view: 0 as View }), /view 0/);
  });

  it('does not let a cached TC vouch for a copy with a forged signature or another view', () => {
    const v = verifier();
    const tc = tcFrom(TV, views);
    expect(v.checkTc(tc)).toEqual({ ok: true });
    const forged = Uint8Array.from(tc.sigs[2]!);
    forged[63]! ^= 0x01;
    expectRejected(v.checkTc({ ...tc, sigs: [tc.sigs[0]!, tc.sigs[1]!, forged] }), /bad signature of replica 3/);
    expectRejected(v.checkTc({ ...tc, view: (TV + 1) as View }), /bad signature/);
  });
});

describe('certificate cache keys', () => {
  // The verified-certificate cache is keyed by a hash of the certificate's fields written one after
  // another without lengths. A certificate with the same bytes cut at other field boundaries must
  // still be checked on its own: here the first signature moves into an over-long signer bitmap.
  it('does not let a cached TC vouch for a reshaped copy of the same bytes', () => {
    const v = verifier();
    const tc = tcFrom(9 as View, new Map([[0, 4], [1, 6], [2, 5]] as [ReplicaId, View][]));
    expect(v.checkTc(tc)).toEqual({ ok: true });
    const reshaped: TimeoutCert = { ...tc, signers: concatBytes(tc.signers, tc.sigs[0]!), sigs: tc.sigs.slice(1) };
    expect(v.checkTc(reshaped).ok).toBe(false);
  });
});
