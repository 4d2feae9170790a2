/**
 * The consensus store's small records: the safety state and the committed tip, in fixed binary
 * layouts ending in a CRC-32.
 *
 * Why not the wire codec: its QC/TC encoders are internal to common/codec.ts, and these records
 * are ours alone (never on the wire), so a fixed layout written with ByteWriter is the simplest
 * thing that can be checked field by field. The checksum is there because LevelDB verifies table
 * checksums only on compaction by default, and the safety record is what keeps a replica from
 * voting twice: a flipped bit must stop the replica, not steer it.
 *
 * Decoding is strict (version, every length, bitmap and signature counts, no trailing bytes, the
 * checksum) and a failure asserts: an undecodable record of our own is a broken invariant, and
 * running on with a guessed safety state could break safety.
 *
 * safety, format 1:
 *   u8 format | u64 lastVotedView | u64 lockedView | QC highQc | u8 hasTc | [TC lastTc] | u32 crc
 *   QC: u64 view | 32 block | u8 signerBytes | signers | u16 sigCount | sigCount × 64 sig
 *   TC: u64 view | u8 signerBytes | signers | u16 count | count × u64 highQcView | count × 64 sig
 * committed, format 1:
 *   u8 format | u64 height | 32 digest | u32 crc
 * Integers are big-endian; the CRC-32 (IEEE) covers every byte before it.
 */
import { assert } from '../../common/assert.js';
import { bitmapCount, bitmapFits } from '../../common/bitmap.js';
import { ByteReader, ByteWriter, toHex } from '../../common/bytes.js';
import { SIGNATURE_BYTES } from '../../common/codec.js';
import { DIGEST_BYTES, type Digest, type Height, type View } from '../../common/ids.js';
import type { QuorumCert, TimeoutCert } from '../../common/messages.js';
import type { SafetyState } from '../../consensus/types.js';

const SAFETY_FORMAT = 1;
const COMMITTED_FORMAT = 1;
const CRC_BYTES = 4;

export interface CommittedTip {
  readonly height: Height;
  readonly digest: Digest;
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3), table-driven. Records are a few hundred bytes, written once per vote.

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function sealed(w: ByteWriter): Uint8Array {
  const body = w.finish();
  const out = new Uint8Array(body.length + CRC_BYTES);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32(body));
  return out;
}

/** The body of a record after checking its checksum. */
function unsealed(bytes: Uint8Array, what: string): Uint8Array {
  corruptIf(bytes.length < CRC_BYTES, what, `${bytes.length} bytes is shorter than its checksum`);
  const body = bytes.subarray(0, bytes.length - CRC_BYTES);
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(body.length);
  corruptIf(stored !== crc32(body), what, `checksum mismatch (record ${toHex(bytes.subarray(0, 64))}…)`);
  return body;
}

/** Our own record does not decode: stop loudly, with enough to find it. */
function corruptIf(condition: boolean, what: string, problem: string): void {
  assert(!condition, `store corrupted: the ${what} record is unreadable: ${problem}`);
}

// ---------------------------------------------------------------------------------------------
// Safety state

function writeQc(w: ByteWriter, qc: QuorumCert): void {
  w.u64(qc.view).bytes(qc.block).u8(qc.signers.length).bytes(qc.signers).u16(qc.sigs.length);
  for (const s of qc.sigs) w.bytes(s);
}

function writeTc(w: ByteWriter, tc: TimeoutCert): void {
  w.u64(tc.view).u8(tc.signers.length).bytes(tc.signers).u16(tc.sigs.length);
  for (const v of tc.highQcViews) w.u64(v);
  for (const s of tc.sigs) w.bytes(s);
}

export function encodeSafetyRecord(state: SafetyState): Uint8Array {
  const { highQc, lastTc } = state;
  assert(highQc.block.length === DIGEST_BYTES, 'highQc.block must be a digest');
  assert(lastTc === null || lastTc.highQcViews.length === lastTc.sigs.length, 'lastTc needs one high-QC view per signature');
  const w = new ByteWriter(128 + (highQc.sigs.length + (lastTc?.sigs.length ?? 0)) * (SIGNATURE_BYTES + 8));
  w.u8(SAFETY_FORMAT).u64(state.lastVotedView).u64(state.lockedView);
  writeQc(w, highQc);
  w.u8(lastTc === null ? 0 : 1);
  if (lastTc !== null) writeTc(w, lastTc);
  return sealed(w);
}

