import { afterEach, assert, describe, expect, it } from 'vitest';
import { Bucket, Db, bucketKeyU64, u64Bytes, type DbOp, type DbWriteBatch } from './db.js';
import { StoreWriteError } from './errors.js';
import { tempDir } from './testFixtures.js';
import { WriteBatcher, type BatchTarget } from './writeBatcher.js';

/** A batch target that records every batch and completes writes only when the test says so. */
class FakeTarget implements BatchTarget {
  readonly written: { keys: number[]; sync: boolean }[] = [];
  readonly writing: { keys: number[]; sync: boolean; finish: () => void; fail: (e: Error) => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  autoComplete = false;

  newBatch(): DbWriteBatch {
    const keys: number[] = [];
    return {
      put: (key) => void keys.push(key[key.length - 1]!),
      del: (key) => void keys.push(-key[key.length - 1]!),
      discard: () => {},
      write: (sync) =>
        new Promise<void>((resolve, reject) => {
          this.inFlight++;
          this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
          const done = (): void => {
            this.inFlight--;
            this.written.push({ keys, sync });
            resolve();
          };
          if (this.autoComplete) setImmediate(done);
          else this.writing.push({ keys, sync, finish: done, fail: (e) => (this.inFlight--, reject(e)) });
        }),
    };
  }
}

const put = (n: number): DbOp => ({ type: 'put', key: Uint8Array.of(Bucket.Batches, n), value: new Uint8Array(10) });
const del = (n: number): DbOp => ({ type: 'del', key: Uint8Array.of(Bucket.Batches, n) });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** Whether `p` has settled, without waiting for it. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('WriteBatcher', () => {
  it('writes the enqueues of one turn as one batch, in order', async () => {
    const target = new FakeTarget();
    target.autoComplete = true;
    const w = new WriteBatcher(target);
    const promises = [w.enqueue([put(1), put(2)], { sync: false }), w.enqueue([del(3)], { sync: false })];
    await Promise.resolve();
    promises.push(w.enqueue([put(4)], { sync: false })); // a microtask later: still the same turn
    await Promise.all(promises);
    expect(target.written).toEqual([{ keys: [1, 2, -3, 4], sync: false }]);
    expect(w.stats).toMatchObject({ batches: 1, ops: 4, bytes: 4 * 2 + 3 * 10, syncBatches: 0 });
  });

  it('syncs the batch if any group asked for sync', async () => {
    const target = new FakeTarget();
    target.autoComplete = true;
    const w = new WriteBatcher(target);
    await Promise.all([w.enqueue([put(1)], { sync: false }), w.enqueue([put(2)], { sync: true }), w.enqueue([put(3)], { sync: false })]);
    await w.enqueue([put(4)], { sync: false });
    expect(target.written.map((b) => b.sync)).toEqual([true, false]);
    expect(w.stats.syncBatches).toBe(1);
  });

  it('resolves an enqueue only once its batch is written', async () => {
    const target = new FakeTarget();
    const w = new WriteBatcher(target);
    const p = w.enqueue([put(1)], { sync: true });
    await turn();
    expect(target.writing).toHaveLength(1);
    expect(await settled(p)).toBe(false);
    target.writing[0]!.finish();
    expect(await settled(p)).toBe(true);
  });

  it('collects writes during an in-flight batch into the next one, one batch at a time, in order', async () => {
    const target = new FakeTarget();
    const w = new WriteBatcher(target);
    const first = w.enqueue([put(1)], { sync: true });
    await turn();
    expect(target.writing).toHaveLength(1);
    // Three more turns while the first batch is being written: they all wait for one next batch.
    const second = [w.enqueue([put(2)], { sync: false })];
    await turn();
    second.push(w.enqueue([put(3)], { sync: true }));
    await turn();
    second.push(w.enqueue([put(4)], { sync: false }));
    await turn();
    expect(target.writing).toHaveLength(1);
    expect(w.queuedBytes).toBe(3 * 12);
    expect(await settled(second[0]!)).toBe(false);
    target.writing[0]!.finish();
    await first;
    await turn();
    expect(target.writing).toHaveLength(2);
    expect(await settled(second[0]!)).toBe(false);
    target.writing[1]!.finish();
    await Promise.all(second);
    expect(target.written).toEqual([
      { keys: [1], sync: true },
      { keys: [2, 3, 4], sync: true },
    ]);
    expect(target.maxInFlight).toBe(1);
  });

  it('lets an empty enqueue wait for the writes before it', async () => {
    const target = new FakeTarget();
    const w = new WriteBatcher(target);
    expect(await settled(w.enqueue([], { sync: true }))).toBe(true);
    const p = w.enqueue([put(1)], { sync: false });
    const barrier = w.enqueue([], { sync: false });
    await turn();
    expect(await settled(barrier)).toBe(false);
    target.writing[0]!.finish();
    await Promise.all([p, barrier, w.drain()]);
    expect(target.written).toHaveLength(1);
  });

  it('fails for good after a failed write: that batch, the queued one and later enqueues reject', async () => {
    const target = new FakeTarget();
    const w = new WriteBatcher(target);
    const first = w.enqueue([put(1)], { sync: true });
    await turn();
    const queued = w.enqueue([put(2)], { sync: true });
    target.writing[0]!.fail(new Error('IO error: No space left on device'));
    await expect(first).rejects.toThrow(StoreWriteError);
    await expect(first).rejects.toThrow(/No space left/);
    await expect(queued).rejects.toThrow(StoreWriteError);
    await expect(w.enqueue([put(3)], { sync: false })).rejects.toThrow(StoreWriteError);
    expect(target.writing).toHaveLength(1);
  });

  it('never writes a batch holding part of a group that LevelDB refused', async () => {
    const target = new FakeTarget();
    const w = new WriteBatcher(target);
    const newBatch = target.newBatch.bind(target);
    target.newBatch = () => {
      const b = newBatch();
      return { ...b, put: (key, value) => (key[1] === 99 ? assert.fail('refused') : b.put(key, value)) };
    };
    const earlier = w.enqueue([put(1)], { sync: false });
    expect(() => w.enqueue([put(2), put(99)], { sync: false })).toThrow('refused');
    await expect(earlier).rejects.toThrow(StoreWriteError);
    await expect(w.enqueue([put(3)], { sync: false })).rejects.toThrow(/an op was refused/);
    await turn();
    expect(target.writing).toHaveLength(0);
  });

  it('writes through to LevelDB: visible once resolved, one batch per turn', async () => {
    const dir = await tempDir('batcher');
    afterEachCleanup(dir.cleanup);
    const db = await Db.open(dir.path);
    afterEachCleanup(() => db.close());
    const w = new WriteBatcher(db);
    const value = (n: number): Uint8Array => new Uint8Array(1000).fill(n);
    const promises: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) promises.push(w.enqueue([{ type: 'put', key: bucketKeyU64(Bucket.Batches, i), value: value(i) }], { sync: i === 50 }));
    await Promise.all(promises);
    expect(w.stats).toMatchObject({ batches: 1, ops: 100, syncBatches: 1 });
    expect(w.stats.lastBatchLatencyUs).toBeGreaterThan(0);
    for (const i of [0, 50, 99]) expect(await db.get(Bucket.Batches, u64Bytes(i))).toEqual(value(i));
    await w.enqueue([{ type: 'del', key: bucketKeyU64(Bucket.Batches, 50) }], { sync: false });
    expect(await db.get(Bucket.Batches, u64Bytes(50))).toBeUndefined();
    await w.close();
  });
});

const cleanups: (() => Promise<void>)[] = [];
const afterEachCleanup = (fn: () => Promise<void>): void => void cleanups.push(fn);
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
