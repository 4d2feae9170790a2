/**
 * The batch byte format (DESIGN.md "Ordering unit") and the results blob of an Executed notice.
 *
 * A batch travels as one byte string and is named by its SHA-256 digest, so its layout is fixed and
 * written in exactly one way (big-endian):
 *
 *   magic u8 = 0x50 | version u8 = 2 | mode u8 | collectorKey (32) | nonce u64 | expiresAtUs u64 | commandCount u32
 *   then per command, by mode:
 *     direct  (0): seq u64 | length u32 | payload
 *     gateway (1): clientKey (32) | seq u64 | expiresAtUs u64 | length u32 | payload | clientSig (64)
 *   then the collector's signature (64) over everything before it (common/batchAuth.ts).
 *
 * A client's identity is its Ed25519 public key. In direct mode the collector is the client: every
 * command is the collector's own, and the batch signature binds them all. In gateway mode the
 * collector is a replica batching thin clients' commands, each signed by its client over
 * (clientKey, seq, expiresAtUs, payload). u64 fields are limited to 2^53 − 1 like every u64 on the
 * wire.
 *
 * The ordering and consensus paths read only the header (readBatchHeader, O(1)); phase 1 also
 * checks the signatures (gateway batches: walking the commands); execution walks the commands
 * (decodeBatchCommands). Decoded keys, payloads and signatures are views into the batch bytes, so
 * the caller must keep those bytes unchanged while it uses them.
 */
import { assert } from './assert.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './crypto/types.js';
import { ErrorCode, err, ok, type Result } from './errors.js';
import {
  MAX_BATCH_BYTES,
  MAX_COMMAND_BYTES,
  MAX_COMMANDS_PER_BATCH,
  MAX_RESULT_BYTES,
  MAX_RESULTS_BLOB_BYTES,
} from './limits.js';

/** First byte of every batch: 'P'. Lets a reader tell a batch from stray bytes at a glance. */
export const BATCH_MAGIC = 0x50;
/** Bumped when the layout changes; a reader refuses versions it does not know. Version 1 tagged
 *  commands with numbers anyone could pick; version 2 names clients by their keys and is signed. */
export const BATCH_VERSION = 2;

export const BatchMode = {
  /** A client's own batch: the collector key is the client's, every command is its own. */
  Direct: 0,
  /** A gateway replica's batch of thin clients' commands, each signed by its client. */
  Gateway: 1,
} as const;
export type BatchMode = (typeof BatchMode)[keyof typeof BatchMode];

/** magic + version + mode + collectorKey + nonce + expiresAtUs + commandCount. */
export const BATCH_HEADER_BYTES = 1 + 1 + 1 + ED25519_PUBLIC_KEY_BYTES + 8 + 8 + 4;
/** The collector's signature at the end of every batch. */
export const BATCH_TRAILER_BYTES = ED25519_SIGNATURE_BYTES;
/** Before each direct-mode payload: seq + length. */
export const DIRECT_COMMAND_HEADER_BYTES = 8 + 4;
/** Around each gateway-mode payload: clientKey + seq + expiresAtUs + length, and the client's signature after it. */
export const GATEWAY_COMMAND_OVERHEAD_BYTES = ED25519_PUBLIC_KEY_BYTES + 8 + 8 + 4 + ED25519_SIGNATURE_BYTES;
/** Offset of the collector key in the header. */
const COLLECTOR_KEY_OFFSET = 3;

/** A client numbers its commands 1, 2, 3, …: there is no command 0 (execution's windows start there). */
export const MIN_COMMAND_SEQ = 1;

