/**
 * The consensus App of one replica, driven directly: what a leader proposes from the seals it is
 * offered (only those whose bytes it holds, within their batches' expiry, none winning a place by
 * claiming to reach past the clock), and what a validator refuses (an entry past its batch's
 * expiry) or waits for (bytes it lacks, asked of the proposer first).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../common/bytes.js';
import { decodeBlockPayload, encodeBlockPayload, encodeSealAttachment } from '../common/codec.js';
import type { Digest, Height, ReplicaId, Slot, View } from '../common/ids.js';
import type { Block, BlockPayload, OrderingCert, SealEntry } from '../common/messages.js';
import { blockDigest, makeGenesis } from '../consensus/block.js';
import type { Attachment, ProposeContext } from '../consensus/types.js';
import { AckLog } from './ackLog.js';
import { BatchStore } from './batchStore.js';
import { BatchSupply } from './batchSupply.js';
import { OrderingApp } from './consensusApp.js';
import { CoreContext } from './context.js';
import { Executor } from './executor.js';
import { SealedFrontier } from './frontier.js';
import { KvStore } from './kvStore.js';
import { OcVerifier } from './oc.js';
import { buildPayload } from './payload.js';
import { SlotClock } from './slots.js';
import { certified, makeBatch, makeSeal, testCrypto, testKeys, type TestBatch } from './testHarness.js';

const keys = testKeys(4);
const { config } = keys;
const slots = new SlotClock(config.protocol);
const SLOT = config.protocol.slotUs;
const genesis = makeGenesis(testCrypto, config.n);
/** The replicas' clock in these tests; slots up to FRONTIER are sealed by it. */
const NOW = 1_000_000;
const FRONTIER = slots.clockFrontier(NOW);
const LEADER = 0;

interface Fixture {
  readonly app: OrderingApp;
  readonly ctx: CoreContext;
  readonly batches: BatchStore;
  readonly supply: BatchSupply;
  readonly pending: Map<string, Uint8Array>;
  readonly hints: { proposal: number };
}

function fixture(self = LEADER): Fixture {
  const ctx = new CoreContext(config, self as ReplicaId, testCrypto, keys.signers[self]!, slots);
  ctx.nowUs = NOW;
  const batches = new BatchStore(slots);
  const pending = new Map<string, Uint8Array>();
  const hints = { proposal: 0 };
  const supply = new BatchSupply(ctx, {
    batches,
    pendingBytes: (key) => pending.get(key),
    onBlockReady: () => {},
    onProposalBytes: () => void hints.proposal++,
    onExecutionUnblocked: () => {},
  });
  const app = new OrderingApp(ctx, {
    frontier: new SealedFrontier(slots, 0 as Slot),
    acks: new AckLog(),
    batches,
    executor: new Executor(new KvStore()),
    supply,
    ocs: new OcVerifier(config, testCrypto),
    maxAcksPerSlot: 2048,
  });
  return { app, ctx, batches, supply, pending, hints };
}

let nonce = 0;
const batch = (expiresAtUs = NOW + 10_000_000): TestBatch => makeBatch({ nonce: nonce++, expiresAtUs });

/** An entry of `b` at `ts` with its OC. */
function entryOf(b: TestBatch, ts: number): { entry: SealEntry; oc: OrderingCert } {
  return certified(keys, b.digest, ts);
}

/** A vote's attachment: replica `from`'s seal of (0, to] listing `entries`, on genesis. */
function attachment(from: number, to: number, entries: readonly { entry: SealEntry; oc: OrderingCert }[]): Attachment {
  const seal = makeSeal(keys, from, 0, to, entries.map((e) => e.entry));
  return { from: from as ReplicaId, base: genesis.digest, bytes: encodeSealAttachment({ seal, ocs: entries.map((e) => e.oc) }) };
}

function proposeCtx(attachments: readonly Attachment[], nowUs = NOW): ProposeContext {
  return { view: 1 as View, parent: genesis.block, parentDigest: genesis.digest, uncommitted: [], attachments, nowUs };
}

