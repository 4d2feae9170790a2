/**
 * Store benchmark: what LevelDB writes through the WriteBatcher cost on this machine, with and
 * without fsync. A script that prints figures, not a test (DESIGN.md "Performance").
 *
 *   npm run build && node dist/scripts/bench-store.js [secondsPerCase] [directory] [writeBufferMiB]
 *
 * The directory (default: a fresh one under the OS temp dir, removed afterwards) decides which disk
 * is measured: run it on the disk a replica's data directory will live on ('' for the default).
 * writeBufferMiB overrides LevelDB's memtable size (default: DEFAULT_WRITE_BUFFER_BYTES).
 *
 * Cases:
 *  - fsync alone: one 100-byte synced write at a time, nothing else queued: the floor of a vote's
 *    persist latency.
 *  - steady rate: "writes" arrive at a fixed rate from a 1 ms timer, as messages arrive at a
 *    replica; each is one enqueue of a 50 KB value (a batch's bytes) plus SMALL_RECORDS_PER_WRITE
 *    100-byte records (ack, pending index...). Latency is from enqueue to the promise resolving.
 *  - saturated: WRITERS_SATURATED writers each enqueue the next write as soon as the previous one
 *    resolved: the throughput ceiling, and how far group commit amortises the fsync.
 *  - prune scans: the ack prune's pattern (server/store/replicaStore.ts): each round writes
 *    PRUNE_KEYS_PER_ROUND keys under a new slot, then deletes those PRUNE_LAG_ROUNDS rounds old,
 *    scanning either from the bucket's start (stepping over every earlier prune's tombstones until
 *    LevelDB compacts them) or from where the last prune ended, as the store does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Bucket, DEFAULT_WRITE_BUFFER_BYTES, Db, bucketKey, bucketKeyU64, u64Bytes, type DbOp } from '../server/store/db.js';
import { WriteBatcher } from '../server/store/writeBatcher.js';

const BIG_VALUE_BYTES = 50 * 1024;
const SMALL_VALUE_BYTES = 100;
const SMALL_RECORDS_PER_WRITE = 4;
/** Peak write rate of a replica (DESIGN.md targets: ~400 batches/s of ~50 KB). */
const PEAK_WRITES_PER_SECOND = 400;
const WRITERS_SATURATED = 32;
const TICK_MS = 1;
const PRUNE_ROUNDS = 1_000;
const PRUNE_KEYS_PER_ROUND = 200;
const PRUNE_LAG_ROUNDS = 5;
/** A bucket the write cases above leave empty. */
const PRUNE_BUCKET = Bucket.BatchExpiry;
const PRUNE_PASS_OFFSET = 1_000_000;

const secondsPerCase = Number(process.argv[2] ?? '5');
const dirArg = process.argv[3] === '' ? undefined : process.argv[3];
const writeBufferBytes = process.argv[4] === undefined ? DEFAULT_WRITE_BUFFER_BYTES : Number(process.argv[4]) * 2 ** 20;

const big = Uint8Array.from({ length: BIG_VALUE_BYTES }, (_, i) => (i * 131) & 0xff);
const small = new Uint8Array(SMALL_VALUE_BYTES).fill(7);
let nextKey = 0;

function writeOps(withBig: boolean): DbOp[] {
  const ops: DbOp[] = [];
  if (withBig) ops.push({ type: 'put', key: bucketKeyU64(Bucket.Batches, nextKey++), value: big });
  const smallCount = withBig ? SMALL_RECORDS_PER_WRITE : 1;
  for (let i = 0; i < smallCount; i++) ops.push({ type: 'put', key: bucketKeyU64(Bucket.Acks, nextKey++), value: small });
  return ops;
}

interface Result {
  readonly writes: number;
  readonly seconds: number;
  readonly latenciesUs: Float64Array;
}

/** Writes `withBig`-sized writes one after another, each waiting for the previous. */
async function sequential(w: WriteBatcher, sync: boolean, withBig: boolean): Promise<Result> {
  const lat: number[] = [];
  const started = performance.now();
  const deadline = started + secondsPerCase * 1000;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    await w.enqueue(writeOps(withBig), { sync });
    lat.push((performance.now() - t0) * 1000);
  }
  return { writes: lat.length, seconds: (performance.now() - started) / 1000, latenciesUs: Float64Array.from(lat) };
}

/** Writes arriving at `perSecond` from a timer; each write's latency is measured on its own. */
async function steady(w: WriteBatcher, sync: boolean, perSecond: number): Promise<Result> {
  const lat: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const durationMs = secondsPerCase * 1000;
  let issued = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - started;
      const due = Math.min(Math.floor((elapsed / 1000) * perSecond), Math.floor((durationMs / 1000) * perSecond));
      for (; issued < due; issued++) {
        const t0 = performance.now();
        const p = w.enqueue(writeOps(true), { sync }).then(() => {
          lat.push((performance.now() - t0) * 1000);
          inFlight.delete(p);
        });
        inFlight.add(p);
      }
      if (elapsed < durationMs) setTimeout(tick, TICK_MS);
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  return { writes: lat.length, seconds: (performance.now() - started) / 1000, latenciesUs: Float64Array.from(lat) };
}

