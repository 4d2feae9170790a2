import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BATCH_VERSION,
  COMMAND_HEADER_BYTES,
  batchSize,
  decodeBatchCommands,
  decodeResults,
  encodeBatch,
  encodeResults,
  readBatchHeader,
  type BatchInput,
  type Command,
} from './batch.js';
import { concatBytes, toHex } from './bytes.js';
import { ErrorCode, type Result } from './errors.js';
import { MAX_BATCH_BYTES, MAX_COMMAND_BYTES, MAX_COMMANDS_PER_BATCH, MAX_RESULT_BYTES, MAX_RESULTS_BLOB_BYTES } from './limits.js';

const commandArb: fc.Arbitrary<Command> = fc.record({ clientId: fc.maxSafeNat(), seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), payload: fc.uint8Array({ maxLength: 64 }) });
const batchArb: fc.Arbitrary<BatchInput> = fc.record({
  collectorId: fc.maxSafeNat(),
  nonce: fc.maxSafeNat(),
  expiresAtUs: fc.maxSafeNat(),
  commands: fc.array(commandArb, { minLength: 1, maxLength: 20 }),
});

const sample: BatchInput = {
  collectorId: 7,
  nonce: 2 ** 40 + 3,
  expiresAtUs: 1_700_000_000_000_000,
  commands: [
    { clientId: 1, seq: 1, payload: Uint8Array.from([1, 2, 3]) },
    { clientId: 2, seq: 2 ** 53 - 1, payload: new Uint8Array(0) },
    { clientId: 1, seq: 2, payload: new Uint8Array(32).fill(9) },
  ],
};

function expectErr<T>(result: Result<T>, code: ErrorCode, mentions?: string): void {
  if (result.ok) throw new Error(`expected ${code}, got a value`);
  expect(result.error.code).toBe(code);
  if (mentions !== undefined) expect(result.error.message).toContain(mentions);
}

const plainCommands = (commands: readonly Command[]) => commands.map((c) => ({ ...c, payload: toHex(c.payload) }));

/** Overwrites a big-endian u32 at `at` in a copy of `bytes`. */
function withU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setUint32(at, value);
  return out;
}

