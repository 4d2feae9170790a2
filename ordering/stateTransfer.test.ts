/**
 * State transfer on its own: what a replica behind a certified checkpoint asks for, that it checks
 * every piece against the certified digest (a Byzantine signer's garbage is reported and asked
 * again elsewhere, never written), that it moves on from a signer that does not answer, and that
 * it installs only once every chunk is written — with a safety state at least the view it has
 * followed. The whole path, with a real cluster and faults, is in the simulation (sim/) and the
 * end-to-end test (test/e2e/stateTransfer.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { bitmapSet, newBitmap } from '../common/bitmap.js';
import { encodeBlockPayload } from '../common/codec.js';
import type { Height, ReplicaId, Slot, View } from '../common/ids.js';
import type { Block, CheckpointCert, ChunkRequestMsg, Message } from '../common/messages.js';
import { checkpointMessage } from '../common/signing.js';
import { blockDigest, makeGenesis } from '../consensus/block.js';
import { initialSafety } from '../consensus/safety.js';
import { statementOf } from './checkpointFormat.js';
import { CoreContext } from './context.js';
import { Executor } from './executor.js';
import { encodeExecutorState } from './executorState.js';
import { encodeKvCommand, KvOp, KvStore } from './kvStore.js';
import { SlotClock } from './slots.js';
import { StateTransfer } from './stateTransfer.js';
import { MemoryReplicaStorage } from './storage.js';
import { testCrypto, testKeys } from './testHarness.js';

const keys = testKeys(4, { checkpointIntervalSlots: 20 });
/** The key-value store ignores who wrote a command. */
const CLIENT_KEY = new Uint8Array(32).fill(1);
const { config } = keys;

/** A checkpoint at height 5 held by a peer, with a certificate of replicas 1, 2, 3. */
function certifiedCheckpoint(): { cert: CheckpointCert; pieces: (index: number) => Uint8Array; chunks: number } {
  const genesis = makeGenesis(testCrypto, config.n);
  const payload = encodeBlockPayload({ fromSlot: 0 as Slot, toSlot: 100 as Slot, entries: [], ocs: [], seals: [] });
  const block: Block = { parent: genesis.digest, view: 5 as View, height: 5 as Height, proposer: 0 as ReplicaId, justify: genesis.qc, payload };
  const kv = new KvStore();
  kv.execute(Array.from({ length: 20_000 }, (_, i) => ({ clientKey: CLIENT_KEY, seq: i + 1, expiresAtUs: 0, payload: encodeKvCommand(KvOp.Put, Uint8Array.of(i >> 8, i & 0xff), new Uint8Array(40).fill(i & 0xff)) })));
  const store = new MemoryReplicaStorage(testCrypto, config.n);
  const stored = store.writeCheckpointSync({
    height: 5 as Height,
    toSlot: 100 as Slot,
    position: 0,
    block,
    blockDigest: blockDigest(testCrypto, block),
    executorChunks: encodeExecutorState(new Executor(kv).state()),
    appChunks: kv.snapshot(),
  });
  const statement = statementOf(stored);
  const signers = newBitmap(config.n);
  for (const r of [1, 2, 3]) bitmapSet(signers, r);
  const cert: CheckpointCert = { ...statement, signers, sigs: [1, 2, 3].map((r) => keys.signers[r]!.sign(checkpointMessage(config.clusterId, statement))) };
  return { cert, pieces: (index) => store.readCheckpointPieceSync(5, stored.state, index)!, chunks: stored.manifest.chunkHashes.length };
}

function fresh(): { transfer: StateTransfer; ctx: CoreContext; suspended: () => boolean; executeThrough: (slot: number) => void } {
  const ctx = new CoreContext(config, 0 as ReplicaId, testCrypto, keys.signers[0]!, new SlotClock(config.protocol));
  let suspended = false;
  let executed = 0;
  const transfer = new StateTransfer(ctx, {
    executedThrough: () => executed as Slot,
    suspendConsensus: () => void (suspended = true),
    resumeConsensus: () => void (suspended = false),
    consensusState: () => ({ safety: initialSafety(makeGenesis(testCrypto, config.n).qc), view: 42 as View }),
  });
  return { transfer, ctx, suspended: () => suspended, executeThrough: (slot) => void (executed = slot) };
}

const requests = (ctx: CoreContext): { to: number | 'all'; msg: ChunkRequestMsg }[] =>
  ctx.takeOutput().toPeers.filter((p): p is { to: ReplicaId; msg: ChunkRequestMsg } => (p.msg as Message).type === 'chunkRequest');

