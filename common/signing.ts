/**
 * Domain-separated signing layouts (DESIGN.md "The protocol"). Each signed statement is a fixed
 * binary layout: a length-prefixed domain tag, the cluster id (so a signature from one cluster
 * cannot be replayed in another), then fixed-width fields. This is the only place these layouts are
 * written; signers and verifiers both call these functions.
 */
import { ByteWriter, utf8 } from './bytes.js';
import type { Digest, ReplicaId, Slot, View } from './ids.js';
import type { CheckpointManifest, CheckpointStatement, SealEntry } from './messages.js';

export const DomainTag = {
  Timestamp: 'pompe/ts/v1',
  Ack: 'pompe/ack/v1',
  Seal: 'pompe/seal/v1',
  Vote: 'pompe/vote/v1',
  Timeout: 'pompe/timeout/v1',
  Executed: 'pompe/exec/v1',
  Hello: 'pompe/hello/v1',
  Block: 'pompe/block/v1',
  OrderingCert: 'pompe/oc/v1',
  SealEntries: 'pompe/seal-entries/v1',
  Cluster: 'pompe/cluster/v1',
  Batch: 'pompe/batch/v1',
  Command: 'pompe/command/v1',
  ClientHello: 'pompe/client-hello/v1',
  Checkpoint: 'pompe/checkpoint/v1',
  CheckpointManifest: 'pompe/checkpoint-manifest/v1',
} as const;
export type DomainTag = (typeof DomainTag)[keyof typeof DomainTag];

const tagBytes = new Map<string, Uint8Array>(Object.values(DomainTag).map((t) => [t, utf8(t)]));

function start(tag: DomainTag, clusterId: Uint8Array | null, sizeHint: number): ByteWriter {
  const bytes = tagBytes.get(tag)!;
  const w = ByteWriter.transient(sizeHint + bytes.length + 33);
  w.u8(bytes.length).bytes(bytes);
  if (clusterId !== null) w.bytes(clusterId);
  return w;
}

export function timestampMessage(clusterId: Uint8Array, digest: Digest, tsUs: number, replica: ReplicaId): Uint8Array {
  return start(DomainTag.Timestamp, clusterId, 42).bytes(digest).u64(tsUs).u16(replica).finish();
}

export function ackMessage(clusterId: Uint8Array, digest: Digest, ocHash: Digest, replica: ReplicaId): Uint8Array {
  return start(DomainTag.Ack, clusterId, 66).bytes(digest).bytes(ocHash).u16(replica).finish();
}

/** `entriesHash` is sealEntriesHash() of the seal's entries. */
export function sealMessage(
  clusterId: Uint8Array,
  replica: ReplicaId,
  fromSlot: Slot,
  toSlot: Slot,
  entryCount: number,
  entriesHash: Digest,
): Uint8Array {
  return start(DomainTag.Seal, clusterId, 54).u16(replica).u64(fromSlot).u64(toSlot).u32(entryCount).bytes(entriesHash).finish();
}

export function voteMessage(clusterId: Uint8Array, v: View, block: Digest): Uint8Array {
  return start(DomainTag.Vote, clusterId, 40).u64(v).bytes(block).finish();
}

export function timeoutMessage(clusterId: Uint8Array, v: View, highQcView: View): Uint8Array {
  return start(DomainTag.Timeout, clusterId, 16).u64(v).u64(highQcView).finish();
}

/** `resultsHash` is the SHA-256 of the Executed notice's results blob. */
export function executedMessage(clusterId: Uint8Array, digest: Digest, position: number, tsUs: number, resultsHash: Digest): Uint8Array {
  return start(DomainTag.Executed, clusterId, 80).bytes(digest).u64(position).u64(tsUs).bytes(resultsHash).finish();
}

/** A peer proves it holds `from`'s key by signing the acceptor's fresh nonce. */
export function helloMessage(clusterId: Uint8Array, from: ReplicaId, to: ReplicaId, nonce: Uint8Array): Uint8Array {
  return start(DomainTag.Hello, clusterId, 4 + nonce.length).u16(from).u16(to).bytes(nonce).finish();
}

