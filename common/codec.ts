/**
 * The wire codec (DESIGN.md "Wire, limits and bad input"): typed messages ⇄ msgpack frames.
 *
 * A frame is one msgpack array `[tag, ...fields]`. The tag is a small integer fixed per message type
 * (MessageTag below; a number is never reused, retired types keep theirs). Nested structures are
 * positional arrays too, in the field order given in the comments of the encoders below. Byte fields
 * are msgpack bin; integers are msgpack integers, except that msgpackr writes integers of 2^32 and
 * above as float64, so the reader also accepts a float whose value is a non-negative safe integer
 * (timestamps in µs are such integers). Non-integral floats, negatives and values above 2^53 − 1 (as
 * uint64, int64 or float) are rejected. The reader accepts any valid msgpack form of a value, not
 * only the shortest (other encoders choose differently); this opens no malleability, because what is
 * signed is the fixed layouts of signing.ts and what is hashed is the exact bytes received.
 *
 * Encoding uses one msgpackr Packr. Decoding uses a strict reader of the msgpack subset above,
 * driven by each message's schema, rather than msgpackr's generic Unpackr, because the generic
 * decoder cannot be bounded before validation. Measured with msgpackr 2.1.3 on 20 MB frames (within
 * MAX_FRAME_BYTES): it builds the whole value tree first (an array of 20M empty arrays took 800 MB of
 * heap and 3 s), always runs its process-wide extensions (a bigint extension took 440 ms), and on
 * trailing bytes JSON-stringifies what it read into the error message (15.7 s). This reader checks
 * every length against its limit before it allocates, allocates nothing but the output, and rejects
 * maps, extensions, and strings where bytes are due. The tests read our frames back with msgpackr's
 * Unpackr and decode msgpackr-written frames, so both sides speak plain msgpack.
 *
 * Decoding checks structure only: sizes, ranges, replica ids below n, bitmaps and their signature
 * counts. Signatures, medians and certificate quorums need the cluster's keys and are the cores' job.
 *
 * Byte fields of a decoded message are views into the frame (no copies), so the caller must not
 * reuse or overwrite the frame's buffer while the message lives (the server copies uWS buffers,
 * which uWS reuses, before decoding). Encoded frames may share one ArrayBuffer with other frames:
 * send or copy them, never transfer their buffer.
 */
import { Packr } from 'msgpackr';
import { assert } from './assert.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './crypto/types.js';
import { ErrorCode, err, ok, type Result } from './errors.js';
import { DIGEST_BYTES, MAX_WIRE_INTEGER, isWireInteger, type Digest, type Height, type ReplicaId, type Slot, type View } from './ids.js';
import {
  MAX_BATCH_BYTES,
  MAX_BLOCK_ENTRIES,
  MAX_BLOCK_PAYLOAD_BYTES,
  MAX_CHECKPOINT_CHUNK_BYTES,
  MAX_CHECKPOINT_CHUNKS,
  MAX_CHECKPOINT_MANIFEST_BYTES,
  MAX_COMMAND_BYTES,
  MAX_DIGESTS_PER_REQUEST,
  MAX_ERROR_CODE_CHARS,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_FRAME_BYTES,
  MAX_REPLICAS,
  MAX_RESULT_BYTES,
  MAX_RESULTS_BLOB_BYTES,
  MAX_SEAL_BYTES,
  MAX_SEAL_ENTRIES,
  MAX_SYNC_BLOCKS,
} from './limits.js';
import {
  RefusalReason,
  type Block,
  type BlockPayload,
  type CheckpointCert,
  type CheckpointManifest,
  type CheckpointStatement,
  type Message,
  type MessageType,
  type OrderingCert,
  type PayloadSeal,
  type QuorumCert,
  type Seal,
  type SealAttachment,
  type SealEntry,
  type SignedTimestamp,
  type TimeoutCert,
} from './messages.js';

/** The type tag of each message: the first element of its frame. Never renumber or reuse.
 *  Retired: 10 (clientHello with a self-chosen collector id), 17–19 (thin-client messages tagged
 *  with a self-chosen client id), replaced by 21–24 when clients became keys. */
export const MessageTag = {
  proposal: 1,
  vote: 2,
  timeout: 3,
  blockRequest: 4,
  blockResponse: 5,
  batchRequest: 6,
  batchResponse: 7,
  helloChallenge: 8,
  hello: 9,
  submit: 11,
  sequence: 12,
  tsReply: 13,
  ack: 14,
  refused: 15,
  executed: 16,
  error: 20,
  clientHello: 21,
  command: 22,
  commandOrdered: 23,
  commandExecuted: 24,
  // 25–29 are left for other message families; checkpoints and state transfer from 30.
  checkpoint: 30,
  checkpointRequest: 31,
  checkpointCert: 32,
  chunkRequest: 33,
  chunkResponse: 34,
} as const satisfies Record<MessageType, number>;

export const SIGNATURE_BYTES = ED25519_SIGNATURE_BYTES;
/** Client keys on the wire: raw Ed25519 public keys. */
export const PUBLIC_KEY_BYTES = ED25519_PUBLIC_KEY_BYTES;
/** A link-authentication challenge: 256 bits of fresh randomness, never guessed or repeated. */
export const HELLO_NONCE_BYTES = 32;
/** The encoding of "no seal" in a vote's or timeout's attachment. */
export const NO_SEAL_ATTACHMENT: Uint8Array = new Uint8Array(0);

/** What the decoder must know about the cluster: replica ids are checked to be below n. */
export interface DecodeContext {
  readonly replicaCount: number;
}

/** Bytes of a signer bitmap over n members. */
const bitmapBytesFor = (n: number): number => (n + 7) >>> 3;

// =============================================================================================
// Encoding. Every message we encode is one we built, so a malformed one is a programmer error
// (assert). The checks are the cheap ones whose violation msgpack would otherwise carry silently
// to the peer (a float or negative integer, a digest of the wrong length, an oversized frame).

const packr = new Packr({ useRecords: false });

// The checks branch before building their message: these run for every field of every frame.

function int(value: number, what: string): number {
  if (!isWireInteger(value)) assert(false, `${what} must be a non-negative safe integer, got ${value}`);
  return value;
}

