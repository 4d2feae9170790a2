/**
 * Four ReplicaCores and one direct-mode client, driven by hand: a FIFO pump with zero latency,
 * every message through the wire codec, every output applied as a driver must (persist, then
 * send, then report), a virtual clock that jumps to the next wake-up, and per-replica clock
 * offsets. Scenarios: a batch ordered and executed everywhere alike; a crash-restart that keeps
 * executed state, timestamps and the sealed frontier.
 */
import { describe, expect, it } from 'vitest';
import { decodeResults, encodeBatch, type Command } from '../common/batch.js';
import { toHex, utf8 } from '../common/bytes.js';
import { decodeMessage, decodeSealAttachment, encodeMessage } from '../common/codec.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { Message, OrderingCert, ReplicaToCollectorMsg } from '../common/messages.js';
import { Collector, type CollectorEvent } from './collector.js';
import { encodeKvCommand, KvOp, KvStore } from './kvStore.js';
import type { ReplicaCore } from './replica.js';
import { SlotClock } from './slots.js';
import { MemoryReplicaStorage } from './storage.js';
import { makeOc, newReplica, testCrypto, testKeys, type TestKeys } from './testHarness.js';
import type { ExecutionRecord, ReplicaInput } from './types.js';

const CLIENT = -1;
const CLIENT_CONN = 1;
const COLLECTOR_ID = 1000;
const START_US = 1_000_000;
const MAX_DELIVERIES = 200_000;

interface Node {
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

class HandCluster {
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

