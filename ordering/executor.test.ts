/**
 * Execution is exactly-once: a batch once by digest, a command once by (client id, seq) whatever
 * batch carries it, and the same results at every replica — malformed batches included.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BATCH_MAGIC, BATCH_VERSION, decodeBatchCommands, decodeResults, encodeBatch, type Command } from '../common/batch.js';
import { ByteWriter, toHex, utf8 } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import { MAX_RESULT_BYTES } from '../common/limits.js';
import { Executor, ResultStatus, type ExecutedBatch } from './executor.js';
import { encodeKvCommand, KvOp, KvStore } from './kvStore.js';
import type { ExecutionContext, StateMachine } from './stateMachine.js';
import { testCrypto } from './testHarness.js';

/** A KvStore that records every command it is given. */
class Recording implements StateMachine {
  readonly kv = new KvStore();
  readonly seen: string[] = [];
  readonly contexts: ExecutionContext[] = [];
  execute(commands: readonly Command[], ctx: ExecutionContext): Uint8Array[] {
    for (const c of commands) this.seen.push(`${c.clientId}:${c.seq}`);
    this.contexts.push(ctx);
    return this.kv.execute(commands);
  }
}

let nonce = 0;
/** A batch written byte by byte, bypassing encodeBatch's checks (for what a hostile client sends). */
function encodeRawBatch(commands: readonly (readonly [clientId: number, seq: number, payload: Uint8Array])[]): Uint8Array {
  const w = new ByteWriter().u8(BATCH_MAGIC).u8(BATCH_VERSION).u64(1_000).u64(1).u64(10 ** 15).u32(commands.length);
  for (const [clientId, seq, payload] of commands) w.u64(clientId).u64(seq).u32(payload.length).bytes(payload);
  return w.finish();
}

function batch(commands: readonly (readonly [clientId: number, seq: number, payload?: Uint8Array])[]): { bytes: Uint8Array; digest: Digest } {
  const bytes = encodeBatch({
    collectorId: 1000,
    nonce: nonce++,
    expiresAtUs: 1e9,
    commands: commands.map(([clientId, seq, payload]) => ({ clientId, seq, payload: payload ?? utf8(`${clientId}:${seq}`) })),
  });
  return { bytes, digest: testCrypto.sha256(bytes) };
}

let ts = 1_000_000;
function run(ex: Executor, b: { bytes: Uint8Array; digest: Digest }): ExecutedBatch | null {
  return ex.execute(b.digest, toHex(b.digest), ts++, b.bytes, 500 as Slot, 1);
}

function statuses(done: ExecutedBatch | null): number[] {
  expect(done).not.toBeNull();
  const decoded = decodeResults(done!.results);
  expect(decoded.ok).toBe(true);
  return decoded.ok ? decoded.value.map((r) => r[0]!) : [];
}

const put = (k: string, v: string): Uint8Array => encodeKvCommand(KvOp.Put, utf8(k), utf8(v));
const get = (k: string): Uint8Array => encodeKvCommand(KvOp.Get, utf8(k));

