import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError } from '../../common/assert.js';
import { toHex } from '../../common/bytes.js';
import { nodeCrypto } from '../../common/crypto/node.js';
import { encodeBlockPayload } from '../../common/codec.js';
import type { Digest, Height, ReplicaId, Slot, View } from '../../common/ids.js';
import type { Block, BlockPayload, OrderingCert, SealEntry } from '../../common/messages.js';
import { MemoryReplicaStorage, type ReplicaStorage } from '../../ordering/storage.js';
import type { ReplicaPersistOp } from '../../ordering/types.js';
import { Bucket } from './db.js';
import { StoreOpenError } from './errors.js';
import { LevelReplicaStorage, type CommittedChunk } from './replicaStore.js';
import { digestOf, TEST_REPLICAS, tempDir, testDigest, testQc, testSafety } from './testFixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const IDENTITY = { clusterId: testDigest(4242), replica: 1 as ReplicaId };

interface Harness {
  storage: ReplicaStorage;
  /** The same store as a restarted replica sees it. */
  reopen(): Promise<ReplicaStorage>;
  chain(storage: ReplicaStorage, chunkBlocks: number): AsyncIterable<CommittedChunk>;
}

async function openLevel(path: string): Promise<LevelReplicaStorage> {
  return LevelReplicaStorage.open(path, { replicaCount: TEST_REPLICAS, identity: IDENTITY, crypto: nodeCrypto });
}

async function* memoryChain(storage: MemoryReplicaStorage): AsyncIterable<CommittedChunk> {
  const { blocks, batches } = storage.committedChainSync();
  if (blocks.length > 0) yield { blocks, batches };
}

const implementations: { name: string; make: () => Promise<Harness> }[] = [
  {
    name: 'MemoryReplicaStorage',
    make: async () => {
      const storage = new MemoryReplicaStorage(nodeCrypto, TEST_REPLICAS);
      return { storage, reopen: async () => storage, chain: (s) => memoryChain(s as MemoryReplicaStorage) };
    },
  },
  {
    name: 'LevelReplicaStorage',
    make: async () => {
      const dir = await tempDir('replica-store');
      cleanups.push(dir.cleanup);
      let current = await openLevel(dir.path);
      cleanups.push(() => current.close());
      return {
        storage: current,
        reopen: async () => {
          await current.close();
          current = await openLevel(dir.path);
          return current;
        },
        chain: (s, chunk) => (s as LevelReplicaStorage).committedChain(chunk),
      };
    },
  },
];

const sig = (seed: number): Uint8Array => Uint8Array.from({ length: 64 }, (_, i) => (seed * 7 + i) & 0xff);
const batchBytes = (seed: number): Uint8Array => Uint8Array.from({ length: 40 + seed }, (_, i) => (seed + i * 3) & 0xff);

function ocFor(digest: Digest, ts: number): OrderingCert {
  return { digest, stamps: [0, 1, 2].map((r) => ({ replica: r as ReplicaId, ts: ts + r - 1, sig: sig(r + ts) })) };
}

/** An ack op for batch `seed` at slot `slot` (ts = slot × 1000 + seed). */
function ackOp(seed: number, slot: number): Extract<ReplicaPersistOp, { kind: 'ack' }> {
  const digest = testDigest(seed);
  const ts = slot * 1000 + seed;
  const entry: SealEntry = { digest, ts, ocHash: testDigest(seed + 5000) };
  return { kind: 'ack', entry, slot: slot as Slot, oc: ocFor(digest, ts), sig: sig(seed) };
}
async function ackKeys(s: LevelReplicaStorage): Promise<number> {
  let n = 0;
  for await (const _ of s.db.iterateKeys(Bucket.Acks)) n++;
  return n;
}
/** Waits (up to 5 s) until `s` holds `left` ack keys: prunes run in the background, and close()
 *  stops one under way. */