function fixed(bytes: Uint8Array, length: number, what: string): Uint8Array {
  if (bytes.length !== length) assert(false, `${what} must be ${length} bytes, got ${bytes.length}`);
  return bytes;
}

function sigList(sigs: readonly Uint8Array[], what: string): readonly Uint8Array[] {
  for (const s of sigs) fixed(s, SIGNATURE_BYTES, what);
  return sigs;
}

function pack(value: unknown[], limit: number, what: string): Uint8Array {
  const out: Uint8Array = packr.pack(value);
  if (out.length > limit) assert(false, `${what} encodes to ${out.length} bytes, above its limit of ${limit}`);
  return out;
}

/** QuorumCert: [view, block, signers, sigs[]] */
function qcWire(qc: QuorumCert): unknown[] {
  return [int(qc.view, 'qc.view'), fixed(qc.block, DIGEST_BYTES, 'qc.block'), qc.signers, sigList(qc.sigs, 'qc.sigs')];
}

/** TimeoutCert: [view, signers, highQcViews[], sigs[]] */
function tcWire(tc: TimeoutCert): unknown[] {
  for (const v of tc.highQcViews) int(v, 'tc.highQcViews');
  return [int(tc.view, 'tc.view'), tc.signers, tc.highQcViews, sigList(tc.sigs, 'tc.sigs')];
}

/** Block: [parent, view, height, proposer, justify, payload] */
function blockWire(b: Block): unknown[] {
  return [
    fixed(b.parent, DIGEST_BYTES, 'block.parent'),
    int(b.view, 'block.view'),
    int(b.height, 'block.height'),
    int(b.proposer, 'block.proposer'),
    qcWire(b.justify),
    b.payload,
  ];
}

/** SignedTimestamp: [replica, ts, sig] */
function stampWire(s: SignedTimestamp): unknown[] {
  return [int(s.replica, 'stamp.replica'), int(s.ts, 'stamp.ts'), fixed(s.sig, SIGNATURE_BYTES, 'stamp.sig')];
}

/** OrderingCert: [digest, stamps[]] */
function ocWire(oc: OrderingCert): unknown[] {
  return [fixed(oc.digest, DIGEST_BYTES, 'oc.digest'), oc.stamps.map(stampWire)];
}

/** SealEntry: [digest, ts, ocHash] */
function entryWire(e: SealEntry): unknown[] {
  return [fixed(e.digest, DIGEST_BYTES, 'entry.digest'), int(e.ts, 'entry.ts'), fixed(e.ocHash, DIGEST_BYTES, 'entry.ocHash')];
}

/** Seal: [replica, fromSlot, toSlot, entries[], sig] */
function sealWire(s: Seal): unknown[] {
  return [
    int(s.replica, 'seal.replica'),
    int(s.fromSlot, 'seal.fromSlot'),
    int(s.toSlot, 'seal.toSlot'),
    s.entries.map(entryWire),
    fixed(s.sig, SIGNATURE_BYTES, 'seal.sig'),
  ];
}

/** PayloadSeal: [replica, fromSlot, toSlot, include, tail[], sig] */
function payloadSealWire(s: PayloadSeal): unknown[] {
  return [
    int(s.replica, 'payloadSeal.replica'),
    int(s.fromSlot, 'payloadSeal.fromSlot'),
    int(s.toSlot, 'payloadSeal.toSlot'),
    s.include,
    s.tail.map(entryWire),
    fixed(s.sig, SIGNATURE_BYTES, 'payloadSeal.sig'),
  ];
}

/** BlockPayload: [fromSlot, toSlot, entries[], ocs[], seals[]] */
function payloadWire(p: BlockPayload): unknown[] {
  return [int(p.fromSlot, 'payload.fromSlot'), int(p.toSlot, 'payload.toSlot'), p.entries.map(entryWire), p.ocs.map(ocWire), p.seals.map(payloadSealWire)];
}

/** CheckpointStatement: [height, toSlot, position, block, state] */
function checkpointStatementWire(c: CheckpointStatement): unknown[] {
  return [
    int(c.height, 'checkpoint.height'),
    int(c.toSlot, 'checkpoint.toSlot'),
    int(c.position, 'checkpoint.position'),
    fixed(c.block, DIGEST_BYTES, 'checkpoint.block'),
    fixed(c.state, DIGEST_BYTES, 'checkpoint.state'),
  ];
}

/** CheckpointCert: [...statement, signers, sigs[]] */
function checkpointCertWire(c: CheckpointCert): unknown[] {
  return [...checkpointStatementWire(c), c.signers, sigList(c.sigs, 'checkpointCert.sigs')];
}

/** The largest chunkResponse body: a chunk, or a manifest (index 0). */
const MAX_CHUNK_RESPONSE_BYTES = Math.max(MAX_CHECKPOINT_CHUNK_BYTES, MAX_CHECKPOINT_MANIFEST_BYTES);

/** Longest prefix of `text` within `max` UTF-16 units: error texts are diagnostics, and a long
 *  one must not turn an error reply into a crash. */
const clip = (text: string, max: number): string => (text.length <= max ? text : text.slice(0, max));

