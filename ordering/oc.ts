/**
 * Ordering certificates: exactly q signed timestamps from q distinct replicas (in increasing
 * replica order); the batch's timestamp is the median, index f of the sorted values. With at most
 * f faulty values, f+1 values lie at or below it and q − f ≥ f+1 at or above it, so a correct
 * replica's value bounds it on each side. (Pompe-HS takes index f+1: at n=4 the maximum of three.)
 */
import { bytesEqual, toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { OrderingCert, SignedTimestamp } from '../common/messages.js';
import { orderingCertHashInput, timestampMessage } from '../common/signing.js';

/** Verified OCs remembered by ocHash. A replica checks each OC once (phase 2 or a block payload);
 *  a few seconds of traffic at peak is ~10k OCs, and forgetting only costs a re-verification. */
const VERIFIED_OC_CACHE_ENTRIES = 32_768;

export function medianTimestamp(stamps: readonly SignedTimestamp[], f: number): number {
  const values = stamps.map((s) => s.ts).sort((a, b) => a - b);
  return values[f]!;
}

export function ocHash(crypto: CryptoBackend, oc: OrderingCert): Digest {
  return crypto.sha256(orderingCertHashInput(oc.digest, oc.stamps));
}

export type OcCheck = { readonly ok: true; readonly ts: number; readonly ocHash: Digest } | { readonly ok: false; readonly reason: string };

export class OcVerifier {
  private readonly verified = new Map<string, number>();

  constructor(
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
  ) {}

  /**
   * Checks an OC completely: exactly q stamps, distinct replicas in increasing order, every
   * signature over this digest. Returns its median and ocHash. `trusted` is a stamp the caller
   * produced itself (its own reply), which needs no verification.
   */
  check(oc: OrderingCert, trusted?: SignedTimestamp): OcCheck {
    const { q, f } = this.config;
    if (oc.stamps.length !== q) return { ok: false, reason: `OC has ${oc.stamps.length} timestamps, quorum is ${q}` };
    const hash = ocHash(this.crypto, oc);
    const key = toHex(hash);
    const cached = this.verified.get(key);
    if (cached !== undefined) return { ok: true, ts: cached, ocHash: hash };
    let previous = -1;
    for (const stamp of oc.stamps) {
      if (stamp.replica <= previous) return { ok: false, reason: 'OC stamps are not from distinct replicas in increasing order' };
      if (stamp.replica >= this.config.n) return { ok: false, reason: `OC names replica ${stamp.replica}` };
      previous = stamp.replica;
      // The caller's own stamp needs no verification only if it is byte for byte what it signed
      // (Ed25519 is deterministic): a copy with another signature would poison its seals.
      if (trusted !== undefined && trusted.replica === stamp.replica && trusted.ts === stamp.ts && bytesEqual(trusted.sig, stamp.sig)) continue;
      if (!this.verifyStamp(oc.digest, stamp)) return { ok: false, reason: `bad timestamp signature of replica ${stamp.replica}` };
    }
    const ts = medianTimestamp(oc.stamps, f);
    this.remember(key, ts);
    return { ok: true, ts, ocHash: hash };
  }

  verifyStamp(digest: Digest, stamp: SignedTimestamp): boolean {
    const key = this.config.replicas[stamp.replica]?.key;
    if (key === undefined) return false;
    return this.crypto.verify(key, timestampMessage(this.config.clusterId, digest, stamp.ts, stamp.replica as ReplicaId), stamp.sig);
  }

  private remember(key: string, ts: number): void {
    if (this.verified.size >= VERIFIED_OC_CACHE_ENTRIES) this.verified.clear();
    this.verified.set(key, ts);
  }
}
