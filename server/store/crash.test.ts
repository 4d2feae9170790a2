/**
 * Crash durability: a child process writes with classic-level directly (the same key layout, so the
 * parent reads it through Db), is killed with SIGKILL, and the parent reopens the store.
 *
 * SIGKILL tests a process crash, where what LevelDB handed to the OS survives; a machine crash
 * (power loss) cannot be tested here, which is why the sync policy (consensusStore.ts) is argued
 * from LevelDB's log behaviour rather than from these tests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { utf8 } from '../../common/bytes.js';
import { Bucket, Db, bucketKey, nameKey, readU64, u64Bytes } from './db.js';
import { startChild, tempDir, type ChildScript } from './testFixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh store (created through Db, so it carries our schema record), closed again. */
async function freshStore(): Promise<string> {
  const dir = await tempDir('crash');
  cleanups.push(dir.cleanup);
  await (await Db.open(dir.path)).close();
  return dir.path;
}

async function reopen(path: string): Promise<Db> {
  const db = await Db.open(path);
  cleanups.push(() => db.close());
  return db;
}

async function run(source: string, ready: string): Promise<ChildScript> {
  const child = await startChild(source, ready);
  cleanups.push(child.kill);
  return child;
}

/** Script prelude: opens the store at `path` with Uint8Array keys and values, and key helpers. */
const opening = (path: string): string => `
const db = new ClassicLevel(${JSON.stringify(path)}, { keyEncoding: 'view', valueEncoding: 'view' });
await db.open();
const key = (bucket, text) => Uint8Array.of(bucket, ...new TextEncoder().encode(text));
const u64Key = (bucket, n) => { const k = new Uint8Array(9); k[0] = bucket; new DataView(k.buffer).setBigUint64(1, BigInt(n)); return k; };
`;

const pattern = (length: number, seed: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (seed + i * 13) & 0xff);

describe('crash durability (SIGKILL)', () => {
  it('keeps a synced write that resolved before the kill', async () => {
    const path = await freshStore();
    const child = await run(
      `${opening(path)}
const big = Uint8Array.from({ length: 50 * 1024 }, (_, i) => (7 + i * 13) & 0xff);
await db.batch([
  { type: 'put', key: key(${Bucket.OrderingMeta}, 'frontier'), value: Uint8Array.of(1, 2, 3) },
  { type: 'put', key: u64Key(${Bucket.Batches}, 42), value: big },
], { sync: true });
console.log('written');
for (;;) {} // spin: nothing after this point may help the write along
`,
      'written',
    );
    await child.kill();
    expect(child.child.signalCode).toBe('SIGKILL');
    const db = await reopen(path);
    expect(await db.get(Bucket.OrderingMeta, nameKey('frontier'))).toEqual(Uint8Array.of(1, 2, 3));
    expect(await db.get(Bucket.Batches, u64Bytes(42))).toEqual(pattern(50 * 1024, 7));
  });

  it('opens fine after a kill during an unresolved write, which is then all there or all gone', async () => {
    const path = await freshStore();
    const child = await run(
      `${opening(path)}
await db.put(key(${Bucket.OrderingMeta}, 'before'), Uint8Array.of(9), { sync: true });
const ops = [];
for (let i = 0; i < 200; i++) ops.push({ type: 'put', key: u64Key(${Bucket.Batches}, i), value: Uint8Array.from({ length: 50 * 1024 }, (_, j) => (i + j * 13) & 0xff) });
void db.batch(ops, { sync: true }); // not awaited: the kill comes while it is being written
console.log('enqueued');
setInterval(() => {}, 1000);
`,
      'enqueued',
    );
    await child.kill();
    const db = await reopen(path);
    expect(await db.get(Bucket.OrderingMeta, nameKey('before'))).toEqual(Uint8Array.of(9));
    let count = 0;
    for await (const [k, v] of db.iterate(Bucket.Batches)) {
      expect(v).toEqual(pattern(50 * 1024, readU64(k, 0)));
      count++;
    }
    expect([0, 200]).toContain(count);
  });

  it('never shows part of a batch after a kill in the middle of a stream of batches', async () => {
    const path = await freshStore();
    // Each batch: three small records naming the same counter, plus 100 KB so that batches span
    // several log blocks and writes, giving the kill many places to land inside a batch.
    const child = await run(
      `${opening(path)}
const big = new Uint8Array(100 * 1024);
for (let n = 1; ; n++) {
  const v = new Uint8Array(8); new DataView(v.buffer).setBigUint64(0, BigInt(n));
  big.fill(n & 0xff);
  await db.batch([
    { type: 'put', key: key(${Bucket.Meta}, 'safety-test'), value: v },
    { type: 'put', key: u64Key(${Bucket.Blocks}, 0), value: big },
    { type: 'put', key: key(${Bucket.Meta}, 'committed-test'), value: v },
    { type: 'put', key: u64Key(${Bucket.BlockHeights}, n), value: v },
  ], { sync: n % 4 === 0 });
  if (n === 20) console.log('running');
}
`,
      'running',
    );
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(Math.random() * 100)));
    await child.kill();
    const db = await reopen(path);
    const counter = (await db.get(Bucket.Meta, utf8('safety-test')))!;
    const n = readU64(counter, 0);
    expect(n).toBeGreaterThanOrEqual(20);
    expect(await db.get(Bucket.Meta, utf8('committed-test'))).toEqual(counter);
    expect(await db.get(Bucket.Blocks, u64Bytes(0))).toEqual(new Uint8Array(100 * 1024).fill(n & 0xff));
    const heights: number[] = [];
    for await (const k of db.iterateKeys(Bucket.BlockHeights)) heights.push(readU64(k, 0));
    expect(heights).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    // And the store still takes writes.
    await db.batch([{ type: 'put', key: bucketKey(Bucket.Meta, utf8('after')), value: u64Bytes(n) }], { sync: true });
    expect(await db.get(Bucket.Meta, utf8('after'))).toEqual(u64Bytes(n));
  });
});