/** The frame's fields after the tag, in wire order. */
function messageFields(msg: Message): unknown[] {
  switch (msg.type) {
    case 'proposal':
      return [blockWire(msg.block), msg.tc === null ? null : tcWire(msg.tc)];
    case 'vote':
      return [int(msg.view, 'vote.view'), fixed(msg.block, DIGEST_BYTES, 'vote.block'), int(msg.voter, 'vote.voter'), fixed(msg.sig, SIGNATURE_BYTES, 'vote.sig'), msg.attachment];
    case 'timeout':
      return [
        int(msg.view, 'timeout.view'),
        int(msg.voter, 'timeout.voter'),
        qcWire(msg.highQc),
        fixed(msg.sig, SIGNATURE_BYTES, 'timeout.sig'),
        msg.attachment,
        msg.lastTc === null ? null : tcWire(msg.lastTc),
      ];
    case 'blockRequest':
      return [fixed(msg.digest, DIGEST_BYTES, 'blockRequest.digest'), int(msg.maxBlocks, 'blockRequest.maxBlocks')];
    case 'blockResponse':
      return [msg.blocks.map(blockWire)];
    case 'batchRequest':
      for (const d of msg.digests) fixed(d, DIGEST_BYTES, 'batchRequest.digests');
      return [msg.digests];
    case 'batchResponse':
      return [msg.batches];
    case 'helloChallenge':
      return [int(msg.replica, 'helloChallenge.replica'), fixed(msg.nonce, HELLO_NONCE_BYTES, 'helloChallenge.nonce')];
    case 'hello':
      return [int(msg.replica, 'hello.replica'), fixed(msg.nonce, HELLO_NONCE_BYTES, 'hello.nonce'), fixed(msg.sig, SIGNATURE_BYTES, 'hello.sig')];
    case 'clientHello':
      return [fixed(msg.key, PUBLIC_KEY_BYTES, 'clientHello.key'), fixed(msg.nonce, HELLO_NONCE_BYTES, 'clientHello.nonce'), fixed(msg.sig, SIGNATURE_BYTES, 'clientHello.sig')];
    case 'submit':
      return [msg.batch];
    case 'sequence':
      return [ocWire(msg.oc), msg.batch];
    case 'tsReply':
      return [fixed(msg.digest, DIGEST_BYTES, 'tsReply.digest'), stampWire(msg.stamp)];
    case 'ack':
      return [
        fixed(msg.digest, DIGEST_BYTES, 'ack.digest'),
        fixed(msg.ocHash, DIGEST_BYTES, 'ack.ocHash'),
        int(msg.replica, 'ack.replica'),
        fixed(msg.sig, SIGNATURE_BYTES, 'ack.sig'),
      ];
    case 'refused':
      return [fixed(msg.digest, DIGEST_BYTES, 'refused.digest'), int(msg.replica, 'refused.replica'), msg.reason, int(msg.frontier, 'refused.frontier')];
    case 'executed':
      return [
        fixed(msg.digest, DIGEST_BYTES, 'executed.digest'),
        int(msg.position, 'executed.position'),
        int(msg.ts, 'executed.ts'),
        msg.results,
        int(msg.replica, 'executed.replica'),
        fixed(msg.sig, SIGNATURE_BYTES, 'executed.sig'),
      ];
    case 'command':
      return [
        fixed(msg.clientKey, PUBLIC_KEY_BYTES, 'command.clientKey'),
        int(msg.seq, 'command.seq'),
        int(msg.expiresAtUs, 'command.expiresAtUs'),
        msg.payload,
        fixed(msg.sig, SIGNATURE_BYTES, 'command.sig'),
      ];
    case 'commandOrdered':
      return [int(msg.seq, 'commandOrdered.seq'), fixed(msg.digest, DIGEST_BYTES, 'commandOrdered.digest'), int(msg.ts, 'commandOrdered.ts')];
    case 'commandExecuted':
      return [int(msg.seq, 'commandExecuted.seq'), int(msg.position, 'commandExecuted.position'), msg.result];
    case 'error':
      return [clip(msg.code, MAX_ERROR_CODE_CHARS), clip(msg.message, MAX_ERROR_MESSAGE_CHARS)];
    case 'checkpoint':
      return [...checkpointStatementWire(msg), int(msg.replica, 'checkpoint.replica'), fixed(msg.sig, SIGNATURE_BYTES, 'checkpoint.sig')];
    case 'checkpointRequest':
      return [];
    case 'checkpointCert':
      return [checkpointCertWire(msg.cert)];
    case 'chunkRequest':
      return [int(msg.height, 'chunkRequest.height'), fixed(msg.state, DIGEST_BYTES, 'chunkRequest.state'), int(msg.index, 'chunkRequest.index')];
    case 'chunkResponse':
      return [int(msg.height, 'chunkResponse.height'), fixed(msg.state, DIGEST_BYTES, 'chunkResponse.state'), int(msg.index, 'chunkResponse.index'), msg.bytes];
  }
}

/** Encodes a message into one frame. The frame must fit MAX_FRAME_BYTES: a sender bounds what it
 *  puts in a message (sync responses are cut at MAX_SYNC_RESPONSE_BYTES), so exceeding it asserts. */
export function encodeMessage(msg: Message): Uint8Array {
  const frame = messageFields(msg);
  frame.unshift(MessageTag[msg.type]);
  return pack(frame, MAX_FRAME_BYTES, msg.type);
}

export function encodeBlock(block: Block): Uint8Array {
  return pack(blockWire(block), MAX_FRAME_BYTES, 'block');
}

export function encodeBlockPayload(payload: BlockPayload): Uint8Array {
  return pack(payloadWire(payload), MAX_BLOCK_PAYLOAD_BYTES, 'block payload');
}

export function encodeSeal(seal: Seal): Uint8Array {
  return pack(sealWire(seal), MAX_SEAL_BYTES, 'seal');
}

/** CheckpointManifest: [height, toSlot, position, block, blockChunks, executorChunks, chunkHashes[]] */
export function encodeCheckpointManifest(m: CheckpointManifest): Uint8Array {
  for (const h of m.chunkHashes) fixed(h, DIGEST_BYTES, 'manifest.chunkHashes');
  return pack(
    [
      int(m.height, 'manifest.height'),
      int(m.toSlot, 'manifest.toSlot'),
      int(m.position, 'manifest.position'),
      fixed(m.block, DIGEST_BYTES, 'manifest.block'),
      int(m.blockChunks, 'manifest.blockChunks'),
      int(m.executorChunks, 'manifest.executorChunks'),
      m.chunkHashes,
    ],
    MAX_CHECKPOINT_MANIFEST_BYTES,
    'checkpoint manifest',
  );
}

/** A vote's or timeout's attachment: [seal, ocs[]], or zero bytes for "no seal". */
export function encodeSealAttachment(attachment: SealAttachment | null): Uint8Array {
  if (attachment === null) return NO_SEAL_ATTACHMENT;
  return pack([sealWire(attachment.seal), attachment.ocs.map(ocWire)], MAX_SEAL_BYTES, 'seal attachment');
}