describe('StateTransfer', () => {
  it('fetches a certified checkpoint from its signers, piece by piece, and installs it once every chunk is written', () => {
    const { cert, pieces, chunks } = certifiedCheckpoint();
    const { transfer, ctx, suspended } = fresh();
    transfer.consider(cert, 'ahead');
    expect(suspended()).toBe(true);
    let asked = requests(ctx);
    expect(asked.map((r) => r.msg.index)).toEqual([0]);
    expect([1, 2, 3]).toContain(asked[0]!.to);
    let written = 0;
    let install = null;
    for (let round = 0; round < 100 && install === null; round++) {
      for (const r of asked) transfer.onChunk(r.to as ReplicaId, { type: 'chunkResponse', height: cert.height, state: cert.state, index: r.msg.index, bytes: pieces(r.msg.index) });
      const out = ctx.takeOutput();
      written += out.persist.filter((op) => op.kind === 'checkpointChunk').length;
      install = out.install;
      asked = out.toPeers.filter((p): p is { to: ReplicaId; msg: ChunkRequestMsg } => (p.msg as Message).type === 'chunkRequest');
      expect(asked.length).toBeLessThanOrEqual(4);
      if (install !== null) {
        const safety = out.persist.find((op) => op.kind === 'safety');
        expect(safety?.kind === 'safety' && safety.state.lastVotedView).toBe(42);
        expect(out.persist.some((op) => op.kind === 'committed' && op.height === 5)).toBe(true);
      }
    }
    expect(written).toBe(chunks);
    expect(install?.manifest.height).toBe(5);
  });

  it('reports a signer that serves garbage or another checkpoint’s piece, writes nothing of it, and asks another', () => {
    const { cert, pieces } = certifiedCheckpoint();
    const { transfer, ctx } = fresh();
    transfer.consider(cert, 'ahead');
    const [manifestRequest] = requests(ctx);
    const liar = manifestRequest!.to as ReplicaId;
    transfer.onChunk(liar, { type: 'chunkResponse', height: cert.height, state: cert.state, index: 0, bytes: pieces(1) });
    const out = ctx.takeOutput();
    expect(out.faults).toEqual([expect.objectContaining({ peer: liar, kind: 'badCheckpointChunk' })]);
    expect(out.persist).toEqual([]);
    const again = out.toPeers.map((p) => p as { to: ReplicaId; msg: ChunkRequestMsg });
    expect(again.map((r) => r.msg.index)).toEqual([0]);
    expect(again[0]!.to).not.toBe(liar);

    transfer.onChunk(again[0]!.to, { type: 'chunkResponse', height: cert.height, state: cert.state, index: 0, bytes: pieces(0) });
    const chunkRequests = requests(ctx);
    const first = chunkRequests[0]!;
    const flipped = pieces(first.msg.index).slice();
    flipped[0]! ^= 1;
    transfer.onChunk(first.to as ReplicaId, { type: 'chunkResponse', height: cert.height, state: cert.state, index: first.msg.index, bytes: flipped });
    const out2 = ctx.takeOutput();
    expect(out2.faults.map((f) => f.kind)).toEqual(['badCheckpointChunk']);
    expect(out2.persist).toEqual([]);
  });

  it('asks the next signer when one does not answer in time, and ignores a certificate not far enough ahead', () => {
    const { cert } = certifiedCheckpoint();
    const { transfer, ctx } = fresh();
    transfer.consider(cert, 'ahead');
    const [first] = requests(ctx);
    ctx.nowUs = transfer.nextDueUs()!;
    transfer.onTick();
    const [second] = requests(ctx);
    expect(second!.msg.index).toBe(0);
    expect(second!.to).not.toBe(first!.to);

    const near = fresh();
    const behindBy = cert.toSlot - 10;
    const transfer2 = new StateTransfer(near.ctx, { executedThrough: () => behindBy as Slot, suspendConsensus: () => undefined, resumeConsensus: () => undefined, consensusState: () => ({ safety: initialSafety(makeGenesis(testCrypto, config.n).qc), view: 1 as View }) });
    transfer2.consider(cert, 'ahead');
    expect(transfer2.active).toBe(false);
    transfer2.consider(cert, 'diverged');
    expect(transfer2.active).toBe(true);
  });
  it('gives up a fetch once its own execution reaches the checkpoint (no install, consensus resumed), never one for a diverged state', () => {
    const { cert, pieces } = certifiedCheckpoint();
    const behind = fresh();
    behind.transfer.consider(cert, 'ahead');
    expect(behind.suspended()).toBe(true);
    const [manifestRequest] = requests(behind.ctx);
    behind.transfer.onChunk(manifestRequest!.to as ReplicaId, { type: 'chunkResponse', height: cert.height, state: cert.state, index: 0, bytes: pieces(0) });
    behind.ctx.takeOutput();
    behind.executeThrough(cert.toSlot - 1);
    behind.transfer.onExecuted();
    expect(behind.transfer.active).toBe(true);
    behind.executeThrough(cert.toSlot);
    behind.transfer.onExecuted();
    expect(behind.transfer.active).toBe(false);
    expect(behind.suspended()).toBe(false);
    // A chunk that arrives after it gave up is ignored: nothing is written, nothing installed.
    behind.transfer.onChunk(manifestRequest!.to as ReplicaId, { type: 'chunkResponse', height: cert.height, state: cert.state, index: 1, bytes: pieces(1) });
    const out = behind.ctx.takeOutput();
    expect(out.persist).toHaveLength(0);
    expect(out.install).toBeNull();

    const diverged = fresh();
    diverged.transfer.consider(cert, 'diverged');
    diverged.executeThrough(cert.toSlot + 1_000);
    diverged.transfer.onExecuted();
    expect(diverged.transfer.active).toBe(true);
    expect(diverged.suspended()).toBe(true);
  });
});
