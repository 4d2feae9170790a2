import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../common/assert.js';
import { toHex } from '../../common/bytes.js';
import type { Digest, Height } from '../../common/ids.js';
import { MAX_SYNC_BLOCKS } from '../../common/limits.js';
import type { Block } from '../../common/messages.js';
import { MemoryConsensusStorage, type ConsensusStorage } from '../../consensus/storage.js';
import type { ConsensusPersistOp } from '../../consensus/types.js';
import { LevelConsensusStorage, RETAIN_COMMITTED_BLOCKS } from './consensusStore.js';
import { encodeSafetyRecord } from './records.js';
import { Bucket, Db, bucketKey, nameKey, type DbOp, type DbWriteBatch } from './db.js';
import { TEST_REPLICAS, tempDir, testBlock, testChain, testDigest, testSafety, type ChainLink } from './testFixtures.js';
import { WriteBatcher } from './writeBatcher.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Harness {
  storage: ConsensusStorage;
  /** The same store as a restarted replica sees it (Level: closed and opened again from disk). */
  reopen(): Promise<ConsensusStorage>;
}

async function openLevel(path: string): Promise<{ storage: LevelConsensusStorage; db: Db; close: () => Promise<void> }> {
  const db = await Db.open(path);
  const writer = new WriteBatcher(db);
  const storage = new LevelConsensusStorage(db, writer, TEST_REPLICAS);
  return {
    storage,
    db,
    close: async () => {
      await writer.close();
      await db.close();
    },
  };
}

const implementations: { name: string; make: () => Promise<Harness> }[] = [
  {
    name: 'MemoryConsensusStorage',
    make: async () => {
      const storage = new MemoryConsensusStorage();
      return { storage, reopen: async () => storage };
    },
  },
  {
    name: 'LevelConsensusStorage',
    make: async () => {
      const dir = await tempDir('store-contract');
      cleanups.push(dir.cleanup);
      let current = await openLevel(dir.path);
      cleanups.push(() => current.close());
      return {
        storage: current.storage,
        reopen: async () => {
          await current.close();
          current = await openLevel(dir.path);
          return current.storage;
        },
      };
    },
  },
];

const blockOp = (l: ChainLink): ConsensusPersistOp => ({ kind: 'block', digest: l.digest, block: l.block });
const committedOp = (l: ChainLink): ConsensusPersistOp => ({ kind: 'committed', height: l.block.height, digest: l.digest });
const heights = (blocks: readonly Block[]): number[] => blocks.map((b) => b.height);
const sortedKeys = (blocks: readonly Block[]): string[] => blocks.map((b) => `${b.height}:${b.view}:${toHex(b.parent)}`).sort();

