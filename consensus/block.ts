/** Block identity and the genesis block every replica starts from. */
import type { CryptoBackend } from '../common/crypto/types.js';
import { bytesEqual } from '../common/bytes.js';
import { newBitmap } from '../common/bitmap.js';
import type { Digest, Height, ReplicaId, View } from '../common/ids.js';
import type { Block, QuorumCert } from '../common/messages.js';
import { blockHashInput } from '../common/signing.js';

export const ZERO_DIGEST = new Uint8Array(32) as Digest;

export function blockDigest(crypto: CryptoBackend, block: Block): Digest {
  return crypto.sha256(
    blockHashInput(
      block.parent,
      block.view,
      block.height,
      block.proposer,
      block.justify.view,
      block.justify.block,
      crypto.sha256(block.payload),
    ),
  );
}

export interface Genesis {
  readonly block: Block;
  readonly digest: Digest;
  /** The QC that certifies genesis: view 0, no signers, accepted by convention. */
  readonly qc: QuorumCert;
}

/** The same genesis at every replica of a cluster of n: view 0, height 0, empty payload. */
export function makeGenesis(crypto: CryptoBackend, n: number): Genesis {
  const block: Block = {
    parent: ZERO_DIGEST,
    view: 0 as View,
    height: 0 as Height,
    proposer: 0 as ReplicaId,
    justify: { view: 0 as View, block: ZERO_DIGEST, signers: newBitmap(n), sigs: [] },
    payload: new Uint8Array(0),
  };
  const digest = blockDigest(crypto, block);
  return { block, digest, qc: { view: 0 as View, block: digest, signers: newBitmap(n), sigs: [] } };
}

export function isGenesisQc(qc: QuorumCert, genesis: Genesis): boolean {
  return qc.view === 0 && qc.sigs.length === 0 && qc.signers.every((b) => b === 0) && bytesEqual(qc.block, genesis.digest);
}
