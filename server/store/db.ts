/**
 * The replica's database: one LevelDB (classic-level) behind a narrow interface, split into
 * numbered buckets (the lodestar layout). Every key is [bucket: u8][key bytes], so a bucket is a
 * contiguous key range and iterating one never sees another. Integers in keys are u64 big-endian,
 * so byte order is numeric order.
 *
 * Buckets. A number is never renumbered or reused; a retired bucket keeps its number.
 *
 * |  #  | Bucket       | key                          | value                                   | written by     |
 * |-----|--------------|------------------------------|-----------------------------------------|----------------|
 * |  0  | Meta         | UTF-8 record name            | 'schema': u32 STORE_SCHEMA_VERSION;     | db.ts,         |
 * |     |              |                              | 'safety', 'committed': records.ts       | consensusStore |
 * |  1  | Blocks       | block digest (32 B)          | encodeBlock(block) (common/codec.ts)    | consensusStore |
 * |  2  | BlockHeights | height u64 ‖ digest (40 B)   | empty: Blocks indexed by height         | consensusStore |
 * | 3–9 | (reserved for consensus and the server)                                                               |
 * | 10  | Batches      | reserved for the ordering phase: batch bytes by digest                 | ordering store |
 * | 11  | Acks         | reserved for the ordering phase: acks given (bytes, OC, ack) by slot   | ordering store |
 * | 12  | Seals        | reserved for the ordering phase: seals sent                            | ordering store |
 * | 13  | OrderingMeta | reserved for the ordering phase: sealed frontier, timestamp high-water | ordering store |
 * | 14  | Executed     | reserved for execution: executed digests and positions                 | ordering store |
 * | 15  | Checkpoints  | height u64 ‖ source u8 ‖ index u32 (13 B) | a checkpoint chunk (1-based)       | ordering store |
 * | 16  | CheckpointMeta | height u64 ‖ source u8 (9 B)   | manifest, state digest, certificate     | ordering store |
 * | 17  | BatchExpiry  | expiresAtUs u64 ‖ digest (40 B) | empty: Batches indexed by expiry      | ordering store |
 *
 * Reads are async (never block the event loop on disk). Writes on the hot path go through a
 * WriteBatcher (writeBatcher.ts), which groups one event-loop turn into one LevelDB batch; `batch()`
 * here is for one-off writes outside it.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { assert } from '../../common/assert.js';
import { utf8 } from '../../common/bytes.js';
import { StoreOpenError, levelErrorCode, levelErrorDetail } from './errors.js';

export const Bucket = {
  Meta: 0,
  Blocks: 1,
  BlockHeights: 2,
  Batches: 10,
  Acks: 11,
  Seals: 12,
  OrderingMeta: 13,
  Executed: 14,
  Checkpoints: 15,
  CheckpointMeta: 16,
  BatchExpiry: 17,
} as const;
export type Bucket = (typeof Bucket)[keyof typeof Bucket];

// A whole bucket is the range [bucket, bucket + 1), so the last byte value cannot be a bucket.
for (const b of Object.values(Bucket)) assert(b >= 0 && b < 0xff, `bucket number ${b} out of range`);

/** Version of the key layout and record formats above. Bumped on any incompatible change; a store
 *  written by another version is refused at open rather than misread. */
export const STORE_SCHEMA_VERSION = 1;

/** LevelDB's memtable. The default 4 MiB fills every ~0.2 s at the peak write rate (~20 MB/s), and
 *  each fill is a level-0 file; past 8 of them LevelDB slows every write by 1 ms. With 32 MiB,
 *  bench-store measured about twice the saturated throughput of 4 MiB (295 vs 142 MB/s without
 *  sync, 180 vs 65 MB/s with) and a lower p99, for at most 2 × 32 MiB of memory (the active
 *  memtable and one being flushed). */
export const DEFAULT_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Keys

/** A write. `key` is a full key (bucket byte included), as bucketKey() and friends build it. */
export type DbOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

export const U64_BYTES = 8;
const TWO_POW_32 = 0x1_0000_0000;

/** The full key of `key` in `bucket`: one allocation, the least LevelDB needs. */
export function bucketKey(bucket: Bucket, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + key.length);
  out[0] = bucket;
  out.set(key, 1);
  return out;
}

function writeU64(out: Uint8Array, offset: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 key must be a non-negative safe integer, got ${value}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, Math.floor(value / TWO_POW_32));
  view.setUint32(offset + 4, value >>> 0);
}

