/**
 * Checkpoints in a replica's store, for both implementations (memory for the simulator, LevelDB
 * for the server): a checkpoint written is the one a restart loads and a peer can read piece by
 * piece; one fetched from peers becomes held once installed (a fetch cut short leaves nothing);
 * certificates make one stable; pruning below a stable checkpoint deletes older checkpoints, blocks
 * and the batches they committed, and expired batches, and nothing a restart or a peer still needs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BatchMode, encodeBatch } from '../../common/batch.js';
import { bitmapSet, newBitmap } from '../../common/bitmap.js';
import { toHex } from '../../common/bytes.js';
import { decodeCheckpointManifest, encodeBlockPayload } from '../../common/codec.js';
import { nodeCrypto } from '../../common/crypto/node.js';
import type { Digest, Height, ReplicaId, Slot, View } from '../../common/ids.js';
import type { Block, BlockPayload, CheckpointCert } from '../../common/messages.js';
import { CheckpointRestorer, statementOf, type CheckpointCapture, type StoredCheckpoint } from '../../ordering/checkpointFormat.js';
import { Executor } from '../../ordering/executor.js';
import { encodeExecutorState } from '../../ordering/executorState.js';
import { encodeKvCommand, KvOp, KvStore } from '../../ordering/kvStore.js';
import { MemoryReplicaStorage, type ReplicaStorage } from '../../ordering/storage.js';
import type { ReplicaPersistOp } from '../../ordering/types.js';
import { LevelReplicaStorage } from './replicaStore.js';
import { blockDigest } from '../../consensus/block.js';
import { TEST_REPLICAS, tempDir, testDigest, testQc } from './testFixtures.js';

const digestOf = (block: Block): Digest => blockDigest(nodeCrypto, block);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const IDENTITY = { clusterId: testDigest(77), replica: 0 as ReplicaId };
const ctx = { replicaCount: TEST_REPLICAS };

interface Harness {
  storage: ReplicaStorage;
  reopen(): Promise<ReplicaStorage>;
  /** Waits for background deletions. */
  settle(): Promise<void>;
}

const implementations: { name: string; make: () => Promise<Harness> }[] = [
  {
    name: 'MemoryReplicaStorage',
    make: async () => {
      const storage = new MemoryReplicaStorage(nodeCrypto, TEST_REPLICAS);
      return { storage, reopen: async () => storage, settle: async () => undefined };
    },
  },
  {
    name: 'LevelReplicaStorage',
    make: async () => {
      const dir = await tempDir('checkpoint-store');
      cleanups.push(dir.cleanup);
      const open = (): Promise<LevelReplicaStorage> => LevelReplicaStorage.open(dir.path, { replicaCount: TEST_REPLICAS, identity: IDENTITY, crypto: nodeCrypto, retainCommittedBlocks: 1 });
      let current = await open();
      cleanups.push(() => current.close());
      return {
        storage: current,
        reopen: async () => {
          await current.close();
          current = await open();
          return current;
        },
        settle: () => current.prunesDone(),
      };
    },
  },
];

/** The store reads batches' expiry, never their signatures (phase 1 checked those). */
const CLIENT_KEY = new Uint8Array(32).fill(1);
const NO_SIGNATURE = new Uint8Array(64);

/** A real batch (so its expiry is readable) expiring at `expiresAtUs`. */
function batch(seed: number, expiresAtUs: number): { digest: Digest; bytes: Uint8Array } {
  const bytes = encodeBatch({ mode: BatchMode.Direct, collectorKey: CLIENT_KEY, nonce: seed, expiresAtUs, commands: [{ seq: seed + 1, payload: Uint8Array.of(seed & 0xff) }] }, () => NO_SIGNATURE);
  return { digest: nodeCrypto.sha256(bytes), bytes };
}