describe.each(implementations)('ConsensusStorage contract: $name', ({ make }) => {
  it('loads an empty state from a fresh store', async () => {
    const h = await make();
    expect(await (await h.reopen()).load()).toEqual({ safety: null, committed: null, blocks: [] });
  });

  it('round-trips safety, blocks and the committed tip', async () => {
    const h = await make();
    const chain = testChain(5);
    await h.storage.apply(chain.slice(1).map(blockOp));
    await h.storage.apply([{ kind: 'safety', state: testSafety(5) }, committedOp(chain[2]!)]);
    const loaded = await (await h.reopen()).load();
    expect(loaded.safety).toEqual(testSafety(5));
    expect(loaded.committed).toEqual({ height: 2, digest: chain[2]!.digest });
    expect(sortedKeys(loaded.blocks)).toEqual(sortedKeys(chain.slice(2).map((l) => l.block)));
  });

  it('keeps the last safety state and committed tip, also within one apply', async () => {
    const h = await make();
    const chain = testChain(4);
    await h.storage.apply([{ kind: 'safety', state: testSafety(3, false) }, ...chain.slice(1).map(blockOp), committedOp(chain[1]!)]);
    await h.storage.apply([{ kind: 'safety', state: testSafety(7) }, { kind: 'safety', state: testSafety(8) }, committedOp(chain[2]!), committedOp(chain[3]!)]);
    const loaded = await (await h.reopen()).load();
    expect(loaded.safety).toEqual(testSafety(8));
    expect(loaded.committed?.height).toBe(3);
  });

  it('loads only the blocks at or above the committed height, forks included', async () => {
    const h = await make();
    const chain = testChain(8);
    const fork = [testBlock(chain[5]!.digest, 6, 50), testBlock(chain[2]!.digest, 3, 60)];
    await h.storage.apply(chain.slice(1).map(blockOp));
    await h.storage.apply(fork.map((block, i) => ({ kind: 'block', digest: testDigest(900 + i), block })));
    await h.storage.apply([committedOp(chain[5]!)]);
    const loaded = await (await h.reopen()).load();
    expect(sortedKeys(loaded.blocks)).toEqual(sortedKeys([...chain.slice(5).map((l) => l.block), fork[0]!]));
  });

  it('reads blocks newest first, up to the limit, stopping at genesis or an unknown parent', async () => {
    const h = await make();
    const chain = testChain(20);
    await h.storage.apply(chain.map(blockOp)); // genesis stored too: it must still not be served
    const s = await h.reopen();
    expect(heights(await s.readBlocks(chain[20]!.digest, 5))).toEqual([20, 19, 18, 17, 16]);
    expect(heights(await s.readBlocks(chain[3]!.digest, 10))).toEqual([3, 2, 1]);
    expect(heights(await s.readBlocks(chain[7]!.digest, 1))).toEqual([7]);
    expect(await s.readBlocks(testDigest(12345), 10)).toEqual([]);
    const detached = testBlock(testDigest(777), 30, 30);
    await s.apply([{ kind: 'block', digest: testDigest(778), block: detached }]);
    expect(heights(await s.readBlocks(testDigest(778), 10))).toEqual([30]);
    expect(await s.readBlocks(chain[20]!.digest, 64)).toEqual(chain.slice(1).reverse().map((l) => l.block));
  });

  it('applies all ops of one call together: every op is visible once it resolves', async () => {
    const h = await make();
    const chain = testChain(30);
    const ops: ConsensusPersistOp[] = [{ kind: 'safety', state: testSafety(30) }, ...chain.slice(1).map(blockOp), committedOp(chain[10]!)];
    const pending = h.storage.apply(ops);
    await pending;
    const loaded = await h.storage.load();
    expect(loaded.safety).toEqual(testSafety(30));
    expect(heights(loaded.blocks).sort((a, b) => a - b)).toEqual(chain.slice(10).map((l) => l.block.height));
  });
});

