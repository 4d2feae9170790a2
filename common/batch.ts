/**
 * The batch byte format (DESIGN.md "Ordering unit") and the results blob of an Executed notice.
 *
 * A batch travels as one byte string and is named by its SHA-256 digest, so its layout is fixed and
 * written in exactly one way (big-endian):
 *
 *   magic u8 = 0x50 | version u8 = 1 | collectorId u64 | nonce u64 | expiresAtUs u64 | commandCount u32
 *   then per command: clientId u64 | seq u64 | length u32 | payload (length bytes)
 *
 * and nothing after the last command. u64 fields are limited to 2^53 − 1 like every u64 on the wire.
 *
 * The ordering and consensus paths only ever call readBatchHeader (O(1)); only execution walks the
 * commands (decodeBatchCommands). Decoded payloads are views into the batch bytes, so the caller
 * must keep those bytes unchanged while it uses them.
 */
import { assert } from './assert.js';
import { ByteReader, ByteWriter } from './bytes.js';
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
/** Bumped if the layout ever changes; a reader refuses versions it does not know. */
export const BATCH_VERSION = 1;
/** magic + version + collectorId + nonce + expiresAtUs + commandCount. */
export const BATCH_HEADER_BYTES = 1 + 1 + 8 + 8 + 8 + 4;
/** clientId + seq + length, before each command's payload. */
export const COMMAND_HEADER_BYTES = 8 + 8 + 4;

export interface Command {
  readonly clientId: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

export interface BatchInput {
  readonly collectorId: number;
  readonly nonce: number;
  readonly expiresAtUs: number;
  readonly commands: readonly Command[];
}

export interface BatchHeader {
  readonly collectorId: number;
  readonly nonce: number;
  readonly expiresAtUs: number;
  readonly commandCount: number;
}

/** Exact encoded size of a batch holding these commands. */
export function batchSize(commands: readonly Command[]): number {
  let size = BATCH_HEADER_BYTES;
  for (const c of commands) size += COMMAND_HEADER_BYTES + c.payload.length;
  return size;
}

/**
 * Encodes a batch into one buffer of exactly its size. The collector forms batches itself, so a batch
 * out of bounds is a programmer error (it must split commands across batches before this).
 */
export function encodeBatch(batch: BatchInput): Uint8Array {
  const count = batch.commands.length;
  assert(count >= 1 && count <= MAX_COMMANDS_PER_BATCH, `batch must hold 1..${MAX_COMMANDS_PER_BATCH} commands, got ${count}`);
  const size = batchSize(batch.commands);
  assert(size <= MAX_BATCH_BYTES, `batch of ${size} bytes exceeds MAX_BATCH_BYTES (${MAX_BATCH_BYTES})`);

  const w = new ByteWriter(size);
  w.u8(BATCH_MAGIC).u8(BATCH_VERSION).u64(batch.collectorId).u64(batch.nonce).u64(batch.expiresAtUs).u32(count);
  for (const c of batch.commands) {
    assert(c.payload.length <= MAX_COMMAND_BYTES, `command payload of ${c.payload.length} bytes exceeds MAX_COMMAND_BYTES`);
    assert(c.seq >= MIN_COMMAND_SEQ, `command sequence numbers start at ${MIN_COMMAND_SEQ}, got ${c.seq}`);
    w.u64(c.clientId).u64(c.seq).u32(c.payload.length).bytes(c.payload);
  }
  const out = w.finish();
  assert(out.length === size, `batch size mismatch: computed ${size}, wrote ${out.length}`);
  return out;
}

const badBatch = (message: string): Result<never> => err(ErrorCode.BadBatch, message);

/**
 * Reads and checks the header only, in O(1): magic, version, total size, command count and that the
 * bytes are long enough to hold that many (empty) commands. It does not walk the commands.
 */
export function readBatchHeader(bytes: Uint8Array): Result<BatchHeader> {
  if (bytes.length > MAX_BATCH_BYTES) return badBatch(`batch of ${bytes.length} bytes exceeds ${MAX_BATCH_BYTES}`);
  if (bytes.length < BATCH_HEADER_BYTES) return badBatch(`batch of ${bytes.length} bytes is shorter than its header`);

  const r = new ByteReader(bytes);
  const magic = r.u8();
  const version = r.u8();
  if (magic !== BATCH_MAGIC) return badBatch(`batch magic is 0x${magic.toString(16)}, expected 0x50`);
  if (version !== BATCH_VERSION) return badBatch(`batch version ${version} is not supported`);
  const collectorId = r.u64();
  const nonce = r.u64();
  const expiresAtUs = r.u64();
  const commandCount = r.u32();
  // The reader only fails here on a u64 above 2^53 − 1 (the length was checked above).
  if (r.failed) return badBatch('batch header holds an integer above 2^53 − 1');
  if (commandCount < 1 || commandCount > MAX_COMMANDS_PER_BATCH) {
    return badBatch(`batch command count ${commandCount} is outside 1..${MAX_COMMANDS_PER_BATCH}`);
  }
  if (commandCount * COMMAND_HEADER_BYTES > bytes.length - BATCH_HEADER_BYTES) {
    return badBatch(`batch of ${bytes.length} bytes is too short for ${commandCount} commands`);
  }
  return ok({ collectorId, nonce, expiresAtUs, commandCount });
}

/**
 * Walks every command (for execution). Payloads are views into `bytes`. Rejects a batch whose
 * commands run past its end, leave bytes after the last command, or exceed MAX_COMMAND_BYTES.
 */
/** A client numbers its commands 1, 2, 3, …: execution treats everything up to a client's
 *  highest contiguous executed number as done, so there is no command 0. */
export const MIN_COMMAND_SEQ = 1;

export function decodeBatchCommands(bytes: Uint8Array): Result<Command[]> {
  const header = readBatchHeader(bytes);
  if (!header.ok) return header;

  const r = new ByteReader(bytes);
  r.bytes(BATCH_HEADER_BYTES);
  const commands: Command[] = [];
  for (let i = 0; i < header.value.commandCount; i++) {
    const clientId = r.u64();
    const seq = r.u64();
    const length = r.u32();
    if (r.failed) return badBatch(`batch command ${i}: header truncated or integer above 2^53 − 1`);
    if (seq < MIN_COMMAND_SEQ) return badBatch(`batch command ${i}: sequence number ${seq}, they start at ${MIN_COMMAND_SEQ}`);
    if (length > MAX_COMMAND_BYTES) return badBatch(`batch command ${i}: payload of ${length} bytes exceeds ${MAX_COMMAND_BYTES}`);
    if (length > r.remaining) return badBatch(`batch command ${i}: payload of ${length} bytes runs past the end`);
    commands.push({ clientId, seq, payload: r.bytes(length) });
  }
  if (r.remaining !== 0) {
    return badBatch(`batch has ${r.remaining} bytes after its ${header.value.commandCount} commands`);
  }
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