/** Committed blocks 1..length, block h committing batch h (expiring far in the future). */
function chain(length: number): { blocks: { block: Block; digest: Digest }[]; batches: { digest: Digest; bytes: Uint8Array }[] } {
  const blocks: { block: Block; digest: Digest }[] = [];
  const batches: { digest: Digest; bytes: Uint8Array }[] = [];
  let parent = new Uint8Array(32) as Digest;
  for (let h = 1; h <= length; h++) {
    const b = batch(h, 1e15);
    batches.push(b);
    const entries = [{ digest: b.digest, ts: h * 1000, ocHash: testDigest(h + 5000) }];
    const payload: BlockPayload = { fromSlot: (h - 1) as Slot, toSlot: h as Slot, entries, ocs: [{ digest: b.digest, stamps: [] }], seals: [] };
    const block: Block = { parent, view: h as View, height: h as Height, proposer: 0 as ReplicaId, justify: testQc(h - 1, parent), payload: encodeBlockPayload(payload) };
    const digest = digestOf(block);
    blocks.push({ block, digest });
    parent = digest;
  }
  return { blocks, batches };
}

function capture(link: { block: Block; digest: Digest }, kv: KvStore): CheckpointCapture {
  return {
    height: link.block.height,
    toSlot: link.block.height as number as Slot,
    position: link.block.height,
    block: link.block,
    blockDigest: link.digest,
    executorChunks: encodeExecutorState({ ...new Executor(kv).state(), position: link.block.height }),
    appChunks: kv.snapshot(),
  };
}

function certFor(stored: StoredCheckpoint): CheckpointCert {
  const signers = newBitmap(TEST_REPLICAS);
  for (const r of [0, 1, 2]) bitmapSet(signers, r);
  return { ...statementOf(stored), signers, sigs: [0, 1, 2].map((r) => new Uint8Array(64).fill(r + 1)) };
}

/** Chunks as short hashes: deep equality on megabytes of bytes is slow and its diffs unreadable. */
const hashes = (chunks: Iterable<Uint8Array>): string[] => [...chunks].map((c) => toHex(nodeCrypto.sha256(c)).slice(0, 16));

async function chunksOf(storage: ReplicaStorage, stored: StoredCheckpoint): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of storage.checkpointChunks(stored)) out.push(c);
  return out;
}

/** The persist ops that write a fetched checkpoint's chunks, as state transfer emits them. */
function fetchedChunkOps(chunks: readonly Uint8Array[], stored: StoredCheckpoint): ReplicaPersistOp[] {
  return chunks.map((bytes, i) => ({ kind: 'checkpointChunk', height: stored.manifest.height, state: stored.state, index: i + 1, bytes }));
}

function kvWith(count: number): KvStore {
  const kv = new KvStore();
  kv.execute(Array.from({ length: count }, (_, i) => ({ clientKey: CLIENT_KEY, seq: i + 1, expiresAtUs: Number.MAX_SAFE_INTEGER, payload: encodeKvCommand(KvOp.Put, Uint8Array.of(i >> 8, i & 0xff), new Uint8Array(20).fill(i & 0xff)) })));
  return kv;
}