async function saturated(w: WriteBatcher, sync: boolean): Promise<Result> {
  const lat: number[] = [];
  const started = performance.now();
  const deadline = started + secondsPerCase * 1000;
  const writer = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await w.enqueue(writeOps(true), { sync });
      lat.push((performance.now() - t0) * 1000);
    }
  };
  await Promise.all(Array.from({ length: WRITERS_SATURATED }, writer));
  return { writes: lat.length, seconds: (performance.now() - started) / 1000, latenciesUs: Float64Array.from(lat) };
}

/** The prune pattern in its own bucket range; returns the mean scan time per prune in ms. */
async function pruneScans(db: Db, fromLastEnd: boolean): Promise<number> {
  const w = new WriteBatcher(db);
  let scanMs = 0;
  // Each pass in a key range of its own (slots offset by PRUNE_PASS_OFFSET): the second pass's
  // scans do not step over the first's tombstones.
  const pass = fromLastEnd ? 1 : 0;
  let floor = 0;
  for (let round = 1; round <= PRUNE_ROUNDS; round++) {
    const puts: DbOp[] = [];
    for (let i = 0; i < PRUNE_KEYS_PER_ROUND; i++) {
      const key = new Uint8Array(16);
      key.set(u64Bytes(pass * PRUNE_PASS_OFFSET + round));
      key.set(u64Bytes(i), 8);
      puts.push({ type: 'put', key: bucketKey(PRUNE_BUCKET, key), value: new Uint8Array(SMALL_VALUE_BYTES) });
    }
    await w.enqueue(puts, { sync: false });
    const through = round - PRUNE_LAG_ROUNDS;
    if (through < 1) continue;
    const t0 = performance.now();
    const dels: DbOp[] = [];
    const base = pass * PRUNE_PASS_OFFSET;
    for await (const key of db.iterateKeys(PRUNE_BUCKET, { gte: u64Bytes(base + (fromLastEnd ? floor : 0)), lt: u64Bytes(base + through + 1) })) {
      dels.push({ type: 'del', key: bucketKey(PRUNE_BUCKET, key) });
    }
    scanMs += performance.now() - t0;
    await w.enqueue(dels, { sync: false });
    floor = through + 1;
  }
  await w.close();
  return scanMs / (PRUNE_ROUNDS - PRUNE_LAG_ROUNDS);
}

const fmt = (value: number, digits = 0): string => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(11))).join('');

function percentileMs(sorted: Float64Array, p: number): string {
  if (sorted.length === 0) return '-';
  return fmt(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! / 1000, 2);
}

async function runCase(db: Db, name: string, body: (w: WriteBatcher) => Promise<Result>): Promise<void> {
  const w = new WriteBatcher(db);
  const before = { ...w.stats };
  const r = await body(w);
  await w.close();
  const s = w.stats;
  const batches = s.batches - before.batches;
  const sorted = r.latenciesUs.slice().sort();
  console.log(
    row([
      name,
      fmt(r.writes / r.seconds),
      fmt(batches / r.seconds),
      fmt((s.bytes - before.bytes) / r.seconds / 1e6, 1),
      fmt((s.ops - before.ops) / Math.max(1, batches), 1),
      fmt((s.syncBatches - before.syncBatches) / r.seconds),
      percentileMs(sorted, 50),
      percentileMs(sorted, 90),
      percentileMs(sorted, 99),
      percentileMs(sorted, 100),
    ]),
  );
}

const dir = dirArg ?? (await mkdtemp(join(tmpdir(), 'pompe-bench-store-')));
const db = await Db.open(join(dir, 'db'), { writeBufferBytes });
try {
  console.log(`store benchmark, node ${process.version}, ${secondsPerCase} s per case, in ${dir}, write buffer ${writeBufferBytes / 2 ** 20} MiB`);
  console.log(`write = 1 × ${BIG_VALUE_BYTES / 1024} KiB + ${SMALL_RECORDS_PER_WRITE} × ${SMALL_VALUE_BYTES} B; latency from enqueue to resolve`);
  console.log(row(['case', 'writes/s', 'batches/s', 'MB/s', 'ops/batch', 'fsyncs/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms']));
  for (const sync of [false, true]) {
    const mode = sync ? 'sync' : 'no sync';
    await runCase(db, `one 100 B write at a time, ${mode}`, (w) => sequential(w, sync, false));
    await runCase(db, `steady ${PEAK_WRITES_PER_SECOND}/s, ${mode}`, (w) => steady(w, sync, PEAK_WRITES_PER_SECOND));
    await runCase(db, `steady ${2 * PEAK_WRITES_PER_SECOND}/s, ${mode}`, (w) => steady(w, sync, 2 * PEAK_WRITES_PER_SECOND));
    await runCase(db, `saturated (${WRITERS_SATURATED} writers), ${mode}`, (w) => saturated(w, sync));
  }
  console.log(`prune scans: ${PRUNE_ROUNDS} rounds of ${PRUNE_KEYS_PER_ROUND} keys, each deleting those ${PRUNE_LAG_ROUNDS} rounds old`);
  for (const fromLastEnd of [false, true]) {
    const ms = await pruneScans(db, fromLastEnd);
    console.log(`  scanning from ${fromLastEnd ? "the last prune's end" : "the bucket's start"}: ${fmt(ms, 2)} ms per prune`);
  }
} finally {
  await db.close();
  if (dirArg === undefined) await rm(dir, { recursive: true, force: true });
  else await rm(join(dir, 'db'), { recursive: true, force: true });
}