function proposed(decision: ReturnType<OrderingApp['propose']>): BlockPayload {
  expect('payload' in decision).toBe(true);
  const decoded = decodeBlockPayload((decision as { payload: Uint8Array }).payload, { replicaCount: config.n });
  expect(decoded.ok).toBe(true);
  return (decoded as { value: BlockPayload }).value;
}

function blockWith(payload: BlockPayload, proposer = 1): { block: Block; digest: Digest } {
  const block: Block = { parent: genesis.digest, view: 1 as View, height: 1 as Height, proposer: proposer as ReplicaId, justify: genesis.qc, payload: encodeBlockPayload(payload) };
  return { block, digest: blockDigest(testCrypto, block) };
}

const hold = (f: Fixture, b: TestBatch): void => void f.batches.putDurable(toHex(b.digest), b.bytes);
/** The batch requests a step sent: (to, digests in hex). */
const requests = (f: Fixture): [number | 'all', string[]][] =>
  f.ctx.out.toPeers.flatMap(({ to, msg }) => (msg.type === 'batchRequest' ? [[to, msg.digests.map(toHex)] as [number | 'all', string[]]] : []));

describe('a leader proposes only what it can vouch for', () => {
  const ts = FRONTIER * SLOT + 1;

  it('leaves out the seal listing a batch it cannot get, when q others cover the range (finding 1)', () => {
    const f = fixture();
    const honest = batch();
    const hostage = batch();
    hold(f, honest);
    const seals = [
      attachment(1, FRONTIER, [entryOf(honest, ts)]),
      attachment(2, FRONTIER, [entryOf(honest, ts)]),
      attachment(3, FRONTIER, [entryOf(honest, ts), entryOf(hostage, ts + 1)]),
      attachment(0, FRONTIER, [entryOf(honest, ts)]),
    ];
    const payload = proposed(f.app.propose(proposeCtx(seals)));
    expect(payload.toSlot).toBe(FRONTIER);
    expect(payload.seals.map((s) => s.replica).sort()).toEqual([0, 1, 2]);
    expect(payload.entries.map((e) => toHex(e.digest))).toEqual([toHex(honest.digest)]);
  });

  it('asks the sealer for bytes it lacks and waits a bounded time, then proposes a filler', () => {
    const f = fixture();
    const honest = batch();
    const hostage = batch();
    hold(f, honest);
    const seals = [attachment(1, FRONTIER, [entryOf(honest, ts)]), attachment(2, FRONTIER, [entryOf(honest, ts)]), attachment(3, FRONTIER, [entryOf(hostage, ts + 1)])];
    const first = f.app.propose(proposeCtx(seals));
    expect('retryAtUs' in first).toBe(true);
    f.supply.flush();
    expect(requests(f)).toEqual([[3, [toHex(hostage.digest)]]]);
    // The bytes never come: after a quarter of the view timeout it proposes without them.
    const later = NOW + config.protocol.viewTimeoutMs * 250;
    f.ctx.nowUs = later;
    const payload = proposed(f.app.propose(proposeCtx(seals, later)));
    expect(payload.toSlot).toBe(0);
    expect(payload.entries).toEqual([]);
  });

  it('uses the seal once the bytes it asked for arrive', () => {
    const f = fixture();
    const a = batch();
    const b = batch();
    hold(f, a);
    const seals = [attachment(1, FRONTIER, [entryOf(a, ts)]), attachment(2, FRONTIER, [entryOf(a, ts)]), attachment(3, FRONTIER, [entryOf(b, ts + 1)])];
    expect('retryAtUs' in f.app.propose(proposeCtx(seals))).toBe(true);
    f.supply.flush();
    f.supply.onBytes(b.bytes);
    expect(f.hints.proposal).toBe(1);
    const payload = proposed(f.app.propose(proposeCtx(seals)));
    expect(payload.entries.map((e) => toHex(e.digest)).sort()).toEqual([toHex(a.digest), toHex(b.digest)].sort());
  });

  it('makes bytes it stamped in phase 1 durable instead of fetching them', () => {
    const f = fixture();
    const a = batch();
    f.pending.set(toHex(a.digest), a.bytes);
    const seals = [1, 2, 3].map((r) => attachment(r, FRONTIER, [entryOf(a, ts)]));
    const payload = proposed(f.app.propose(proposeCtx(seals)));
    expect(payload.entries).toHaveLength(1);
    expect(f.ctx.out.persist).toContainEqual({ kind: 'batch', digest: a.digest, bytes: a.bytes });
    expect(f.supply.fetching).toBe(0);
  });

  it('drops a seal listing an entry past its batch expiry', () => {
    const f = fixture();
    const a = batch();
    const expired = batch(ts);
    hold(f, a);
    hold(f, expired);
    const seals = [
      attachment(1, FRONTIER, [entryOf(a, ts)]),
      attachment(2, FRONTIER, [entryOf(a, ts)]),
      attachment(3, FRONTIER, [entryOf(a, ts), entryOf(expired, ts + 1)]),
      attachment(0, FRONTIER, [entryOf(a, ts)]),
    ];
    const payload = proposed(f.app.propose(proposeCtx(seals)));
    expect(payload.seals.map((s) => s.replica).sort()).toEqual([0, 1, 2]);
    expect(f.ctx.out.faults).toContainEqual({ peer: 3, kind: 'invalidPayload', detail: "seal lists an entry past its batch's expiry" });
  });

  it('ranks a seal claiming to reach past the clock as reaching no further than a correct one can', () => {
    const f = fixture();
    const reachable = slots.clockFrontier(NOW + config.protocol.deltaUs);
    const seals = [attachment(0, FRONTIER - 1, []), attachment(1, FRONTIER, []), attachment(2, FRONTIER, []), attachment(3, reachable + 10_000, [])];
    // Replicas 1 and 2 reach FRONTIER; 3 claims far more but counts as `reachable` (still first):
    // the block ends at FRONTIER, and 3's claim did not push out a seal reaching as far.
    const payload = proposed(f.app.propose(proposeCtx(seals)));
    expect(payload.toSlot).toBe(FRONTIER);
    expect(payload.seals.map((s) => s.replica).sort()).toEqual([1, 2, 3]);
  });
});

