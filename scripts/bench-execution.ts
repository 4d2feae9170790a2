/**
 * Execution micro-benchmark: what a replica spends per command once a block commits — decoding the
 * batch, exactly-once bookkeeping, the default key-value state machine and the results blob — on
 * the benchmark client's workload (32-byte puts over 100,000 keys, batches of 1,000 from 16
 * clients, every command fresh). A script that prints figures, not a test (DESIGN.md
 * "Performance").
 *
 *   npm run build && node dist/scripts/bench-execution.js [batches (3000)] [keySpace (100000)]
 */
import { performance } from 'node:perf_hooks';
import { BatchMode, encodeBatch } from '../common/batch.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { Digest, Slot } from '../common/ids.js';
import { KvWorkload } from '../client/benchWorkload.js';
import { Executor } from '../ordering/executor.js';
import { encodeKvCommand, KvOp, KvStore } from '../ordering/kvStore.js';
import type { StateMachine } from '../ordering/stateMachine.js';

/** Batches prepared up front (encoding is the client's cost, not measured here). */
const PREPARED = Number(process.argv[2] ?? '3000');
const keySpace = Number(process.argv[3] ?? '100000');
const BATCH = 1000;
/** Batch timestamps start here, one µs apart; every command's deadline lies within its lifetime. */
const START_TS_US = 1e12;
const EXPIRES_AT_US = START_TS_US + 60_000_000;
const CLIENTS = 16;
/** The first batches warm the code up and fill the store; they are not measured. */
const WARMUP = Math.floor(PREPARED / 10);

interface Prepared {
  readonly bytes: Uint8Array;
  readonly digest: Digest;
  readonly key: string;
}

function prepare(): Prepared[] {
  const workloads = Array.from({ length: CLIENTS }, (_, c) => new KvWorkload(32, keySpace, BATCH, mulberry(c + 1)));
  const out: Prepared[] = [];
  for (let i = 0; i < PREPARED; i++) {
    const client = i % CLIENTS;
    const firstSeq = Math.floor(i / CLIENTS) * BATCH + 1;
    // Execution does not check signatures (phase 1 did): a fixed one will do.
    const bytes = encodeBatch(
      { mode: BatchMode.Direct, collectorKey: new Uint8Array(32).fill(client), nonce: i, expiresAtUs: EXPIRES_AT_US, commands: workloads[client]!.commands(firstSeq, BATCH) },
      () => new Uint8Array(64),
    );
    const digest = nodeCrypto.sha256(bytes);
    out.push({ bytes, digest, key: Buffer.from(digest).toString('hex') });
  }
  return out;
}

/** A small seeded generator, so every run executes the same keys. */
function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Executes every prepared batch once, in order; measures all but the warm-up ones. */
function run(name: string, stateMachine: StateMachine, batches: readonly Prepared[]): void {
  const executor = new Executor(stateMachine);
  const execute = (i: number): void => {
    const b = batches[i]!;
    executor.execute(b.digest, b.key, START_TS_US + i, b.bytes, 1_000_000 as Slot, i);
  };
  for (let i = 0; i < WARMUP; i++) execute(i);
  const started = performance.now();
  for (let i = WARMUP; i < batches.length; i++) execute(i);
  const elapsedMs = performance.now() - started;
  const commands = (batches.length - WARMUP) * BATCH;
  const perCommandNs = (elapsedMs * 1e6) / commands;
  console.log(`${name.padEnd(34)} ${(commands / (elapsedMs / 1000)).toLocaleString('en-US', { maximumFractionDigits: 0 }).padStart(12)} commands/s  ${perCommandNs.toFixed(0).padStart(5)} ns/command`);
}

const batches = prepare();
console.log(`execution benchmark: ${PREPARED - WARMUP} batches of ${BATCH} 32-byte puts from ${CLIENTS} clients over ${keySpace.toLocaleString('en-US')} keys (after ${WARMUP} warm-up batches)`);
const EMPTY = new Uint8Array(0);
const nothing: StateMachine = { execute: (commands) => commands.map(() => EMPTY), snapshot: () => [], restore: () => ({ add: () => undefined, finish: () => undefined }) };
for (let round = 0; round < 2; round++) {
  run('executor, no-op state machine', nothing, batches);
  run('executor + KvStore', new KvStore(), batches);
}

// A checkpoint copies the state machine at the call (on the execution path) and encodes the
// chunks afterwards (off it): both for a store holding every key of the key space.
const full = new KvStore();
const FILL_CLIENT_KEY = new Uint8Array(32).fill(1);
const fillBatch = 1000;
for (let k = 0; k < keySpace; k += fillBatch) {
  const commands = [];
  for (let i = k; i < Math.min(keySpace, k + fillBatch); i++) {
    const key = new Uint8Array(8);
    new DataView(key.buffer).setUint32(4, i);
    commands.push({ clientKey: FILL_CLIENT_KEY, seq: i + 1, expiresAtUs: EXPIRES_AT_US, payload: encodeKvCommand(KvOp.Put, key, new Uint8Array(21)) });
  }
  full.execute(commands);
}
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  const chunks = full.snapshot();
  const t1 = performance.now();
  let bytes = 0;
  for (const c of chunks) bytes += c.length;
  const t2 = performance.now();
  console.log(`KvStore snapshot of ${full.size.toLocaleString('en-US')} keys: copy ${(t1 - t0).toFixed(1)} ms, chunks ${(t2 - t1).toFixed(1)} ms, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
}