// =============================================================================================
// Decoding: a strict msgpack reader driven by each structure's schema.

/** A typed decode error, thrown inside the reader and turned into a Result at the entry points.
 *  Not an Error subclass: bad input is routine, and a stack trace per bad frame is wasted work. */
class DecodeFailure {
  constructor(
    readonly code: ErrorCode,
    readonly message: string,
  ) {}
}

function fail(code: ErrorCode, message: string): never {
  throw new DecodeFailure(code, message);
}

const invalid = (field: string, problem: string): never => fail(ErrorCode.InvalidField, `${field}: ${problem}`);

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 takes at most 3 bytes per UTF-16 code unit (4 bytes for a surrogate pair of 2 units). */
const MAX_UTF8_BYTES_PER_UNIT = 3;

/** Highest 32-bit word of a u64 that keeps the value at or below 2^53 − 1. */
const MAX_SAFE_HIGH_WORD = 0x1f_ffff;

class Reader {
  private pos = 0;
  private readonly view: DataView;
  readonly replicaCount: number;
  readonly signerBytes: number;

  constructor(
    private readonly buf: Uint8Array,
    ctx: DecodeContext,
  ) {
    const n = ctx.replicaCount;
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_REPLICAS)) assert(false, `replicaCount must be 1..${MAX_REPLICAS}, got ${n}`);
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.replicaCount = n;
    this.signerBytes = bitmapBytesFor(n);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Claims `n` bytes and returns their offset; running past the end means a truncated frame. */
  private take(n: number, field: string): number {
    if (n > this.buf.length - this.pos) fail(ErrorCode.MalformedFrame, `${field}: truncated`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private byte(field: string): number {
    return this.buf[this.take(1, field)]!;
  }

  /** Whole input consumed: trailing bytes would be data no one validated. */
  end(what: string): void {
    if (this.pos !== this.buf.length) fail(ErrorCode.MalformedFrame, `${what}: ${this.remaining} bytes after the end`);
  }

  /** Length of the array that starts here; the caller bounds it. */
  arrayHeader(field: string): number {
    const t = this.byte(field);
    if (t >= 0x90 && t <= 0x9f) return t - 0x90;
    if (t === 0xdc) return this.view.getUint16(this.take(2, field));
    if (t === 0xdd) return this.view.getUint32(this.take(4, field));
    return invalid(field, 'expected an array');
  }

  /** A fixed-shape structure: an array of exactly `count` fields. */
  tuple(field: string, count: number): void {
    const len = this.arrayHeader(field);
    if (len !== count) invalid(field, `expected ${count} fields, got ${len}`);
  }

  /** A list of at most `max` elements. Each element takes at least one byte, so a length beyond
   *  the bytes left is a lie, rejected before any per-element work. */
  list(field: string, max: number): number {
    const len = this.arrayHeader(field);
    if (len > max) invalid(field, `${len} elements exceed the limit of ${max}`);
    if (len > this.remaining) fail(ErrorCode.MalformedFrame, `${field}: ${len} elements cannot fit in ${this.remaining} bytes`);
    return len;
  }

  /** Consumes a nil if one is next (an absent optional field). */
  nil(): boolean {
    if (this.pos < this.buf.length && this.buf[this.pos] === 0xc0) {
      this.pos++;
      return true;
    }
    return false;
  }

  /** A non-negative safe integer, in any msgpack integer form or as an integral float. */
  uint(field: string): number {
    const t = this.byte(field);
    if (t < 0x80) return t;
    const v = this.view;
    switch (t) {
      case 0xcc:
        return this.byte(field);
      case 0xcd:
        return v.getUint16(this.take(2, field));
      case 0xce:
        return v.getUint32(this.take(4, field));
      case 0xcf: {
        const at = this.take(8, field);
        return u64(field, v.getUint32(at), v.getUint32(at + 4));
      }
      case 0xd0:
        return nonNegative(field, v.getInt8(this.take(1, field)));
      case 0xd1:
        return nonNegative(field, v.getInt16(this.take(2, field)));
      case 0xd2:
        return nonNegative(field, v.getInt32(this.take(4, field)));
      case 0xd3: {
        const at = this.take(8, field);
        return u64(field, nonNegative(field, v.getInt32(at)), v.getUint32(at + 4));
      }
      case 0xca:
        return integral(field, v.getFloat32(this.take(4, field)));
      case 0xcb:
        return integral(field, v.getFloat64(this.take(8, field)));
      default:
        return invalid(field, t >= 0xe0 ? 'negative integer' : 'expected an integer');
    }
  }

  /** Bytes (msgpack bin) of at most `max` length, as a view into the input. */
  bytes(field: string, max: number, code: ErrorCode = ErrorCode.InvalidField): Uint8Array {
    const len = this.binLength(field, max, code);
    const at = this.take(len, field);
    return this.buf.subarray(at, at + len);
  }

  /** The length of the msgpack bin that starts here (its header consumed), at most `max`. */
  private binLength(field: string, max: number, code: ErrorCode): number {
    const t = this.byte(field);
    let len: number;
    if (t === 0xc4) len = this.byte(field);
    else if (t === 0xc5) len = this.view.getUint16(this.take(2, field));
    else if (t === 0xc6) len = this.view.getUint32(this.take(4, field));
    else return invalid(field, 'expected bytes');
    if (len > max) fail(code, `${field}: ${len} bytes exceed the limit of ${max}`);
    return len;
  }

  /** Fixed-width bytes (digests, signatures, keys, nonces), copied out of the input: these are what
   *  long-lived tables keep, and a view would keep the whole message alive with them (a 32-byte
   *  digest held a 170 KB block in memory). Copies this small live on V8's heap, not in malloc. */
  fixedBytes(field: string, length: number): Uint8Array {
    const len = this.binLength(field, length, ErrorCode.InvalidField);
    const at = this.take(len, field);
    if (len !== length) invalid(field, `expected ${length} bytes, got ${len}`);
    // Copied byte by byte: a subarray to copy from would be one more object per field, and
    // every decoded frame has several of these.
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.buf[at + i]!;
    return out;
  }

  /** A UTF-8 string of at most `maxChars` UTF-16 units (the length of the JS string). */
  string(field: string, maxChars: number): string {
    const t = this.byte(field);
    let len: number;
    if (t >= 0xa0 && t <= 0xbf) len = t - 0xa0;
    else if (t === 0xd9) len = this.byte(field);
    else if (t === 0xda) len = this.view.getUint16(this.take(2, field));
    else if (t === 0xdb) len = this.view.getUint32(this.take(4, field));
    else return invalid(field, 'expected a string');
    if (len > maxChars * MAX_UTF8_BYTES_PER_UNIT) invalid(field, `string of ${len} bytes exceeds ${maxChars} characters`);
    const at = this.take(len, field);
    let text: string;
    try {
      text = utf8Strict.decode(this.buf.subarray(at, at + len));
    } catch {
      return invalid(field, 'invalid UTF-8');
    }
    if (text.length > maxChars) invalid(field, `string of ${text.length} characters exceeds ${maxChars}`);
    return text;
  }
}

function nonNegative(field: string, value: number): number {
  return value < 0 ? invalid(field, 'negative integer') : value;
}

function u64(field: string, high: number, low: number): number {
  if (high > MAX_SAFE_HIGH_WORD) invalid(field, `integer above ${MAX_WIRE_INTEGER}`);
  return high * 0x1_0000_0000 + low;
}

function integral(field: string, value: number): number {
  if (!Number.isInteger(value)) invalid(field, `not an integer: ${value}`);
  if (value < 0) invalid(field, 'negative integer');
  if (value > MAX_WIRE_INTEGER) invalid(field, `integer above ${MAX_WIRE_INTEGER}`);
  return value === 0 ? 0 : value; // folds -0 into 0
}

// ---------------------------------------------------------------------------------------------
// Field and structure readers. Error messages name the structure and field; the entry points
// prefix the message type.

const digest = (r: Reader, field: string): Digest => r.fixedBytes(field, DIGEST_BYTES) as Digest;
const signature = (r: Reader, field: string): Uint8Array => r.fixedBytes(field, SIGNATURE_BYTES);

function replica(r: Reader, field: string): ReplicaId {
  const id = r.uint(field);
  if (id >= r.replicaCount) fail(ErrorCode.UnknownReplica, `${field}: replica ${id} is not below n = ${r.replicaCount}`);
  return id as ReplicaId;
}

/** fromSlot ≤ toSlot: a range (from, to] may be empty (a pipeline filler) but never reversed. */
function slotRange(r: Reader, where: string): [Slot, Slot] {
  const from = r.uint(`${where}.fromSlot`);
  const to = r.uint(`${where}.toSlot`);
  if (from > to) invalid(where, `fromSlot ${from} is above toSlot ${to}`);
  return [from as Slot, to as Slot];
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let count = 0;
  for (let x = b; x !== 0; x &= x - 1) count++;
  return count;
});

