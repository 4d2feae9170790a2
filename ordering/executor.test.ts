/**
 * Execution is exactly-once: a batch once by digest, a command once by (client key, seq) whatever
 * batch carries it, only within its deadline, and the same results at every replica — malformed
 * batches included. A client's window moves only with its own commands, in bounded steps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BATCH_MAGIC, BATCH_VERSION, BatchMode, decodeBatchCommands, decodeResults, encodeBatch, type Command } from '../common/batch.js';
import { ByteWriter, toHex, utf8 } from '../common/bytes.js';
import type { Digest, Slot } from '../common/ids.js';
import { MAX_BATCH_LIFETIME_US, MAX_RESULT_BYTES } from '../common/limits.js';
import { Executor, MAX_SEQUENCE_WINDOW, MAX_WINDOW_ADVANCE_PER_BATCH, ResultStatus, type ExecutedBatch } from './executor.js';
import { encodeKvCommand, KvOp, KvStore } from './kvStore.js';
import { decodeExecutorState, encodeExecutorState } from './executorState.js';
import type { ExecutionContext, SnapshotRestore, StateMachine } from './stateMachine.js';
import { testCrypto } from './testHarness.js';

/** Client n's key: 32 bytes of n; past 255, n's high byte and a last byte unlike the first (the
 *  executor trusts phase 1 to have checked signatures). */
function clientKey(n: number): Uint8Array {
  const key = new Uint8Array(32).fill(n % 256);
  if (n > 255) {
    key[30] = n >> 8;
    key[31] = (n % 256) ^ 0xff;
  }
  return key;
}
const SIG = new Uint8Array(64);
/** Far enough ahead of every test timestamp, within MAX_BATCH_LIFETIME_US of them. */
const DEADLINE_US = 60_000_000;

/** A KvStore that records every command it is given, as "client:seq". */
class Recording implements StateMachine {
  readonly kv = new KvStore();
  readonly seen: string[] = [];
  readonly contexts: ExecutionContext[] = [];
  execute(commands: readonly Command[], ctx: ExecutionContext): Uint8Array[] {
    for (const c of commands) this.seen.push(`${c.clientKey[0]}:${c.seq}`);
    this.contexts.push(ctx);
    return this.kv.execute(commands);
  }
  snapshot(): Iterable<Uint8Array> {
    return this.kv.snapshot();
  }
  restore(): SnapshotRestore {
    return this.kv.restore();
  }
}

let nonce = 0;
/** A direct batch written byte by byte, bypassing encodeBatch's checks (for what a hostile client sends). */
function encodeRawBatch(commands: readonly (readonly [seq: number, payload: Uint8Array])[]): Uint8Array {
  const w = new ByteWriter().u8(BATCH_MAGIC).u8(BATCH_VERSION).u8(BatchMode.Direct).bytes(clientKey(5)).u64(1).u64(DEADLINE_US).u32(commands.length);
  for (const [seq, payload] of commands) w.u64(seq).u32(payload.length).bytes(payload);
  return w.bytes(SIG).finish();
}

type Cmd = readonly [client: number, seq: number, payload?: Uint8Array, expiresAtUs?: number];

/** A gateway-mode batch: any mix of clients, each command with its own deadline. */
function batch(commands: readonly Cmd[]): { bytes: Uint8Array; digest: Digest } {
  const bytes = encodeBatch(
    {
      mode: BatchMode.Gateway,
      collectorKey: clientKey(200),
      nonce: nonce++,
      expiresAtUs: DEADLINE_US,
      commands: commands.map(([client, seq, payload, expiresAtUs]) => ({
        clientKey: clientKey(client),
        seq,
        expiresAtUs: expiresAtUs ?? DEADLINE_US,
        payload: payload ?? utf8(`${client}:${seq}`),
        sig: SIG,
      })),
    },
    () => SIG,
  );
  return { bytes, digest: testCrypto.sha256(bytes) };
}

/** A direct-mode batch of client `client`, numbered from `firstSeq`. */
function directBatch(client: number, firstSeq: number, count: number): { bytes: Uint8Array; digest: Digest } {
  const commands = Array.from({ length: count }, (_, i) => ({ seq: firstSeq + i, payload: utf8(`${client}:${firstSeq + i}`) }));
  const bytes = encodeBatch({ mode: BatchMode.Direct, collectorKey: clientKey(client), nonce: nonce++, expiresAtUs: DEADLINE_US, commands }, () => SIG);
  return { bytes, digest: testCrypto.sha256(bytes) };
}

