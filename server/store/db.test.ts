import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterEach, describe, expect, it } from 'vitest';
import { utf8 } from '../../common/bytes.js';
import { Bucket, Db, STORE_SCHEMA_VERSION, bucketKey, bucketKeyU64, nameKey, putOp, readU64, u64Bytes } from './db.js';
import { StoreOpenError } from './errors.js';
import { startChild, tempDir } from './testFixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dir(): Promise<string> {
  const d = await tempDir('db');
  cleanups.push(d.cleanup);
  return d.path;
}

async function open(path: string): Promise<Db> {
  const db = await Db.open(path);
  cleanups.push(() => db.close());
  return db;
}

async function openError(path: string): Promise<StoreOpenError> {
  const error: unknown = await Db.open(path).then(
    (db) => db.close().then(() => null),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreOpenError);
  return error as StoreOpenError;
}

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

describe('Db', () => {
  it('encodes u64 keys big-endian, so that iteration is numeric', async () => {
    expect(u64Bytes(0x0102_0304_0506)).toEqual(Uint8Array.of(0, 0, 1, 2, 3, 4, 5, 6));
    expect(readU64(bucketKeyU64(Bucket.Acks, Number.MAX_SAFE_INTEGER), 1)).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => u64Bytes(-1)).toThrow();
    expect(() => u64Bytes(2 ** 53)).toThrow();
    const db = await open(await dir());
    const numbers = [2 ** 40, 256, 255, 0, 1, 65_536, Number.MAX_SAFE_INTEGER];
    await db.batch(numbers.map((n) => ({ type: 'put', key: bucketKeyU64(Bucket.Acks, n), value: u64Bytes(n) })), { sync: false });
    const keys = await collect(db.iterateKeys(Bucket.Acks));
    expect(keys.map((k) => readU64(k, 0))).toEqual([...numbers].sort((a, b) => a - b));
    const range = await collect(db.iterate(Bucket.Acks, { gte: u64Bytes(255), lt: u64Bytes(65_536), reverse: true }));
    expect(range.map(([, v]) => readU64(v, 0))).toEqual([256, 255]);
    expect((await collect(db.iterate(Bucket.Acks, { limit: 2 }))).map(([k]) => readU64(k, 0))).toEqual([0, 1]);
  });

  it('keeps buckets apart: a bucket iterates only its own keys', async () => {
    const db = await open(await dir());
    const key = utf8('k');
    await db.batch(
      [Bucket.Meta, Bucket.Blocks, Bucket.BlockHeights, Bucket.Batches, Bucket.Executed].map((b) => putOp(b, key, Uint8Array.of(b))),
      { sync: true },
    );
    for (const b of [Bucket.Blocks, Bucket.BlockHeights, Bucket.Batches, Bucket.Executed]) {
      expect(await collect(db.iterate(b))).toEqual([[key, Uint8Array.of(b)]]);
    }
    expect(await collect(db.iterate(Bucket.Seals))).toEqual([]);
    expect(await db.get(Bucket.Batches, key)).toEqual(Uint8Array.of(Bucket.Batches));
    expect(await db.get(Bucket.Seals, key)).toBeUndefined();
    expect(await db.getMany(Bucket.Executed, [key, utf8('x')])).toEqual([Uint8Array.of(Bucket.Executed), undefined]);
  });

  it('survives close and reopen', async () => {
    const path = await dir();
    const db = await Db.open(path);
    await db.batch([putOp(Bucket.Batches, utf8('a'), utf8('b'))], { sync: true });
    await db.close();
    await db.close(); // idempotent
    const again = await open(path);
    expect(await again.get(Bucket.Batches, utf8('a'))).toEqual(utf8('b'));
  });

  it('refuses a store that another process holds, with a typed error', async () => {
    const path = await dir();
    await (await Db.open(path)).close();
    const holder = await startChild(`const db = new ClassicLevel(${JSON.stringify(path)});\nawait db.open();\nconsole.log('open');\nsetInterval(() => {}, 1000);\n`, 'open');
    cleanups.push(holder.kill);
    const error = await openError(path);
    expect(error.problem).toBe('locked');
    expect(error.message).toMatch(/^cannot open the store at .*: it is locked by another process/);
  });

  it('refuses damaged files as corrupt', async () => {
    const path = await dir();
    const db = await Db.open(path);
    await db.batch([putOp(Bucket.Batches, utf8('a'), utf8('b'))], { sync: true });
    await db.close();
    const manifest = (await readdir(path)).find((f) => f.startsWith('MANIFEST-'))!;
    await writeFile(join(path, manifest), new Uint8Array(200).fill(0x5a));
    const error = await openError(path);
    expect(error.problem).toBe('corrupt');
    expect(error.message).toMatch(/the database files are damaged \(Corruption: /);
  });

  it('refuses to create a store where none is, when asked not to', async () => {
    const path = join(await dir(), 'replica-0');
    const error: unknown = await Db.open(path, { createIfMissing: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ problem: 'missing', message: `cannot open the store at ${path}: no store there, and creating one was not allowed` });
    await (await Db.open(path)).close();
    await (await Db.open(path, { createIfMissing: false })).close();
  });

  it('refuses a database that is not ours or of another schema version', async () => {
    const foreign = await dir();
    const other = new ClassicLevel(foreign);
    await other.put('hello', 'world');
    await other.close();
    expect(await openError(foreign)).toMatchObject({ problem: 'incompatible', message: expect.stringMatching(/not a pompe-ts store/) });

    const newer = await dir();
    await (await Db.open(newer)).close();
    const raw = new ClassicLevel<Uint8Array, Uint8Array>(newer, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw.put(bucketKey(Bucket.Meta, nameKey('schema')), Uint8Array.of(0, 0, 0, STORE_SCHEMA_VERSION + 1));
    await raw.close();
    expect(await openError(newer)).toMatchObject({ problem: 'incompatible', message: expect.stringMatching(/schema version 2; this build reads version 1/) });
  });
});