/** 8 bytes big-endian, so that keys sort numerically. */
export function u64Bytes(value: number): Uint8Array {
  const out = new Uint8Array(U64_BYTES);
  writeU64(out, 0, value);
  return out;
}

/** [bucket][value u64 BE][suffix]: a numerically ordered key, optionally made unique by a suffix. */
export function bucketKeyU64(bucket: Bucket, value: number, suffix?: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + U64_BYTES + (suffix?.length ?? 0));
  out[0] = bucket;
  writeU64(out, 1, value);
  if (suffix !== undefined) out.set(suffix, 1 + U64_BYTES);
  return out;
}

/** Reads a u64 written by u64Bytes; the caller checked the length. Values above 2^53 − 1 are never
 *  written by us, so meeting one is corruption of our own data (assert). */
export function readU64(bytes: Uint8Array, offset: number): number {
  assert(bytes.length >= offset + U64_BYTES, `u64 at ${offset} runs past a ${bytes.length}-byte key`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(offset);
  assert(high <= 0x1f_ffff, `u64 key field above 2^53 − 1`);
  return high * TWO_POW_32 + view.getUint32(offset + 4);
}

/** Key of a named record (Meta and other small buckets). */
export const nameKey = (name: string): Uint8Array => utf8(name);

export const putOp = (bucket: Bucket, key: Uint8Array, value: Uint8Array): DbOp => ({ type: 'put', key: bucketKey(bucket, key), value });
export const delOp = (bucket: Bucket, key: Uint8Array): DbOp => ({ type: 'del', key: bucketKey(bucket, key) });

/** A key range inside one bucket; keys are without the bucket byte. Default: the whole bucket. */
export interface KeyRange {
  readonly gte?: Uint8Array;
  readonly lt?: Uint8Array;
  readonly reverse?: boolean;
  readonly limit?: number;
}

const EMPTY = new Uint8Array(0);

/** The first key after `key` in LevelDB's order: `key` with a zero byte appended. */
function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

function rangeOptions(bucket: Bucket, range: KeyRange): { gte: Uint8Array; lt: Uint8Array; reverse: boolean; limit: number } {
  return {
    gte: bucketKey(bucket, range.gte ?? EMPTY),
    lt: range.lt === undefined ? Uint8Array.of(bucket + 1) : bucketKey(bucket, range.lt),
    reverse: range.reverse ?? false,
    limit: range.limit ?? -1,
  };
}

// ---------------------------------------------------------------------------------------------
// The database

/** A write batch being built: ops are copied into LevelDB's native batch as they are added, so the
 *  caller's buffers are free again at once; `write` applies them all atomically. */
export interface DbWriteBatch {
  put(key: Uint8Array, value: Uint8Array): void;
  del(key: Uint8Array): void;
  write(sync: boolean): Promise<void>;
  /** Drops an unwritten batch. */
  discard(): void;
}

export interface DbOptions {
  readonly writeBufferBytes?: number;
  /** Create the store when the directory holds none (default true). A replica restarting on an
   *  existing identity should pass false: a fresh store has forgotten its votes, and voting again
   *  from scratch could equivocate, so a wrong or unmounted path must stop it instead. */
  readonly createIfMissing?: boolean;
}

type Level = ClassicLevel<Uint8Array, Uint8Array>;

const SCHEMA_KEY = bucketKey(Bucket.Meta, nameKey('schema'));

export class Db {
  private closing: Promise<void> | null = null;

  private constructor(
    readonly path: string,
    private readonly level: Level,
  ) {}

  /** Opens (creating if missing) the store at `path`. Environment problems throw StoreOpenError. */
  static async open(path: string, options: DbOptions = {}): Promise<Db> {
    if (options.createIfMissing === false && !(await exists(join(path, 'CURRENT')))) {
      throw new StoreOpenError('missing', path, 'no store there, and creating one was not allowed');
    }
    const level: Level = new ClassicLevel<Uint8Array, Uint8Array>(path, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      writeBufferSize: options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES,
    });
    try {
      await level.open();
    } catch (error) {
      throw openError(path, error);
    }
    const db = new Db(path, level);
    try {
      await db.checkSchema();
    } catch (error) {
      await level.close();
      throw error;
    }
    return db;
  }

  /** A fresh directory gets our schema record; anything else must already carry the same one. */
  private async checkSchema(): Promise<void> {
    const stored = await this.level.get(SCHEMA_KEY);
    if (stored === undefined) {
      for await (const _ of this.level.keys({ limit: 1 })) {
        throw new StoreOpenError('incompatible', this.path, 'it holds data but no schema record: not a pompe-ts store');
      }
      await this.level.put(SCHEMA_KEY, schemaRecord(STORE_SCHEMA_VERSION), { sync: true });
      return;
    }
    const version = stored.length === 4 ? new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0) : null;
    if (version !== STORE_SCHEMA_VERSION) {
      const found = version === null ? `a malformed schema record (${stored.length} bytes)` : `schema version ${version}`;
      throw new StoreOpenError('incompatible', this.path, `it has ${found}; this build reads version ${STORE_SCHEMA_VERSION}`);
    }
  }

  async get(bucket: Bucket, key: Uint8Array): Promise<Uint8Array | undefined> {
    const value = await this.level.get(bucketKey(bucket, key));
    return value === undefined ? undefined : plain(value);
  }

  async getMany(bucket: Bucket, keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const values = await this.level.getMany(keys.map((k) => bucketKey(bucket, k)));
    return values.map((v) => (v === undefined ? undefined : plain(v)));
  }

  /** Entries of one bucket in key order (or reverse), keys without the bucket byte. */
  async *iterate(bucket: Bucket, range: KeyRange = {}): AsyncGenerator<[key: Uint8Array, value: Uint8Array]> {
    for await (const [key, value] of this.level.iterator(rangeOptions(bucket, range))) yield [plain(key, 1), plain(value)];
  }

  /** Keys only: cheaper when the value is not needed (indexes). */
  async *iterateKeys(bucket: Bucket, range: KeyRange = {}): AsyncGenerator<Uint8Array> {
    for await (const key of this.level.keys(rangeOptions(bucket, range))) yield plain(key, 1);
  }

  /**
   * The keys of `range`, in batches of at most `batchKeys`, for deleting them: each batch is a scan
   * of its own that starts after the previous batch's last key, taken when the caller asks for the
   * next batch (after deleting this one). A scan that started again from the range's start would
   * step over the tombstones of every key deleted so far: LevelDB keeps them, and iterators walk
   * over them, until a compaction.
   */
  async *keyBatches(bucket: Bucket, range: { readonly gte?: Uint8Array; readonly lt?: Uint8Array }, batchKeys: number): AsyncGenerator<Uint8Array[]> {
    let gte = range.gte;
    for (;;) {
      const keys: Uint8Array[] = [];
      for await (const key of this.iterateKeys(bucket, { ...range, ...(gte === undefined ? {} : { gte }), limit: batchKeys })) keys.push(key);
      if (keys.length === 0) return;
      yield keys;
      gte = keyAfter(keys[keys.length - 1]!);
    }
  }

  /** One atomic write; with sync, LevelDB fsyncs its log before this resolves. */
  batch(ops: readonly DbOp[], options: { readonly sync: boolean }): Promise<void> {
    return this.level.batch(ops as DbOp[], { sync: options.sync });
  }

  newBatch(): DbWriteBatch {
    const chained = this.level.batch();
    return {
      put: (key, value) => void chained.put(key, value),
      del: (key) => void chained.del(key),
      write: (sync) => chained.write({ sync }),
      discard: () => void chained.close(),
    };
  }

  /** Closes the database (idempotent). Close the WriteBatcher on it first, so that what it holds
   *  is written; LevelDB lets writes already handed to it finish. */
  close(): Promise<void> {
    this.closing ??= this.level.close();
    return this.closing;
  }
}

/** classic-level hands out Buffers. Callers get plain Uint8Array views of the same memory (no copy):
 *  a Buffer's slice() is a view where Uint8Array's is a copy, and Buffers compare unequal to equal
 *  Uint8Arrays in tests. */
function plain(bytes: Uint8Array, skip = 0): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + skip, bytes.byteLength - skip);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function schemaRecord(version: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, version);
  return out;
}

function openError(path: string, error: unknown): StoreOpenError {
  const cause = (error as { cause?: unknown }).cause ?? error;
  const detail = levelErrorDetail(error);
  switch (levelErrorCode(cause)) {
    case 'LEVEL_LOCKED':
      return new StoreOpenError('locked', path, `it is locked by another process — is another replica running on this data directory? (${detail})`, { cause: error });
    case 'LEVEL_CORRUPTION':
      return new StoreOpenError('corrupt', path, `the database files are damaged (${detail})`, { cause: error });
    default:
      return new StoreOpenError('io', path, detail, { cause: error });
  }
}