describe('LevelConsensusStorage', () => {
  async function fresh(): Promise<{ storage: LevelConsensusStorage; db: Db; path: string; close: () => Promise<void> }> {
    const dir = await tempDir('store-level');
    cleanups.push(dir.cleanup);
    const opened = await openLevel(dir.path);
    cleanups.push(opened.close);
    return { ...opened, path: dir.path };
  }

  it('writes one apply as one synced group of one batch, never split', async () => {
    const batches: { ops: number; sync: boolean }[] = [];
    const target = {
      newBatch: (): DbWriteBatch => {
        const rec = { ops: 0, sync: false };
        return {
          put: () => void rec.ops++,
          del: () => void rec.ops++,
          write: async (sync: boolean) => {
            rec.sync = sync;
            batches.push(rec);
          },
          discard: () => {},
        };
      },
    };
    const storage = new LevelConsensusStorage(null as unknown as Db, new WriteBatcher(target), TEST_REPLICAS);
    const chain = testChain(3);
    // Block-only applies are synced too (see the sync policy in consensusStore.ts).
    await Promise.all([storage.apply(chain.slice(1).map(blockOp)), storage.apply([{ kind: 'safety', state: testSafety(3) }])]);
    expect(batches).toEqual([{ ops: 2 * 3 + 1, sync: true }]);
  });

  it('writes nothing of an apply that has an invalid op (atomicity before the write)', async () => {
    const { storage } = await fresh();
    const bad = { kind: 'block', digest: new Uint8Array(31) as Digest, block: testChain(1)[1]!.block } as const;
    await expect(storage.apply([{ kind: 'safety', state: testSafety(4) }, bad])).rejects.toThrow(AssertionError);
    expect((await storage.load()).safety).toBeNull();
  });

  it('caps readBlocks at MAX_SYNC_BLOCKS: the count comes from a peer', async () => {
    const { storage } = await fresh();
    const chain = testChain(MAX_SYNC_BLOCKS + 10);
    await storage.apply(chain.slice(1).map(blockOp));
    expect((await storage.readBlocks(chain.at(-1)!.digest, 1_000_000)).length).toBe(MAX_SYNC_BLOCKS);
  });

  it('prunes below a height but keeps RETAIN_COMMITTED_BLOCKS below the committed tip', async () => {
    const { storage } = await fresh();
    const top = RETAIN_COMMITTED_BLOCKS + 200;
    const chain = testChain(top, 0, 0);
    for (let from = 1; from <= top; from += 256) await storage.apply(chain.slice(from, from + 256).map(blockOp));
    expect(await storage.prune(top)).toBe(0); // nothing committed yet: nothing is old
    await storage.apply([committedOp(chain[top - 50]!)]);
    const committed = top - 50;
    const keptFrom = committed - RETAIN_COMMITTED_BLOCKS + 1;
    expect(await storage.prune(top)).toBe(keptFrom - 1); // asked for more than allowed: clamped
    expect(await storage.prune(top)).toBe(0);
    expect((await storage.readBlocks(chain[committed]!.digest, MAX_SYNC_BLOCKS)).length).toBe(MAX_SYNC_BLOCKS);
    expect(await storage.readBlocks(chain[keptFrom - 1]!.digest, 1)).toEqual([]);
    expect(heights(await storage.readBlocks(chain[keptFrom]!.digest, 5))).toEqual([keptFrom]);
    const loaded = await storage.load();
    expect(heights(loaded.blocks).sort((a, b) => a - b)).toEqual(chain.slice(committed).map((l) => l.block.height));
  });

  it('prunes only below the requested height when that is lower', async () => {
    const { storage } = await fresh();
    const top = RETAIN_COMMITTED_BLOCKS + 100;
    const chain = testChain(top, 0, 0);
    for (let from = 1; from <= top; from += 256) await storage.apply(chain.slice(from, from + 256).map(blockOp));
    await storage.apply([committedOp(chain[top]!)]);
    expect(await storage.prune(11)).toBe(10);
    expect(heights(await storage.readBlocks(chain[12]!.digest, 5))).toEqual([12, 11]);
  });

  it('asserts with a clear message on a corrupted safety record, block or index', async () => {
    const corrupt = async (op: DbOp, pattern: RegExp): Promise<void> => {
      const { storage, db } = await fresh();
      const chain = testChain(2);
      await storage.apply([{ kind: 'safety', state: testSafety(2) }, ...chain.slice(1).map(blockOp), committedOp(chain[1]!)]);
      await db.batch([op], { sync: false });
      await expect(storage.load()).rejects.toThrow(pattern);
    };
    const chain = testChain(2);
    const safety = encodeSafetyRecord(testSafety(2));
    safety[10]! ^= 0x01;
    await corrupt({ type: 'put', key: bucketKey(Bucket.Meta, nameKey('safety')), value: safety }, /store corrupted: the safety record .*checksum/);
    await corrupt({ type: 'put', key: bucketKey(Bucket.Meta, nameKey('safety')), value: new Uint8Array(3) }, /store corrupted: the safety record/);
    await corrupt({ type: 'put', key: bucketKey(Bucket.Blocks, chain[2]!.digest), value: new Uint8Array([0x93, 1, 2]) }, /store corrupted: block .* does not decode/);
    await corrupt({ type: 'del', key: bucketKey(Bucket.Blocks, chain[1]!.digest) }, /store corrupted: BlockHeights lists block/);
    await corrupt({ type: 'put', key: bucketKey(Bucket.Meta, nameKey('committed')), value: new Uint8Array(45) }, /store corrupted: the committed record/);
  });

  it('reports a committed tip whose block is missing', async () => {
    const { storage } = await fresh();
    await storage.apply([committedOp({ block: { ...testChain(1)[1]!.block, height: 9 as Height }, digest: testDigest(9) })]);
    await expect(storage.load()).rejects.toThrow(/committed block .* is missing/);
  });
});