let ts = 1_000_000;
function run(ex: Executor, b: { bytes: Uint8Array; digest: Digest }, at = ts++): ExecutedBatch | null {
  return ex.execute(b.digest, toHex(b.digest), at, b.bytes, 500 as Slot, 1);
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

  it('executes every (client key, seq) exactly once when sequence numbers arrive out of order across batches', () => {
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
    const bytes = encodeRawBatch([[0, put('a', 'b')]]);
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

  it('executes a direct batch as its collector’s commands, looking the window up once', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    expect(statuses(run(ex, directBatch(9, 1, 3)))).toEqual([0, 0, 0]);
    expect(statuses(run(ex, batch([[9, 2], [9, 4]])))).toEqual([ResultStatus.Duplicate, ResultStatus.Executed]);
    expect(sm.seen).toEqual(['9:1', '9:2', '9:3', '9:4']);
  });

  it('keeps one client’s window apart from another’s: the same numbers under another key are not duplicates', () => {
    const ex = new Executor(new Recording());
    run(ex, directBatch(1, 1, 5));
    expect(statuses(run(ex, directBatch(2, 1, 5)))).toEqual([0, 0, 0, 0, 0]);
    expect(statuses(run(ex, directBatch(1, 1, 5)))).toEqual([1, 1, 1, 1, 1]);
  });

  it('refuses a command numbered more than the advance bound above its client’s window, and lets the client catch up', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    run(ex, batch([[3, 1]]));
    const far = 1 + MAX_WINDOW_ADVANCE_PER_BATCH + 1;
    // One batch moves the window by at most the bound: the far command does not run…
    expect(statuses(run(ex, batch([[3, far], [3, 2]])))).toEqual([ResultStatus.SeqTooFar, ResultStatus.Executed]);
    expect(sm.seen).toEqual(['3:1', '3:2']);
    expect(ex.commandsRefused).toBe(1);
    // …but the window moved up by the bound, so the next batch reaches it.
    expect(statuses(run(ex, batch([[3, far]])))).toEqual([ResultStatus.Executed]);
    // A client whose commands failed for a long time skips numbers: a few batches catch it up.
    const skipped = far + 3 * MAX_WINDOW_ADVANCE_PER_BATCH;
    const tries = [0, 1, 2, 3].map(() => statuses(run(ex, batch([[3, skipped]])))[0]);
    expect(tries).toEqual([ResultStatus.SeqTooFar, ResultStatus.SeqTooFar, ResultStatus.Executed, ResultStatus.Duplicate]);
  });

  it('never lets another key move a client’s window: a far-ahead flood under its own key leaves the victim’s numbers fresh', () => {
    const ex = new Executor(new Recording());
    run(ex, batch([[1, 1]]));
    const flood = Array.from({ length: 100 }, (_, i) => [66, 2 ** 50 + i] as const);
    run(ex, batch(flood));
    expect(statuses(run(ex, batch([[1, 2], [1, 3]])))).toEqual([0, 0]);
  });

  it('tracks a bounded span: numbers far below the highest count as done, and the set stays bounded', () => {
    const ex = new Executor(new Recording());
    // Seq 1 never arrives; the client keeps going well past a window's span.
    for (let first = 2; first < 2 + MAX_SEQUENCE_WINDOW + 1000; first += 5_000) run(ex, directBatch(8, first, 5_000));
    expect(statuses(run(ex, batch([[8, 1]])))).toEqual([ResultStatus.Duplicate]);
  });

  it('starts a new client’s window where its numbers start, so a client that kept its key may continue', () => {
    const ex = new Executor(new Recording());
    const start = 10 ** 12;
    expect(statuses(run(ex, directBatch(4, start, 3)))).toEqual([0, 0, 0]);
    // Its commands still in flight below the first seen run when they arrive.
    expect(statuses(run(ex, directBatch(4, start - 100, 2)))).toEqual([0, 0]);
  });

  it('runs a command only within its deadline, and not when the deadline lies too far ahead of its timestamp', () => {
    const sm = new Recording();
    const ex = new Executor(sm);
    const at = 5_000_000;
    const done = run(ex, batch([[2, 1, undefined, at - 1], [2, 2, undefined, at], [2, 3, undefined, at + MAX_BATCH_LIFETIME_US], [2, 4, undefined, at + MAX_BATCH_LIFETIME_US + 1]]), at);
    expect(statuses(done)).toEqual([ResultStatus.Expired, ResultStatus.Executed, ResultStatus.Executed, ResultStatus.Expired]);
    expect(sm.seen).toEqual(['2:2', '2:3']);
    // An expired command did not enter the window: within its deadline later, it would run.
    expect(statuses(run(ex, batch([[2, 1]]), at + 1))).toEqual([ResultStatus.Executed]);
  });

  it('forgets a full table’s oldest client only once its commands are past any deadline; a new client waits', () => {
    const ex = new Executor(new Recording(), null, 2);
    const at = 10_000_000;
    run(ex, batch([[1, 1]]), at);
    run(ex, batch([[2, 1]]), at + 1);
    // A third client while both others ran within a batch lifetime: not executed.
    expect(statuses(run(ex, batch([[3, 1]]), at + 2))).toEqual([ResultStatus.TooManyClients]);
    // Later, client 1 is forgettable: client 3 takes its place…
    const later = at + MAX_BATCH_LIFETIME_US + 1;
    expect(statuses(run(ex, batch([[3, 1, undefined, later + 1_000]]), later))).toEqual([ResultStatus.Executed]);
    // …and client 1's old command, replayed, is past its deadline: it cannot run twice.
    expect(statuses(run(ex, batch([[1, 1]]), later + 1))).toEqual([ResultStatus.Expired]);
  });

  it('a throwing state machine is an outcome: every command of the call gets StateMachineError, the next batch runs', () => {
    const kv = new KvStore();
    const sm: StateMachine = {
      execute: (commands) => {
        if (commands.some((c) => new TextDecoder().decode(c.payload).includes('boom'))) throw new Error('boom');
        return kv.execute(commands);
      },
      snapshot: () => kv.snapshot(),
      restore: () => kv.restore(),
    };
    const ex = new Executor(sm);
    const failed = run(ex, batch([[3, 1, put('a', '1')], [3, 2, put('b', 'boom')]]));
    expect(statuses(failed)).toEqual([ResultStatus.StateMachineError, ResultStatus.StateMachineError]);
    expect((failed!.failure as Error).message).toBe('boom');
    const next = run(ex, batch([[3, 3, put('c', '3')], [3, 1, put('a', 'again')]]));
    expect(statuses(next)).toEqual([ResultStatus.Executed, ResultStatus.Duplicate]);
    expect(next!.failure).toBeNull();
    expect(ex.nextPosition).toBe(2);
  });
});

