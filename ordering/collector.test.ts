/**
 * The collector drives one batch through both ordering phases and waits for f+1 matching
 * execution reports; Byzantine replies from up to f replicas neither stall nor fool it.
 */
import { describe, expect, it } from 'vitest';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { OrderingCert, RefusalReason, ReplicaToCollectorMsg } from '../common/messages.js';
import { ackMessage, executedMessage } from '../common/signing.js';
import { Collector, type CollectorOutput } from './collector.js';
import { ocHash } from './oc.js';
import { makeBatch, signStamp, testCrypto, testKeys } from './testHarness.js';

const keys = testKeys(4);
const { config } = keys;
const RETRY = 100_000;
const EXPIRES = 10_000_000;
const batch = makeBatch({ nonce: 1, expiresAtUs: EXPIRES });

const tsReply = (r: number, ts: number): ReplicaToCollectorMsg => ({ type: 'tsReply', digest: batch.digest, stamp: signStamp(keys, batch.digest, r, ts) });
const ackFrom = (r: number, hash: Digest): ReplicaToCollectorMsg => ({
  type: 'ack',
  digest: batch.digest,
  ocHash: hash,
  replica: r as ReplicaId,
  sig: keys.signers[r]!.sign(ackMessage(config.clusterId, batch.digest, hash, r as ReplicaId)),
});
const refused = (r: number, reason: RefusalReason, frontier = 0): ReplicaToCollectorMsg => ({ type: 'refused', digest: batch.digest, replica: r as ReplicaId, reason, frontier });
const EXECUTED_TS = 5_000_000;
const executed = (r: number, position: number, results: Uint8Array): ReplicaToCollectorMsg => ({
  type: 'executed',
  digest: batch.digest,
  position,
  ts: EXECUTED_TS,
  results,
  replica: r as ReplicaId,
  sig: keys.signers[r]!.sign(executedMessage(config.clusterId, batch.digest, position, EXECUTED_TS, testCrypto.sha256(results))),
});

/** A collector with the batch submitted at time 0, and helpers to feed it. */
function start() {
  const c = new Collector({ config, crypto: testCrypto, verifySignatures: true, retryUs: RETRY, maxRetryUs: 8 * RETRY });
  let now = 0;
  const first = c.step({ kind: 'submit', batch: batch.bytes, digest: batch.digest, expiresAtUs: EXPIRES }, now);
  const reply = (from: number, msg: ReplicaToCollectorMsg): CollectorOutput => c.step({ kind: 'reply', from: from as ReplicaId, msg }, now);
  const tick = (at: number): CollectorOutput => {
    now = at;
    return c.step({ kind: 'tick' }, now);
  };
  /** Phase 1 done with stamps 0:100, 1:200, 2:300; returns the OC the collector sent. */
  const toSequencing = (): OrderingCert => {
    reply(0, tsReply(0, 100));
    reply(1, tsReply(1, 200));
    const out = reply(2, tsReply(2, 300));
    const seq = out.send.find((s) => s.msg.type === 'sequence');
    expect(seq).toBeDefined();
    return (seq!.msg as { oc: OrderingCert }).oc;
  };
  return { c, first, reply, tick, toSequencing };
}

/** The message with its signature replaced by zeros. */
const unsigned = (msg: ReplicaToCollectorMsg): ReplicaToCollectorMsg => ({ ...msg, sig: new Uint8Array(64) }) as ReplicaToCollectorMsg;
const sendsOf = (out: CollectorOutput): string[] => out.send.map((s) => `${s.msg.type}>${s.to}`);

