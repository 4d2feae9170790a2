/**
 * The executor's exactly-once state as checkpoint chunks (the checkpoint's executor section, see
 * checkpointFormat.ts), and back. Canonical: maps are written in their own order, which is the
 * same at every correct replica (insertion order driven by the executed sequence), and a window's
 * out-of-order sequence numbers in increasing order.
 *
 * A stream of records, big-endian, none spanning two chunks:
 *   header  1 | version u8 | position u64 | commandsExecuted u64 | duplicatesSkipped u64
 *             | commandsRefused u64 | digests u32 | clients u32
 *   digest  2 | digest (32) | expiresSlot u64                            (execution order)
 *   client  3 | key length u8 | key | low u64 | top u64 | lastTs u64 | above u32 | above × u64
 *                                                                       (least recent first)
 * Client ids are byte strings with their length (today an Ed25519 public key, 32 bytes), so the
 * format outlives a change of id type. A window's per-batch cap is not written (see ExecutorState).
 */
import { ByteReader, ByteWriter, fromHex, toHex } from '../common/bytes.js';
import { err, ErrorCode, ok, type Result } from '../common/errors.js';
import { DIGEST_BYTES, type Slot } from '../common/ids.js';
import { ED25519_PUBLIC_KEY_BYTES as CLIENT_KEY_BYTES } from '../common/crypto/types.js';
import { MAX_CHECKPOINT_CHUNK_BYTES } from '../common/limits.js';
import type { ClientWindow, ExecutorState } from './executor.js';

const FORMAT_VERSION = 1;
const Tag = { Header: 1, Digest: 2, Client: 3 } as const;
/** Record sizes in bytes (see the layout above); a client record adds its key and `above`. */
const HEADER_RECORD_BYTES = 1 + 1 + 4 * 8 + 2 * 4;
const DIGEST_RECORD_BYTES = 1 + DIGEST_BYTES + 8;
const CLIENT_RECORD_FIXED_BYTES = 1 + 1 + 3 * 8 + 4;

/** Encodes the state into chunks of at most MAX_CHECKPOINT_CHUNK_BYTES (synchronously: the maps
 *  change with the next execution). */
export function encodeExecutorState(state: ExecutorState): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let w = new ByteWriter(4096);
  let used = 0;
  // Each record is written straight into the chunk that will hold it (no writer per record: a
  // checkpoint writes one record per executed digest still within its expiry).
  const record = (bytes: number): ByteWriter => {
    if (used + bytes > MAX_CHECKPOINT_CHUNK_BYTES) {
      chunks.push(w.finish().slice());
      w = new ByteWriter(4096);
      used = 0;
    }
    used += bytes;
    return w;
  };
  record(HEADER_RECORD_BYTES)
    .u8(Tag.Header)
    .u8(FORMAT_VERSION)
    .u64(state.position)
    .u64(state.commandsExecuted)
    .u64(state.duplicatesSkipped)
    .u64(state.commandsRefused)
    .u32(state.executedDigests.size)
    .u32(state.clients.size);
  for (const [key, expiresSlot] of state.executedDigests) {
    record(DIGEST_RECORD_BYTES).u8(Tag.Digest).bytes(fromHex(key)!).u64(expiresSlot);
  }
  for (const [keyHex, window] of state.clients) {
    const key = fromHex(keyHex)!;
    const above = window.above === null ? [] : [...window.above].sort((a, b) => a - b);
    const r = record(CLIENT_RECORD_FIXED_BYTES + key.length + above.length * 8).u8(Tag.Client).u8(key.length).bytes(key).u64(window.low).u64(window.top).u64(window.lastTs).u32(above.length);
    for (const s of above) r.u64(s);
  }
  chunks.push(w.finish().slice());
  return chunks;
}

/** The state the chunks describe; an error names what does not parse. */
export function decodeExecutorState(chunks: readonly Uint8Array[]): Result<ExecutorState> {
  const bad = (why: string): Result<never> => err(ErrorCode.InvalidField, `executor state: ${why}`);
  let header: { position: number; commandsExecuted: number; duplicatesSkipped: number; commandsRefused: number; digests: number; clients: number } | null = null;
  const executedDigests = new Map<string, Slot>();
  const clients = new Map<string, ClientWindow>();
  for (const chunk of chunks) {
    const r = new ByteReader(chunk);
    while (r.remaining > 0 && !r.failed) {
      const tag = r.u8();
      if (header === null && tag !== Tag.Header) return bad('does not start with its header');
      switch (tag) {
        case Tag.Header: {
          if (header !== null) return bad('a second header');
          if (r.u8() !== FORMAT_VERSION) return bad('unknown version');
          header = { position: r.u64(), commandsExecuted: r.u64(), duplicatesSkipped: r.u64(), commandsRefused: r.u64(), digests: r.u32(), clients: r.u32() };
          break;
        }
        case Tag.Digest: {
          const digest = r.bytes(DIGEST_BYTES);
          executedDigests.set(toHex(digest), r.u64() as Slot);
          break;
        }
        case Tag.Client: {
          const keyLength = r.u8();
          if (keyLength !== CLIENT_KEY_BYTES) return bad(`a client key of ${keyLength} bytes`);
          const key = toHex(r.bytes(CLIENT_KEY_BYTES));
          const low = r.u64();
          const top = r.u64();
          const lastTs = r.u64();
          const count = r.u32();
          let above: Set<number> | null = null;
          for (let i = 0; i < count && !r.failed; i++) (above ??= new Set()).add(r.u64());
          if (top < low) return bad('a client window whose top is below its low');
          clients.set(key, { low, above, top, capPosition: -1, cap: 0, lastTs });
          break;
        }
        default:
          return bad(`unknown record ${tag}`);
      }
    }
    if (r.failed) return bad('a record runs past its chunk');
  }
  if (header === null) return bad('empty');
  if (executedDigests.size !== header.digests || clients.size !== header.clients) {
    return bad(`header lists ${header.digests} digests and ${header.clients} clients, found ${executedDigests.size} and ${clients.size}`);
  }
  const { position, commandsExecuted, duplicatesSkipped, commandsRefused } = header;
  return ok({ position, commandsExecuted, duplicatesSkipped, commandsRefused, executedDigests, clients });
}