async function prunedTo(s: LevelReplicaStorage, left: number): Promise<void> {
  for (let i = 0; i < 500 && (await ackKeys(s)) > left; i++) await new Promise((resolve) => setTimeout(resolve, 10));
}
const batchOp = (seed: number): ReplicaPersistOp => ({ kind: 'batch', digest: testDigest(seed), bytes: batchBytes(seed) });

const ackSeeds = (acks: readonly { entry: SealEntry }[]): string[] => acks.map((a) => toHex(a.entry.digest)).sort();
const hexes = (seeds: readonly number[]): string[] => seeds.map((s) => toHex(testDigest(s))).sort();

/** A committed chain of `length` blocks whose payloads list entries (two per block, one shared
 *  with the next block to exercise effective entries), on top of a height-0 genesis. */
function payloadChain(length: number): { links: { block: Block; digest: Digest }[]; entriesOf: number[][] } {
  const links: { block: Block; digest: Digest }[] = [];
  const entriesOf: number[][] = [];
  let parent = new Uint8Array(32) as Digest;
  for (let h = 1; h <= length; h++) {
    const seeds = [100 + h, 100 + h + 1];
    const entries = seeds.map((s, i) => ({ digest: testDigest(s), ts: h * 1000 + i, ocHash: testDigest(s + 5000) }));
    const payload: BlockPayload = { fromSlot: (h - 1) as Slot, toSlot: h as Slot, entries, ocs: entries.map((e) => ocFor(e.digest, e.ts)), seals: [] };
    const block: Block = {
      parent,
      view: h as View,
      height: h as Height,
      proposer: (h % TEST_REPLICAS) as ReplicaId,
      justify: testQc(h - 1, parent),
      payload: encodeBlockPayload(payload),
    };
    const digest = digestOf(block);
    links.push({ block, digest });
    entriesOf.push(seeds);
    parent = digest;
  }
  return { links, entriesOf };
}

