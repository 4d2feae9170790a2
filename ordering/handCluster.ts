/**
 * Test support: four ReplicaCores and one direct-mode client, driven by hand — a FIFO pump with
 * zero latency, every message through the wire codec, every output applied as a driver must
 * (persist, then send, then report), a virtual clock that jumps to the next wake-up, and
 * per-replica clock offsets. Client connections prove their keys as the transport would make them
 * (clientAuthenticated); the client is test client 0 on connection CLIENT_CONN.
 */
import { expect } from 'vitest';
import { BatchMode, encodeBatch } from '../common/batch.js';
import { batchSigner } from '../common/batchAuth.js';
import { toHex, utf8 } from '../common/bytes.js';
import { decodeMessage, decodeSealAttachment, encodeMessage } from '../common/codec.js';
import type { Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { Message, ReplicaToCollectorMsg } from '../common/messages.js';
import { Collector, type CollectorEvent } from './collector.js';
import { encodeKvCommand, KvOp, KvStore } from './kvStore.js';
import type { ReplicaCore } from './replica.js';
import { SlotClock } from './slots.js';
import { MemoryReplicaStorage } from './storage.js';
import { newReplica, testClient, testCrypto, testKeys, type TestKeys } from './testHarness.js';
import type { ExecutionRecord, ReplicaInput } from './types.js';

/** View timeouts short enough for the scenarios to see view changes quickly. */
export const HAND_CLUSTER_PROTOCOL = { viewTimeoutMs: 100, maxViewTimeoutMs: 800 };
export const CLIENT = -1;
export const CLIENT_CONN = 1;
const START_US = 1_000_000;
const MAX_DELIVERIES = 200_000;

export interface Node {
  core: ReplicaCore | null;
  kv: KvStore;
  readonly storage: MemoryReplicaStorage;
  /** Added to the cluster's clock to give this replica's clock. */
  clockOffsetUs: number;
  /** Every batch executed, in order, across restarts (a replay is silent, so not repeated). */
  readonly executed: ExecutionRecord[];
  /** Highest timestamp this replica gave, and the highest slot a seal it sent reaches. */
  maxTs: number;
  maxSealedSlot: number;
}

export class HandCluster {
  readonly keys: TestKeys;
  readonly slots: SlotClock;
  readonly nodes: Node[] = [];
  readonly client: Collector;
  readonly events: CollectorEvent[] = [];
  /** Messages that left a replica before what they rely on was durable. */
  readonly durabilityViolations: string[] = [];
  nowUs = START_US;
  /** Decides whether a message from → to is delivered (a partition drops it). */
  link: (from: number, to: number, msg: Message) => boolean = () => true;
  /** What thin clients (gateway mode, connections other than the collector's) received. */
  readonly thinReplies: { replica: number; conn: number; msg: Message }[] = [];
  private readonly queue: { from: number; to: number; conn: number; bytes: Uint8Array }[] = [];

  /** `clientKeys`: the cluster's allow-list (default: open). */
  constructor(opts: { clientKeys?: readonly Uint8Array[] } = {}) {
    const base = testKeys(4, HAND_CLUSTER_PROTOCOL);
    this.keys = opts.clientKeys === undefined ? base : { ...base, config: { ...base.config, clientKeys: new Set(opts.clientKeys.map(toHex)) } };
    this.slots = new SlotClock(this.keys.config.protocol);
    this.client = new Collector({ config: this.keys.config, crypto: testCrypto, verifySignatures: true, retryUs: 200_000, maxRetryUs: 1_000_000 });
    for (let i = 0; i < this.keys.config.n; i++) {
      this.nodes.push({ core: null, kv: new KvStore(), storage: new MemoryReplicaStorage(testCrypto, this.keys.config.n), clockOffsetUs: 0, executed: [], maxTs: 0, maxSealedSlot: 0 });
    }
  }

  get n(): number {
    return this.keys.config.n;
  }

  localNow(id: number): number {
    return this.nowUs + this.nodes[id]!.clockOffsetUs;
  }

  /** Boots a replica from its storage (fresh or after a crash), replays its committed chain and starts it. */
  boot(id: number): void {
    const node = this.nodes[id]!;
    node.kv = new KvStore();
    node.core = newReplica(this.keys, id, { storage: node.storage, stateMachine: node.kv });
    const chain = node.storage.committedChainSync();
    node.core.replayCommitted(chain.blocks, chain.batches);
    this.step(id, { kind: 'start' });
    this.authenticate(id, CLIENT_CONN, testClient());
  }

  /** Replica `id`'s transport reports that connection `conn` proved it holds `client`'s key. */
  authenticate(id: number, conn: number, client: Signer): ReturnType<ReplicaCore['step']> {
    const identity = { hex: toHex(client.publicKey), handle: testCrypto.parsePublicKey(client.publicKey)! };
    return this.step(id, { kind: 'clientAuthenticated', conn, identity });
  }

  crash(id: number): void {
    this.nodes[id]!.core = null;
  }

  core(id: number): ReplicaCore {
    const core = this.nodes[id]!.core;
    expect(core).not.toBeNull();
    return core!;
  }

  /** Steps a replica and applies its output: persist, then send, then report. */
  step(id: number, input: ReplicaInput): ReturnType<ReplicaCore['step']> {
    const node = this.nodes[id]!;
    const out = this.core(id).step(input, this.localNow(id));
    node.storage.applySync(out.persist);
    const durable = node.storage.loadSync().ordering;
    for (const { to, msg } of out.toPeers) {
      this.checkSeal(id, msg, durable.frontier);
      const targets = to === 'all' ? [...Array(this.n).keys()].filter((r) => r !== id) : [to];
      for (const t of targets) this.enqueue(id, t, msg);
    }
    for (const { conn, msg } of out.toClients) {
      if (msg.type === 'tsReply') {
        node.maxTs = Math.max(node.maxTs, msg.stamp.ts);
        if (durable.tsReservationUs < msg.stamp.ts) this.durabilityViolations.push(`replica ${id}: ts ${msg.stamp.ts} above its reservation`);
      }
      this.enqueue(id, CLIENT, msg, conn);
    }
    for (const req of out.serveBlocks) {
      const blocks = node.storage.consensus.readBlocksSync(req.digest, req.maxBlocks);
      if (blocks.length > 0) this.enqueue(id, req.to, { type: 'blockResponse', blocks });
    }
    for (const req of out.serveBatches) {
      const batches = node.storage.readBatchesSync(req.digests);
      if (batches.length > 0) this.enqueue(id, req.to, { type: 'batchResponse', batches });
    }
    node.executed.push(...out.executed);
    return out;
  }

  /** The client submits a batch (its collector sends it to every replica). */
  submit(bytes: Uint8Array): Digest {
    const digest = testCrypto.sha256(bytes);
    this.clientStep({ kind: 'submit', batch: bytes, digest, expiresAtUs: this.nowUs + 20_000_000 });
    return digest;
  }

  clientSends(to: number, msg: Message, conn = CLIENT_CONN): void {
    this.enqueue(CLIENT, to, msg, conn);
  }

  /** Delivers queued messages, and those they cause, until none is left. */
  pump(): void {
    let delivered = 0;
    while (this.queue.length > 0) {
      expect(++delivered).toBeLessThan(MAX_DELIVERIES);
      const { from, to, conn, bytes } = this.queue.shift()!;
      const decoded = decodeMessage(bytes, { replicaCount: this.n });
      expect(decoded.ok).toBe(true);
      if (!decoded.ok) continue;
      if (to === CLIENT && conn !== CLIENT_CONN) {
        this.thinReplies.push({ replica: from, conn, msg: decoded.value });
      } else if (to === CLIENT) {
        this.clientStep({ kind: 'reply', from: from as ReplicaId, msg: decoded.value as ReplicaToCollectorMsg });
      } else if (this.nodes[to]!.core !== null) {
        this.step(to, from === CLIENT ? { kind: 'client', conn, msg: decoded.value } : { kind: 'peer', from: from as ReplicaId, msg: decoded.value });
      }
    }
  }

  /** Pumps and fires wake-ups (replicas' and the client's) until the cluster clock reaches `untilUs`. */
  runUntil(untilUs: number): void {
    for (;;) {
      this.pump();
      const wakes = this.nodes.map((node, id) => {
        const local = node.core?.nextWakeUs() ?? null;
        return local === null ? Infinity : local - this.nodes[id]!.clockOffsetUs;
      });
      const next = Math.min(...wakes, this.client.nextWakeUs() ?? Infinity);
      if (next > untilUs) break;
      this.nowUs = Math.max(this.nowUs, next);
      wakes.forEach((w, id) => {
        if (w <= this.nowUs && this.nodes[id]!.core !== null) this.step(id, { kind: 'tick' });
      });
      if ((this.client.nextWakeUs() ?? Infinity) <= this.nowUs) this.clientStep({ kind: 'tick' });
    }
    this.nowUs = Math.max(this.nowUs, untilUs);
  }

  runFor(us: number): void {
    this.runUntil(this.nowUs + us);
  }

  /** Runs until the client sees `digest` executed (or gives up after `limitUs`). */
  runUntilExecuted(digest: Digest, limitUs = 5_000_000): CollectorEvent {
    const key = toHex(digest);
    const end = this.nowUs + limitUs;
    const found = (): CollectorEvent | undefined => this.events.find((e) => e.kind === 'executed' && toHex(e.digest) === key);
    while (found() === undefined && this.nowUs < end) this.runFor(10_000);
    expect(found()).toBeDefined();
    return found()!;
  }

  executedRecord(id: number, digest: Digest): ExecutionRecord | undefined {
    return this.nodes[id]!.executed.find((r) => toHex(r.digest) === toHex(digest));
  }

  private clientStep(input: Parameters<Collector['step']>[0]): void {
    const out = this.client.step(input, this.nowUs);
    this.events.push(...out.events);
    for (const { to, msg } of out.send) {
      const targets = to === 'all' ? [...Array(this.n).keys()] : [to];
      for (const t of targets) this.enqueue(CLIENT, t, msg);
    }
  }

  private enqueue(from: number, to: number, msg: Message, conn = CLIENT_CONN): void {
    if (!this.link(from, to, msg)) return;
    this.queue.push({ from, to, conn, bytes: encodeMessage(msg) });
  }

  /** Records how far a replica's seals reach, and checks the frontier was durable first. */
  private checkSeal(id: number, msg: Message, durableFrontier: number): void {
    if ((msg.type !== 'vote' && msg.type !== 'timeout') || msg.attachment.length === 0) return;
    const decoded = decodeSealAttachment(msg.attachment, { replicaCount: this.n });
    expect(decoded.ok).toBe(true);
    if (!decoded.ok || decoded.value === null) return;
    const { toSlot } = decoded.value.seal;
    const node = this.nodes[id]!;
    node.maxSealedSlot = Math.max(node.maxSealedSlot, toSlot);
    if (durableFrontier < toSlot) this.durabilityViolations.push(`replica ${id}: seal to slot ${toSlot} with frontier ${durableFrontier} durable`);
  }
}

let nonce = 0;
/** A direct batch of `client` (test client 0 by default) for the hand cluster's config, signed by it. */
export function kvBatch(commands: readonly (readonly [seq: number, payload: Uint8Array])[], expiresAtUs: number, client: Signer = testClient()): Uint8Array {
  const { config } = testKeys(4, HAND_CLUSTER_PROTOCOL);
  return encodeBatch(
    { mode: BatchMode.Direct, collectorKey: client.publicKey, nonce: nonce++, expiresAtUs, commands: commands.map(([seq, payload]) => ({ seq, payload })) },
    batchSigner(config.clusterId, testCrypto, client),
  );
}
export const put = (k: string, v: string): Uint8Array => encodeKvCommand(KvOp.Put, utf8(k), utf8(v));
export const get = (k: string): Uint8Array => encodeKvCommand(KvOp.Get, utf8(k));
export const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

/** A hand cluster with every replica booted and settled. */
export function started(opts: ConstructorParameters<typeof HandCluster>[0] = {}): HandCluster {
  const cluster = new HandCluster(opts);
  for (let i = 0; i < cluster.n; i++) cluster.boot(i);
  cluster.runFor(50_000);
  return cluster;
}