/** A collector signs its batch: `bodyHash` is the SHA-256 of every batch byte before the signature
 *  (common/batch.ts), so a batch of any size is signed over a fixed-width statement. */
export function batchMessage(clusterId: Uint8Array, bodyHash: Digest): Uint8Array {
  return start(DomainTag.Batch, clusterId, 32).bytes(bodyHash).finish();
}

/** A thin client signs its command (gateway mode); `payloadHash` is the SHA-256 of the payload. */
export function commandMessage(clusterId: Uint8Array, clientKey: Uint8Array, seq: number, expiresAtUs: number, payloadHash: Digest): Uint8Array {
  return start(DomainTag.Command, clusterId, 80).bytes(clientKey).u64(seq).u64(expiresAtUs).bytes(payloadHash).finish();
}

/** A client proves it holds its key by signing the replica's fresh nonce (server/transport). */
export function clientHelloMessage(clusterId: Uint8Array, replica: ReplicaId, nonce: Uint8Array): Uint8Array {
  return start(DomainTag.ClientHello, clusterId, 2 + nonce.length).u16(replica).bytes(nonce).finish();
}

/** The bytes hashed into a block's digest (the payload enters through its own hash). */
export function blockHashInput(
  parent: Digest,
  v: View,
  height: number,
  proposer: ReplicaId,
  justifyView: View,
  justifyBlock: Digest,
  payloadHash: Digest,
): Uint8Array {
  return start(DomainTag.Block, null, 122)
    .bytes(parent)
    .u64(v)
    .u64(height)
    .u16(proposer)
    .u64(justifyView)
    .bytes(justifyBlock)
    .bytes(payloadHash)
    .finish();
}

/** The bytes hashed into an OC's ocHash: the digest and each stamp in replica order. */
export function orderingCertHashInput(
  digest: Digest,
  stamps: readonly { readonly replica: ReplicaId; readonly ts: number; readonly sig: Uint8Array }[],
): Uint8Array {
  const w = start(DomainTag.OrderingCert, null, 32 + stamps.length * 74).bytes(digest);
  for (const s of stamps) w.u16(s.replica).u64(s.ts).bytes(s.sig);
  return w.finish();
}

/** The bytes hashed into a seal's entries hash: each (digest, ts, ocHash) in the seal's order. */
export function sealEntriesHashInput(entries: readonly SealEntry[]): Uint8Array {
  const w = start(DomainTag.SealEntries, null, entries.length * 72);
  for (const e of entries) w.bytes(e.digest).u64(e.ts).bytes(e.ocHash);
  return w.finish();
}

/** The bytes hashed into the cluster id: every replica's public key in id order, genesis and slot length. */
export function clusterIdInput(publicKeys: readonly Uint8Array[], genesisUs: number, slotUs: number): Uint8Array {
  const w = start(DomainTag.Cluster, null, publicKeys.length * 32 + 20).u16(publicKeys.length);
  for (const k of publicKeys) w.bytes(k);
  return w.u64(genesisUs).u64(slotUs).finish();
}

/** A replica's signature on a checkpoint: q of them on the same statement make it stable. */
export function checkpointMessage(clusterId: Uint8Array, c: CheckpointStatement): Uint8Array {
  return start(DomainTag.Checkpoint, clusterId, 88).u64(c.height).u64(c.toSlot).u64(c.position).bytes(c.block).bytes(c.state).finish();
}

/** The bytes hashed into a checkpoint's state digest: every field of its manifest, chunk hashes in
 *  order, so a digest certified by q replicas fixes every chunk. */
export function checkpointManifestHashInput(m: CheckpointManifest): Uint8Array {
  const w = start(DomainTag.CheckpointManifest, null, 68 + m.chunkHashes.length * 32)
    .u64(m.height)
    .u64(m.toSlot)
    .u64(m.position)
    .bytes(m.block)
    .u32(m.blockChunks)
    .u32(m.executorChunks)
    .u32(m.chunkHashes.length);
  for (const h of m.chunkHashes) w.bytes(h);
  return w.finish();
}