describe.each(implementations)('ReplicaStorage contract: $name', ({ make }) => {
  it('loads an empty state from a fresh store', async () => {
    const h = await make();
    const loaded = await (await h.reopen()).load();
    expect(loaded.consensus).toEqual({ safety: null, committed: null, blocks: [] });
    expect(loaded.ordering).toEqual({ tsReservationUs: 0, frontier: 0, acks: [], batches: [] });
  });

  it('keeps the highest reservation and frontier, within one apply and across applies', async () => {
    const h = await make();
    await h.storage.apply([{ kind: 'tsReservation', untilUs: 5_000 }, { kind: 'frontier', slot: 7 as Slot }, { kind: 'tsReservation', untilUs: 9_000 }]);
    await h.storage.apply([{ kind: 'tsReservation', untilUs: 8_000 }, { kind: 'frontier', slot: 3 as Slot }]);
    const loaded = await (await h.reopen()).load();
    expect(loaded.ordering.tsReservationUs).toBe(9_000);
    expect(loaded.ordering.frontier).toBe(7);
  });

  it('round-trips acks with their OCs and returns the bytes of acked batches only', async () => {
    const h = await make();
    await h.storage.apply([batchOp(1), ackOp(1, 10), batchOp(2), ackOp(2, 11)]);
    await h.storage.apply([batchOp(3)]); // fetched, never acked
    const s = await h.reopen();
    const loaded = await s.load();
    expect(ackSeeds(loaded.ordering.acks)).toEqual(hexes([1, 2]));
    const one = loaded.ordering.acks.find((a) => toHex(a.entry.digest) === toHex(testDigest(1)))!;
    const expected = ackOp(1, 10);
    expect(one).toMatchObject({ entry: expected.entry, oc: expected.oc, sig: expected.sig });
    expect(loaded.ordering.batches.map((b) => toHex(b.digest)).sort()).toEqual(hexes([1, 2]));
    expect(loaded.ordering.batches.find((b) => toHex(b.digest) === toHex(testDigest(2)))!.bytes).toEqual(batchBytes(2));
    expect(await s.readBatches([testDigest(3), testDigest(99), testDigest(1)])).toEqual([batchBytes(3), batchBytes(1)]);
  });

  it('forgets acks at or below a pruned slot, keeps the later ones and every batch', async () => {
    const h = await make();
    await h.storage.apply([batchOp(1), ackOp(1, 10), batchOp(2), ackOp(2, 11), batchOp(3), ackOp(3, 12)]);
    await h.storage.apply([{ kind: 'pruneAcks', throughSlot: 11 as Slot }]);
    const s = await h.reopen();
    const loaded = await s.load();
    expect(ackSeeds(loaded.ordering.acks)).toEqual(hexes([3]));
    expect(await s.readBatches([testDigest(1), testDigest(2)])).toHaveLength(2);
  });

  it('applies consensus and ordering ops together', async () => {
    const h = await make();
    const { links } = payloadChain(2);
    await h.storage.apply([
      { kind: 'safety', state: testSafety(4) },
      ...links.map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })),
      { kind: 'committed', height: 1 as Height, digest: links[0]!.digest },
      batchOp(1),
      ackOp(1, 10),
    ]);
    const s = await h.reopen();
    const loaded = await s.load();
    expect(loaded.consensus.safety).toEqual(testSafety(4));
    expect(loaded.consensus.committed).toEqual({ height: 1, digest: links[0]!.digest });
    expect(loaded.ordering.acks).toHaveLength(1);
    expect((await s.readBlocks(links[1]!.digest, 10)).map((b) => b.height)).toEqual([2, 1]);
  });

  it('streams the committed chain oldest first, with the batches of its effective entries', async () => {
    const h = await make();
    const { links, entriesOf } = payloadChain(7);
    const seeds = [...new Set(entriesOf.flat())];
    await h.storage.apply(links.map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })));
    await h.storage.apply(seeds.filter((s) => s !== 104).map(batchOp)); // one batch not held
    await h.storage.apply([{ kind: 'committed', height: 6 as Height, digest: links[5]!.digest }]);
    const s = await h.reopen();
    const blocks: Block[] = [];
    const batches = new Map<string, Uint8Array>();
    for await (const chunk of h.chain(s, 4)) {
      blocks.push(...chunk.blocks);
      for (const b of chunk.batches) batches.set(toHex(b.digest), b.bytes);
    }
    expect(blocks.map((b) => b.height)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(blocks.map((b) => toHex(digestOf(b)))).toEqual(links.slice(0, 6).map((l) => toHex(l.digest)));
    for (const seed of new Set(entriesOf.slice(0, 6).flat())) {
      if (seed === 104) expect(batches.has(toHex(testDigest(seed)))).toBe(false);
      else expect(batches.get(toHex(testDigest(seed)))).toEqual(batchBytes(seed));
    }
  });

  it('streams nothing before anything committed', async () => {
    const h = await make();
    const chunks: CommittedChunk[] = [];
    for await (const chunk of h.chain(h.storage, 4)) chunks.push(chunk);
    expect(chunks).toEqual([]);
  });
});