describe('a validator', () => {
  const ts = FRONTIER * SLOT + 1;
  const payloadOf = (entries: readonly { entry: SealEntry; oc: OrderingCert }[]): BlockPayload => {
    const seals = [1, 2, 3].map((r) => ({ seal: makeSeal(keys, r, 0, FRONTIER, entries.map((e) => e.entry)), ocs: new Map(entries.map((e) => [toHex(e.entry.ocHash), e.oc])) }));
    return buildPayload(0 as Slot, seals, config.q, slots);
  };

  it('refuses a block with an entry whose timestamp lies past its batch expiry (finding 3)', () => {
    const f = fixture(2);
    const expired = batch(ts - 1);
    hold(f, expired);
    const { block, digest } = blockWith(payloadOf([entryOf(expired, ts)]));
    expect(f.app.validate(block, digest, genesis.block)).toBe('invalid');
    expect(f.ctx.out.faults[0]).toMatchObject({ peer: 1, kind: 'invalidPayload' });
  });

  it('asks the proposer first for bytes it lacks, and forgets the wait once the view has passed (finding 2)', () => {
    const f = fixture(2);
    const lacking = batch();
    const { block, digest } = blockWith(payloadOf([entryOf(lacking, ts)]), 3);
    expect(f.app.validate(block, digest, genesis.block)).toBe('pending');
    f.supply.flush();
    expect(requests(f)).toEqual([[3, [toHex(lacking.digest)]]]);
    expect(f.supply.fetching).toBe(1);
    f.supply.abandonBlocksBefore(block.view + 1);
    expect(f.supply.fetching).toBe(0);
    expect(f.supply.nextDueUs()).toBeNull();
  });
});
