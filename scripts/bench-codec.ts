/**
 * Codec micro-benchmark: encode and decode throughput of the hot-path messages. A script that
 * prints figures, not a test (DESIGN.md "Performance").
 *
 *   npm run build && node dist/scripts/bench-codec.js [secondsPerCase]
 */
import { performance } from 'node:perf_hooks';
import { BatchMode, decodeBatchCommands, encodeBatch, encodeResults, readBatchHeader } from '../common/batch.js';
import { decodeBlockPayload, decodeMessage, encodeBlockPayload, encodeMessage, type DecodeContext } from '../common/codec.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { BlockPayload, Message, OrderingCert, SealEntry } from '../common/messages.js';

const N = 4;
const Q = 3;
const ctx: DecodeContext = { replicaCount: N };
const secondsPerCase = Number(process.argv[2] ?? '1');

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed + i * 131) & 0xff;
  return out;
}
const digest = (seed: number): Digest => bytes(32, seed) as Digest;
const sig = (seed: number): Uint8Array => bytes(64, seed);
const TS = 1_760_000_000_000_000;

function orderingCert(seed: number): OrderingCert {
  return { digest: digest(seed), stamps: Array.from({ length: Q }, (_, r) => ({ replica: r as ReplicaId, ts: TS + seed * 10 + r, sig: sig(seed + r) })) };
}

function blockPayload(entryCount: number): BlockPayload {
  const entries: SealEntry[] = Array.from({ length: entryCount }, (_, i) => ({ digest: digest(i), ts: TS + i * 10, ocHash: digest(i + 7) }));
  const all = new Uint8Array((entryCount + 7) >>> 3).fill(0xff);
  if (entryCount % 8 !== 0) all[all.length - 1] = (1 << (entryCount % 8)) - 1;
  return {
    fromSlot: 1000 as Slot,
    toSlot: 1001 as Slot,
    entries,
    ocs: entries.map((_, i) => orderingCert(i)),
    seals: Array.from({ length: Q }, (_, r) => ({ replica: r as ReplicaId, fromSlot: 1000 as Slot, toSlot: 1001 as Slot, include: all, tail: [], sig: sig(r) })),
  };
}

/** Runs `fn` repeatedly for about `seconds` after a warm-up; returns operations per second. */
function opsPerSecond(fn: () => unknown, seconds: number): number {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) fn();
  let ops = 0;
  let batch = 1;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let now = started;
  while (now < deadline) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = performance.now();
    if (now - started < 50) batch *= 2;
  }
  return ops / ((now - started) / 1000);
}

interface Case {
  readonly name: string;
  readonly bytes: number;
  readonly encode: () => unknown;
  readonly decode: () => unknown;
}

function messageCase(name: string, msg: Message): Case {
  const frame = encodeMessage(msg);
  const check = decodeMessage(frame, ctx);
  if (!check.ok) throw new Error(`${name}: ${check.error.message}`);
  return { name, bytes: frame.length, encode: () => encodeMessage(msg), decode: () => decodeMessage(frame, ctx) };
}

/** The codec does not look at signatures: a fixed one will do. */
const fakeSign = (): Uint8Array => new Uint8Array(64);
const batchOf = (payload: (i: number) => Uint8Array, expiresAtUs: number): Uint8Array =>
  encodeBatch(
    { mode: BatchMode.Direct, collectorKey: bytes(32, 1), nonce: 42, expiresAtUs, commands: Array.from({ length: 1000 }, (_, i) => ({ seq: i + 1, payload: payload(i) })) },
    fakeSign,
  );
const batch = batchOf((i) => bytes(32, i), TS + 60_000_000);
const payload = blockPayload(400);
const payloadBytes = encodeBlockPayload(payload);

const cases: Case[] = [
  messageCase('submit (1000 × 32 B)', { type: 'submit', batch }),
  messageCase('tsReply', { type: 'tsReply', digest: digest(1), stamp: { replica: 2 as ReplicaId, ts: TS, sig: sig(1) } }),
  messageCase('sequence (n=4 OC)', { type: 'sequence', oc: orderingCert(1), batch: null }),
  messageCase('ack', { type: 'ack', digest: digest(1), ocHash: digest(2), replica: 1 as ReplicaId, sig: sig(2) }),
  messageCase('executed (1000 results)', {
    type: 'executed',
    digest: digest(1),
    position: 12345,
    ts: 1_700_000_000_000_000,
    results: encodeResults(Array.from({ length: 1000 }, (_, i) => bytes(8, i))),
    replica: 1 as ReplicaId,
    sig: sig(3),
  }),
  {
    name: 'block payload (400 entries)',
    bytes: payloadBytes.length,
    encode: () => encodeBlockPayload(payload),
    decode: () => decodeBlockPayload(payloadBytes, ctx),
  },
  {
    name: 'batch (1000 × 32 B)',
    bytes: batch.length,
    encode: () => batchOf(() => batch.subarray(0, 32), TS),
    decode: () => decodeBatchCommands(batch),
  },
  { name: 'batch header only', bytes: batch.length, encode: () => undefined, decode: () => readBatchHeader(batch) },
];

const fmt = (value: number, digits = 0): string => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(30) : c.padStart(14))).join('');

console.log(`codec benchmark, node ${process.version}, ${secondsPerCase}s per case`);
console.log(row(['case', 'bytes', 'encode op/s', 'encode MB/s', 'decode op/s', 'decode MB/s']));
for (const c of cases) {
  const enc = c.name === 'batch header only' ? NaN : opsPerSecond(c.encode, secondsPerCase);
  const dec = opsPerSecond(c.decode, secondsPerCase);
  const mb = (ops: number): string => (Number.isNaN(ops) ? '-' : fmt((ops * c.bytes) / 1e6, 1));
  console.log(row([c.name, fmt(c.bytes), Number.isNaN(enc) ? '-' : fmt(enc), mb(enc), fmt(dec), mb(dec)]));
}