describe('LevelReplicaStorage', () => {
  async function fresh(): Promise<{ path: string; open: () => Promise<LevelReplicaStorage> }> {
    const dir = await tempDir('replica-store');
    cleanups.push(dir.cleanup);
    return {
      path: dir.path,
      open: async () => {
        const s = await openLevel(dir.path);
        cleanups.push(() => s.close());
        return s;
      },
    };
  }

  it('writes one apply as one LevelDB batch, synced', async () => {
    const { open } = await fresh();
    const s = await open();
    const before = { ...s.stats().writer };
    const { links } = payloadChain(1);
    await s.apply([{ kind: 'safety', state: testSafety(2) }, { kind: 'block', digest: links[0]!.digest, block: links[0]!.block }, batchOp(1), ackOp(1, 3)]);
    const after = s.stats().writer;
    expect(after.batches - before.batches).toBe(1);
    expect(after.syncBatches - before.syncBatches).toBe(1);
  });

  it('writes a lone prune without sync and deletes the keys in the background', async () => {
    const { open } = await fresh();
    const s = await open();
    await s.apply([batchOp(1), ackOp(1, 10), batchOp(2), ackOp(2, 20)]);
    const syncs = s.stats().writer.syncBatches;
    await s.apply([{ kind: 'pruneAcks', throughSlot: 15 as Slot }]);
    expect(s.stats().writer.syncBatches).toBe(syncs);
    await s.close();
    const again = await open();
    const keys: Uint8Array[] = [];
    for await (const k of again.db.iterateKeys(Bucket.Acks)) keys.push(k);
    expect(keys).toHaveLength(1);
    expect(again.stats().acksPrunedThrough).toBe(15);
  });

  it('prunes acks from where the last prune ended, and still deletes one written below it since', async () => {
    const { open } = await fresh();
    const s = await open();
    await s.apply([batchOp(1), ackOp(1, 10), batchOp(2), ackOp(2, 20)]);
    await s.apply([{ kind: 'pruneAcks', throughSlot: 15 as Slot }]);
    await prunedTo(s, 1);
    // Late, for a slot the first prune already covered: the next prune must not start above it.
    await s.apply([batchOp(3), ackOp(3, 12)]);
    await s.apply([{ kind: 'pruneAcks', throughSlot: 25 as Slot }]);
    await prunedTo(s, 0);
    await s.close();
    expect(await ackKeys(await open())).toBe(0);
  });

  it('prunes more acks than one delete batch holds, each scan going on after the last', async () => {
    const { open } = await fresh();
    const s = await open();
    const count = 2_500; // PRUNE_BATCH_ACKS is 1,024: three scans
    const ops = [batchOp(1)];
    for (let i = 0; i < count; i++) ops.push(ackOp(1, 10 + i));
    await s.apply(ops);
    await s.apply([{ kind: 'pruneAcks', throughSlot: (10 + count - 2) as Slot }]);
    await prunedTo(s, 1);
    expect(s.stats().pruneBatches).toBeGreaterThanOrEqual(3);
    await s.close();
    expect(await ackKeys(await open())).toBe(1);
  });

  it('refuses a store that belongs to another cluster or replica', async () => {
    const { path, open } = await fresh();
    await (await open()).close();
    const other = LevelReplicaStorage.open(path, { replicaCount: TEST_REPLICAS, identity: { ...IDENTITY, replica: 2 as ReplicaId }, crypto: nodeCrypto });
    await expect(other).rejects.toThrow(StoreOpenError);
    await expect(LevelReplicaStorage.open(path, { replicaCount: TEST_REPLICAS, identity: { ...IDENTITY, clusterId: testDigest(1) }, crypto: nodeCrypto })).rejects.toThrow(/belongs to replica 1/);
  });

  it('refuses to create a store when creating was not allowed', async () => {
    const { path } = await fresh();
    await expect(LevelReplicaStorage.open(`${path}/nothing-here`, { replicaCount: TEST_REPLICAS, identity: IDENTITY, createIfMissing: false, crypto: nodeCrypto })).rejects.toMatchObject({
      problem: 'missing',
    });
  });

  it('asserts on a committed chain with a hole', async () => {
    const { open } = await fresh();
    const s = await open();
    const { links } = payloadChain(3);
    await s.apply([links[0]!, links[2]!].map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })));
    await s.apply([{ kind: 'committed', height: 3 as Height, digest: links[2]!.digest }]);
    const walk = async (): Promise<void> => {
      for await (const _ of s.committedChain(2)) {
        /* drain */
      }
    };
    await expect(walk()).rejects.toThrow(AssertionError);
  });
});