/** A bitmap over `size` members: exactly ⌈size/8⌉ bytes, no bit set at or above `size`.
 *  Returns the number of set bits. */
function checkBitmap(bitmap: Uint8Array, size: number, field: string): number {
  if (bitmap.length !== bitmapBytesFor(size)) invalid(field, `bitmap of ${bitmap.length} bytes, expected ${bitmapBytesFor(size)}`);
  const spare = bitmap.length * 8 - size;
  if (spare > 0 && bitmap[bitmap.length - 1]! >>> (8 - spare) !== 0) invalid(field, `bit set at or above ${size}`);
  let count = 0;
  for (let i = 0; i < bitmap.length; i++) count += POPCOUNT[bitmap[i]!]!;
  return count;
}

function signers(r: Reader, field: string): { bitmap: Uint8Array; count: number } {
  const bitmap = r.bytes(field, r.signerBytes);
  return { bitmap, count: checkBitmap(bitmap, r.replicaCount, field) };
}

/** One signature per signer. */
function signatures(r: Reader, field: string, count: number): Uint8Array[] {
  const len = r.arrayHeader(field);
  if (len !== count) invalid(field, `${len} signatures for ${count} signers`);
  const sigs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) sigs.push(signature(r, field));
  return sigs;
}

function quorumCert(r: Reader): QuorumCert {
  r.tuple('QuorumCert', 4);
  const view = r.uint('QuorumCert.view') as View;
  const block = digest(r, 'QuorumCert.block');
  const s = signers(r, 'QuorumCert.signers');
  const sigs = signatures(r, 'QuorumCert.sigs', s.count);
  return { view, block, signers: s.bitmap, sigs };
}

function timeoutCert(r: Reader): TimeoutCert {
  r.tuple('TimeoutCert', 4);
  const view = r.uint('TimeoutCert.view') as View;
  const s = signers(r, 'TimeoutCert.signers');
  const views = r.arrayHeader('TimeoutCert.highQcViews');
  if (views !== s.count) invalid('TimeoutCert.highQcViews', `${views} views for ${s.count} signers`);
  const highQcViews: View[] = [];
  for (let i = 0; i < views; i++) highQcViews.push(r.uint('TimeoutCert.highQcViews') as View);
  const sigs = signatures(r, 'TimeoutCert.sigs', s.count);
  return { view, signers: s.bitmap, highQcViews, sigs };
}

function optionalTimeoutCert(r: Reader): TimeoutCert | null {
  return r.nil() ? null : timeoutCert(r);
}

function block(r: Reader): Block {
  r.tuple('Block', 6);
  const parent = digest(r, 'Block.parent');
  const view = r.uint('Block.view') as View;
  const height = r.uint('Block.height') as Height;
  const proposer = replica(r, 'Block.proposer');
  const justify = quorumCert(r);
  const payload = r.bytes('Block.payload', MAX_BLOCK_PAYLOAD_BYTES);
  return { parent, view, height, proposer, justify, payload };
}

function signedTimestamp(r: Reader): SignedTimestamp {
  r.tuple('SignedTimestamp', 3);
  const rep = replica(r, 'SignedTimestamp.replica');
  const ts = r.uint('SignedTimestamp.ts');
  const sig = signature(r, 'SignedTimestamp.sig');
  return { replica: rep, ts, sig };
}