describe('batch format', () => {
  it('lays out the header and commands big-endian, in exactly the computed size', () => {
    const bytes = encodeBatch(sample);
    expect(bytes.length).toBe(batchSize(sample.commands));
    expect(bytes.length).toBe(BATCH_HEADER_BYTES + 3 * COMMAND_HEADER_BYTES + 3 + 0 + 32);
    expect(bytes.buffer.byteLength).toBe(bytes.length); // one allocation of the exact size
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect(bytes[0]).toBe(BATCH_MAGIC);
    expect(bytes[1]).toBe(BATCH_VERSION);
    expect(Number(view.getBigUint64(2))).toBe(7);
    expect(Number(view.getBigUint64(10))).toBe(2 ** 40 + 3);
    expect(Number(view.getBigUint64(18))).toBe(1_700_000_000_000_000);
    expect(view.getUint32(26)).toBe(3);
    expect(Number(view.getBigUint64(30))).toBe(1); // first command's clientId
    expect(view.getUint32(46)).toBe(3); // its length
    expect(Array.from(bytes.subarray(50, 53))).toEqual([1, 2, 3]);
  });

  it('round-trips random batches', () => {
    fc.assert(
      fc.property(batchArb, (batch) => {
        const bytes = encodeBatch(batch);
        const header = readBatchHeader(bytes);
        expect(header.ok && header.value).toEqual({
          collectorId: batch.collectorId,
          nonce: batch.nonce,
          expiresAtUs: batch.expiresAtUs,
          commandCount: batch.commands.length,
        });
        const commands = decodeBatchCommands(bytes);
        expect(commands.ok && plainCommands(commands.value)).toEqual(plainCommands(batch.commands));
      }),
      { numRuns: 300 },
    );
  });

  it('returns payloads as views into the batch bytes', () => {
    const bytes = encodeBatch(sample);
    const commands = decodeBatchCommands(bytes);
    expect(commands.ok && commands.value[2]!.payload.buffer).toBe(bytes.buffer);
  });

  it('reads the header without walking the commands', () => {
    // Corrupt every command: the header read still succeeds (it is O(1)); the full walk fails.
    const bytes = encodeBatch(sample);
    const broken = withU32(bytes, BATCH_HEADER_BYTES + 16, 1_000_000);
    expect(readBatchHeader(broken).ok).toBe(true);
    expectErr(decodeBatchCommands(broken), ErrorCode.BadBatch, 'command 0');
  });

  it('rejects a bad magic or version', () => {
    const bytes = encodeBatch(sample);
    const badMagic = Uint8Array.from(bytes);
    badMagic[0] = 0x51;
    expectErr(readBatchHeader(badMagic), ErrorCode.BadBatch, 'magic');
    expectErr(decodeBatchCommands(badMagic), ErrorCode.BadBatch, 'magic');
    const badVersion = Uint8Array.from(bytes);
    badVersion[1] = 2;
    expectErr(readBatchHeader(badVersion), ErrorCode.BadBatch, 'version 2');
  });

  it('rejects headers that are short, oversized, empty of commands or out of range', () => {
    const bytes = encodeBatch(sample);
    expectErr(readBatchHeader(new Uint8Array(0)), ErrorCode.BadBatch, 'shorter than its header');
    expectErr(readBatchHeader(bytes.subarray(0, BATCH_HEADER_BYTES - 1)), ErrorCode.BadBatch, 'shorter than its header');
    expectErr(readBatchHeader(new Uint8Array(MAX_BATCH_BYTES + 1)), ErrorCode.BadBatch, 'exceeds');
    expectErr(readBatchHeader(withU32(bytes, 26, 0)), ErrorCode.BadBatch, 'command count 0');
    expectErr(readBatchHeader(withU32(bytes, 26, MAX_COMMANDS_PER_BATCH + 1)), ErrorCode.BadBatch, 'command count');
    // More commands than the bytes could hold even with empty payloads: caught in O(1).
    expectErr(readBatchHeader(withU32(bytes, 26, 1000)), ErrorCode.BadBatch, 'too short for 1000 commands');
    const hugeCollector = Uint8Array.from(bytes);
    hugeCollector[2] = 0x00;
    hugeCollector[3] = 0x20; // collectorId = 2^53
    expectErr(readBatchHeader(hugeCollector), ErrorCode.BadBatch, '2^53');
  });

  it('rejects truncation anywhere', () => {
    const bytes = encodeBatch(sample);
    for (let len = 0; len < bytes.length; len++) {
      const result = decodeBatchCommands(bytes.subarray(0, len));
      expectErr(result, ErrorCode.BadBatch);
    }
  });

  it('rejects trailing bytes and a count that does not match the commands', () => {
    const bytes = encodeBatch(sample);
    expectErr(decodeBatchCommands(concatBytes(bytes, Uint8Array.of(0))), ErrorCode.BadBatch, '1 bytes after its 3 commands');
    expectErr(decodeBatchCommands(withU32(bytes, 26, 2)), ErrorCode.BadBatch, 'after its 2 commands');
    expectErr(decodeBatchCommands(withU32(bytes, 26, 4)), ErrorCode.BadBatch, 'command 3');
  });

  it('rejects a command above MAX_COMMAND_BYTES and u64 fields above 2^53 − 1', () => {
    const one = encodeBatch({ ...sample, commands: [{ clientId: 1, seq: 1, payload: new Uint8Array(8) }] });
    const claimsHuge = withU32(one, BATCH_HEADER_BYTES + 16, MAX_COMMAND_BYTES + 1);
    expectErr(decodeBatchCommands(claimsHuge), ErrorCode.BadBatch, 'exceeds');
    const hugeClient = Uint8Array.from(one);
    hugeClient[BATCH_HEADER_BYTES] = 0xff;
    expectErr(decodeBatchCommands(hugeClient), ErrorCode.BadBatch, '2^53');
  });

  it('never throws on random bytes or random corruptions', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(typeof readBatchHeader(bytes).ok).toBe('boolean');
        expect(typeof decodeBatchCommands(bytes).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(batchArb, fc.nat(), fc.nat({ max: 255 }), (batch, at, byte) => {
        const bytes = Uint8Array.from(encodeBatch(batch));
        bytes[at % bytes.length] = byte;
        expect(typeof decodeBatchCommands(bytes).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('asserts on batches the collector should have split (programmer errors)', () => {
    expect(() => encodeBatch({ ...sample, commands: [] })).toThrow(/1\.\./);
    expect(() => encodeBatch({ ...sample, commands: [{ clientId: 1, seq: 1, payload: new Uint8Array(MAX_COMMAND_BYTES + 1) }] })).toThrow(/MAX_COMMAND_BYTES/);
    const big = new Uint8Array(MAX_COMMAND_BYTES);
    expect(() => encodeBatch({ ...sample, commands: Array.from({ length: 5 }, () => ({ clientId: 1, seq: 1, payload: big })) })).toThrow(/MAX_BATCH_BYTES/);
    expect(() => encodeBatch({ ...sample, nonce: -1 })).toThrow();
  });
});

describe('results blob', () => {
  it('round-trips, with views into the blob', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 30 }), (results) => {
        const blob = encodeResults(results);
        expect(blob.length).toBe(4 + results.reduce((n, r) => n + 4 + r.length, 0));
        const back = decodeResults(blob);
        expect(back.ok && back.value.map(toHex)).toEqual(results.map(toHex));
      }),
      { numRuns: 300 },
    );
    const blob = encodeResults([Uint8Array.of(1, 2)]);
    const back = decodeResults(blob);
    expect(back.ok && back.value[0]!.buffer).toBe(blob.buffer);
  });

  it('rejects truncation, trailing bytes, lying counts and oversized results', () => {
    const blob = encodeResults([Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(4)]);
    for (let len = 0; len < blob.length; len++) expectErr(decodeResults(blob.subarray(0, len)), ErrorCode.InvalidField);
    expectErr(decodeResults(concatBytes(blob, Uint8Array.of(0))), ErrorCode.InvalidField, 'after its 3 results');
    expectErr(decodeResults(withU32(blob, 0, 0xffff_ffff)), ErrorCode.InvalidField, 'count');
    expectErr(decodeResults(withU32(blob, 0, 2)), ErrorCode.InvalidField, 'after its 2 results');
    const oneBig = withU32(encodeResults([new Uint8Array(8)]), 4, MAX_RESULT_BYTES + 1);
    expectErr(decodeResults(oneBig), ErrorCode.InvalidField, 'exceed');
    expectErr(decodeResults(new Uint8Array(MAX_RESULTS_BLOB_BYTES + 1)), ErrorCode.InvalidField, 'exceeds');
  });

  it('asserts on results the state machine should have bounded', () => {
    expect(() => encodeResults([new Uint8Array(MAX_RESULT_BYTES + 1)])).toThrow(/MAX_RESULT_BYTES/);
  });
});