describe('Executor state in a checkpoint', () => {
  it('a copy restored from the encoded state makes the same duplicate decisions and results as the original', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 })), { minLength: 1, maxLength: 60 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 60 })), { minLength: 1, maxLength: 60 }),
        (before, after) => {
          const original = new Recording();
          const ex = new Executor(original);
          const batches = (list: [number, number][]) => list.map(([c, q], i) => batch([[c, q, put(`k${c}`, `${q}`)], [c, q + 1000 + i, get(`k${c}`)]]));
          for (const b of batches(before)) run(ex, b);
          const copyState = decodeExecutorState(encodeExecutorState(ex.state()));
          expect(copyState.ok).toBe(true);
          if (!copyState.ok) return;
          const copySm = new Recording();
          const restore = copySm.restore();
          for (const c of original.snapshot()) restore.add(c);
          restore.finish();
          const copy = new Executor(copySm, copyState.value);
          const startTs = ts;
          const later = batches(after);
          const a = later.map((b) => run(ex, b));
          ts = startTs;
          const b = later.map((x) => run(copy, x));
          expect(b.map((x) => x && toHex(x.results))).toEqual(a.map((x) => x && toHex(x.results)));
          expect(copy.nextPosition).toBe(ex.nextPosition);
          expect(encodeExecutorState(copy.state())).toEqual(encodeExecutorState(ex.state()));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('a restored window keeps how far its client may go: a refused far number runs in the next batch at both', () => {
    const ex = new Executor(new Recording());
    const far = 1 + MAX_WINDOW_ADVANCE_PER_BATCH + 1;
    run(ex, batch([[3, 1]]));
    expect(statuses(run(ex, batch([[3, far]])))).toEqual([ResultStatus.SeqTooFar]);
    const state = decodeExecutorState(encodeExecutorState(ex.state()));
    expect(state.ok).toBe(true);
    if (!state.ok) return;
    expect(state.value.commandsRefused).toBe(1);
    const copy = new Executor(new Recording(), state.value);
    const next = batch([[3, far], [3, far + MAX_WINDOW_ADVANCE_PER_BATCH + 1]]);
    const at = ts++;
    expect(statuses(run(copy, next, at))).toEqual([ResultStatus.Executed, ResultStatus.SeqTooFar]);
    expect(statuses(run(ex, next, at))).toEqual([ResultStatus.Executed, ResultStatus.SeqTooFar]);
    expect(encodeExecutorState(copy.state())).toEqual(encodeExecutorState(ex.state()));
  });

  it('splits a large state across chunks of at most 1 MiB and reads it back', () => {
    const ex = new Executor(new KvStore());
    for (let i = 0; i < 40_000; i++) run(ex, batch([[1 + (i % 5000), 1 + Math.floor(i / 5000), put('k', 'v')]]));
    const chunks = encodeExecutorState(ex.state());
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(1024 * 1024);
    const decoded = decodeExecutorState(chunks);
    expect(decoded.ok && decoded.value.executedDigests.size).toBe(40_000);
    expect(decoded.ok && decoded.value.clients.size).toBe(5000);
  });

  it('refuses chunks that are not an executor state', () => {
    const chunks = encodeExecutorState(new Executor(new KvStore()).state());
    expect(decodeExecutorState([chunks[0]!.subarray(0, 10)]).ok).toBe(false);
    expect(decodeExecutorState([Uint8Array.of(2, 0)]).ok).toBe(false);
    expect(decodeExecutorState([]).ok).toBe(false);
  });
});
