import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BATCH_TRAILER_BYTES,
  BATCH_VERSION,
  BatchMode,
  DIRECT_COMMAND_HEADER_BYTES,
  GATEWAY_COMMAND_OVERHEAD_BYTES,
  batchBody,
  batchCollectorKey,
  batchSignature,
  batchSize,
  decodeBatchCommands,
  decodeResults,
  encodeBatch,
  encodeResults,
  readBatchHeader,
  type BatchInput,
  type DirectCommand,
  type SignedCommand,
} from './batch.js';
import { concatBytes, toHex } from './bytes.js';
import { ErrorCode, type Result } from './errors.js';
import { MAX_BATCH_BYTES, MAX_COMMAND_BYTES, MAX_COMMANDS_PER_BATCH, MAX_RESULT_BYTES, MAX_RESULTS_BLOB_BYTES } from './limits.js';

const key = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
/** Format tests: the signature's value does not matter here (batchAuth.test.ts checks real ones). */
const SIG = new Uint8Array(64).fill(0xab);
const fakeSign = (): Uint8Array => SIG;
const encode = (input: BatchInput): Uint8Array => encodeBatch(input, fakeSign);

const seqArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const directCommandArb: fc.Arbitrary<DirectCommand> = fc.record({ seq: seqArb, payload: fc.uint8Array({ maxLength: 64 }) });
const signedCommandArb: fc.Arbitrary<SignedCommand> = fc.record({
  clientKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  seq: seqArb,
  expiresAtUs: fc.maxSafeNat(),
  payload: fc.uint8Array({ maxLength: 64 }),
  sig: fc.uint8Array({ minLength: 64, maxLength: 64 }),
});
const fieldsArb = fc.record({ collectorKey: fc.uint8Array({ minLength: 32, maxLength: 32 }), nonce: fc.maxSafeNat(), expiresAtUs: fc.maxSafeNat() });
const batchArb: fc.Arbitrary<BatchInput> = fc.oneof(
  fc.record({ fields: fieldsArb, commands: fc.array(directCommandArb, { minLength: 1, maxLength: 20 }) }).map(({ fields, commands }) => ({ ...fields, mode: BatchMode.Direct, commands })),
  fc.record({ fields: fieldsArb, commands: fc.array(signedCommandArb, { minLength: 1, maxLength: 10 }) }).map(({ fields, commands }) => ({ ...fields, mode: BatchMode.Gateway, commands })),
);

const sample: BatchInput = {
  mode: BatchMode.Direct,
  collectorKey: key(7),
  nonce: 2 ** 40 + 3,
  expiresAtUs: 1_700_000_000_000_000,
  commands: [
    { seq: 1, payload: Uint8Array.from([1, 2, 3]) },
    { seq: 2 ** 53 - 1, payload: new Uint8Array(0) },
    { seq: 2, payload: new Uint8Array(32).fill(9) },
  ],
};

const gatewaySample: BatchInput = {
  mode: BatchMode.Gateway,
  collectorKey: key(1),
  nonce: 5,
  expiresAtUs: 2_000_000,
  commands: [
    { clientKey: key(2), seq: 1, expiresAtUs: 1_500_000, payload: Uint8Array.of(4, 5), sig: new Uint8Array(64).fill(2) },
    { clientKey: key(3), seq: 9, expiresAtUs: 1_800_000, payload: new Uint8Array(0), sig: new Uint8Array(64).fill(3) },
  ],
};

function expectErr<T>(result: Result<T>, code: ErrorCode, mentions?: string): void {
  if (result.ok) throw new Error(`expected ${code}, got a value`);
  expect(result.error.code).toBe(code);
  if (mentions !== undefined) expect(result.error.message).toContain(mentions);
}

/** What a batch's commands look like decoded, in comparable form. */
function expected(input: BatchInput): unknown[] {
  return input.commands.map((c) =>
    input.mode === BatchMode.Direct
      ? { clientKey: toHex(input.collectorKey), seq: c.seq, expiresAtUs: input.expiresAtUs, payload: toHex(c.payload), sig: null }
      : { clientKey: toHex((c as SignedCommand).clientKey), seq: c.seq, expiresAtUs: (c as SignedCommand).expiresAtUs, payload: toHex(c.payload), sig: toHex((c as SignedCommand).sig) },
  );
}
function decodedPlain(bytes: Uint8Array): unknown[] | string {
  const decoded = decodeBatchCommands(bytes);
  if (!decoded.ok) return decoded.error.message;
  return decoded.value.map((c) => ({ clientKey: toHex(c.clientKey), seq: c.seq, expiresAtUs: c.expiresAtUs, payload: toHex(c.payload), sig: c.sig === null ? null : toHex(c.sig) }));
}

