/**
 * What a correct replica checks before it timestamps a batch (phase 1), beyond its header and
 * expiry: who may send it, who may submit at all, and every signature in it. A correct replica
 * stamps nothing that fails here, so an OC — q stamps, at least f+1 of them from correct replicas
 * — exists only for batches whose signatures a correct replica checked; phase 2, block validation
 * and execution need not check them again (docs/protocol.md, "Client identities").
 *
 *  - Direct mode: from a client connection authenticated as the batch's collector key (the
 *    transport checked it holds the key), a key the cluster admits, signed by it.
 *  - Gateway mode: from the peer replica whose key is the collector key, signed by it; every
 *    command's client admitted and its signature valid. Only replicas are gateways.
 *  - This replica's own gateway batches: nothing to check (it built and signed them).
 */
import { decodeBatchCommands, BatchMode, type BatchHeader } from '../common/batch.js';
import { verifyBatchSignature, verifyCommandSignature } from '../common/batchAuth.js';
import { bytesEqual, toHex } from '../common/bytes.js';
import { clientAllowed, type ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import { RefusalReason } from '../common/messages.js';
import type { ClientIdentity, ClientKeyCache } from './clientKeys.js';

/** Batches whose signatures passed, by digest: a batch restarted after `late` is stamped again
 *  without checking again (a gateway batch holds up to a thousand signatures). Seconds of traffic. */
export const VERIFIED_BATCH_CACHE_ENTRIES = 16_384;

/** Where a batch came from, as far as its checks care. */
export type BatchOrigin =
  | { readonly kind: 'client'; readonly identity: ClientIdentity | null }
  | { readonly kind: 'peer'; readonly replica: ReplicaId }
  | { readonly kind: 'local' };

export class BatchChecker {
  private readonly verified = new Set<string>();

  constructor(
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
    private readonly keys: ClientKeyCache,
  ) {}

  /** Null if this replica may stamp the batch; otherwise why not. `bytes` passed readBatchHeader. */
  check(bytes: Uint8Array, digestKey: string, header: BatchHeader, origin: BatchOrigin, nowUs: number): RefusalReason | null {
    switch (origin.kind) {
      case 'local':
        return null;
      case 'client': {
        const id = origin.identity;
        // A client sends only its own direct batches, on a connection that proved its key.
        if (id === null || header.mode !== BatchMode.Direct || id.hex !== toHex(header.collectorKey)) return RefusalReason.BadSignature;
        if (!clientAllowed(this.config, id.hex)) return RefusalReason.NotAllowed;
        if (this.verified.has(digestKey)) return null;
        if (!verifyBatchSignature(this.config.clusterId, this.crypto, id.handle, bytes)) return RefusalReason.BadSignature;
        break;
      }
      case 'peer': {
        const gateway = this.config.replicas[origin.replica]!;
        if (header.mode !== BatchMode.Gateway || !bytesEqual(header.collectorKey, gateway.publicKey)) return RefusalReason.BadSignature;
        if (this.verified.has(digestKey)) return null;
        if (!verifyBatchSignature(this.config.clusterId, this.crypto, gateway.key, bytes)) return RefusalReason.BadSignature;
        const refusal = this.checkCommands(bytes, `p${origin.replica}`, nowUs);
        if (refusal !== null) return refusal;
        break;
      }
    }
    this.verified.add(digestKey);
    if (this.verified.size > VERIFIED_BATCH_CACHE_ENTRIES) this.verified.delete(this.verified.values().next().value as string);
    return null;
  }

  /** Every thin client's command in a gateway batch: admitted, and signed by its client. */
  private checkCommands(bytes: Uint8Array, source: string, nowUs: number): RefusalReason | null {
    const commands = decodeBatchCommands(bytes);
    if (!commands.ok) return RefusalReason.BadBatch;
    for (const c of commands.value) {
      const hex = toHex(c.clientKey);
      if (!clientAllowed(this.config, hex)) return RefusalReason.NotAllowed;
      const key = this.keys.lookup(c.clientKey, hex, source, nowUs);
      if (key === 'overBudget') return RefusalReason.Overloaded;
      if (key === null || !verifyCommandSignature(this.config.clusterId, this.crypto, key, { ...c, sig: c.sig! })) return RefusalReason.BadSignature;
    }
    return null;
  }
}