/** Stamps come from distinct replicas, so there are at most n (MAX_REPLICAS for any cluster);
 *  that there are exactly q, in replica order, with the right median, is the core's check. */
function orderingCert(r: Reader): OrderingCert {
  r.tuple('OrderingCert', 2);
  const d = digest(r, 'OrderingCert.digest');
  const count = r.list('OrderingCert.stamps', r.replicaCount);
  const stamps: SignedTimestamp[] = [];
  for (let i = 0; i < count; i++) stamps.push(signedTimestamp(r));
  return { digest: d, stamps };
}

function sealEntry(r: Reader): SealEntry {
  r.tuple('SealEntry', 3);
  const d = digest(r, 'SealEntry.digest');
  const ts = r.uint('SealEntry.ts');
  const ocHash = digest(r, 'SealEntry.ocHash');
  return { digest: d, ts, ocHash };
}

function sealEntries(r: Reader, field: string, max: number): SealEntry[] {
  const count = r.list(field, max);
  const entries: SealEntry[] = [];
  for (let i = 0; i < count; i++) entries.push(sealEntry(r));
  return entries;
}

function seal(r: Reader): Seal {
  r.tuple('Seal', 5);
  const rep = replica(r, 'Seal.replica');
  const [fromSlot, toSlot] = slotRange(r, 'Seal');
  const entries = sealEntries(r, 'Seal.entries', MAX_SEAL_ENTRIES);
  const sig = signature(r, 'Seal.sig');
  return { replica: rep, fromSlot, toSlot, entries, sig };
}

function sealAttachment(r: Reader): SealAttachment {
  r.tuple('SealAttachment', 2);
  const sealed = seal(r);
  // One OC per distinct ocHash among the seal's entries.
  const ocCount = r.list('SealAttachment.ocs', sealed.entries.length);
  const ocs: OrderingCert[] = [];
  for (let i = 0; i < ocCount; i++) ocs.push(orderingCert(r));
  return { seal: sealed, ocs };
}

/** `payloadEntries` is the number of entries of the enclosing payload, which `include` maps. */
function payloadSeal(r: Reader, payloadEntries: number): PayloadSeal {
  r.tuple('PayloadSeal', 6);
  const rep = replica(r, 'PayloadSeal.replica');
  const [fromSlot, toSlot] = slotRange(r, 'PayloadSeal');
  const include = r.bytes('PayloadSeal.include', bitmapBytesFor(payloadEntries));
  const included = checkBitmap(include, payloadEntries, 'PayloadSeal.include');
  // The original seal held at most MAX_SEAL_ENTRIES entries, split between `include` and `tail`.
  const tail = sealEntries(r, 'PayloadSeal.tail', MAX_SEAL_ENTRIES - included);
  const sig = signature(r, 'PayloadSeal.sig');
  return { replica: rep, fromSlot, toSlot, include, tail, sig };
}

function blockPayload(r: Reader): BlockPayload {
  r.tuple('BlockPayload', 5);
  const [fromSlot, toSlot] = slotRange(r, 'BlockPayload');
  const entries = sealEntries(r, 'BlockPayload.entries', MAX_BLOCK_ENTRIES);
  // One OC per distinct ocHash among the entries, so never more OCs than entries.
  const ocCount = r.list('BlockPayload.ocs', entries.length);
  const ocs: OrderingCert[] = [];
  for (let i = 0; i < ocCount; i++) ocs.push(orderingCert(r));
  // Seals come from distinct replicas.
  const sealCount = r.list('BlockPayload.seals', r.replicaCount);
  const seals: PayloadSeal[] = [];
  for (let i = 0; i < sealCount; i++) seals.push(payloadSeal(r, entries.length));
  return { fromSlot, toSlot, entries, ocs, seals };
}

function checkpointStatement(r: Reader, what: string): CheckpointStatement {
  const height = r.uint(`${what}.height`) as Height;
  const toSlot = r.uint(`${what}.toSlot`) as Slot;
  const position = r.uint(`${what}.position`);
  const blockDigest = digest(r, `${what}.block`);
  const state = digest(r, `${what}.state`);
  return { height, toSlot, position, block: blockDigest, state };
}

function checkpointCert(r: Reader): CheckpointCert {
  r.tuple('CheckpointCert', 7);
  const statement = checkpointStatement(r, 'CheckpointCert');
  const s = signers(r, 'CheckpointCert.signers');
  const sigs = signatures(r, 'CheckpointCert.sigs', s.count);
  return { ...statement, signers: s.bitmap, sigs };
}

function chunkIndex(r: Reader, field: string): number {
  const index = r.uint(field);
  if (index > MAX_CHECKPOINT_CHUNKS) invalid(field, `${index} is above the last chunk a checkpoint may have (${MAX_CHECKPOINT_CHUNKS})`);
  return index;
}

function checkpointManifest(r: Reader): CheckpointManifest {
  r.tuple('CheckpointManifest', 7);
  const height = r.uint('CheckpointManifest.height') as Height;
  const toSlot = r.uint('CheckpointManifest.toSlot') as Slot;
  const position = r.uint('CheckpointManifest.position');
  const blockDigest = digest(r, 'CheckpointManifest.block');
  const blockChunks = r.uint('CheckpointManifest.blockChunks');
  const executorChunks = r.uint('CheckpointManifest.executorChunks');
  const count = r.list('CheckpointManifest.chunkHashes', MAX_CHECKPOINT_CHUNKS);
  if (blockChunks + executorChunks > count) invalid('CheckpointManifest', `${blockChunks} block and ${executorChunks} executor chunks of ${count}`);
  const chunkHashes: Digest[] = [];
  for (let i = 0; i < count; i++) chunkHashes.push(digest(r, 'CheckpointManifest.chunkHashes'));
  return { height, toSlot, position, block: blockDigest, blockChunks, executorChunks, chunkHashes };
}

const KNOWN_REFUSALS: ReadonlySet<string> = new Set(Object.values(RefusalReason));
/** Longer than any RefusalReason value; bounds the string before it is looked up. */
const MAX_REFUSAL_REASON_CHARS = 16;

// ---------------------------------------------------------------------------------------------
// Messages: one reader per tag, for the fields after the tag.