describe('Executor', () => {
  it('executes a batch once: the same digest again is refused and changes nothing', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    const b = batch([[7, 1, put('k', 'v')]]);
    expect(run(ex, b)).toMatchObject({ position: 0, commands: 1 });
    expect(run(ex, b)).toBeNull();
    expect(sm.seen).toEqual(['7:1']);
    expect(ex.nextPosition).toBe(1);
    expect(ex.isExecuted(toHex(b.digest))).toBe(true);
  });

  it('executes a command once even when another batch carries it again, reporting it as a duplicate', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    run(ex, batch([[7, 1, put('k', 'first')]]));
    // A retry of (7, 1) rides in a new batch (a new digest) next to a new command.
    const second = run(ex, batch([
      [7, 1, put('k', 'second')],
      [7, 2, get('k')],
    ]));
    expect(second).toMatchObject({ position: 1, commands: 2 });
    const results = decodeResults(second!.results);
    expect(results.ok && results.value.map((r) => [...r])).toEqual([[ResultStatus.Duplicate], [ResultStatus.Executed, ...utf8('first')]]);
    expect(sm.seen).toEqual(['7:1', '7:2']);
    expect(ex.duplicatesSkipped).toBe(1);
    expect(ex.commandsExecuted).toBe(2);
  });

  it('executes every (client, seq) exactly once when sequence numbers arrive out of order across batches', () => {
    const command = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 25 }));
    fc.assert(
      fc.property(fc.array(fc.array(command, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 }), (batches) => {
        const sm = new Recording();
        const ex = new Executor(sm);
        const seen = new Set<string>();
        for (const cmds of batches) {
          const expected = cmds.map(([c, s]) => {
            const key = `${c}:${s}`;
            const fresh = !seen.has(key);
            seen.add(key);
            return fresh ? ResultStatus.Executed : ResultStatus.Duplicate;
          });
          expect(statuses(run(ex, batch(cmds)))).toEqual(expected);
        }
        expect(sm.seen).toHaveLength(seen.size);
        expect(new Set(sm.seen)).toEqual(seen);
      }),
    );
  });

  it('gives the state machine the batch’s position, timestamp and digest', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    run(ex, batch([[1, 1]]));
    const b = batch([[1, 2]]);
    const done = ex.execute(b.digest, toHex(b.digest), 5_000_000, b.bytes, 500 as Slot, 9);
    expect(sm.contexts[1]).toEqual({ position: done!.position, ts: 5_000_000, digest: b.digest, blockHeight: 9 });
  });

  it('executes a malformed batch deterministically as one "malformed" result, without the state machine', () => {
    const good = batch([
      [1, 1],
      [1, 2],
    ]);
    const truncated = good.bytes.subarray(0, good.bytes.length - 1);
    const digest = testCrypto.sha256(truncated);
    const outcomes = [0, 1].map(() => {
      const sm = new Recording();
      const ex = new Executor(sm);
      const done = ex.execute(digest, toHex(digest), 1, truncated, 500 as Slot, 1);
      expect(sm.seen).toEqual([]);
      expect(ex.nextPosition).toBe(1);
      return done!;
    });
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]!.commands).toBe(0);
    expect(statuses(outcomes[0]!)).toEqual([ResultStatus.MalformedBatch]);
  });

  it('still executes no command twice once it has forgotten an expired digest', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    const b = batch([[4, 1, put('x', '1')]]);
    run(ex, b);
    ex.pruneDigests(501 as Slot);
    expect(ex.isExecuted(toHex(b.digest))).toBe(false);
    expect(statuses(run(ex, b))).toEqual([ResultStatus.Duplicate]);
    expect(sm.seen).toEqual(['4:1']);
  });

  // Sequence numbers start at 1 (common/batch.ts MIN_COMMAND_SEQ): a batch holding a command 0 is
  // malformed, deterministically at every replica, rather than silently reported "duplicate".
  it('treats a batch with a command numbered 0 as malformed', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    const bytes = encodeRawBatch([[5, 0, put('a', 'b')]]);
    expect(decodeBatchCommands(bytes).ok).toBe(false);
    expect(statuses(run(ex, { bytes, digest: testCrypto.sha256(bytes) }))).toEqual([ResultStatus.MalformedBatch]);
    expect(sm.seen).toEqual([]);
  });

  // A result above MAX_RESULT_BYTES, or results beyond MAX_RESULTS_BLOB_BYTES, are dropped with a
  // status (the same way at every replica) instead of crashing every replica on the same batch.
  it('executes a get of a value larger than MAX_RESULT_BYTES without crashing, with a bounded result', () => {
    const ex = new Executor(new KvStore());
    const big = 'x'.repeat(MAX_RESULT_BYTES + 10);
    run(ex, batch([[6, 1, put('big', big)]]));
    const done = run(ex, batch([[6, 2, get('big')]]));
    const results = decodeResults(done!.results);
    expect(results.ok && results.value.length).toBe(1);
  });

  it('executes a batch whose results together exceed MAX_RESULTS_BLOB_BYTES without crashing', () => {
    const ex = new Executor(new KvStore());
    run(ex, batch([[6, 1, put('v', 'y'.repeat(60_000))]]));
    const gets = Array.from({ length: 150 }, (_, i) => [6, 2 + i, get('v')] as const);
    const done = run(ex, batch(gets));
    expect(decodeResults(done!.results).ok).toBe(true);
  });
});