/** A direct-mode command: the collector's own. */
export interface DirectCommand {
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** A thin client's command as it signed it (gateway mode). */
export interface SignedCommand {
  readonly clientKey: Uint8Array;
  readonly seq: number;
  /** The client's own deadline: the command does not execute at a timestamp past it. */
  readonly expiresAtUs: number;
  readonly payload: Uint8Array;
  readonly sig: Uint8Array;
}

/** A command as execution sees it, whatever the batch's mode. */
export interface Command {
  /** The client's public key: the collector's in direct mode (one shared view for the whole batch). */
  readonly clientKey: Uint8Array;
  readonly seq: number;
  /** The command's deadline: its own in gateway mode, the batch's in direct mode. */
  readonly expiresAtUs: number;
  readonly payload: Uint8Array;
}

interface BatchFields {
  readonly collectorKey: Uint8Array;
  readonly nonce: number;
  readonly expiresAtUs: number;
}

export type BatchInput =
  | (BatchFields & { readonly mode: typeof BatchMode.Direct; readonly commands: readonly DirectCommand[] })
  | (BatchFields & { readonly mode: typeof BatchMode.Gateway; readonly commands: readonly SignedCommand[] });

export interface BatchHeader {
  readonly mode: BatchMode;
  /** A view into the batch bytes. */
  readonly collectorKey: Uint8Array;
  readonly nonce: number;
  readonly expiresAtUs: number;
  readonly commandCount: number;
}

/** Bytes one command adds to a batch of this mode. */
export function commandBytes(mode: BatchMode, payloadLength: number): number {
  return (mode === BatchMode.Direct ? DIRECT_COMMAND_HEADER_BYTES : GATEWAY_COMMAND_OVERHEAD_BYTES) + payloadLength;
}

/** Exact encoded size of a batch holding these commands. */
export function batchSize(input: BatchInput): number {
  let size = BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES;
  for (const c of input.commands) size += commandBytes(input.mode, c.payload.length);
  return size;
}

/**
 * Encodes a batch into one buffer of exactly its size; `sign` returns the collector's signature
 * over the bytes before it (batchAuth.ts: batchSigner). The collector forms batches itself, so a
 * batch out of bounds is a programmer error (it must split commands across batches before this).
 */
export function encodeBatch(input: BatchInput, sign: (body: Uint8Array) => Uint8Array): Uint8Array {
  const count = input.commands.length;
  assert(count >= 1 && count <= MAX_COMMANDS_PER_BATCH, `batch must hold 1..${MAX_COMMANDS_PER_BATCH} commands, got ${count}`);
  assert(input.collectorKey.length === ED25519_PUBLIC_KEY_BYTES, `collector key must be ${ED25519_PUBLIC_KEY_BYTES} bytes`);
  const size = batchSize(input);
  assert(size <= MAX_BATCH_BYTES, `batch of ${size} bytes exceeds MAX_BATCH_BYTES (${MAX_BATCH_BYTES})`);

  const w = new ByteWriter(size);
  w.u8(BATCH_MAGIC).u8(BATCH_VERSION).u8(input.mode).bytes(input.collectorKey).u64(input.nonce).u64(input.expiresAtUs).u32(count);
  for (const c of input.commands) {
    assert(c.payload.length <= MAX_COMMAND_BYTES, `command payload of ${c.payload.length} bytes exceeds MAX_COMMAND_BYTES`);
    assert(c.seq >= MIN_COMMAND_SEQ, `command sequence numbers start at ${MIN_COMMAND_SEQ}, got ${c.seq}`);
  }
  if (input.mode === BatchMode.Direct) {
    for (const c of input.commands) w.u64(c.seq).u32(c.payload.length).bytes(c.payload);
  } else {
    for (const c of input.commands) {
      assert(c.clientKey.length === ED25519_PUBLIC_KEY_BYTES && c.sig.length === ED25519_SIGNATURE_BYTES, 'a signed command needs a 32-byte key and a 64-byte signature');
      w.bytes(c.clientKey).u64(c.seq).u64(c.expiresAtUs).u32(c.payload.length).bytes(c.payload).bytes(c.sig);
    }
  }
  const sig = sign(w.finish());
  assert(sig.length === ED25519_SIGNATURE_BYTES, `a batch signature is ${ED25519_SIGNATURE_BYTES} bytes, got ${sig.length}`);
  const out = w.bytes(sig).finish();
  assert(out.length === size, `batch size mismatch: computed ${size}, wrote ${out.length}`);
  return out;
}

const badBatch = (message: string): Result<never> => err(ErrorCode.BadBatch, message);

/** The smallest command of each mode: an empty payload with its fixed fields. */
const minCommandBytes = (mode: BatchMode): number => commandBytes(mode, 0);

/**
 * Reads and checks the header only, in O(1): magic, version, mode, total size, command count and
 * that the bytes are long enough to hold that many (empty) commands and the trailing signature.
 * It does not walk the commands.
 */
export function readBatchHeader(bytes: Uint8Array): Result<BatchHeader> {
  if (bytes.length > MAX_BATCH_BYTES) return badBatch(`batch of ${bytes.length} bytes exceeds ${MAX_BATCH_BYTES}`);
  if (bytes.length < BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES) return badBatch(`batch of ${bytes.length} bytes is shorter than its header and signature`);

  const r = new ByteReader(bytes);
  const magic = r.u8();
  const version = r.u8();
  const mode = r.u8();
  if (magic !== BATCH_MAGIC) return badBatch(`batch magic is 0x${magic.toString(16)}, expected 0x50`);
  if (version !== BATCH_VERSION) return badBatch(`batch version ${version} is not supported (this replica reads version ${BATCH_VERSION})`);
  if (mode !== BatchMode.Direct && mode !== BatchMode.Gateway) return badBatch(`batch mode ${mode} is not known`);
  const collectorKey = r.bytes(ED25519_PUBLIC_KEY_BYTES);
  const nonce = r.u64();
  const expiresAtUs = r.u64();
  const commandCount = r.u32();
  // The reader only fails here on a u64 above 2^53 − 1 (the length was checked above).
  if (r.failed) return badBatch('batch header holds an integer above 2^53 − 1');
  if (commandCount < 1 || commandCount > MAX_COMMANDS_PER_BATCH) {
    return badBatch(`batch command count ${commandCount} is outside 1..${MAX_COMMANDS_PER_BATCH}`);
  }
  if (commandCount * minCommandBytes(mode) > bytes.length - BATCH_HEADER_BYTES - BATCH_TRAILER_BYTES) {
    return badBatch(`batch of ${bytes.length} bytes is too short for ${commandCount} commands`);
  }
  return ok({ mode, collectorKey, nonce, expiresAtUs, commandCount });
}

/** The collector key of a batch whose header is known to be valid, without parsing the rest. */
export function batchCollectorKey(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(COLLECTOR_KEY_OFFSET, COLLECTOR_KEY_OFFSET + ED25519_PUBLIC_KEY_BYTES);
}

/** What the collector's signature covers: every byte before it (a view). */
export function batchBody(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(0, bytes.length - BATCH_TRAILER_BYTES);
}

/** The collector's signature (a view). */
export function batchSignature(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(bytes.length - BATCH_TRAILER_BYTES);
}

/** A decoded command with the client's signature (null in direct mode: the batch signature covers it). */
export interface BatchCommand extends Command {
  readonly sig: Uint8Array | null;
}

/**
 * Walks every command. Keys, payloads and signatures are views into `bytes`. Rejects a batch whose
 * commands run past its signature, leave bytes before it, or exceed MAX_COMMAND_BYTES. It does
 * not check any signature (batchAuth.ts does).
 */
export function decodeBatchCommands(bytes: Uint8Array): Result<BatchCommand[]> {
  const header = readBatchHeader(bytes);
  if (!header.ok) return header;
  const { mode, collectorKey, expiresAtUs: batchExpiresAtUs, commandCount } = header.value;

  const r = new ByteReader(batchBody(bytes));
  r.bytes(BATCH_HEADER_BYTES);
  const commands: BatchCommand[] = [];
  for (let i = 0; i < commandCount; i++) {
    const gateway = mode === BatchMode.Gateway;
    const clientKey = gateway ? r.bytes(ED25519_PUBLIC_KEY_BYTES) : collectorKey;
    const seq = r.u64();
    const expiresAtUs = gateway ? r.u64() : batchExpiresAtUs;
    const length = r.u32();
    if (r.failed) return badBatch(`batch command ${i}: header truncated or integer above 2^53 − 1`);
    if (seq < MIN_COMMAND_SEQ) return badBatch(`batch command ${i}: sequence number ${seq}, they start at ${MIN_COMMAND_SEQ}`);
    if (length > MAX_COMMAND_BYTES) return badBatch(`batch command ${i}: payload of ${length} bytes exceeds ${MAX_COMMAND_BYTES}`);
    if (length + (gateway ? ED25519_SIGNATURE_BYTES : 0) > r.remaining) return badBatch(`batch command ${i}: payload of ${length} bytes runs past the end`);
    const payload = r.bytes(length);
    const sig = gateway ? r.bytes(ED25519_SIGNATURE_BYTES) : null;
    commands.push({ clientKey, seq, expiresAtUs, payload, sig });
  }
  if (r.remaining !== 0) return badBatch(`batch has ${r.remaining} bytes after its ${commandCount} commands`);
  return ok(commands);
}

// ---------------------------------------------------------------------------------------------
// Results blob: u32 count, then per result u32 length + bytes (big-endian). One result per
// command of the batch, in command order; compared byte for byte across replicas.

/** Encodes one batch's results. The state machine's results are bounded by the caller (a result
 *  above MAX_RESULT_BYTES is replaced by an error result before this), so a bound here is a bug. */
export function encodeResults(results: readonly Uint8Array[]): Uint8Array {
  assert(results.length <= MAX_COMMANDS_PER_BATCH, `${results.length} results exceed MAX_COMMANDS_PER_BATCH`);
  let size = 4;
  for (const r of results) {
    assert(r.length <= MAX_RESULT_BYTES, `result of ${r.length} bytes exceeds MAX_RESULT_BYTES`);
    size += 4 + r.length;
  }
  assert(size <= MAX_RESULTS_BLOB_BYTES, `results blob of ${size} bytes exceeds MAX_RESULTS_BLOB_BYTES`);
  const w = new ByteWriter(size).u32(results.length);
  for (const r of results) w.u32(r.length).bytes(r);
  return w.finish();
}

const badResults = (message: string): Result<never> => err(ErrorCode.InvalidField, message);

/** Decodes a results blob; results are views into `bytes`. */
export function decodeResults(bytes: Uint8Array): Result<Uint8Array[]> {
  if (bytes.length > MAX_RESULTS_BLOB_BYTES) return badResults(`results blob of ${bytes.length} bytes exceeds ${MAX_RESULTS_BLOB_BYTES}`);
  const r = new ByteReader(bytes);
  const count = r.u32();
  if (r.failed) return badResults('results blob is shorter than its count');
  // Each result takes at least its 4-byte length, so a count beyond that is a lie; checked
  // before the loop so a tiny blob cannot make us spin on a huge count.
  if (count > MAX_COMMANDS_PER_BATCH || count * 4 > r.remaining) {
    return badResults(`results count ${count} does not fit a blob of ${bytes.length} bytes`);
  }
  const results: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const length = r.u32();
    if (r.failed) return badResults(`result ${i}: length truncated`);
    if (length > MAX_RESULT_BYTES) return badResults(`result ${i}: ${length} bytes exceed ${MAX_RESULT_BYTES}`);
    if (length > r.remaining) return badResults(`result ${i}: ${length} bytes run past the end`);
    results.push(r.bytes(length));
  }
  if (r.remaining !== 0) return badResults(`results blob has ${r.remaining} bytes after its ${count} results`);
  return ok(results);
}