interface MessageSchema {
  readonly type: MessageType;
  /** Elements of the frame array, the tag included. */
  readonly length: number;
  readonly read: (r: Reader) => Message;
}

const schemas: MessageSchema[] = [
  {
    type: 'proposal',
    length: 3,
    read: (r) => ({ type: 'proposal', block: block(r), tc: optionalTimeoutCert(r) }),
  },
  {
    type: 'vote',
    length: 6,
    read: (r) => ({
      type: 'vote',
      view: r.uint('view') as View,
      block: digest(r, 'block'),
      voter: replica(r, 'voter'),
      sig: signature(r, 'sig'),
      attachment: r.bytes('attachment', MAX_SEAL_BYTES),
    }),
  },
  {
    type: 'timeout',
    length: 7,
    read: (r) => ({
      type: 'timeout',
      view: r.uint('view') as View,
      voter: replica(r, 'voter'),
      highQc: quorumCert(r),
      sig: signature(r, 'sig'),
      attachment: r.bytes('attachment', MAX_SEAL_BYTES),
      lastTc: optionalTimeoutCert(r),
    }),
  },
  {
    type: 'blockRequest',
    length: 3,
    read: (r) => {
      const d = digest(r, 'digest');
      const maxBlocks = r.uint('maxBlocks');
      if (maxBlocks < 1 || maxBlocks > MAX_SYNC_BLOCKS) invalid('maxBlocks', `${maxBlocks} is outside 1..${MAX_SYNC_BLOCKS}`);
      return { type: 'blockRequest', digest: d, maxBlocks };
    },
  },
  {
    type: 'blockResponse',
    length: 2,
    read: (r) => {
      const count = r.list('blocks', MAX_SYNC_BLOCKS);
      const blocks: Block[] = [];
      for (let i = 0; i < count; i++) blocks.push(block(r));
      return { type: 'blockResponse', blocks };
    },
  },
  {
    type: 'batchRequest',
    length: 2,
    read: (r) => {
      const count = r.list('digests', MAX_DIGESTS_PER_REQUEST);
      const digests: Digest[] = [];
      for (let i = 0; i < count; i++) digests.push(digest(r, 'digests'));
      return { type: 'batchRequest', digests };
    },
  },
  {
    type: 'batchResponse',
    length: 2,
    read: (r) => {
      // A response answers one request, so it holds at most as many batches as a request names.
      const count = r.list('batches', MAX_DIGESTS_PER_REQUEST);
      const batches: Uint8Array[] = [];
      for (let i = 0; i < count; i++) batches.push(r.bytes('batches', MAX_BATCH_BYTES, ErrorCode.BadBatch));
      return { type: 'batchResponse', batches };
    },
  },
  {
    type: 'helloChallenge',
    length: 3,
    read: (r) => ({ type: 'helloChallenge', replica: replica(r, 'replica'), nonce: r.fixedBytes('nonce', HELLO_NONCE_BYTES) }),
  },
  {
    type: 'hello',
    length: 4,
    read: (r) => ({ type: 'hello', replica: replica(r, 'replica'), nonce: r.fixedBytes('nonce', HELLO_NONCE_BYTES), sig: signature(r, 'sig') }),
  },
  {
    type: 'clientHello',
    length: 4,
    read: (r) => ({ type: 'clientHello', key: r.fixedBytes('key', PUBLIC_KEY_BYTES), nonce: r.fixedBytes('nonce', HELLO_NONCE_BYTES), sig: signature(r, 'sig') }),
  },
  {
    type: 'submit',
    length: 2,
    read: (r) => ({ type: 'submit', batch: r.bytes('batch', MAX_BATCH_BYTES, ErrorCode.BadBatch) }),
  },
  {
    type: 'sequence',
    length: 3,
    read: (r) => ({ type: 'sequence', oc: orderingCert(r), batch: r.nil() ? null : r.bytes('batch', MAX_BATCH_BYTES, ErrorCode.BadBatch) }),
  },
  {
    type: 'tsReply',
    length: 3,
    read: (r) => ({ type: 'tsReply', digest: digest(r, 'digest'), stamp: signedTimestamp(r) }),
  },
  {
    type: 'ack',
    length: 5,
    read: (r) => ({ type: 'ack', digest: digest(r, 'digest'), ocHash: digest(r, 'ocHash'), replica: replica(r, 'replica'), sig: signature(r, 'sig') }),
  },
  {
    type: 'refused',
    length: 5,
    read: (r) => {
      const d = digest(r, 'digest');
      const rep = replica(r, 'replica');
      const reason = r.string('reason', MAX_REFUSAL_REASON_CHARS);
      if (!KNOWN_REFUSALS.has(reason)) invalid('reason', `unknown refusal reason ${JSON.stringify(reason)}`);
      const frontier = r.uint('frontier');
      return { type: 'refused', digest: d, replica: rep, reason: reason as RefusalReason, frontier };
    },
  },
  {
    type: 'executed',
    length: 7,
    read: (r) => ({
      type: 'executed',
      digest: digest(r, 'digest'),
      position: r.uint('position'),
      ts: r.uint('ts'),
      results: r.bytes('results', MAX_RESULTS_BLOB_BYTES),
      replica: replica(r, 'replica'),
      sig: signature(r, 'sig'),
    }),
  },
  {
    type: 'command',
    length: 6,
    read: (r) => ({
      type: 'command',
      clientKey: r.fixedBytes('clientKey', PUBLIC_KEY_BYTES),
      seq: r.uint('seq'),
      expiresAtUs: r.uint('expiresAtUs'),
      payload: r.bytes('payload', MAX_COMMAND_BYTES),
      sig: signature(r, 'sig'),
    }),
  },
  {
    type: 'commandOrdered',
    length: 4,
    read: (r) => ({ type: 'commandOrdered', seq: r.uint('seq'), digest: digest(r, 'digest'), ts: r.uint('ts') }),
  },
  {
    type: 'commandExecuted',
    length: 4,
    read: (r) => ({
      type: 'commandExecuted',
      seq: r.uint('seq'),
      position: r.uint('position'),
      result: r.bytes('result', MAX_RESULT_BYTES),
    }),
  },
  {
    type: 'error',
    length: 3,
    read: (r) => ({ type: 'error', code: r.string('code', MAX_ERROR_CODE_CHARS), message: r.string('message', MAX_ERROR_MESSAGE_CHARS) }),
  },
  {
    type: 'checkpoint',
    length: 8,
    read: (r) => ({ type: 'checkpoint', ...checkpointStatement(r, 'checkpoint'), replica: replica(r, 'replica'), sig: signature(r, 'sig') }),
  },
  {
    type: 'checkpointRequest',
    length: 1,
    read: () => ({ type: 'checkpointRequest' }),
  },
  {
    type: 'checkpointCert',
    length: 2,
    read: (r) => ({ type: 'checkpointCert', cert: checkpointCert(r) }),
  },
  {
    type: 'chunkRequest',
    length: 4,
    read: (r) => ({ type: 'chunkRequest', height: r.uint('height') as Height, state: digest(r, 'state'), index: chunkIndex(r, 'index') }),
  },
  {
    type: 'chunkResponse',
    length: 5,
    read: (r) => ({
      type: 'chunkResponse',
      height: r.uint('height') as Height,
      state: digest(r, 'state'),
      index: chunkIndex(r, 'index'),
      bytes: r.bytes('bytes', MAX_CHUNK_RESPONSE_BYTES),
    }),
  },
];

