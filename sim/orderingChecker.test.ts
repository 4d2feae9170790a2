/**
 * The full simulation's checkers must be able to say no: a sweep reporting zero violations means
 * something only if a linearizability violation, a duplicate execution, a lost sequenced batch, an
 * unsound timestamp, an impersonated client or a stalled correct client would have been caught. Each test plants one in
 * synthetic records (and checks the honest twin passes).
 */
import { describe, expect, it } from 'vitest';
import { BatchMode, encodeBatch, encodeResults } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { Message, OrderingCert } from '../common/messages.js';
import { ResultStatus } from '../ordering/executor.js';
import type { ExecutionRecord } from '../ordering/types.js';
import type { ClientRecord } from './clientNode.js';
import { OrderingChecker } from './orderingChecker.js';

const N = 4;
const Q = 3;
const BYZANTINE = 3;
/** The one client of these records: its key, and the key as the checker names it. */
const CLIENT_KEY = new Uint8Array(32).fill(200);
const CLIENT = toHex(CLIENT_KEY);
const SHORT = CLIENT.slice(0, 8);
/** What batch `id` carries as each command's payload. */
const payloadOf = (id: number): Uint8Array => Uint8Array.of(id);
/** How the client recorded a command it wrote (payload of batch `id`). */
const wrote = (seq: number, id = seq, key = CLIENT): { clientKey: string; seq: number; payloadHash: string } => ({
  clientKey: key,
  seq,
  payloadHash: toHex(nodeCrypto.sha256(payloadOf(id))),
});
const correct = (r: number): boolean => r !== BYZANTINE;
const digest = (b: number): Digest => new Uint8Array(32).fill(b) as Digest;
const sig = new Uint8Array(64);

/** A batch with one command per seq, and a checker that saw each correct replica's timestamp. */
interface Batch {
  readonly digest: Digest;
  readonly bytes: Uint8Array;
  readonly oc: OrderingCert;
  readonly ts: number;
  readonly seqs: readonly number[];
}

function batch(id: number, stamps: readonly [number, number, number], seqs: readonly number[] = [id]): Batch {
  const d = digest(id);
  const bytes = encodeBatch(
    { mode: BatchMode.Direct, collectorKey: CLIENT_KEY, nonce: id, expiresAtUs: 1e9, commands: seqs.map((seq) => ({ seq, payload: payloadOf(id) })) },
    () => sig,
  );
  const oc: OrderingCert = { digest: d, stamps: stamps.map((ts, r) => ({ replica: r as ReplicaId, ts, sig })) };
  return { digest: d, bytes, oc, ts: [...stamps].sort((a, b) => a - b)[1]!, seqs };
}

function stampsSeen(checker: OrderingChecker, b: Batch): void {
  for (const s of b.oc.stamps) checker.onSent(s.replica, { type: 'tsReply', digest: b.digest, stamp: s } satisfies Message);
}

function record(b: Batch, position: number, status: number = ResultStatus.Executed, ts = b.ts): ExecutionRecord {
  return {
    position, digest: b.digest, ts, ocHash: digest(99), blockHeight: 1, commands: b.seqs.length, collectorKey: CLIENT,
    results: encodeResults(b.seqs.map(() => Uint8Array.of(status))), oc: b.oc, batch: b.bytes, failure: null,
  };
}

/** Every correct replica executes `records` in order. */
function executeEverywhere(checker: OrderingChecker, records: readonly ExecutionRecord[]): void {
  for (let r = 0; r < N; r++) if (correct(r)) checker.onExecuted(r, records, 1_000);
}

const UP = [0, 1, 2];