describe('Collector', () => {
  it('sends the batch to every replica, then forms an OC from the first q replies: q stamps in replica order', () => {
    const { first, reply } = start();
    expect(first.send).toEqual([{ to: 'all', msg: { type: 'submit', batch: batch.bytes } }]);
    expect(reply(3, tsReply(3, 300)).send).toEqual([]);
    expect(reply(1, tsReply(1, 100)).send).toEqual([]);
    const out = reply(0, tsReply(0, 200));
    expect(sendsOf(out)).toEqual(['sequence>all']);
    const oc = (out.send[0]!.msg as { oc: OrderingCert }).oc;
    expect(oc.stamps.map((s) => s.replica)).toEqual([0, 1, 3]);
    expect(oc.stamps.map((s) => s.ts)).toEqual([200, 100, 300]);
    // A late fourth reply changes nothing.
    expect(reply(2, tsReply(2, 50)).send).toEqual([]);
  });

  it('reports ordered after q valid acks on its OC, with the median (index f) as the batch’s timestamp', () => {
    const { reply, toSequencing } = start();
    const oc = toSequencing();
    const hash = ocHash(testCrypto, oc);
    const other = testCrypto.sha256(new Uint8Array([1]));
    expect(reply(0, ackFrom(0, hash)).events).toEqual([]);
    expect(reply(1, ackFrom(1, other)).events).toEqual([]); // an ack on another OC
    expect(reply(2, unsigned(ackFrom(2, hash))).events).toEqual([]); // a bad signature
    expect(reply(3, ackFrom(1, hash)).events).toEqual([]); // replica 3 relaying 1's ack
    expect(reply(0, ackFrom(0, hash)).events).toEqual([]); // the same replica twice
    expect(reply(3, ackFrom(3, hash)).events).toEqual([]); // q − 1 valid acks
    const out = reply(1, ackFrom(1, hash));
    expect(out.events).toEqual([{ kind: 'ordered', digest: batch.digest, ts: 200, ocHash: hash, attempts: 1, throttled: false }]);
  });

  it.each<[string, [number, RefusalReason][], boolean]>([
    ['one late', [[1, 'late']], false],
    ['one replica late twice', [[1, 'late'], [1, 'late']], false],
    ['f+1 late', [[1, 'late'], [2, 'late']], true],
    ['late and busy', [[1, 'late'], [3, 'busy']], true],
    ['late and early', [[1, 'late'], [3, 'early']], false],
  ])('restarts phase 1 with the same bytes only after f+1 late or busy replies: %s', (_, replies, restarts) => {
    const { reply, toSequencing } = start();
    toSequencing();
    const sends = replies.flatMap(([r, reason]) => reply(r, refused(r, reason, 7)).send);
    if (!restarts) {
      expect(sends).toEqual([]);
      return;
    }
    expect(sends).toEqual([{ to: 'all', msg: { type: 'submit', batch: batch.bytes } }]);
    // Fresh timestamps make a new OC; the batch is ordered on its second attempt.
    reply(1, tsReply(1, 1_000));
    reply(2, tsReply(2, 1_100));
    const oc = (reply(3, tsReply(3, 1_200)).send[0]!.msg as { oc: OrderingCert }).oc;
    expect(oc.stamps.map((s) => s.ts)).toEqual([1_000, 1_100, 1_200]);
    const hash = ocHash(testCrypto, oc);
    reply(1, ackFrom(1, hash));
    reply(2, ackFrom(2, hash));
    expect(reply(3, ackFrom(3, hash)).events).toMatchObject([{ kind: 'ordered', ts: 1_100, attempts: 2 }]);
  });

  // BUG (ordering/collector.ts onRefused): a RefusedMsg does not say which attempt it answers, and
  // the collector counts late/busy refusals in any phase. After f+1 `late` replies restart phase 1,
  // the remaining replicas' `late` replies to the same old Sequence arrive and restart the new
  // attempt again before it has even formed an OC (one extra round trip and n more copies of the
  // batch; the four-replica scenario in replicaCluster.test.ts is ordered at attempt 3, not 2).
  it('does not let late replies to an earlier attempt’s Sequence restart the current attempt', () => {
    const { reply, toSequencing } = start();
    toSequencing();
    reply(0, refused(0, 'late', 7));
    expect(sendsOf(reply(1, refused(1, 'late', 7)))).toEqual(['submit>all']);
    // Replicas 2 and 3 answer the same (old) Sequence late too, after the restart.
    expect(reply(2, refused(2, 'late', 7)).send).toEqual([]);
    expect(reply(3, refused(3, 'late', 7)).send).toEqual([]);
  });

  it('answers needBytes by sending the Sequence again with the batch, to that replica only', () => {
    const { reply, toSequencing } = start();
    const oc = toSequencing();
    expect(reply(2, refused(2, 'needBytes')).send).toEqual([{ to: 2, msg: { type: 'sequence', oc, batch: batch.bytes } }]);
  });

  it('rebuilds the OC without a replica whose timestamp signature f+1 replicas rejected', () => {
    const { reply } = start();
    reply(0, tsReply(0, 100));
    reply(1, { type: 'tsReply', digest: batch.digest, stamp: { ...signStamp(keys, batch.digest, 1, 200), sig: new Uint8Array(64) } });
    reply(2, tsReply(2, 300));
    reply(0, refused(0, 'badCert'));
    const out = reply(2, refused(2, 'badCert'));
    // It asks the replicas it lacks a good stamp from; the next good reply completes a clean OC.
    expect(sendsOf(out).sort()).toEqual(['submit>1', 'submit>3']);
    const rebuilt = reply(3, tsReply(3, 400)).send[0]!.msg as { oc: OrderingCert };
    expect(rebuilt.oc.stamps.map((s) => s.replica)).toEqual([0, 2, 3]);
  });

  it('reports executed once f+1 replicas report the same position and results; f, or mismatching reports, are not enough', () => {
    const { reply, toSequencing } = start();
    toSequencing();
    const results = Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 1, 0);
    expect(reply(0, executed(0, 5, results)).events).toEqual([]);
    expect(reply(1, executed(1, 6, results)).events).toEqual([]); // another position
    expect(reply(2, executed(2, 5, Uint8Array.of(9))).events).toEqual([]); // other results
    expect(reply(0, executed(0, 5, results)).events).toEqual([]); // a repeat counts once
    const out = reply(3, executed(3, 5, results));
    // f+1 agreeing reports imply a correct replica executed it, so it was ordered too.
    expect(out.events.map((e) => e.kind)).toEqual(['ordered', 'executed']);
    expect(out.events[1]).toEqual({ kind: 'executed', digest: batch.digest, position: 5, ts: EXECUTED_TS, results });
  });

  it('does not count an execution report with a bad signature', () => {
    const { reply, toSequencing } = start();
    toSequencing();
    const results = Uint8Array.of(1);
    reply(0, executed(0, 5, results));
    expect(reply(1, unsigned(executed(1, 5, results))).events).toEqual([]);
    expect(reply(2, executed(2, 5, results)).events.map((e) => e.kind)).toEqual(['ordered', 'executed']);
  });

  it('re-sends on its timer to exactly the replicas that have not answered, in every phase', () => {
    const { reply, tick, toSequencing } = start();
    reply(0, tsReply(0, 100));
    reply(1, tsReply(1, 200));
    expect(tick(RETRY - 1).send).toEqual([]);
    expect(sendsOf(tick(RETRY)).sort()).toEqual(['submit>2', 'submit>3']);
    const oc = toSequencing();
    const hash = ocHash(testCrypto, oc);
    reply(0, ackFrom(0, hash));
    reply(3, ackFrom(3, hash));
    expect(sendsOf(tick(2 * RETRY)).sort()).toEqual(['sequence>1', 'sequence>2']);
    reply(1, ackFrom(1, hash));
    reply(2, executed(2, 0, Uint8Array.of(1)));
    // Ordered, waiting for execution: the replicas that have not reported are asked again.
    expect(sendsOf(tick(4 * RETRY)).sort()).toEqual(['sequence>0', 'sequence>1', 'sequence>3']);
  });

  it('fails a batch that expires before it is ordered', () => {
    const c = new Collector({ config, crypto: testCrypto, verifySignatures: true, retryUs: RETRY, maxRetryUs: 8 * RETRY });
    const b = makeBatch({ nonce: 2, expiresAtUs: RETRY / 2 });
    c.step({ kind: 'submit', batch: b.bytes, digest: b.digest, expiresAtUs: RETRY / 2 }, 0);
    const out = c.step({ kind: 'tick' }, RETRY);
    expect(out.events).toMatchObject([{ kind: 'failed', digest: b.digest }]);
    expect(out.send).toEqual([]);
    expect(c.pending).toBe(0);
  });

  it('fails a batch f+1 replicas refuse as expired, but not on one such refusal', () => {
    const { reply } = start();
    expect(reply(0, refused(0, 'expired')).events).toEqual([]);
    expect(reply(1, refused(1, 'expired')).events).toMatchObject([{ kind: 'failed', digest: batch.digest }]);
  });

  it.each<RefusalReason>(['badSignature', 'notAllowed', 'badBatch'])('fails a batch f+1 replicas refuse as %s, naming the reason', (reason) => {
    const { reply } = start();
    expect(reply(0, refused(0, reason)).events).toEqual([]);
    expect(reply(1, refused(1, reason)).events).toMatchObject([{ kind: 'failed', digest: batch.digest, reason: `refused by f+1 replicas: ${reason}` }]);
  });

  it('backs off on overloaded instead of failing: asks again later each time, and reports the batch throttled', () => {
    const { reply, tick, toSequencing } = start();
    for (const r of [0, 1, 2, 3]) expect(reply(r, refused(r, 'overloaded')).events).toEqual([]);
    // No re-send before the retry delay, then again only to those that gave no stamp, later each time.
    expect(tick(RETRY - 1).send).toEqual([]);
    expect(tick(RETRY).send.map((s) => s.to)).toEqual([0, 1, 2, 3]);
    expect(tick(RETRY + 2 * RETRY - 1).send).toEqual([]);
    expect(tick(RETRY + 2 * RETRY).send).toHaveLength(4);
    const oc = toSequencing();
    const hash = ocHash(testCrypto, oc);
    reply(0, ackFrom(0, hash));
    reply(1, ackFrom(1, hash));
    expect(reply(2, ackFrom(2, hash)).events).toMatchObject([{ kind: 'ordered', throttled: true }]);
  });

  it('does not report a batch throttled for one overloaded replica', () => {
    const { reply, toSequencing } = start();
    reply(3, refused(3, 'overloaded'));
    const hash = ocHash(testCrypto, toSequencing());
    reply(0, ackFrom(0, hash));
    reply(1, ackFrom(1, hash));
    expect(reply(2, ackFrom(2, hash)).events).toMatchObject([{ kind: 'ordered', throttled: false }]);
  });
});