/** Schemas indexed by tag, for an O(1) lookup per frame. */
const schemaByTag: (MessageSchema | undefined)[] = [];
for (const s of schemas) {
  assert(schemaByTag[MessageTag[s.type]] === undefined, `duplicate schema for ${s.type}`);
  schemaByTag[MessageTag[s.type]] = s;
}
assert(schemas.length === Object.keys(MessageTag).length, 'every message type needs a schema');

/** Turns what the reader threw into a typed error. Anything but a DecodeFailure is a reader bug on
 *  some input; decode still must not throw on input, so it becomes a malformed-frame error. */
function failure(thrown: unknown, prefix: string): Result<never> {
  if (thrown instanceof DecodeFailure) return err(thrown.code, `${prefix}: ${thrown.message}`);
  return err(ErrorCode.MalformedFrame, `${prefix}: undecodable (${String(thrown)})`);
}

/** The frame's top level: an array whose first element is a known tag, of the right length. */
function frameSchema(r: Reader): MessageSchema {
  let length: number;
  let tag: number;
  try {
    length = r.arrayHeader('frame');
    if (length === 0) fail(ErrorCode.MalformedFrame, 'empty array');
    tag = r.uint('tag');
  } catch (thrown) {
    // At the top level a wrong type means "not one of our frames", not a bad field.
    if (thrown instanceof DecodeFailure && thrown.code === ErrorCode.InvalidField) {
      fail(ErrorCode.MalformedFrame, `not an array with a type tag (${thrown.message})`);
    }
    throw thrown;
  }
  const schema = schemaByTag[tag];
  if (schema === undefined) return fail(ErrorCode.UnknownMessage, `unknown message tag ${tag}`);
  if (length !== schema.length) fail(ErrorCode.MalformedFrame, `${schema.type}: expected ${schema.length} elements, got ${length}`);
  return schema;
}

/**
 * Decodes and structurally validates one frame. Never throws on any input; every failure is a typed
 * error whose message names the message type and field. Byte fields are views into `frame`.
 */
export function decodeMessage(frame: Uint8Array, ctx: DecodeContext): Result<Message> {
  // Checked before reading a byte, so an oversized frame costs nothing.
  if (frame.length > MAX_FRAME_BYTES) return err(ErrorCode.FrameTooLarge, `frame of ${frame.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  if (frame.length === 0) return err(ErrorCode.MalformedFrame, 'empty frame');
  const r = new Reader(frame, ctx);
  let type = 'frame';
  try {
    const schema = frameSchema(r);
    type = schema.type;
    const msg = schema.read(r);
    r.end(type);
    return ok(msg);
  } catch (thrown) {
    return failure(thrown, type);
  }
}

/** Decodes a standalone structure (not a frame) that must fill `bytes` exactly. */
function decodeWhole<T>(bytes: Uint8Array, ctx: DecodeContext, limit: number, what: string, read: (r: Reader) => T): Result<T> {
  if (bytes.length > limit) return err(ErrorCode.InvalidField, `${what} of ${bytes.length} bytes exceeds ${limit}`);
  const r = new Reader(bytes, ctx);
  try {
    const value = read(r);
    r.end(what);
    return ok(value);
  } catch (thrown) {
    return failure(thrown, what);
  }
}

/** A block as encodeBlock writes it (for storage and sync); payload stays opaque bytes. */
export function decodeBlock(bytes: Uint8Array, ctx: DecodeContext): Result<Block> {
  return decodeWhole(bytes, ctx, MAX_FRAME_BYTES, 'block', block);
}

/** A block's payload, as the ordering App reads it from Block.payload. */
export function decodeBlockPayload(bytes: Uint8Array, ctx: DecodeContext): Result<BlockPayload> {
  return decodeWhole(bytes, ctx, MAX_BLOCK_PAYLOAD_BYTES, 'block payload', blockPayload);
}

export function decodeSeal(bytes: Uint8Array, ctx: DecodeContext): Result<Seal> {
  return decodeWhole(bytes, ctx, MAX_SEAL_BYTES, 'seal', seal);
}

/** A vote's or timeout's attachment: null for zero bytes ("no seal"), else a seal with its OCs. */
export function decodeSealAttachment(bytes: Uint8Array, ctx: DecodeContext): Result<SealAttachment | null> {
  return bytes.length === 0 ? ok(null) : decodeWhole(bytes, ctx, MAX_SEAL_BYTES, 'seal attachment', sealAttachment);
}

/** A checkpoint manifest as encodeCheckpointManifest writes it (from storage, or a peer's chunk 0). */
export function decodeCheckpointManifest(bytes: Uint8Array, ctx: DecodeContext): Result<CheckpointManifest> {
  return decodeWhole(bytes, ctx, MAX_CHECKPOINT_MANIFEST_BYTES, 'checkpoint manifest', checkpointManifest);
}
