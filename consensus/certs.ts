/**
 * Quorum and timeout certificates: checking them (every signature, distinct signers, at least q)
 * and building them from collected votes. A certificate is verified once per replica: the cache
 * key covers every byte of it, signatures included, so a copy with a forged signature is a miss.
 */
import { bitmapCount, bitmapFits, bitmapIndexes, bitmapSet, newBitmap } from '../common/bitmap.js';
import { ByteWriter, bytesEqual, toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, ReplicaId, View } from '../common/ids.js';
import type { QuorumCert, TimeoutCert } from '../common/messages.js';
import { timeoutMessage, voteMessage } from '../common/signing.js';
import { type Genesis, isGenesisQc } from './block.js';

/** Verified certificates remembered; at 2 certificates per view this is minutes of history, and
 *  forgetting only costs a re-verification. */
const VERIFIED_CACHE_ENTRIES = 4_096;
/** This replica's own votes remembered (by view): a QC is formed within a view or two of them. */
const OWN_VOTES_KEPT = 8;

export type CertCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const OK: CertCheck = { ok: true };
const fail = (reason: string): CertCheck => ({ ok: false, reason });

export class CertVerifier {
  private readonly verified = new Set<string>();
  /** This replica's latest votes: view → the block and the signature it sent. */
  private readonly ownVotes = new Map<View, { readonly block: Digest; readonly sig: Uint8Array }>();

  constructor(
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
    private readonly genesis: Genesis,
    private readonly self: ReplicaId,
  ) {}

  /** This replica signed a vote: in a QC, a signature byte for byte this one over the same view
   *  and block needs no check (Ed25519 signs deterministically; any other bytes are verified). */
  noteOwnVote(v: View, block: Digest, sig: Uint8Array): void {
    this.ownVotes.set(v, { block, sig });
    if (this.ownVotes.size > OWN_VOTES_KEPT) this.ownVotes.delete(this.ownVotes.keys().next().value as View);
  }

  checkQc(qc: QuorumCert): CertCheck {
    if (isGenesisQc(qc, this.genesis)) return OK;
    if (qc.view === 0) return fail('only the genesis QC may have view 0');
    const signers = this.checkSigners(qc.signers, qc.sigs.length);
    if (typeof signers === 'string') return fail(`QC: ${signers}`);
    const key = this.cacheKey('q', qc.view, qc.block, qc.signers, qc.sigs, []);
    if (this.verified.has(key)) return OK;
    const message = voteMessage(this.config.clusterId, qc.view, qc.block);
    const own = this.ownVotes.get(qc.view);
    for (let i = 0; i < signers.length; i++) {
      const replica = signers[i]!;
      if (replica === this.self && own !== undefined && bytesEqual(own.block, qc.block) && bytesEqual(own.sig, qc.sigs[i]!)) continue;
      if (!this.crypto.verify(this.config.replicas[replica]!.key, message, qc.sigs[i]!)) {
        return fail(`QC: bad signature of replica ${replica}`);
      }
    }
    this.remember(key);
    return OK;
  }

  checkTc(tc: TimeoutCert): CertCheck {
    if (tc.view === 0) return fail('TC for view 0');
    const signers = this.checkSigners(tc.signers, tc.sigs.length);
    if (typeof signers === 'string') return fail(`TC: ${signers}`);
    if (tc.highQcViews.length !== signers.length) return fail('TC: one high-QC view per signer expected');
    const key = this.cacheKey('t', tc.view, null, tc.signers, tc.sigs, tc.highQcViews);
    if (this.verified.has(key)) return OK;
    for (let i = 0; i < signers.length; i++) {
      const replica = signers[i]!;
      const highQcView = tc.highQcViews[i]!;
      if (highQcView >= tc.view) return fail(`TC: replica ${replica} reports a high QC at or above the TC's view`);
      const message = timeoutMessage(this.config.clusterId, tc.view, highQcView);
      if (!this.crypto.verify(this.config.replicas[replica]!.key, message, tc.sigs[i]!)) {
        return fail(`TC: bad signature of replica ${replica}`);
      }
    }
    this.remember(key);
    return OK;
  }

  /** Marks a certificate this replica built from votes it verified one by one. */
  trustBuiltQc(qc: QuorumCert): void {
    this.remember(this.cacheKey('q', qc.view, qc.block, qc.signers, qc.sigs, []));
  }

  trustBuiltTc(tc: TimeoutCert): void {
    this.remember(this.cacheKey('t', tc.view, null, tc.signers, tc.sigs, tc.highQcViews));
  }

  private checkSigners(signers: Uint8Array, sigCount: number): readonly ReplicaId[] | string {
    const n = this.config.n;
    if (!bitmapFits(signers, n)) return 'signer bitmap does not fit the cluster';
    const count = bitmapCount(signers);
    if (count !== sigCount) return `${count} signers but ${sigCount} signatures`;
    if (count < this.config.q) return `${count} signers, quorum is ${this.config.q}`;
    return bitmapIndexes(signers) as ReplicaId[];
  }

  private cacheKey(
    kind: string,
    v: View,
    block: Digest | null,
    signers: Uint8Array,
    sigs: readonly Uint8Array[],
    views: readonly View[],
  ): string {
    // Every variable-length part is length-prefixed, so no two certificates share a key.
    const w = ByteWriter.transient(64 + sigs.length * 66).u64(v).u16(signers.length).bytes(signers);
    if (block !== null) w.bytes(block);
    w.u16(sigs.length);
    for (const s of sigs) w.u16(s.length).bytes(s);
    w.u16(views.length);
    for (const x of views) w.u64(x);
    return kind + toHex(this.crypto.sha256(w.finish()));
  }

  private remember(key: string): void {
    if (this.verified.size >= VERIFIED_CACHE_ENTRIES) this.verified.clear();
    this.verified.add(key);
  }
}

/** A QC from exactly the given signatures (each already verified by the caller). */
export function buildQc(v: View, block: Digest, sigsByReplica: ReadonlyMap<ReplicaId, Uint8Array>, n: number): QuorumCert {
  const signers = newBitmap(n);
  const ids = [...sigsByReplica.keys()].sort((a, b) => a - b);
  for (const id of ids) bitmapSet(signers, id);
  return { view: v, block, signers, sigs: ids.map((id) => sigsByReplica.get(id)!) };
}

export function buildTc(
  v: View,
  entries: ReadonlyMap<ReplicaId, { readonly highQcView: View; readonly sig: Uint8Array }>,
  n: number,
): TimeoutCert {
  const signers = newBitmap(n);
  const ids = [...entries.keys()].sort((a, b) => a - b);
  for (const id of ids) bitmapSet(signers, id);
  return {
    view: v,
    signers,
    highQcViews: ids.map((id) => entries.get(id)!.highQcView),
    sigs: ids.map((id) => entries.get(id)!.sig),
  };
}

export function maxHighQcView(tc: TimeoutCert): View {
  let max = 0;
  for (const v of tc.highQcViews) if (v > max) max = v;
  return max as View;
}