describe('OrderingChecker catches planted violations', () => {
  it('linearizability: a batch executed before one whose correct timestamps all precede its own', () => {
    const early = batch(1, [100, 105, 110]);
    const late = batch(2, [200, 205, 210]);
    const honest = new OrderingChecker(N, Q, correct);
    for (const b of [early, late]) stampsSeen(honest, b);
    executeEverywhere(honest, [record(early, 0), record(late, 1)]);
    expect(honest.finish(UP, [], null).linearizabilityViolations).toBe(0);
    expect(honest.violations).toEqual([]);

    const planted = new OrderingChecker(N, Q, correct);
    for (const b of [early, late]) stampsSeen(planted, b);
    executeEverywhere(planted, [record(late, 0), record(early, 1)]);
    expect(planted.finish(UP, [], null).linearizabilityViolations).toBe(1);
    expect(planted.violations).toEqual([expect.stringMatching(/^linearizability: batch 020202020202 at position 0 .* before batch 010101010101 at position 1/)]);
  });

  it('overlapping correct timestamps are no violation, only an inversion when submission order disagrees', () => {
    const a = batch(1, [100, 150, 300]);
    const b = batch(2, [120, 160, 310]);
    const checker = new OrderingChecker(N, Q, correct);
    for (const x of [a, b]) stampsSeen(checker, x);
    executeEverywhere(checker, [record(b, 0), record(a, 1)]);
    const clients: ClientRecord[] = [a, b].map((x, i) => ({
      client: 9, digest: null, commands: x.seqs.map((seq) => wrote(seq)), submitUs: i * 10,
      orderedUs: null, executedUs: 1_000, ts: null, position: null, attempts: 1, failed: null,
    }));
    const summary = checker.finish(UP, clients, null);
    expect(checker.violations).toEqual([]);
    expect(summary).toMatchObject({ linearizabilityViolations: 0, overlappingPairs: 1, overlappingInversions: 1 });
  });

  it('duplicates: a command executed twice (two batches both report it executed)', () => {
    const first = batch(1, [100, 105, 110], [7]);
    const retry = batch(2, [200, 205, 210], [7]);
    const honest = new OrderingChecker(N, Q, correct);
    executeEverywhere(honest, [record(first, 0), record(retry, 1, ResultStatus.Duplicate)]);
    honest.finish(UP, [], null);
    expect(honest.violations).toEqual([]);

    const planted = new OrderingChecker(N, Q, correct);
    executeEverywhere(planted, [record(first, 0), record(retry, 1)]);
    planted.finish(UP, [], null);
    expect(planted.violations).toEqual([`duplicate: command ${SHORT}:7 executed twice`]);
  });

  it('impersonation: a command executed under a client’s key that the client did not write', () => {
    const own = batch(1, [100, 105, 110], [1]);
    const forged = batch(2, [200, 205, 210], [2]);
    const clients: ClientRecord[] = [
      { client: 9, digest: null, commands: [wrote(1), wrote(2, 3)], submitUs: 0, orderedUs: null, executedUs: 1_000, ts: null, position: null, attempts: 1, failed: null },
    ];
    const honest = new OrderingChecker(N, Q, correct);
    executeEverywhere(honest, [record(own, 0)]);
    honest.finish(UP, clients, null);
    expect(honest.violations).toEqual([]);

    // Seq 2 ran with batch 2's payload, where the client wrote batch 3's.
    const planted = new OrderingChecker(N, Q, correct);
    executeEverywhere(planted, [record(own, 0), record(forged, 1)]);
    planted.finish(UP, clients, null);
    expect(planted.violations).toEqual([`impersonation: command ${SHORT}:2 executed under a client's key with a payload it never wrote`]);
  });

  it('loss: a batch with q acks on one OC that a correct replica never executes', () => {
    const b = batch(5, [100, 105, 110]);
    const sequenced = (checker: OrderingChecker): void => {
      for (const r of [0, 1, BYZANTINE]) checker.onSent(r, { type: 'ack', digest: b.digest, ocHash: digest(99), replica: r as ReplicaId, sig });
    };
    const honest = new OrderingChecker(N, Q, correct);
    sequenced(honest);
    executeEverywhere(honest, [record(b, 0)]);
    honest.finish(UP, [], null);
    expect(honest.violations).toEqual([]);

    const planted = new OrderingChecker(N, Q, correct);
    sequenced(planted);
    planted.onExecuted(0, [record(b, 0)], 1_000); // replicas 1 and 2 never execute it
    planted.finish(UP, [], null);
    expect(planted.violations).toEqual([expect.stringMatching(/^no loss: sequenced batch 050505050505 never executed at replica 1/)]);
  });

  it('loss: two acks are no sequencing certificate, but a client that saw its batch ordered makes one', () => {
    const b = batch(6, [100, 105, 110]);
    const checker = new OrderingChecker(N, Q, correct);
    for (const r of [0, 1]) checker.onSent(r, { type: 'ack', digest: b.digest, ocHash: digest(99), replica: r as ReplicaId, sig });
    checker.finish(UP, [], null);
    expect(checker.violations).toEqual([]);
    const ordered: ClientRecord = {
      client: 9, digest: '06'.repeat(32), commands: [wrote(6)], submitUs: 0,
      orderedUs: 50, executedUs: null, ts: 105, position: null, attempts: 1, failed: null,
    };
    const again = new OrderingChecker(N, Q, correct);
    again.finish(UP, [ordered], null);
    expect(again.violations).toHaveLength(1);
    expect(again.violations[0]).toMatch(/^no loss: /);
  });

  it('catch-up: a correct replica that executed less than others did well before the end', () => {
    const a = batch(1, [100, 105, 110]);
    const b = batch(2, [200, 205, 210]);
    const checker = new OrderingChecker(N, Q, correct);
    checker.onExecuted(0, [record(a, 0)], 1_000);
    checker.onExecuted(0, [record(b, 1)], 9_000);
    checker.checkCaughtUp(new Map([[0, 2], [1, 1], [2, 1]]), 5_000); // b is recent: only a is due
    expect(checker.violations).toEqual([]);
    checker.checkCaughtUp(new Map([[0, 2], [1, 1], [2, 0]]), 5_000);
    expect(checker.violations).toEqual(['catch-up: replica 2 executed 0 batches, 1 were executed elsewhere by 5000 µs']);
  });

  it('timestamps: a correct replica giving a timestamp not above its last one (a repeat for the same batch is fine)', () => {
    const reply = (d: number, ts: number): Message => ({ type: 'tsReply', digest: digest(d), stamp: { replica: 1 as ReplicaId, ts, sig } });
    const checker = new OrderingChecker(N, Q, correct);
    checker.onSent(1, reply(1, 100), 10);
    checker.onSent(1, reply(1, 100), 20);
    checker.onSent(1, reply(2, 150), 30);
    checker.onSent(BYZANTINE, { type: 'tsReply', digest: digest(3), stamp: { replica: BYZANTINE as ReplicaId, ts: 5, sig } }, 35);
    expect(checker.violations).toEqual([]);
    checker.onSent(1, reply(3, 150), 40);
    expect(checker.violations).toEqual(['timestamps: replica 1 gave 150 µs to batch 030303030303 after giving 150 µs (at 40 µs)']);
  });

  it('soundness: an executed timestamp outside the correct replicas\' timestamps in its OC', () => {
    const b = batch(3, [100, 105, 110]);
    const checker = new OrderingChecker(N, Q, correct);
    executeEverywhere(checker, [record(b, 0, ResultStatus.Executed, 500)]);
    expect(checker.violations).toEqual(['soundness: batch 030303030303 executed at 500, outside its correct timestamps [100, 110]']);
  });

  it('liveness: a correct client\'s command not executed within the bound, but not a Byzantine client\'s', () => {
    const stalled = (client: number): ClientRecord => ({
      client, digest: null, commands: [wrote(1, 1, toHex(new Uint8Array(32).fill(client)))], submitUs: 2_000_000,
      orderedUs: null, executedUs: null, ts: null, position: null, attempts: 1, failed: null,
    });
    const bound = { fromUs: 1_000_000, untilUs: 20_000_000, boundUs: 5_000_000, clients: (c: number) => c === 10 };
    const byzantineOnly = new OrderingChecker(N, Q, correct);
    byzantineOnly.finish(UP, [stalled(11)], bound);
    expect(byzantineOnly.violations).toEqual([]);
    const checker = new OrderingChecker(N, Q, correct);
    checker.finish(UP, [stalled(10)], bound);
    expect(checker.violations).toEqual([expect.stringMatching(/^liveness: client 10's command 1 submitted at 2\.000 s never executed/)]);
  });
});
