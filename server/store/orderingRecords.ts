/**
 * The ordering store's records (buckets Acks and OrderingMeta, db.ts), in fixed binary layouts
 * ending in a CRC-32 like the consensus records (records.ts, which explains why: LevelDB checks
 * table checksums only on compaction, and an ack or a frontier read back wrong must stop the
 * replica rather than steer it). Decoding is strict and a failure asserts: our own record that does
 * not decode is a broken invariant, not bad input.
 *
 * Acks[slot u64 ‖ digest 32 ‖ ocHash 32], format 1:
 *   u8 format | u64 ts | 64 ackSig | u16 stampCount | stampCount × (u16 replica | u64 ts | 64 sig) | u32 crc
 *   The entry's digest and ocHash are in the key; the OC's digest is the entry's digest.
 * OrderingMeta 'tsReservation' | 'frontier' | 'acksPrunedThrough', format 1:
 *   u8 format | u64 value | u32 crc
 * OrderingMeta 'identity', format 1 (which cluster and replica wrote this store):
 *   u8 format | 32 clusterId | u16 replica | u32 crc
 * Integers are big-endian; the CRC-32 covers every byte before it.
 */
import { assert } from '../../common/assert.js';
import { ByteReader, ByteWriter, bytesEqual, toHex } from '../../common/bytes.js';
import { SIGNATURE_BYTES } from '../../common/codec.js';
import { DIGEST_BYTES, type Digest, type ReplicaId, type Slot } from '../../common/ids.js';
import type { OrderingCert, SealEntry, SignedTimestamp } from '../../common/messages.js';
import { U64_BYTES, bucketKeyU64, Bucket, readU64 } from './db.js';
import { crc32 } from './records.js';

const ACK_FORMAT = 1;
const U64_FORMAT = 1;
const IDENTITY_FORMAT = 1;
const CRC_BYTES = 4;

/** slot ‖ digest ‖ ocHash. */
export const ACK_KEY_BYTES = U64_BYTES + 2 * DIGEST_BYTES;

export interface StoredAck {
  readonly entry: SealEntry;
  readonly slot: Slot;
  readonly oc: OrderingCert;
  readonly sig: Uint8Array;
}

export interface StoreIdentity {
  readonly clusterId: Digest;
  readonly replica: ReplicaId;
}

function sealed(w: ByteWriter): Uint8Array {
  const body = w.finish();
  const out = new Uint8Array(body.length + CRC_BYTES);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body));
  return out;
}

function corruptIf(condition: boolean, what: string, problem: string): void {
  assert(!condition, `store corrupted: the ${what} record is unreadable: ${problem}`);
}

/** The body after checking the checksum, copied out of LevelDB's buffer. */
function unsealed(bytes: Uint8Array, what: string): Uint8Array {
  corruptIf(bytes.length < CRC_BYTES, what, `${bytes.length} bytes is shorter than its checksum`);
  const body = bytes.subarray(0, bytes.length - CRC_BYTES);
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(body.length);
  corruptIf(stored !== crc32(body), what, `checksum mismatch (record ${toHex(bytes.subarray(0, 64))}…)`);
  return body.slice();
}

function finished(r: ByteReader, what: string): void {
  corruptIf(r.failed, what, 'truncated or out of range');
  corruptIf(r.remaining !== 0, what, `${r.remaining} bytes after the end`);
}

// ---------------------------------------------------------------------------------------------
// Acks

/** The full key (bucket byte included) of an ack: ordered by slot, so a prune is one range. */
export function ackKey(slot: Slot, digest: Digest, ocHash: Digest): Uint8Array {
  assert(digest.length === DIGEST_BYTES && ocHash.length === DIGEST_BYTES, 'ack key needs 32-byte digests');
  const suffix = new Uint8Array(2 * DIGEST_BYTES);
  suffix.set(digest, 0);
  suffix.set(ocHash, DIGEST_BYTES);
  return bucketKeyU64(Bucket.Acks, slot, suffix);
}

export function encodeAckRecord(ack: StoredAck): Uint8Array {
  const { oc, entry, sig } = ack;
  assert(bytesEqual(oc.digest, entry.digest), 'an ack record needs an OC for its own digest');
  assert(sig.length === SIGNATURE_BYTES, 'an ack signature is 64 bytes');
  const w = new ByteWriter(1 + 8 + SIGNATURE_BYTES + 2 + oc.stamps.length * (2 + 8 + SIGNATURE_BYTES));
  w.u8(ACK_FORMAT).u64(entry.ts).bytes(sig).u16(oc.stamps.length);
  for (const s of oc.stamps) w.u16(s.replica).u64(s.ts).bytes(s.sig);
  return sealed(w);
}

/** Decodes an ack from its key (without the bucket byte) and value. */
export function decodeAckRecord(key: Uint8Array, value: Uint8Array): StoredAck {
  corruptIf(key.length !== ACK_KEY_BYTES, 'ack key', `${key.length} bytes, expected ${ACK_KEY_BYTES}`);
  const slot = readU64(key, 0) as Slot;
  const digest = key.slice(U64_BYTES, U64_BYTES + DIGEST_BYTES) as Digest;
  const ocHash = key.slice(U64_BYTES + DIGEST_BYTES) as Digest;
  const r = new ByteReader(unsealed(value, 'ack'));
  const format = r.u8();
  corruptIf(format !== ACK_FORMAT, 'ack', `format ${format}, expected ${ACK_FORMAT}`);
  const ts = r.u64();
  const sig = r.bytes(SIGNATURE_BYTES);
  const count = r.u16();
  const stamps: SignedTimestamp[] = [];
  for (let i = 0; i < count && !r.failed; i++) {
    const replica = r.u16() as ReplicaId;
    const stampTs = r.u64();
    stamps.push({ replica, ts: stampTs, sig: r.bytes(SIGNATURE_BYTES) });
  }
  finished(r, 'ack');
  return { entry: { digest, ts, ocHash }, slot, oc: { digest, stamps }, sig };
}

// ---------------------------------------------------------------------------------------------
// Small meta records

export function encodeU64Record(value: number): Uint8Array {
  return sealed(new ByteWriter(1 + 8).u8(U64_FORMAT).u64(value));
}

export function decodeU64Record(bytes: Uint8Array, what: string): number {
  const r = new ByteReader(unsealed(bytes, what));
  const format = r.u8();
  corruptIf(format !== U64_FORMAT, what, `format ${format}, expected ${U64_FORMAT}`);
  const value = r.u64();
  finished(r, what);
  return value;
}

export function encodeIdentityRecord(identity: StoreIdentity): Uint8Array {
  assert(identity.clusterId.length === DIGEST_BYTES, 'a cluster id is a 32-byte digest');
  return sealed(new ByteWriter(1 + DIGEST_BYTES + 2).u8(IDENTITY_FORMAT).bytes(identity.clusterId).u16(identity.replica));
}

export function decodeIdentityRecord(bytes: Uint8Array): StoreIdentity {
  const r = new ByteReader(unsealed(bytes, 'identity'));
  const format = r.u8();
  corruptIf(format !== IDENTITY_FORMAT, 'identity', `format ${format}, expected ${IDENTITY_FORMAT}`);
  const clusterId = r.bytes(DIGEST_BYTES) as Digest;
  const replica = r.u16() as ReplicaId;
  finished(r, 'identity');
  return { clusterId, replica };
}
