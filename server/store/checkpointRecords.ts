/**
 * Keys and records of the checkpoint buckets (db.ts): Checkpoints[height ‖ source ‖ index] holds
 * chunk `index` (1-based) of a checkpoint; CheckpointMeta[height ‖ source] its manifest, state
 * digest and, once stable, its certificate; BatchExpiry[expiresAtUs ‖ digest] indexes Batches by
 * expiry so expired ones can be found without reading them.
 *
 * The meta record: version u8 | manifest length u32 | manifest (codec) | state digest (32) |
 * certificate length u32 | the certificate as a checkpointCert frame (codec), or nothing.
 */
import { assert } from '../../common/assert.js';
import { ByteReader, ByteWriter } from '../../common/bytes.js';
import { decodeCheckpointManifest, decodeMessage, encodeCheckpointManifest, encodeMessage, type DecodeContext } from '../../common/codec.js';
import { DIGEST_BYTES, type Digest } from '../../common/ids.js';
import type { CheckpointCert } from '../../common/messages.js';
import type { CheckpointSource, LocalCheckpoint } from '../../ordering/storage.js';
import { readU64, U64_BYTES, u64Bytes } from './db.js';

const META_VERSION = 1;
export const CHECKPOINT_META_KEY_BYTES = U64_BYTES + 1;
export const BATCH_EXPIRY_KEY_BYTES = U64_BYTES + DIGEST_BYTES;

export function checkpointMetaKey(height: number, source: CheckpointSource): Uint8Array {
  const key = new Uint8Array(CHECKPOINT_META_KEY_BYTES);
  key.set(u64Bytes(height));
  key[U64_BYTES] = source;
  return key;
}

export function checkpointChunkKey(height: number, source: CheckpointSource, index: number): Uint8Array {
  const key = new Uint8Array(CHECKPOINT_META_KEY_BYTES + 4);
  key.set(checkpointMetaKey(height, source));
  new DataView(key.buffer).setUint32(CHECKPOINT_META_KEY_BYTES, index);
  return key;
}

/** (height, source) of a Checkpoints or CheckpointMeta key. */
export function checkpointKeyOwner(key: Uint8Array): { height: number; source: CheckpointSource } {
  assert(key.length >= CHECKPOINT_META_KEY_BYTES, `store corrupted: a checkpoint key of ${key.length} bytes`);
  return { height: readU64(key, 0), source: key[U64_BYTES] as CheckpointSource };
}

export function batchExpiryKey(expiresAtUs: number, digest: Digest): Uint8Array {
  const key = new Uint8Array(BATCH_EXPIRY_KEY_BYTES);
  key.set(u64Bytes(expiresAtUs));
  key.set(digest, U64_BYTES);
  return key;
}

export function batchExpiryDigest(key: Uint8Array): Digest {
  assert(key.length === BATCH_EXPIRY_KEY_BYTES, `store corrupted: a BatchExpiry key of ${key.length} bytes`);
  return key.slice(U64_BYTES) as Digest;
}

export function encodeCheckpointMeta(c: LocalCheckpoint): Uint8Array {
  const manifest = encodeCheckpointManifest(c.manifest);
  const cert = c.cert === null ? new Uint8Array(0) : encodeMessage({ type: 'checkpointCert', cert: c.cert });
  return new ByteWriter(manifest.length + cert.length + 48).u8(META_VERSION).u32(manifest.length).bytes(manifest).bytes(c.state).u32(cert.length).bytes(cert).finish();
}

/** Our own record; anything unreadable is corruption (assert). */
export function decodeCheckpointMeta(bytes: Uint8Array, ctx: DecodeContext): LocalCheckpoint {
  const r = new ByteReader(bytes);
  assert(r.u8() === META_VERSION, 'store corrupted: a checkpoint record of an unknown version');
  const manifest = decodeCheckpointManifest(r.bytes(r.u32()), ctx);
  assert(manifest.ok, `store corrupted: a checkpoint manifest does not decode`);
  const state = r.bytes(DIGEST_BYTES).slice() as Digest;
  const certLength = r.u32();
  let cert: CheckpointCert | null = null;
  if (certLength > 0) {
    const decoded = decodeMessage(r.bytes(certLength).slice(), ctx);
    assert(decoded.ok && decoded.value.type === 'checkpointCert', 'store corrupted: a checkpoint certificate does not decode');
    cert = decoded.value.cert;
  }
  assert(!r.failed && r.remaining === 0, 'store corrupted: a checkpoint record of the wrong length');
  return { manifest: manifest.value, state, cert };
}