/** Reads one record body; every problem is reported through `bad`. */
class RecordReader {
  private readonly r: ByteReader;

  constructor(
    body: Uint8Array,
    private readonly what: string,
    private readonly replicaCount: number,
  ) {
    this.r = new ByteReader(body);
  }

  bad(condition: boolean, problem: string): void {
    corruptIf(condition, this.what, problem);
  }

  private checked<T>(value: T, field: string): T {
    this.bad(this.r.failed, `${field}: truncated or out of range`);
    return value;
  }

  u8(field: string): number {
    return this.checked(this.r.u8(), field);
  }
  u16(field: string): number {
    return this.checked(this.r.u16(), field);
  }
  u64(field: string): number {
    return this.checked(this.r.u64(), field);
  }
  bytes(n: number, field: string): Uint8Array {
    return this.checked(this.r.bytes(n), field);
  }

  signers(field: string): { bitmap: Uint8Array; count: number } {
    const bitmap = this.bytes(this.u8(`${field} length`), field);
    this.bad(!bitmapFits(bitmap, this.replicaCount), `${field}: not a bitmap over ${this.replicaCount} replicas`);
    return { bitmap, count: bitmapCount(bitmap) };
  }

  sigs(count: number, field: string): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) out.push(this.bytes(SIGNATURE_BYTES, field));
    return out;
  }

  end(): void {
    this.bad(this.r.remaining !== 0, `${this.r.remaining} bytes after the end`);
  }
}

function readQc(r: RecordReader): QuorumCert {
  const view = r.u64('highQc.view') as View;
  const block = r.bytes(DIGEST_BYTES, 'highQc.block') as Digest;
  const signers = r.signers('highQc.signers');
  const sigCount = r.u16('highQc.sigs count');
  r.bad(sigCount !== signers.count, `highQc: ${sigCount} signatures for ${signers.count} signers`);
  return { view, block, signers: signers.bitmap, sigs: r.sigs(sigCount, 'highQc.sigs') };
}

function readTc(r: RecordReader): TimeoutCert {
  const view = r.u64('lastTc.view') as View;
  const signers = r.signers('lastTc.signers');
  const count = r.u16('lastTc count');
  r.bad(count !== signers.count, `lastTc: ${count} entries for ${signers.count} signers`);
  const highQcViews: View[] = [];
  for (let i = 0; i < count; i++) highQcViews.push(r.u64('lastTc.highQcViews') as View);
  return { view, signers: signers.bitmap, highQcViews, sigs: r.sigs(count, 'lastTc.sigs') };
}

/** Decodes a record written by encodeSafetyRecord for a cluster of `replicaCount`; asserts on
 *  anything else. Byte fields are copies, independent of LevelDB's buffer. */
export function decodeSafetyRecord(bytes: Uint8Array, replicaCount: number): SafetyState {
  const r = new RecordReader(unsealed(bytes, 'safety').slice(), 'safety', replicaCount);
  const format = r.u8('format');
  r.bad(format !== SAFETY_FORMAT, `format ${format}, expected ${SAFETY_FORMAT}`);
  const lastVotedView = r.u64('lastVotedView') as View;
  const lockedView = r.u64('lockedView') as View;
  const highQc = readQc(r);
  const hasTc = r.u8('hasTc');
  r.bad(hasTc > 1, `hasTc is ${hasTc}`);
  const lastTc = hasTc === 1 ? readTc(r) : null;
  r.end();
  return { lastVotedView, lockedView, highQc, lastTc };
}

// ---------------------------------------------------------------------------------------------
// Committed tip

export function encodeCommittedRecord(tip: CommittedTip): Uint8Array {
  assert(tip.digest.length === DIGEST_BYTES, 'committed digest must be a digest');
  return sealed(new ByteWriter(1 + 8 + DIGEST_BYTES).u8(COMMITTED_FORMAT).u64(tip.height).bytes(tip.digest));
}

export function decodeCommittedRecord(bytes: Uint8Array): CommittedTip {
  const r = new RecordReader(unsealed(bytes, 'committed').slice(), 'committed', 1);
  const format = r.u8('format');
  r.bad(format !== COMMITTED_FORMAT, `format ${format}, expected ${COMMITTED_FORMAT}`);
  const height = r.u64('height') as Height;
  const digest = r.bytes(DIGEST_BYTES, 'digest') as Digest;
  r.end();
  return { height, digest };
}
