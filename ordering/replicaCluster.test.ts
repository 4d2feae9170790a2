/**
 * Four ReplicaCores and one direct-mode client, driven by hand (ordering/handCluster.ts).
 * Scenarios: a batch ordered and executed everywhere alike; a crash-restart that keeps executed
 * state, timestamps and the sealed frontier; gateway mode.
 */
import { describe, expect, it } from 'vitest';
import { decodeResults } from '../common/batch.js';
import { signCommand } from '../common/batchAuth.js';
import { toHex, utf8 } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import type { Message, OrderingCert } from '../common/messages.js';
import { CLIENT, CLIENT_CONN, get, kvBatch, put, started, text } from './handCluster.js';
import { EXECUTED_NOTICE_CACHE_BYTES } from './execution.js';
import { makeOc, testClient, testCrypto } from './testHarness.js';

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
    const { clusterId } = cluster.keys.config;
    const deadline = cluster.nowUs + 20_000_000;
    cluster.authenticate(1, 5, testClient(77));
    cluster.authenticate(1, 6, testClient(78));
    cluster.clientSends(1, { type: 'command', ...signCommand(clusterId, testCrypto, testClient(77), { seq: 1, expiresAtUs: deadline, payload: put('g', 'one') }) }, 5);
    cluster.clientSends(1, { type: 'command', ...signCommand(clusterId, testCrypto, testClient(78), { seq: 1, expiresAtUs: deadline, payload: get('g') }) }, 6);
    cluster.runFor(1_000_000);
    const seen = (conn: number, type: string): Message[] => cluster.thinReplies.filter((r) => r.conn === conn && r.msg.type === type).map((r) => r.msg);
    expect(cluster.thinReplies.every((r) => r.replica === 1)).toBe(true);
    for (const conn of [5, 6]) {
      expect(seen(conn, 'commandOrdered')).toMatchObject([{ seq: 1 }]);
      expect(seen(conn, 'commandExecuted')).toMatchObject([{ seq: 1 }]);
    }
    const result = (conn: number): string | undefined => text((seen(conn, 'commandExecuted')[0] as { result: Uint8Array }).result);
    expect(result(5)).toBe('\0');
    expect(result(6)).toBe('\0one');
    for (const node of cluster.nodes) expect(text(node.kv.read(utf8('g')))).toBe('one');
  });

  it('let a replica that missed many batches fetch them together, not one round trip per batch', () => {
    const cluster = started();
    // Replica 3 is cut off while ten batches commit without it.
    cluster.link = (from, to) => from !== 3 && to !== 3;
    const digests: Digest[] = [];
    for (let i = 0; i < 10; i++) {
      const digest = cluster.submit(kvBatch([[i + 1, put(`k${i}`, `v${i}`)]], cluster.nowUs + 20_000_000));
      cluster.runUntilExecuted(digest);
      digests.push(digest);
    }
    expect(cluster.executedRecord(3, digests[0]!)).toBeUndefined();

    // Healed: it learns the blocks, then must fetch all ten batches to execute them.
    const asked: number[] = [];
    cluster.link = (from, _to, msg) => {
      if (from === 3 && msg.type === 'batchRequest') asked.push(msg.digests.length);
      return true;
    };
    cluster.runFor(2_000_000);
    for (const digest of digests) expect(cluster.executedRecord(3, digest)?.position).toBe(cluster.executedRecord(0, digest)!.position);
    expect(text(cluster.nodes[3]!.kv.read(utf8('k9')))).toBe('v9');
    // One batch per request and round trip would take ten requests.
    expect(asked.length).toBeLessThan(digests.length);
    expect(Math.max(...asked)).toBeGreaterThan(1);
  });

  it('keep Executed notices for collectors that ask again within a byte bound', () => {
    const cluster = started();
    cluster.runUntilExecuted(cluster.submit(kvBatch([[1, put('big', 'v'.repeat(60 * 1024))]], cluster.nowUs + 20_000_000)));
    // Each batch reads the 60 KB value eight times (~480 KB of results): twelve batches' notices
    // hold more results than the cache keeps.
    let seq = 2;
    for (let b = 0; b < 12; b++) {
      const reads = Array.from({ length: 8 }, () => [seq++, get('big')] as const);
      cluster.runUntilExecuted(cluster.submit(kvBatch(reads, cluster.nowUs + 20_000_000)));
    }
    const status = cluster.core(0).status();
    expect(status.noticeBytes).toBeGreaterThan(EXECUTED_NOTICE_CACHE_BYTES - 500 * 1024);
    expect(status.noticeBytes).toBeLessThanOrEqual(EXECUTED_NOTICE_CACHE_BYTES);
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