/** Overwrites a big-endian u32 at `at` in a copy of `bytes`. */
function withU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  new DataView(out.buffer).setUint32(at, value);
  return out;
}

/** Offset of the command count in the header. */
const COUNT_AT = BATCH_HEADER_BYTES - 4;

describe('batch format', () => {
  it('lays out a direct batch big-endian, in exactly the computed size, signature last', () => {
    const bytes = encode(sample);
    expect(bytes.length).toBe(batchSize(sample));
    expect(bytes.length).toBe(BATCH_HEADER_BYTES + 3 * DIRECT_COMMAND_HEADER_BYTES + 3 + 0 + 32 + BATCH_TRAILER_BYTES);
    expect(bytes.buffer.byteLength).toBe(bytes.length); // one allocation of the exact size
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect(bytes[0]).toBe(BATCH_MAGIC);
    expect(bytes[1]).toBe(BATCH_VERSION);
    expect(bytes[2]).toBe(BatchMode.Direct);
    expect(toHex(bytes.subarray(3, 35))).toBe(toHex(key(7)));
    expect(Number(view.getBigUint64(35))).toBe(2 ** 40 + 3);
    expect(Number(view.getBigUint64(43))).toBe(1_700_000_000_000_000);
    expect(view.getUint32(51)).toBe(3);
    expect(Number(view.getBigUint64(55))).toBe(1); // first command's seq
    expect(view.getUint32(63)).toBe(3); // its length
    expect(Array.from(bytes.subarray(67, 70))).toEqual([1, 2, 3]);
    expect(toHex(batchSignature(bytes))).toBe(toHex(SIG));
    expect(batchBody(bytes).length).toBe(bytes.length - BATCH_TRAILER_BYTES);
    expect(toHex(batchCollectorKey(bytes))).toBe(toHex(key(7)));
  });

  it('signs exactly the bytes before the signature', () => {
    let signed: Uint8Array | null = null;
    const bytes = encodeBatch(sample, (body) => {
      signed = Uint8Array.from(body);
      return SIG;
    });
    expect(toHex(signed!)).toBe(toHex(batchBody(bytes)));
  });

  it('lays out a gateway batch: each command with its client key, deadline and signature', () => {
    const bytes = encode(gatewaySample);
    expect(bytes.length).toBe(BATCH_HEADER_BYTES + 2 * GATEWAY_COMMAND_OVERHEAD_BYTES + 2 + BATCH_TRAILER_BYTES);
    expect(bytes[2]).toBe(BatchMode.Gateway);
    expect(decodedPlain(bytes)).toEqual(expected(gatewaySample));
  });

  it('round-trips random batches of both modes', () => {
    fc.assert(
      fc.property(batchArb, (batch) => {
        const bytes = encode(batch);
        const header = readBatchHeader(bytes);
        expect(header.ok && { ...header.value, collectorKey: toHex(header.value.collectorKey) }).toEqual({
          mode: batch.mode,
          collectorKey: toHex(batch.collectorKey),
          nonce: batch.nonce,
          expiresAtUs: batch.expiresAtUs,
          commandCount: batch.commands.length,
        });
        expect(decodedPlain(bytes)).toEqual(expected(batch));
      }),
      { numRuns: 300 },
    );
  });

  it('returns keys and payloads as views into the batch bytes; direct commands share the collector key', () => {
    const bytes = encode(sample);
    const commands = decodeBatchCommands(bytes);
    expect(commands.ok && commands.value[2]!.payload.buffer).toBe(bytes.buffer);
    expect(commands.ok && commands.value[0]!.clientKey).toBe(commands.ok && commands.value[2]!.clientKey);
  });

  it('reads the header without walking the commands', () => {
    // Corrupt the first command: the header read still succeeds (it is O(1)); the full walk fails.
    const bytes = encode(sample);
    const broken = withU32(bytes, BATCH_HEADER_BYTES + 8, 1_000_000);
    expect(readBatchHeader(broken).ok).toBe(true);
    expectErr(decodeBatchCommands(broken), ErrorCode.BadBatch, 'command 0');
  });

  it('rejects a bad magic, version or mode', () => {
    const bytes = encode(sample);
    const badMagic = Uint8Array.from(bytes);
    badMagic[0] = 0x51;
    expectErr(readBatchHeader(badMagic), ErrorCode.BadBatch, 'magic');
    expectErr(decodeBatchCommands(badMagic), ErrorCode.BadBatch, 'magic');
    const oldVersion = Uint8Array.from(bytes);
    oldVersion[1] = 1;
    expectErr(readBatchHeader(oldVersion), ErrorCode.BadBatch, 'version 1');
    const badMode = Uint8Array.from(bytes);
    badMode[2] = 2;
    expectErr(readBatchHeader(badMode), ErrorCode.BadBatch, 'mode 2');
  });

  it('rejects headers that are short, oversized, empty of commands or out of range', () => {
    const bytes = encode(sample);
    expectErr(readBatchHeader(new Uint8Array(0)), ErrorCode.BadBatch, 'shorter than its header');
    expectErr(readBatchHeader(bytes.subarray(0, BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES - 1)), ErrorCode.BadBatch, 'shorter than its header');
    expectErr(readBatchHeader(new Uint8Array(MAX_BATCH_BYTES + 1)), ErrorCode.BadBatch, 'exceeds');
    expectErr(readBatchHeader(withU32(bytes, COUNT_AT, 0)), ErrorCode.BadBatch, 'command count 0');
    expectErr(readBatchHeader(withU32(bytes, COUNT_AT, MAX_COMMANDS_PER_BATCH + 1)), ErrorCode.BadBatch, 'command count');
    // More commands than the bytes could hold even with empty payloads: caught in O(1).
    expectErr(readBatchHeader(withU32(bytes, COUNT_AT, 1000)), ErrorCode.BadBatch, 'too short for 1000 commands');
    const hugeNonce = Uint8Array.from(bytes);
    hugeNonce[35] = 0x00;
    hugeNonce[36] = 0x20; // nonce = 2^53
    expectErr(readBatchHeader(hugeNonce), ErrorCode.BadBatch, '2^53');
  });

  it('rejects truncation anywhere, in both modes', () => {
    for (const input of [sample, gatewaySample]) {
      const bytes = encode(input);
      for (let len = 0; len < bytes.length; len++) expectErr(decodeBatchCommands(bytes.subarray(0, len)), ErrorCode.BadBatch);
    }
  });

  it('rejects trailing bytes and a count that does not match the commands', () => {
    const bytes = encode(sample);
    expectErr(decodeBatchCommands(concatBytes(bytes, Uint8Array.of(0))), ErrorCode.BadBatch, '1 bytes after its 3 commands');
    expectErr(decodeBatchCommands(withU32(bytes, COUNT_AT, 2)), ErrorCode.BadBatch, 'after its 2 commands');
    expectErr(decodeBatchCommands(withU32(bytes, COUNT_AT, 4)), ErrorCode.BadBatch, 'command 3');
  });

  it('rejects a command above MAX_COMMAND_BYTES and u64 fields above 2^53 − 1', () => {
    const one = encode({ ...sample, commands: [{ seq: 1, payload: new Uint8Array(8) }] });
    const claimsHuge = withU32(one, BATCH_HEADER_BYTES + 8, MAX_COMMAND_BYTES + 1);
    expectErr(decodeBatchCommands(claimsHuge), ErrorCode.BadBatch, 'exceeds');
    const hugeSeq = Uint8Array.from(one);
    hugeSeq[BATCH_HEADER_BYTES] = 0xff;
    expectErr(decodeBatchCommands(hugeSeq), ErrorCode.BadBatch, '2^53');
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
        const bytes = Uint8Array.from(encode(batch));
        bytes[at % bytes.length] = byte;
        expect(typeof decodeBatchCommands(bytes).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('asserts on batches the collector should have split (programmer errors)', () => {
    expect(() => encode({ ...sample, commands: [] })).toThrow(/1\.\./);
    expect(() => encode({ ...sample, commands: [{ seq: 1, payload: new Uint8Array(MAX_COMMAND_BYTES + 1) }] })).toThrow(/MAX_COMMAND_BYTES/);
    const big = new Uint8Array(MAX_COMMAND_BYTES);
    expect(() => encode({ ...sample, commands: Array.from({ length: 5 }, () => ({ seq: 1, payload: big })) })).toThrow(/MAX_BATCH_BYTES/);
    expect(() => encode({ ...sample, nonce: -1 })).toThrow();
    expect(() => encode({ ...sample, collectorKey: new Uint8Array(31) })).toThrow(/32 bytes/);
    expect(() => encodeBatch(sample, () => new Uint8Array(63))).toThrow(/64 bytes/);
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