describe.each(implementations)('checkpoints in the store: $name', ({ make }) => {
  it('a checkpoint taken is loaded after a restart, restores to the same state, and is served piece by piece', async () => {
    const h = await make();
    const { blocks } = chain(3);
    await h.storage.apply([...blocks.map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })), { kind: 'committed', height: 3 as Height, digest: blocks[2]!.digest }]);
    const kv = kvWith(50_000);
    const stored = await h.storage.writeCheckpoint(capture(blocks[2]!, kv));
    const s = await h.reopen();
    const loaded = await s.load();
    expect(loaded.checkpoint?.manifest.height).toBe(3);
    expect(toHex(loaded.checkpoint!.state)).toBe(toHex(stored.state));
    expect(loaded.checkpoint!.cert).toBeNull();

    const copy = new KvStore();
    const restorer = new CheckpointRestorer(nodeCrypto, ctx, loaded.checkpoint!, copy.restore());
    for (const c of await chunksOf(s, loaded.checkpoint!)) restorer.add(c);
    const restored = restorer.finish();
    expect(toHex(digestOf(restored.block))).toBe(toHex(blocks[2]!.digest));
    expect(restored.executor.position).toBe(3);
    expect(hashes(copy.snapshot())).toEqual(hashes(kv.snapshot()));

    const manifest = decodeCheckpointManifest((await s.readCheckpointPiece(3 as Height, stored.state, 0))!, ctx);
    expect(manifest.ok && manifest.value.chunkHashes.length).toBe(stored.manifest.chunkHashes.length);
    expect(hashes([(await s.readCheckpointPiece(3 as Height, stored.state, 1))!])).toEqual(hashes((await chunksOf(s, stored)).slice(0, 1)));
    expect(await s.readCheckpointPiece(3 as Height, testDigest(1), 1)).toBeUndefined();
    expect(await s.readCheckpointPiece(3 as Height, stored.state, stored.manifest.chunkHashes.length + 1)).toBeUndefined();
  });

  it('a certificate makes a checkpoint stable, across a restart', async () => {
    const h = await make();
    const { blocks } = chain(2);
    await h.storage.apply([...blocks.map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })), { kind: 'committed', height: 2 as Height, digest: blocks[1]!.digest }]);
    const stored = await h.storage.writeCheckpoint(capture(blocks[1]!, kvWith(10)));
    expect(h.storage.latestStableCert()).toBeNull();
    await h.storage.apply([{ kind: 'checkpointStable', cert: certFor(stored) }]);
    const s = await h.reopen();
    expect(s.latestStableCert()?.height).toBe(2);
    expect((await s.load()).checkpoint?.cert?.height).toBe(2);
  });

  it('a checkpoint fetched from peers is held once installed; a fetch cut short leaves nothing', async () => {
    const source = new MemoryReplicaStorage(nodeCrypto, TEST_REPLICAS);
    const { blocks } = chain(4);
    const stored = source.writeCheckpointSync(capture(blocks[3]!, kvWith(30_000)));
    const chunks = source.checkpointChunksSync(stored);
    expect(chunks.length).toBeGreaterThan(1);
    const chunkOps = fetchedChunkOps(chunks, stored);

    const h = await make();
    await h.storage.apply(chunkOps.slice(0, 1)); // then a crash
    let s = await h.reopen();
    expect((await s.load()).checkpoint).toBeNull();
    expect(await s.readCheckpointPiece(4 as Height, stored.state, 1)).toBeUndefined();

    for (const op of chunkOps) await s.apply([op]);
    await s.apply([
      { kind: 'block', digest: blocks[3]!.digest, block: blocks[3]!.block },
      { kind: 'committed', height: 4 as Height, digest: blocks[3]!.digest },
      { kind: 'checkpointInstalled', checkpoint: stored, cert: certFor(stored) },
    ]);
    s = await h.reopen();
    const loaded = await s.load();
    expect(loaded.checkpoint?.manifest.height).toBe(4);
    expect(loaded.consensus.committed?.height).toBe(4);
    expect(s.latestStableCert()?.height).toBe(4);
    expect(hashes(await chunksOf(s, stored))).toEqual(hashes(chunks));
  });

  it('an install missing a chunk (never written, or pruned below a stable checkpoint) fails and holds nothing', async () => {
    // A fetch whose chunks a prune deleted must not become a held checkpoint whose restore finds
    // holes (simulation seed 1383): the install is a programmer error, caught before anything is written.
    const source = new MemoryReplicaStorage(nodeCrypto, TEST_REPLICAS);
    const { blocks } = chain(4);
    const stored = source.writeCheckpointSync(capture(blocks[1]!, kvWith(30_000)));
    const chunks = source.checkpointChunksSync(stored);
    expect(chunks.length).toBeGreaterThan(1);
    const chunkOps = fetchedChunkOps(chunks, stored);
    const install: ReplicaPersistOp = { kind: 'checkpointInstalled', checkpoint: stored, cert: certFor(stored) };

    const h = await make();
    await h.storage.apply(chunkOps.slice(1));
    await expect(async () => h.storage.apply([install])).rejects.toThrow(/installed without all its chunks/);
    expect((await (await h.reopen()).load()).checkpoint).toBeNull();

    const again = await make();
    await again.storage.apply(chunkOps);
    await again.storage.apply([{ kind: 'pruneBelowCheckpoint', height: 3 as Height, expiredBeforeUs: 0 }]);
    await again.settle();
    await expect(async () => again.storage.apply([install])).rejects.toThrow(/installed without all its chunks/);
    expect((await (await again.reopen()).load()).checkpoint).toBeNull();

    // The prune and the install in one group: the store's deferred deletion must not let it pass.
    const together = await make();
    await together.storage.apply(chunkOps);
    await expect(async () => together.storage.apply([{ kind: 'pruneBelowCheckpoint', height: 3 as Height, expiredBeforeUs: 0 }, install])).rejects.toThrow(
      /installed without all its chunks/,
    );
  });

  it('restores the latest checkpoint at or below the committed height: one taken above an install that moved the tip back is not restored', async () => {
    // A replica fetching the checkpoint at height 2 went on executing and took its own at 4; the
    // install then made block 2 the committed tip. Restoring 4 and committing 3 and 4 again would
    // execute them twice (simulation seed 352).
    const h = await make();
    const { blocks } = chain(4);
    await h.storage.apply([...blocks.map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })), { kind: 'committed', height: 4 as Height, digest: blocks[3]!.digest }]);
    await h.storage.writeCheckpoint(capture(blocks[3]!, kvWith(10)));
    const source = new MemoryReplicaStorage(nodeCrypto, TEST_REPLICAS);
    const fetched = source.writeCheckpointSync(capture(blocks[1]!, kvWith(5)));
    await h.storage.apply(fetchedChunkOps(source.checkpointChunksSync(fetched), fetched));
    await h.storage.apply([
      { kind: 'committed', height: 2 as Height, digest: blocks[1]!.digest },
      { kind: 'checkpointInstalled', checkpoint: fetched, cert: certFor(fetched) },
    ]);
    const loaded = await (await h.reopen()).load();
    expect(loaded.consensus.committed?.height).toBe(2);
    expect(loaded.checkpoint?.manifest.height).toBe(2);
    expect(toHex(loaded.checkpoint!.state)).toBe(toHex(fetched.state));
  });

  it('prunes below a stable checkpoint: older checkpoints, blocks and their batches, expired batches; keeps the rest', async () => {
    const h = await make();
    const { blocks, batches } = chain(12);
    await h.storage.apply(blocks.map((l) => ({ kind: 'block' as const, digest: l.digest, block: l.block })));
    await h.storage.apply(batches.map((b) => ({ kind: 'batch' as const, digest: b.digest, bytes: b.bytes })));
    const expired = batch(900, 5_000);
    const live = batch(901, 1e15);
    await h.storage.apply([{ kind: 'batch', digest: expired.digest, bytes: expired.bytes }, { kind: 'batch', digest: live.digest, bytes: live.bytes }]);
    await h.storage.apply([{ kind: 'committed', height: 12 as Height, digest: blocks[11]!.digest }]);
    const old = await h.storage.writeCheckpoint(capture(blocks[4]!, kvWith(5)));
    const kept = await h.storage.writeCheckpoint(capture(blocks[7]!, kvWith(5)));
    await h.storage.apply([{ kind: 'checkpointStable', cert: certFor(old) }, { kind: 'checkpointStable', cert: certFor(kept) }]);

    await h.storage.apply([{ kind: 'pruneBelowCheckpoint', height: 8 as Height, expiredBeforeUs: 10_000 }]);
    await h.settle();
    const s = await h.reopen();
    expect(await s.readCheckpointPiece(5 as Height, old.state, 0)).toBeUndefined();
    expect((await s.load()).checkpoint?.manifest.height).toBe(8);
    // Blocks from the checkpoint up are there (a restart replays them, peers sync them) …
    expect((await s.readBlocks(blocks[11]!.digest, 64)).map((b) => b.height)).toEqual([12, 11, 10, 9, 8]);
    // … and so are their batches; those of pruned blocks, and the expired one, are gone.
    const held = async (b: { digest: Digest }): Promise<boolean> => (await s.readBatches([b.digest])).length === 1;
    for (const [i, b] of batches.entries()) expect(await held(b), `batch of block ${i + 1}`).toBe(i + 1 >= 8);
    expect(await held(expired)).toBe(false);
    expect(await held(live)).toBe(true);
  });
});