  constructor() {
    this.keys = testKeys(4, { viewTimeoutMs: 100, maxViewTimeoutMs: 800 });
    this.slots = new SlotClock(this.keys.config.protocol);
    this.client = new Collector({ config: this.keys.config, crypto: testCrypto, verifySignatures: true, retryUs: 200_000, maxRetryUs: 1_000_000 });
    for (let i = 0; i < this.keys.config.n; i++) {
      this.nodes.push({ core: null, kv: new KvStore(), storage: new MemoryReplicaStorage(), clockOffsetUs: 0, executed: [], maxTs: 0, maxSealedSlot: 0 });
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
    this.clientSends(id, { type: 'clientHello', collectorId: COLLECTOR_ID });
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
function kvBatch(commands: readonly (readonly [seq: number, payload: Uint8Array])[], expiresAtUs: number): Uint8Array {
  const cmds: Command[] = commands.map(([seq, payload]) => ({ clientId: 42, seq, payload }));
  return encodeBatch({ collectorId: COLLECTOR_ID, nonce: nonce++, expiresAtUs, commands: cmds });
}
const put = (k: string, v: string): Uint8Array => encodeKvCommand(KvOp.Put, utf8(k), utf8(v));
const get = (k: string): Uint8Array => encodeKvCommand(KvOp.Get, utf8(k));
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

function started(): HandCluster {
  const cluster = new HandCluster();
  for (let i = 0; i < cluster.n; i++) cluster.boot(i);
  cluster.runFor(50_000);
  return cluster;
}

describe('four hand-driven ReplicaCores and a client', () => {
  it('order and execute a batch at every replica in the same position with identical results', () => {
    const cluster = started();
    const bytes = kvBatch(
      [
        [1, put('colour', 'blue')],
        [2, get('colour')],
        [3, put('size', 'xl')],
      ],
      cluster.nowUs + 20_000_000,
    );
    const digest = cluster.submit(bytes);
    const done = cluster.runUntilExecuted(digest);

    const ordered = cluster.events.find((e) => e.kind === 'ordered' && toHex(e.digest) === toHex(digest));
    expect(ordered).toMatchObject({ kind: 'ordered', attempts: 1 });
    const records = [0, 1, 2, 3].map((id) => cluster.executedRecord(id, digest));
    for (const r of records) {
      expect(r).toBeDefined();
      expect(r!.position).toBe(records[0]!.position);
      expect(r!.results).toEqual(records[0]!.results);
      // Executed at the timestamp the client was told it was ordered at.
      expect(r!.ts).toBe(ordered!.kind === 'ordered' ? ordered!.ts : -1);
    }
    expect(done).toMatchObject({ position: records[0]!.position });
    const results = decodeResults(done.kind === 'executed' ? done.results : new Uint8Array(0));
    expect(results.ok && results.value.map((r) => text(r))).toEqual(['\0', '\0blue', '\0']);
    for (const node of cluster.nodes) {
      expect(text(node.kv.read(utf8('colour')))).toBe('blue');
      expect(text(node.kv.read(utf8('size')))).toBe('xl');
    }
    expect(cluster.durabilityViolations).toEqual([]);
  });

  it('on an idle cluster, commit a batch soon after its slot is sealed, not an idle interval later', () => {
    const cluster = started();
    const { minBlockIntervalUs, idleBlockIntervalUs } = cluster.keys.config.protocol;
    // Let the cluster settle into idle fillers, then submit just after one was proposed.
    cluster.runFor(3 * idleBlockIntervalUs);
    const digest = cluster.submit(kvBatch([[1, put('idle', 'x')]], cluster.nowUs + 20_000_000));
    const done = cluster.runUntilExecuted(digest);
    const record = cluster.executedRecord(0, digest)!;

    const sealedUs = cluster.slots.sealTimeUs(cluster.slots.slotOf(record.ts));
    expect(done.kind).toBe('executed');
    // The leader proposes a filler when its own ack becomes sealable; its votes bring the seals,
    // the next block carries the entry, two more views certify it (3-chain) and the proposal after
    // them tells every replica: a few block intervals after the seal time (the run advances in
    // 10 ms steps), where waiting for idle fillers (every 50 ms) would take over 100 ms.
    expect(idleBlockIntervalUs).toBeGreaterThan(10 * minBlockIntervalUs);
    expect(cluster.nowUs - sealedUs).toBeLessThanOrEqual(10_000);
    for (let id = 0; id < 4; id++) expect(cluster.executedRecord(id, digest)).toBeDefined();
  });

  it('answer a repeated Sequence for an executed batch with the Executed notice again', () => {
    const cluster = started();
    const digest = cluster.submit(kvBatch([[1, put('a', '1')]], cluster.nowUs + 20_000_000));
    const done = cluster.runUntilExecuted(digest);
    expect(done.kind).toBe('executed');
    if (done.kind !== 'executed') return;
    // The client asks again (its notice was lost, say) with the OC the batch executed under.
    const oc: OrderingCert = cluster.executedRecord(2, digest)!.oc;
    const out = cluster.step(2, { kind: 'client', conn: CLIENT_CONN, msg: { type: 'sequence', oc, batch: null } });
    expect(out.toClients).toHaveLength(1);
    const notice = out.toClients[0]!.msg;
    expect(notice).toMatchObject({ type: 'executed', replica: 2, position: done.position });
    if (notice.type !== 'executed') return;
    expect(toHex(notice.digest)).toBe(toHex(digest));
    expect(toHex(notice.results)).toBe(toHex(done.results));
    expect(out.persist.filter((p) => p.kind === 'ack')).toEqual([]);
  });

  it('re-timestamp a batch whose Sequence came too late, and still execute it exactly once', () => {
    const cluster = started();
    // The client's first Sequence is lost; its re-send arrives after the slot is sealed everywhere.
    let dropped = 0;
    cluster.link = (from, _to, msg) => !(from === CLIENT && msg.type === 'sequence' && dropped++ < 4);
    const digest = cluster.submit(kvBatch([[1, put('once', 'x')]], cluster.nowUs + 20_000_000));
    const done = cluster.runUntilExecuted(digest);
    cluster.runFor(500_000);

    const ordered = cluster.events.filter((e) => e.kind === 'ordered' && toHex(e.digest) === toHex(digest));
    expect(ordered).toHaveLength(1);
    // Re-timestamped once: late answers to the first OC do not restart the second attempt.
    expect(ordered[0]!.kind === 'ordered' && ordered[0]!.attempts).toBe(2);
    expect(cluster.client.stats.refusals).toMatchObject({ late: 4 });
    expect(cluster.events.filter((e) => e.kind === 'executed')).toHaveLength(1);
    for (let id = 0; id < 4; id++) {
      const records = cluster.nodes[id]!.executed.filter((r) => toHex(r.digest) === toHex(digest));
      expect(records).toHaveLength(1);
      expect(records[0]!.position).toBe(done.kind === 'executed' ? done.position : -1);
      expect(cluster.core(id).status()).toMatchObject({ executedCommands: 1, duplicateCommands: 0 });
    }
  });

  it('execute a batch committed twice once everywhere, even at a replica whose execution lagged past its expiry', () => {
    const cluster = started();
    const { slotUs } = cluster.keys.config.protocol;
    const X = 3;
    // Two OCs for one batch, in consecutive slots (a collector that re-timestamped it): both are
    // acked, so blocks H1 and H2 each carry it; it expires right after the second.
    const t1 = (Math.floor(cluster.nowUs / slotUs) + 1) * slotUs + 100;
    const t2 = t1 + slotUs;
    const b = kvBatch([[1, put('twice', 'b')]], t2 + 1_000);
    const bDigest = testCrypto.sha256(b);
    // Another batch just after the first OC, whose bytes replica X cannot get for a while: X
    // executes b from H1, then its execution waits on c while commits run on past b's expiry.
    const c = kvBatch([[2, put('late', 'c')]], cluster.nowUs + 20_000_000);
    const cDigest = testCrypto.sha256(c);
    cluster.runUntil(t1 - 50);
    let withholding = true;
    cluster.link = (_from, to, msg) => !(withholding && to === X && msg.type === 'batchResponse');
    const oc = (digest: Digest, ts: number): OrderingCert => makeOc(cluster.keys, digest, [0, 1, 2].map((r) => [r, ts] as const));
    for (let r = 0; r < cluster.n; r++) {
      cluster.clientSends(r, { type: 'sequence', oc: oc(bDigest, t1), batch: b });
      cluster.clientSends(r, { type: 'sequence', oc: oc(bDigest, t2), batch: b });
      if (r !== X) cluster.clientSends(r, { type: 'sequence', oc: oc(cDigest, t1 + 1), batch: c });
    }
    cluster.runFor(600_000);
    expect(cluster.executedRecord(0, cDigest)).toBeDefined();
    expect(cluster.executedRecord(X, cDigest)).toBeUndefined();
    expect(cluster.core(X).status().committedSlot).toBeGreaterThan(cluster.slots.slotOf(t2 + 1_000) + 64);
    withholding = false;
    cluster.runFor(1_000_000);
    const sequence = (id: number): string[] => cluster.nodes[id]!.executed.map((r) => `${r.position}:${toHex(r.digest)}`);
    expect(sequence(X)).toContain(`${cluster.executedRecord(0, cDigest)!.position}:${toHex(cDigest)}`);
    for (let id = 1; id < cluster.n; id++) expect(sequence(id)).toEqual(sequence(0));
    expect(sequence(0).filter((e) => e.endsWith(toHex(bDigest)))).toHaveLength(1);
  });

  it('serve thin clients through a gateway replica: each hears its own command ordered and executed, with its own result', () => {
    const cluster = started();
    cluster.clientSends(1, { type: 'command', clientId: 77, seq: 1, payload: put('g', 'one') }, 5);
    cluster.clientSends(1, { type: 'command', clientId: 78, seq: 1, payload: get('g') }, 6);
    cluster.runFor(1_000_000);
    const seen = (conn: number, type: string): Message[] => cluster.thinReplies.filter((r) => r.conn === conn && r.msg.type === type).map((r) => r.msg);
    expect(cluster.thinReplies.every((r) => r.replica === 1)).toBe(true);
    for (const [conn, clientId] of [
      [5, 77],
      [6, 78],
    ] as const) {
      expect(seen(conn, 'commandOrdered')).toMatchObject([{ clientId, seq: 1 }]);
      expect(seen(conn, 'commandExecuted')).toMatchObject([{ clientId, seq: 1 }]);
    }
    const result = (conn: number): string | undefined => text((seen(conn, 'commandExecuted')[0] as { result: Uint8Array }).result);
    expect(result(5)).toBe('\0');
    expect(result(6)).toBe('\0one');
    for (const node of cluster.nodes) expect(text(node.kv.read(utf8('g')))).toBe('one');
  });

  it('keep a restarted replica’s executed state, timestamps and sealed frontier across a crash', () => {
    const cluster = started();
    const first = cluster.submit(kvBatch([[1, put('k1', 'before')]], cluster.nowUs + 20_000_000));
    cluster.runUntilExecuted(first);
    for (let id = 0; id < 4; id++) expect(cluster.executedRecord(id, first)).toBeDefined();

    // Replica 3 is cut off: the others commit without it; it times out and seals on its own clock.
    cluster.link = (from, to) => from !== 3 && to !== 3;
    cluster.runFor(600_000);
    // A last timestamp just before it dies.
    const probe = kvBatch([[99, get('k1')]], cluster.nowUs + 20_000_000);
    cluster.step(3, { kind: 'client', conn: CLIENT_CONN, msg: { type: 'submit', batch: probe } });
    const node = cluster.nodes[3]!;
    const sealed = node.maxSealedSlot;
    const tsBefore = node.maxTs;
    // The test is only meaningful if the seal reaches past what replica 3 committed (replay alone
    // would not restore it) and past the slot its restarted clock will derive.
    expect(sealed).toBeGreaterThan(cluster.core(3).status().committedSlot);
    cluster.crash(3);

    // It restarts on a clock that reads earlier than before the crash: just before `sealed` would
    // be sealed by the clock, and before its last timestamp.
    const restartClock = cluster.slots.sealTimeUs(sealed as Slot) - 1;
    expect(restartClock).toBeLessThan(tsBefore);
    node.clockOffsetUs = restartClock - cluster.nowUs;
    cluster.boot(3);
    expect(text(node.kv.read(utf8('k1')))).toBe('before');
    expect(node.kv.size).toBe(cluster.nodes[0]!.kv.size);

    // No timestamp at or below one it gave before the crash.
    const fresh = kvBatch([[100, get('k1')]], cluster.localNow(3) + 20_000_000);
    const tsOut = cluster.step(3, { kind: 'client', conn: CLIENT_CONN, msg: { type: 'submit', batch: fresh } });
    const reply = tsOut.toClients.find((c) => c.msg.type === 'tsReply')!.msg as { stamp: { ts: number } };
    expect(reply.stamp.ts).toBeGreaterThan(tsBefore);

    // No ack into a slot it sealed, though its clock alone would accept this median.
    const lateBatch = kvBatch([[101, get('k1')]], cluster.localNow(3) + 20_000_000);
    const lateDigest = testCrypto.sha256(lateBatch);
    const median = (sealed + 1) * cluster.keys.config.protocol.slotUs - 1;
    expect(cluster.slots.slotOf(median)).toBe(sealed);
    expect(cluster.slots.clockFrontier(restartClock)).toBeLessThan(sealed);
    expect(median).toBeLessThanOrEqual(restartClock + cluster.keys.config.protocol.deltaUs);
    const oc = makeOc(cluster.keys, lateDigest, [0, 1, 2].map((r) => [r, median] as const));
    const seqOut = cluster.step(3, { kind: 'client', conn: CLIENT_CONN, msg: { type: 'sequence', oc, batch: lateBatch } });
    expect(seqOut.toClients.map((c) => c.msg)).toMatchObject([{ type: 'refused', reason: 'late' }]);
    expect((seqOut.toClients[0]!.msg as { frontier: number }).frontier).toBeGreaterThanOrEqual(sealed);

    // Healed (and its clock corrected), it catches up and executes new work like everyone else.
    cluster.link = () => true;
    node.clockOffsetUs = 0;
    const second = cluster.submit(kvBatch([[2, put('k2', 'after')]], cluster.nowUs + 20_000_000));
    cluster.runUntilExecuted(second);
    cluster.runFor(1_000_000);
    const records = [0, 1, 2, 3].map((id) => cluster.executedRecord(id, second));
    for (const r of records) {
      expect(r).toBeDefined();
      expect(r!.position).toBe(records[0]!.position);
      expect(r!.results).toEqual(records[0]!.results);
    }
    for (const n of cluster.nodes) {
      expect(text(n.kv.read(utf8('k1')))).toBe('before');
      expect(text(n.kv.read(utf8('k2')))).toBe('after');
      expect(n.kv.size).toBe(cluster.nodes[0]!.kv.size);
    }
    expect(cluster.durabilityViolations).toEqual([]);
  });
});
