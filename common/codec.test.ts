import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { concatBytes, toHex } from './bytes.js';
import {
  MessageTag,
  NO_SEAL_ATTACHMENT,
  decodeBlock,
  decodeBlockPayload,
  decodeCheckpointManifest,
  decodeMessage,
  decodeSeal,
  decodeSealAttachment,
  encodeBlock,
  encodeBlockPayload,
  encodeCheckpointManifest,
  encodeMessage,
  encodeSeal,
  encodeSealAttachment,
  type DecodeContext,
} from './codec.js';
import { ErrorCode, type Result } from './errors.js';
import type { Digest, Height, ReplicaId, Slot, View } from './ids.js';
import {
  MAX_BATCH_BYTES,
  MAX_BLOCK_ENTRIES,
  MAX_CHECKPOINT_CHUNKS,
  MAX_FRAME_BYTES,
  MAX_REPLICAS,
  MAX_SEAL_BYTES,
  MAX_SEAL_ENTRIES,
  MAX_SYNC_BLOCKS,
} from './limits.js';
import {
  RefusalReason,
  type Block,
  type BlockPayload,
  type Message,
  type MessageType,
  type OrderingCert,
  type PayloadSeal,
  type QuorumCert,
  type Seal,
  type SealEntry,
  type SignedTimestamp,
  type TimeoutCert,
} from './messages.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** A Packr for crafting frames by hand, including invalid ones. */
const raw = new Packr({ useRecords: false });
const pack = (value: unknown): Uint8Array => raw.pack(value);
const cat = (...parts: (Uint8Array | number[])[]): Uint8Array => concatBytes(...parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))));

/** Deterministic filler bytes, so failures are reproducible. */
function filled(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}
const dg = (seed: number): Digest => filled(32, seed) as Digest;
const sg = (seed: number): Uint8Array => filled(64, seed);

function bitmapOf(bits: readonly boolean[]): Uint8Array {
  const out = new Uint8Array((bits.length + 7) >>> 3);
  bits.forEach((set, i) => {
    if (set) out[i >>> 3]! |= 1 << (i & 7);
  });
  return out;
}

/** Deep copy with every byte field turned into hex, so views and copies compare equal. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { hex: toHex(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function expectErr<T>(result: Result<T>, code: ErrorCode, mentions?: string): void {
  if (result.ok) throw new Error(`expected ${code}, decoded ${JSON.stringify(plain(result.value)).slice(0, 200)}`);
  expect(result.error.code).toBe(code);
  if (mentions !== undefined) expect(result.error.message).toContain(mentions);
}

function decodeOk(frame: Uint8Array, ctx: DecodeContext): Message {
  const result = decodeMessage(frame, ctx);
  if (!result.ok) throw new Error(`decode failed: ${result.error.code} ${result.error.message}`);
  return result.value;
}

const ctx4: DecodeContext = { replicaCount: 4 };

// ---------------------------------------------------------------------------------------------
// Fixed samples: one valid message of every type (n = 4).

const qc: QuorumCert = { view: 7 as View, block: dg(1), signers: bitmapOf([true, false, true, true]), sigs: [sg(1), sg(2), sg(3)] };
const genesisQc: QuorumCert = { view: 0 as View, block: dg(0), signers: new Uint8Array(1), sigs: [] };
const tc: TimeoutCert = {
  view: 9 as View,
  signers: bitmapOf([true, true, true, false]),
  highQcViews: [7 as View, 6 as View, 7 as View],
  sigs: [sg(4), sg(5), sg(6)],
};
const block: Block = { parent: dg(2), view: 8 as View, height: 5 as Height, proposer: 3 as ReplicaId, justify: qc, payload: filled(100, 3) };
const stamp = (replica: number, ts: number): SignedTimestamp => ({ replica: replica as ReplicaId, ts, sig: sg(replica + 10) });
const oc: OrderingCert = { digest: dg(3), stamps: [stamp(0, 1_700_000_000_000_001), stamp(1, 1_700_000_000_000_005), stamp(3, 1_700_000_000_000_003)] };
const entry = (seed: number, ts: number): SealEntry => ({ digest: dg(seed), ts, ocHash: dg(seed + 100) });
const seal: Seal = { replica: 2 as ReplicaId, fromSlot: 10 as Slot, toSlot: 12 as Slot, entries: [entry(1, 1000), entry(2, 2000)], sig: sg(7) };
const payload: BlockPayload = {
  fromSlot: 10 as Slot,
  toSlot: 12 as Slot,
  entries: [entry(1, 1000), entry(2, 2000), entry(3, 2500)],
  ocs: [oc],
  seals: [
    { replica: 0 as ReplicaId, fromSlot: 9 as Slot, toSlot: 13 as Slot, include: bitmapOf([true, true, false]), tail: [entry(9, 9000)], sig: sg(8) },
    { replica: 1 as ReplicaId, fromSlot: 10 as Slot, toSlot: 12 as Slot, include: bitmapOf([true, true, true]), tail: [], sig: sg(9) },
  ],
};

const checkpointStatement = { height: 4096 as Height, toSlot: 2000 as Slot, position: 812, block: dg(15), state: dg(16) };

function samples(): Message[] {
  return [
    { type: 'proposal', block, tc: null },
    { type: 'proposal', block: { ...block, justify: genesisQc, payload: new Uint8Array(0) }, tc },
    { type: 'vote', view: 8 as View, block: dg(4), voter: 1 as ReplicaId, sig: sg(11), attachment: encodeSeal(seal) },
    { type: 'vote', view: 8 as View, block: dg(4), voter: 1 as ReplicaId, sig: sg(11), attachment: NO_SEAL_ATTACHMENT },
    { type: 'timeout', view: 10 as View, voter: 2 as ReplicaId, highQc: qc, sig: sg(12), attachment: encodeSeal(seal), lastTc: tc },
    { type: 'timeout', view: 10 as View, voter: 2 as ReplicaId, highQc: genesisQc, sig: sg(12), attachment: NO_SEAL_ATTACHMENT, lastTc: null },
    { type: 'blockRequest', digest: dg(5), maxBlocks: MAX_SYNC_BLOCKS },
    { type: 'blockResponse', blocks: [block, { ...block, view: 7 as View }] },
    { type: 'batchRequest', digests: [dg(6), dg(7)] },
    { type: 'batchResponse', batches: [filled(300, 1), filled(5, 2)] },
    { type: 'helloChallenge', replica: 0 as ReplicaId, nonce: dg(8) },
    { type: 'hello', replica: 3 as ReplicaId, nonce: dg(8), sig: sg(13) },
    { type: 'clientHello', key: dg(20), nonce: dg(21), sig: sg(22) },
    { type: 'submit', batch: filled(50_000, 4) },
    { type: 'sequence', oc, batch: null },
    { type: 'sequence', oc, batch: filled(1000, 5) },
    { type: 'tsReply', digest: dg(9), stamp: stamp(2, 1_700_000_123_456_789) },
    { type: 'ack', digest: dg(10), ocHash: dg(11), replica: 1 as ReplicaId, sig: sg(14) },
    { type: 'refused', digest: dg(12), replica: 0 as ReplicaId, reason: RefusalReason.Late, frontier: 123_456 },
    { type: 'executed', digest: dg(13), position: 99, ts: 1_700_000_000_000_000, results: filled(40, 6), replica: 2 as ReplicaId, sig: sg(15) },
    { type: 'command', clientKey: dg(23), seq: 2 ** 53 - 1, expiresAtUs: 1_700_000_000_000_000, payload: filled(32, 7), sig: sg(24) },
    { type: 'commandOrdered', seq: 1, digest: dg(14), ts: 1_700_000_000_000_000 },
    { type: 'commandExecuted', seq: 1, position: 0, result: new Uint8Array(0) },
    { type: 'error', code: ErrorCode.InvalidField, message: 'tsReply: sig: expected 64 bytes — ü ✓ 𝄞' },
    { type: 'checkpoint', ...checkpointStatement, replica: 2 as ReplicaId, sig: sg(16) },
    { type: 'checkpointRequest' },
    { type: 'checkpointCert', cert: { ...checkpointStatement, signers: bitmapOf([true, true, false, true]), sigs: [sg(17), sg(18), sg(19)] } },
    { type: 'chunkRequest', height: 4096 as Height, state: dg(16), index: 3 },
    { type: 'chunkResponse', height: 4096 as Height, state: dg(16), index: 3, bytes: filled(2000, 8) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Arbitraries: random valid messages of every type, for any cluster size.

const bytesOf = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const digestArb = bytesOf(32).map((b) => b as Digest);
const sigArb = bytesOf(64);
const uintArb = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat(), fc.constant(Number.MAX_SAFE_INTEGER));
const someBytes = (max: number) => fc.uint8Array({ maxLength: max });
const replicaArb = (n: number) => fc.nat({ max: n - 1 }).map((r) => r as ReplicaId);
const bitsArb = (size: number) => fc.array(fc.boolean(), { minLength: size, maxLength: size });
const rangeArb = fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()).map(([a, b]) => [Math.min(a, b) as Slot, Math.max(a, b) as Slot] as const);

const qcArb = (n: number): fc.Arbitrary<QuorumCert> =>
  bitsArb(n).chain((bits) => {
    const count = bits.filter(Boolean).length;
    return fc.record({ view: uintArb.map((v) => v as View), block: digestArb, signers: fc.constant(bitmapOf(bits)), sigs: fc.array(sigArb, { minLength: count, maxLength: count }) });
  });

const tcArb = (n: number): fc.Arbitrary<TimeoutCert> =>
  bitsArb(n).chain((bits) => {
    const count = bits.filter(Boolean).length;
    return fc.record({
      view: uintArb.map((v) => v as View),
      signers: fc.constant(bitmapOf(bits)),
      highQcViews: fc.array(uintArb.map((v) => v as View), { minLength: count, maxLength: count }),
      sigs: fc.array(sigArb, { minLength: count, maxLength: count }),
    });
  });

const blockArb = (n: number): fc.Arbitrary<Block> =>
  fc.record({
    parent: digestArb,
    view: uintArb.map((v) => v as View),
    height: uintArb.map((v) => v as Height),
    proposer: replicaArb(n),
    justify: qcArb(n),
    payload: someBytes(200),
  });

const stampArb = (n: number): fc.Arbitrary<SignedTimestamp> => fc.record({ replica: replicaArb(n), ts: uintArb, sig: sigArb });
const ocArb = (n: number): fc.Arbitrary<OrderingCert> => fc.record({ digest: digestArb, stamps: fc.array(stampArb(n), { maxLength: Math.min(n, 8) }) });
const entryArb: fc.Arbitrary<SealEntry> = fc.record({ digest: digestArb, ts: uintArb, ocHash: digestArb });

const sealArb = (n: number): fc.Arbitrary<Seal> =>
  fc.record({ replica: replicaArb(n), range: rangeArb, entries: fc.array(entryArb, { maxLength: 6 }), sig: sigArb }).map(({ range, ...rest }) => ({
    ...rest,
    fromSlot: range[0],
    toSlot: range[1],
  }));

const payloadSealArb = (n: number, entries: number): fc.Arbitrary<PayloadSeal> =>
  fc.record({ replica: replicaArb(n), range: rangeArb, bits: bitsArb(entries), tail: fc.array(entryArb, { maxLength: 3 }), sig: sigArb }).map(({ range, bits, ...rest }) => ({
    ...rest,
    fromSlot: range[0],
    toSlot: range[1],
    include: bitmapOf(bits),
  }));

const payloadArb = (n: number): fc.Arbitrary<BlockPayload> =>
  fc.array(entryArb, { maxLength: 20 }).chain((entries) =>
    fc.record({
      range: rangeArb,
      entries: fc.constant(entries),
      ocs: fc.array(ocArb(n), { maxLength: entries.length }),
      seals: fc.array(payloadSealArb(n, entries.length), { maxLength: Math.min(n, 5) }),
    }).map(({ range, ...rest }) => ({ ...rest, fromSlot: range[0], toSlot: range[1] })),
  );

const refusalArb = fc.constantFrom(...Object.values(RefusalReason));
const textArb = (max: number) => fc.string({ unit: 'binary', maxLength: max }).filter((s) => s.length <= max);

function messageArbs(n: number): Record<MessageType, fc.Arbitrary<Message>> {
  const view = uintArb.map((v) => v as View);
  const height = uintArb.map((v) => v as Height);
  const statementArbs = { height, toSlot: uintArb.map((v) => v as Slot), position: uintArb, block: digestArb, state: digestArb };
  const attachment = fc
    .option(
      sealArb(n).chain((seal) => fc.record({ seal: fc.constant(seal), ocs: fc.array(ocArb(n), { maxLength: seal.entries.length }) })),
      { nil: null },
    )
    .map(encodeSealAttachment);
  return {
    proposal: fc.record({ type: fc.constant('proposal' as const), block: blockArb(n), tc: fc.option(tcArb(n), { nil: null }) }),
    vote: fc.record({ type: fc.constant('vote' as const), view, block: digestArb, voter: replicaArb(n), sig: sigArb, attachment }),
    timeout: fc.record({
      type: fc.constant('timeout' as const),
      view,
      voter: replicaArb(n),
      highQc: qcArb(n),
      sig: sigArb,
      attachment,
      lastTc: fc.option(tcArb(n), { nil: null }),
    }),
    blockRequest: fc.record({ type: fc.constant('blockRequest' as const), digest: digestArb, maxBlocks: fc.integer({ min: 1, max: MAX_SYNC_BLOCKS }) }),
    blockResponse: fc.record({ type: fc.constant('blockResponse' as const), blocks: fc.array(blockArb(n), { maxLength: 3 }) }),
    batchRequest: fc.record({ type: fc.constant('batchRequest' as const), digests: fc.array(digestArb, { maxLength: 5 }) }),
    batchResponse: fc.record({ type: fc.constant('batchResponse' as const), batches: fc.array(someBytes(300), { maxLength: 4 }) }),
    helloChallenge: fc.record({ type: fc.constant('helloChallenge' as const), replica: replicaArb(n), nonce: bytesOf(32) }),
    hello: fc.record({ type: fc.constant('hello' as const), replica: replicaArb(n), nonce: bytesOf(32), sig: sigArb }),
    clientHello: fc.record({ type: fc.constant('clientHello' as const), key: bytesOf(32), nonce: bytesOf(32), sig: sigArb }),
    submit: fc.record({ type: fc.constant('submit' as const), batch: someBytes(2000) }),
    sequence: fc.record({ type: fc.constant('sequence' as const), oc: ocArb(n), batch: fc.option(someBytes(500), { nil: null }) }),
    tsReply: fc.record({ type: fc.constant('tsReply' as const), digest: digestArb, stamp: stampArb(n) }),
    ack: fc.record({ type: fc.constant('ack' as const), digest: digestArb, ocHash: digestArb, replica: replicaArb(n), sig: sigArb }),
    refused: fc.record({ type: fc.constant('refused' as const), digest: digestArb, replica: replicaArb(n), reason: refusalArb, frontier: uintArb }),
    executed: fc.record({ type: fc.constant('executed' as const), digest: digestArb, position: uintArb, ts: uintArb, results: someBytes(300), replica: replicaArb(n), sig: sigArb }),
    command: fc.record({ type: fc.constant('command' as const), clientKey: bytesOf(32), seq: uintArb, expiresAtUs: uintArb, payload: someBytes(100), sig: sigArb }),
    commandOrdered: fc.record({ type: fc.constant('commandOrdered' as const), seq: uintArb, digest: digestArb, ts: uintArb }),
    commandExecuted: fc.record({ type: fc.constant('commandExecuted' as const), seq: uintArb, position: uintArb, result: someBytes(100) }),
    error: fc.record({ type: fc.constant('error' as const), code: textArb(64), message: textArb(1024) }),
    checkpoint: fc.record({ type: fc.constant('checkpoint' as const), ...statementArbs, replica: replicaArb(n), sig: sigArb }),
    checkpointRequest: fc.constant({ type: 'checkpointRequest' as const }),
    checkpointCert: bitsArb(n).chain((bits) => {
      const count = bits.filter(Boolean).length;
      return fc.record({
        type: fc.constant('checkpointCert' as const),
        cert: fc.record({ ...statementArbs, signers: fc.constant(bitmapOf(bits)), sigs: fc.array(sigArb, { minLength: count, maxLength: count }) }),
      });
    }),
    chunkRequest: fc.record({ type: fc.constant('chunkRequest' as const), height, state: digestArb, index: fc.nat({ max: MAX_CHECKPOINT_CHUNKS }) }),
    chunkResponse: fc.record({ type: fc.constant('chunkResponse' as const), height, state: digestArb, index: fc.nat({ max: MAX_CHECKPOINT_CHUNKS }), bytes: someBytes(300) }),
  };
}

const clusterSizeArb = fc.constantFrom(1, 2, 4, 7, 8, 9, 16, 100, MAX_REPLICAS);
const anyMessageArb = clusterSizeArb.chain((n) => fc.oneof(...Object.values(messageArbs(n))).map((msg) => ({ n, msg })));

// ---------------------------------------------------------------------------------------------

describe('codec: tag table', () => {
  it('gives every message type a distinct small tag', () => {
    const tags = Object.values(MessageTag);
    expect(new Set(tags).size).toBe(tags.length);
    for (const t of tags) expect(t >= 1 && t <= 127).toBe(true); // one-byte positive fixint
  });

  it('writes the tag first, in a plain msgpack array that msgpackr reads back', () => {
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });
    for (const msg of samples()) {
      const value: unknown = unpackr.unpack(encodeMessage(msg));
      expect(Array.isArray(value)).toBe(true);
      expect((value as unknown[])[0]).toBe(MessageTag[msg.type]);
    }
  });
});

describe('codec: round trip', () => {
  it('has a sample of every message type', () => {
    expect(new Set(samples().map((m) => m.type))).toEqual(new Set(Object.keys(MessageTag)));
  });

  it.each(samples().map((m, i) => [`${i}:${m.type}`, m] as const))('round-trips sample %s', (_, msg) => {
    const frame = encodeMessage(msg);
    expect(plain(decodeOk(frame, ctx4))).toEqual(plain(msg));
    // Decoding does not depend on state left by earlier frames.
    expect(plain(decodeOk(Uint8Array.from(frame), ctx4))).toEqual(plain(msg));
  });

  for (const type of Object.keys(MessageTag) as MessageType[]) {
    it(`round-trips random valid ${type} messages for any n`, () => {
      fc.assert(
        fc.property(clusterSizeArb.chain((n) => messageArbs(n)[type].map((msg) => ({ n, msg }))), ({ n, msg }) => {
          const frame = encodeMessage(msg);
          const decoded = decodeOk(frame, { replicaCount: n });
          expect(plain(decoded)).toEqual(plain(msg));
          // Re-encoding the decoded message gives the same bytes: the encoding is deterministic.
          expect(toHex(encodeMessage(decoded))).toBe(toHex(frame));
        }),
        { numRuns: 60 },
      );
    });
  }

  it('round-trips seals, attachments, blocks and block payloads on their own', () => {
    fc.assert(
      fc.property(clusterSizeArb.chain((n) => fc.record({ n: fc.constant(n), seal: sealArb(n), block: blockArb(n), payload: payloadArb(n) })), ({ n, seal: s, block: b, payload: p }) => {
        const c = { replicaCount: n };
        const sealR = decodeSeal(encodeSeal(s), c);
        const blockR = decodeBlock(encodeBlock(b), c);
        const payloadR = decodeBlockPayload(encodeBlockPayload(p), c);
        expect(sealR.ok && plain(sealR.value)).toEqual(plain(s));
        expect(blockR.ok && plain(blockR.value)).toEqual(plain(b));
        expect(payloadR.ok && plain(payloadR.value)).toEqual(plain(p));
      }),
      { numRuns: 100 },
    );
    const none = decodeSealAttachment(NO_SEAL_ATTACHMENT, ctx4);
    expect(none.ok && none.value).toBe(null);
    const withOcs = { seal, ocs: [] };
    const some = decodeSealAttachment(encodeSealAttachment(withOcs), ctx4);
    expect(some.ok && plain(some.value)).toEqual(plain(withOcs));
    expectErr(decodeSeal(new Uint8Array(0), ctx4), ErrorCode.MalformedFrame);
  });

  it('fits a seal of MAX_SEAL_ENTRIES entries with the largest timestamps in MAX_SEAL_BYTES', () => {
    const entries = Array.from({ length: MAX_SEAL_ENTRIES }, (_, i) => ({ digest: dg(i), ts: Number.MAX_SAFE_INTEGER, ocHash: dg(i + 1) }));
    const bytes = encodeSeal({ ...seal, fromSlot: Number.MAX_SAFE_INTEGER as Slot, toSlot: Number.MAX_SAFE_INTEGER as Slot, entries });
    expect(bytes.length).toBeLessThanOrEqual(MAX_SEAL_BYTES);
    const back = decodeSeal(bytes, ctx4);
    expect(back.ok && back.value.entries.length).toBe(MAX_SEAL_ENTRIES);
  });

  it('returns byte fields as views into the frame, without copying', () => {
    const frame = encodeMessage({ type: 'submit', batch: filled(1000, 1) });
    const msg = decodeOk(frame, ctx4);
    expect(msg.type === 'submit' && msg.batch.buffer).toBe(frame.buffer);
  });
});

describe('codec: integers', () => {
  // The integer under test is commandOrdered's seq, the first field after the tag.
  const hello = (encodedInt: number[]): Uint8Array => cat([0x94, MessageTag.commandOrdered], encodedInt, [0xc4, 32], new Uint8Array(32), [0x00]);
  const withSeq = (v: unknown): unknown[] => [MessageTag.commandOrdered, v, new Uint8Array(32), 0];
  const collectorId = (frame: Uint8Array): number => {
    const msg = decodeOk(frame, ctx4);
    return msg.type === 'commandOrdered' ? msg.seq : -1;
  };

  it('accepts every msgpack integer form and integral floats up to 2^53 − 1', () => {
    expect(collectorId(hello([0x7f]))).toBe(127);
    expect(collectorId(hello([0xcc, 0xff]))).toBe(255);
    expect(collectorId(hello([0xcd, 0x01, 0x00]))).toBe(256);
    expect(collectorId(hello([0xce, 0xff, 0xff, 0xff, 0xff]))).toBe(2 ** 32 - 1);
    expect(collectorId(hello([0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe(Number.MAX_SAFE_INTEGER);
    expect(collectorId(hello([0xd0, 0x05]))).toBe(5);
    expect(collectorId(hello([0xd1, 0x01, 0x00]))).toBe(256);
    expect(collectorId(hello([0xd2, 0x00, 0x01, 0x00, 0x00]))).toBe(65536);
    expect(collectorId(hello([0xd3, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]))).toBe(2 ** 32);
    expect(collectorId(pack(withSeq(2 ** 53 - 1)))).toBe(2 ** 53 - 1); // msgpackr writes float64
    expect(collectorId(pack(withSeq(2n ** 53n - 1n)))).toBe(2 ** 53 - 1); // msgpackr writes uint64
    expect(collectorId(hello([0xca, 0x47, 0x80, 0x00, 0x00]))).toBe(65536); // float32 65536.0
    expect(Object.is(collectorId(hello([0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0])), 0)).toBe(true); // -0.0 reads as 0
  });

  it('rejects negative integers in every form', () => {
    for (const bytes of [[0xff], [0xe0], [0xd0, 0xff], [0xd1, 0xff, 0xff], [0xd2, 0x80, 0, 0, 0], [0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
      expectErr(decodeMessage(hello(bytes), ctx4), ErrorCode.InvalidField, 'negative');
    }
    expectErr(decodeMessage(pack(withSeq(-1.0)), ctx4), ErrorCode.InvalidField, 'seq');
  });

  it('rejects non-integral floats, NaN and infinities', () => {
    for (const v of [1.5, 0.1, NaN, Infinity, -Infinity]) {
      expectErr(decodeMessage(pack(withSeq(v)), ctx4), ErrorCode.InvalidField, 'seq');
    }
    expectErr(decodeMessage(hello([0xca, 0x3f, 0xc0, 0x00, 0x00]), ctx4), ErrorCode.InvalidField, 'not an integer'); // float32 1.5
  });

  it('rejects values above 2^53 − 1 as uint64, int64 and float', () => {
    const tooBig = [
      [0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 0], // 2^53
      [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // 2^64 − 1
      [0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // 2^63 − 1
    ];
    for (const bytes of tooBig) expectErr(decodeMessage(hello(bytes), ctx4), ErrorCode.InvalidField, 'above');
    expectErr(decodeMessage(pack(withSeq(2 ** 53)), ctx4), ErrorCode.InvalidField, 'above');
    expectErr(decodeMessage(pack(withSeq(2n ** 63n)), ctx4), ErrorCode.InvalidField, 'above');
    expectErr(decodeMessage(pack(withSeq(1e300)), ctx4), ErrorCode.InvalidField, 'above');
  });

  it('rejects other types where an integer is due', () => {
    for (const v of ['7', null, true, new Uint8Array(1), [1]]) {
      expectErr(decodeMessage(pack(withSeq(v)), ctx4), ErrorCode.InvalidField, 'seq');
    }
  });

  it('asserts when asked to encode an invalid integer (a programmer error)', () => {
    for (const seq of [-1, 1.5, 2 ** 53]) {
      expect(() => encodeMessage({ type: 'commandOrdered', seq, digest: dg(1), ts: 0 })).toThrow(/non-negative safe integer/);
    }
    expect(() => encodeMessage({ type: 'tsReply', digest: filled(31, 0) as Digest, stamp: stamp(0, 1) })).toThrow(/32 bytes/);
  });
});

describe('codec: rejecting bad frames', () => {
  const tsReply = (digest: unknown, stampWire: unknown): Uint8Array => pack([MessageTag.tsReply, digest, stampWire]);

  it('rejects garbage, empty and non-array frames as malformed', () => {
    expectErr(decodeMessage(new Uint8Array(0), ctx4), ErrorCode.MalformedFrame, 'empty');
    expectErr(decodeMessage(Uint8Array.from([0xc1]), ctx4), ErrorCode.MalformedFrame);
    expectErr(decodeMessage(Uint8Array.from([0x90]), ctx4), ErrorCode.MalformedFrame, 'empty array');
    expectErr(decodeMessage(new TextEncoder().encode('{"type":"ack"}'), ctx4), ErrorCode.MalformedFrame);
    for (const v of [13, 'tsReply', null, new Uint8Array(4), new Map([[0, 13]]), { type: 'ack' }]) {
      expectErr(decodeMessage(pack(v), ctx4), ErrorCode.MalformedFrame);
    }
    expectErr(decodeMessage(pack(['ack', dg(1)]), ctx4), ErrorCode.MalformedFrame, 'type tag');
    expectErr(decodeMessage(pack([-1, dg(1)]), ctx4), ErrorCode.MalformedFrame, 'type tag');
  });

  it('rejects unknown tags', () => {
    for (const tag of [0, 10, 17, 18, 19, 25, 99, 127, 255, 65535, 2 ** 40]) {
      expectErr(decodeMessage(pack([tag, 1]), ctx4), ErrorCode.UnknownMessage, `tag ${tag}`);
    }
  });

  it('rejects a wrong number of fields, at the top and inside structures', () => {
    expectErr(decodeMessage(pack([MessageTag.submit]), ctx4), ErrorCode.MalformedFrame, 'submit: expected 2 elements, got 1');
    expectErr(decodeMessage(pack([MessageTag.submit, new Uint8Array(1), 0]), ctx4), ErrorCode.MalformedFrame, 'expected 2 elements, got 3');
    expectErr(decodeMessage(tsReply(dg(1), [0, 5]), ctx4), ErrorCode.InvalidField, 'SignedTimestamp: expected 3 fields, got 2');
    expectErr(decodeMessage(tsReply(dg(1), [0, 5, sg(1), 0]), ctx4), ErrorCode.InvalidField, 'SignedTimestamp');
  });

  it('rejects trailing bytes after a frame', () => {
    const frame = encodeMessage({ type: 'commandOrdered', seq: 1, digest: dg(1), ts: 2 });
    expectErr(decodeMessage(cat(frame, [0xc0]), ctx4), ErrorCode.MalformedFrame, '1 bytes after the end');
    expectErr(decodeMessage(cat(encodeMessage(samples()[13]!), [0]), ctx4), ErrorCode.MalformedFrame, 'after the end');
  });

  it('rejects digests, signatures and nonces of the wrong length', () => {
    expectErr(decodeMessage(tsReply(filled(31, 1), [0, 5, sg(1)]), ctx4), ErrorCode.InvalidField, 'tsReply: digest');
    expectErr(decodeMessage(tsReply(filled(33, 1), [0, 5, sg(1)]), ctx4), ErrorCode.InvalidField, 'digest');
    expectErr(decodeMessage(tsReply(dg(1), [0, 5, filled(63, 1)]), ctx4), ErrorCode.InvalidField, 'SignedTimestamp.sig');
    expectErr(decodeMessage(tsReply(dg(1), [0, 5, filled(65, 1)]), ctx4), ErrorCode.InvalidField, 'SignedTimestamp.sig');
    expectErr(decodeMessage(pack([MessageTag.hello, 1, filled(16, 1), sg(1)]), ctx4), ErrorCode.InvalidField, 'nonce');
    expectErr(decodeMessage(pack([MessageTag.helloChallenge, 1, filled(33, 1)]), ctx4), ErrorCode.InvalidField, 'nonce');
  });

  it('rejects strings, arrays and maps where bytes are due', () => {
    expectErr(decodeMessage(tsReply('x'.repeat(32), [0, 5, sg(1)]), ctx4), ErrorCode.InvalidField, 'expected bytes');
    expectErr(decodeMessage(tsReply(Array.from(dg(1)), [0, 5, sg(1)]), ctx4), ErrorCode.InvalidField, 'expected bytes');
    expectErr(decodeMessage(tsReply(dg(1), new Map([[0, 1]])), ctx4), ErrorCode.InvalidField, 'expected an array');
  });

  it('rejects msgpack extensions anywhere, without running them', () => {
    const bigintExt = cat([0x94, MessageTag.commandOrdered, 0xc7, 0x08, 0x42], new Array(8).fill(0x01));
    expectErr(decodeMessage(bigintExt, ctx4), ErrorCode.InvalidField, 'seq');
    const timestampExt = cat([0x92, MessageTag.submit, 0xd6, 0xff, 0, 0, 0, 1]);
    expectErr(decodeMessage(timestampExt, ctx4), ErrorCode.InvalidField, 'batch');
  });

  it('rejects replica ids at or above n', () => {
    expectErr(decodeMessage(tsReply(dg(1), [4, 5, sg(1)]), ctx4), ErrorCode.UnknownReplica, 'replica 4');
    expectErr(decodeMessage(encodeMessage({ type: 'ack', digest: dg(1), ocHash: dg(2), replica: 3 as ReplicaId, sig: sg(1) }), { replicaCount: 3 }), ErrorCode.UnknownReplica);
    expectErr(decodeMessage(encodeMessage({ type: 'proposal', block, tc: null }), { replicaCount: 3 }), ErrorCode.UnknownReplica, 'Block.proposer');
    expectErr(decodeMessage(encodeMessage(samples()[2]!), { replicaCount: 1 }), ErrorCode.UnknownReplica, 'voter');
  });

  describe('signer bitmaps', () => {
    const qcWire = (signers: Uint8Array, sigs: Uint8Array[]): unknown[] => [1, dg(1), signers, sigs];
    const proposalWith = (signers: Uint8Array, sigs: Uint8Array[]): Uint8Array =>
      pack([MessageTag.proposal, [dg(2), 2, 1, 0, qcWire(signers, sigs), new Uint8Array(0)], null]);

    it('accepts exactly ⌈n/8⌉ bytes with one signature per set bit', () => {
      expect(decodeMessage(proposalWith(bitmapOf([true, false, true, true]), [sg(1), sg(2), sg(3)]), ctx4).ok).toBe(true);
      const n9 = bitmapOf([true, false, false, false, false, false, false, false, true]);
      expect(decodeMessage(proposalWith(n9, [sg(1), sg(2)]), { replicaCount: 9 }).ok).toBe(true);
    });

    it('rejects a bitmap of the wrong length', () => {
      expectErr(decodeMessage(proposalWith(new Uint8Array(2), []), ctx4), ErrorCode.InvalidField, 'QuorumCert.signers');
      expectErr(decodeMessage(proposalWith(new Uint8Array(0), []), ctx4), ErrorCode.InvalidField, 'QuorumCert.signers');
      expectErr(decodeMessage(proposalWith(new Uint8Array(1), []), { replicaCount: 9 }), ErrorCode.InvalidField, 'bitmap of 1 bytes, expected 2');
    });

    it('rejects bits set at or above n', () => {
      expectErr(decodeMessage(proposalWith(Uint8Array.from([0b0001_0000]), [sg(1)]), ctx4), ErrorCode.InvalidField, 'bit set at or above 4');
      expectErr(decodeMessage(proposalWith(Uint8Array.from([0b1000_0000]), [sg(1)]), { replicaCount: 7 }), ErrorCode.InvalidField, 'bit set');
      expectErr(decodeMessage(proposalWith(Uint8Array.from([0, 0b10]), [sg(1)]), { replicaCount: 9 }), ErrorCode.InvalidField, 'bit set');
    });

    it('rejects a signature count different from the number of signers', () => {
      expectErr(decodeMessage(proposalWith(bitmapOf([true, true, true, false]), [sg(1), sg(2)]), ctx4), ErrorCode.InvalidField, '2 signatures for 3 signers');
      expectErr(decodeMessage(proposalWith(bitmapOf([true, false, false, false]), [sg(1), sg(2)]), ctx4), ErrorCode.InvalidField, 'QuorumCert.sigs');
    });

    it('rejects a timeout certificate whose views or signatures do not match its signers', () => {
      const tcWire = (views: number[], sigs: Uint8Array[]): unknown[] => [3, bitmapOf([true, true, false, false]), views, sigs];
      const proposal = (tcw: unknown[]): Uint8Array => pack([MessageTag.proposal, [dg(2), 2, 1, 0, [0, dg(0), new Uint8Array(1), []], new Uint8Array(0)], tcw]);
      expect(decodeMessage(proposal(tcWire([1, 2], [sg(1), sg(2)])), ctx4).ok).toBe(true);
      expectErr(decodeMessage(proposal(tcWire([1], [sg(1), sg(2)])), ctx4), ErrorCode.InvalidField, 'highQcViews');
      expectErr(decodeMessage(proposal(tcWire([1, 2], [sg(1)])), ctx4), ErrorCode.InvalidField, 'TimeoutCert.sigs');
    });
  });

  it('rejects frames above MAX_FRAME_BYTES before reading them', () => {
    const frame = new Uint8Array(MAX_FRAME_BYTES + 1);
    expectErr(decodeMessage(frame, ctx4), ErrorCode.FrameTooLarge);
  });

  it('rejects batches above MAX_BATCH_BYTES as bad batches', () => {
    expectErr(decodeMessage(pack([MessageTag.submit, new Uint8Array(MAX_BATCH_BYTES + 1)]), ctx4), ErrorCode.BadBatch, 'submit: batch');
    expectErr(decodeMessage(pack([MessageTag.sequence, [dg(1), []], new Uint8Array(MAX_BATCH_BYTES + 1)]), ctx4), ErrorCode.BadBatch, 'sequence: batch');
    expect(decodeMessage(pack([MessageTag.submit, new Uint8Array(MAX_BATCH_BYTES)]), ctx4).ok).toBe(true);
  });

  it('rejects seals with too many entries, and attachments above MAX_SEAL_BYTES', () => {
    const e = [dg(1), 1, dg(2)];
    const tooMany = pack([1, 0, 1, new Array(MAX_SEAL_ENTRIES + 1).fill(e), sg(1)]);
    expectErr(decodeSeal(tooMany, ctx4), ErrorCode.InvalidField, `Seal.entries: ${MAX_SEAL_ENTRIES + 1} elements`);
    const attachment = new Uint8Array(MAX_SEAL_BYTES + 1);
    expectErr(decodeMessage(pack([MessageTag.vote, 1, dg(1), 0, sg(1), attachment]), ctx4), ErrorCode.InvalidField, 'attachment');
    expectErr(decodeSeal(attachment, ctx4), ErrorCode.InvalidField, 'seal of');
  });

  it('rejects reversed slot ranges', () => {
    expectErr(decodeSeal(pack([1, 5, 4, [], sg(1)]), ctx4), ErrorCode.InvalidField, 'fromSlot 5 is above toSlot 4');
    expect(decodeSeal(pack([1, 5, 5, [], sg(1)]), ctx4).ok).toBe(true);
  });

  it('rejects unknown refusal reasons', () => {
    const refused = (reason: unknown): Uint8Array => pack([MessageTag.refused, dg(1), 0, reason, 0]);
    for (const reason of Object.values(RefusalReason)) expect(decodeMessage(refused(reason), ctx4).ok).toBe(true);
    for (const reason of ['', 'LATE', 'tooLate', 'x'.repeat(1000), 3]) {
      expectErr(decodeMessage(refused(reason), ctx4), ErrorCode.InvalidField, 'reason');
    }
  });

  it('bounds error strings and requires valid UTF-8', () => {
    const error = (code: unknown, message: unknown): Uint8Array => pack([MessageTag.error, code, message]);
    expect(decodeMessage(error('X'.repeat(64), 'm'.repeat(1024)), ctx4).ok).toBe(true);
    expect(decodeMessage(error('X', '✓'.repeat(1024)), ctx4).ok).toBe(true);
    expectErr(decodeMessage(error('X'.repeat(65), ''), ctx4), ErrorCode.InvalidField, 'code');
    expectErr(decodeMessage(error('X', 'm'.repeat(1025)), ctx4), ErrorCode.InvalidField, 'message');
    expectErr(decodeMessage(error('X', '✓'.repeat(1025)), ctx4), ErrorCode.InvalidField, 'message');
    const badUtf8 = cat([0x93, MessageTag.error, 0xa1, 0x58, 0xa2, 0xc3, 0x28]);
    expectErr(decodeMessage(badUtf8, ctx4), ErrorCode.InvalidField, 'invalid UTF-8');
    // The encoder clips over-long diagnostics instead of crashing the sender.
    const clipped = decodeOk(encodeMessage({ type: 'error', code: 'C'.repeat(100), message: 'm'.repeat(5000) }), ctx4);
    expect(clipped.type === 'error' && [clipped.code.length, clipped.message.length]).toEqual([64, 1024]);
  });

  it('bounds maxBlocks to 1..MAX_SYNC_BLOCKS', () => {
    const req = (maxBlocks: number): Uint8Array => pack([MessageTag.blockRequest, dg(1), maxBlocks]);
    expect(decodeMessage(req(1), ctx4).ok).toBe(true);
    expectErr(decodeMessage(req(0), ctx4), ErrorCode.InvalidField, 'maxBlocks');
    expectErr(decodeMessage(req(MAX_SYNC_BLOCKS + 1), ctx4), ErrorCode.InvalidField, 'maxBlocks');
  });

  it('bounds list lengths of sync messages', () => {
    expectErr(decodeMessage(pack([MessageTag.batchRequest, new Array(1025).fill(dg(1))]), ctx4), ErrorCode.InvalidField, 'digests');
    expectErr(decodeMessage(pack([MessageTag.blockResponse, new Array(MAX_SYNC_BLOCKS + 1).fill(0)]), ctx4), ErrorCode.InvalidField, 'blocks');
    expectErr(decodeMessage(pack([MessageTag.sequence, [dg(1), new Array(5).fill([0, 1, sg(1)])], null]), ctx4), ErrorCode.InvalidField, 'OrderingCert.stamps');
  });

  describe('block payloads', () => {
    const e = (seed: number): unknown[] => [dg(seed), seed, dg(seed + 1)];
    const ps = (include: Uint8Array, tail: unknown[] = []): unknown[] => [0, 1, 2, include, tail, sg(1)];

    it('requires the include bitmap to cover exactly the entries', () => {
      const entries = [e(1), e(2), e(3), e(4), e(5), e(6), e(7), e(8), e(9)];
      expect(decodeBlockPayload(pack([1, 2, entries, [], [ps(Uint8Array.from([0xff, 0x01]))]]), ctx4).ok).toBe(true);
      expectErr(decodeBlockPayload(pack([1, 2, entries, [], [ps(Uint8Array.from([0xff]))]]), ctx4), ErrorCode.InvalidField, 'PayloadSeal.include');
      expectErr(decodeBlockPayload(pack([1, 2, entries, [], [ps(Uint8Array.from([0xff, 0x03]))]]), ctx4), ErrorCode.InvalidField, 'bit set at or above 9');
      expect(decodeBlockPayload(pack([1, 2, [], [], [ps(new Uint8Array(0))]]), ctx4).ok).toBe(true);
    });

    it('allows no more OCs than entries and no more seals than replicas', () => {
      const oc1 = [dg(1), []];
      expectErr(decodeBlockPayload(pack([1, 2, [e(1)], [oc1, oc1], []]), ctx4), ErrorCode.InvalidField, 'BlockPayload.ocs');
      const seals = new Array(5).fill(ps(Uint8Array.from([0])));
      expectErr(decodeBlockPayload(pack([1, 2, [e(1)], [], seals]), ctx4), ErrorCode.InvalidField, 'BlockPayload.seals');
    });

    it('bounds a seal carried in a payload to MAX_SEAL_ENTRIES in include and tail together', () => {
      const n = 100;
      const entries = Array.from({ length: n }, (_, i) => e(i));
      const all = bitmapOf(new Array(n).fill(true));
      const tail = new Array(MAX_SEAL_ENTRIES - n + 1).fill(e(1));
      expectErr(decodeBlockPayload(pack([1, 2, entries, [], [ps(all, tail)]]), ctx4), ErrorCode.InvalidField, 'PayloadSeal.tail');
    });

    it('rejects more than MAX_BLOCK_ENTRIES entries', () => {
      const count = MAX_BLOCK_ENTRIES + 1;
      const header = cat([0x95, 1, 2, 0xdd], [count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff]);
      const entries = new Uint8Array((MAX_BLOCK_ENTRIES + 1) * 70); // length only: rejected before reading any
      expectErr(decodeBlockPayload(cat(header, entries.subarray(0, 100)), ctx4), ErrorCode.InvalidField, 'BlockPayload.entries');
    });
  });
});

describe('codec: hostile lengths and truncation', () => {
  const claims4G = (prefix: number[]): Uint8Array => cat(prefix, [0xdd, 0xff, 0xff, 0xff, 0xff], [0xc0, 0xc0]);

  it('rejects frames claiming 4-billion-element arrays, strings or byte strings, without allocating', () => {
    const before = process.memoryUsage().heapUsed;
    const started = performance.now();
    const frames = [
      claims4G([]), // the frame itself
      claims4G([0x92, MessageTag.batchRequest]), // a list of digests
      claims4G([0x92, MessageTag.blockResponse]),
      cat([0x92, MessageTag.submit, 0xc6, 0xff, 0xff, 0xff, 0xff, 0]), // bin 32
      cat([0x93, MessageTag.error, 0xdb, 0xff, 0xff, 0xff, 0xff, 0]), // str 32
      cat([0x93, MessageTag.sequence, 0x92], dg(1), [0xdd, 0xff, 0xff, 0xff, 0xff]), // OC stamps
      cat([0x92, MessageTag.clientHello, 0xdf, 0xff, 0xff, 0xff, 0xff]), // map 32
    ];
    for (let round = 0; round < 1000; round++) {
      for (const frame of frames) {
        const result = decodeMessage(frame, ctx4);
        expect(result.ok).toBe(false);
      }
    }
    const payload = cat([0x95, 1, 2], [0xdd, 0xff, 0xff, 0xff, 0xff]);
    expectErr(decodeBlockPayload(payload, ctx4), ErrorCode.InvalidField, 'BlockPayload.entries');
    // An element count within the limit but beyond the bytes left is caught before any element is read.
    const lying = cat([0x92, MessageTag.batchRequest, 0xdc, 0x03, 0xff], [0xc0]);
    expectErr(decodeMessage(lying, ctx4), ErrorCode.MalformedFrame, 'cannot fit');
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('rejects every strict prefix of every sample frame, without throwing', () => {
    for (const msg of samples()) {
      const frame = encodeMessage(msg);
      // Large byte fields: step through their middle, every byte near the structure.
      for (let len = 0; len < frame.length; len += len < 200 || frame.length - len < 200 ? 1 : 997) {
        const result = decodeMessage(frame.subarray(0, len), ctx4);
        expect(result.ok).toBe(false);
        if (!result.ok) expect([ErrorCode.MalformedFrame, ErrorCode.InvalidField]).toContain(result.error.code);
      }
    }
  });

  it('rejects every strict prefix of a block payload and a seal', () => {
    for (const bytes of [encodeBlockPayload(payload), encodeSeal(seal)]) {
      for (let len = 0; len < bytes.length; len++) {
        expect(decodeBlockPayload(bytes.subarray(0, len), ctx4).ok).toBe(false);
        expect(decodeSeal(bytes.subarray(0, len), ctx4).ok).toBe(false);
      }
    }
  });

  it('rejects deeply nested arrays without exhausting the stack', () => {
    const deep = new Uint8Array(1_000_000).fill(0x91);
    expect(decodeMessage(deep, ctx4).ok).toBe(false);
    expect(decodeMessage(cat([0x93, MessageTag.proposal], deep), ctx4).ok).toBe(false);
  });
});

describe('codec: never throws', () => {
  const decodeAll = (bytes: Uint8Array, n: number): void => {
    const c = { replicaCount: n };
    const results = [decodeMessage(bytes, c), decodeBlockPayload(bytes, c), decodeSeal(bytes, c), decodeBlock(bytes, c), decodeSealAttachment(bytes, c)];
    for (const r of results) expect(typeof r.ok).toBe('boolean');
  };

  it('on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), clusterSizeArb, (bytes, n) => decodeAll(bytes, n)),
      { numRuns: 3000 },
    );
  });

  it('on random bytes that start like a frame', () => {
    const tagArb = fc.integer({ min: 0, max: 22 });
    fc.assert(
      fc.property(fc.integer({ min: 0x90, max: 0x9f }), tagArb, fc.uint8Array({ maxLength: 300 }), clusterSizeArb, (head, tag, rest, n) => {
        decodeAll(cat([head, tag], rest), n);
      }),
      { numRuns: 3000 },
    );
  });

  const mutationArb = fc.record({
    at: fc.nat(),
    op: fc.constantFrom('set', 'flip', 'insert', 'delete', 'truncate'),
    byte: fc.nat({ max: 255 }),
  });

  function mutate(frame: Uint8Array, mutations: readonly { at: number; op: string; byte: number }[]): Uint8Array {
    let out: Uint8Array = Uint8Array.from(frame);
    for (const m of mutations) {
      const at = out.length === 0 ? 0 : m.at % out.length;
      if (m.op === 'set') out[at] = m.byte;
      else if (m.op === 'flip') out[at]! ^= 1 << (m.byte & 7);
      else if (m.op === 'insert') out = cat(out.subarray(0, at), [m.byte], out.subarray(at));
      else if (m.op === 'delete') out = cat(out.subarray(0, at), out.subarray(at + 1));
      else out = out.subarray(0, at);
    }
    return out;
  }

  it('on random mutations of valid frames, and what it accepts re-encodes to a frame it accepts', () => {
    fc.assert(
      fc.property(anyMessageArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), ({ n, msg }, mutations) => {
        const mutated = mutate(encodeMessage(msg), mutations);
        decodeAll(mutated, n);
        const result = decodeMessage(mutated, { replicaCount: n });
        if (result.ok) expect(decodeMessage(encodeMessage(result.value), { replicaCount: n }).ok).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('on random mutations of block payloads and seals', () => {
    fc.assert(
      fc.property(
        clusterSizeArb.chain((n) => fc.record({ n: fc.constant(n), p: payloadArb(n), s: sealArb(n) })),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        ({ n, p, s }, mutations) => {
          decodeAll(mutate(encodeBlockPayload(p), mutations), n);
          decodeAll(mutate(encodeSeal(s), mutations), n);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('codec: checkpoint manifests', () => {
  const manifest = { height: 10 as Height, toSlot: 99 as Slot, position: 7, block: dg(20), blockChunks: 1, executorChunks: 2, chunkHashes: [dg(21), dg(22), dg(23), dg(24)] };

  it('round-trips a manifest', () => {
    const decoded = decodeCheckpointManifest(encodeCheckpointManifest(manifest), ctx4);
    expect(decoded.ok && plain(decoded.value)).toEqual(plain(manifest));
  });

  it('refuses a manifest whose sections claim more chunks than it lists, and a chunk index beyond the limit', () => {
    expectErr(decodeCheckpointManifest(encodeCheckpointManifest({ ...manifest, executorChunks: 4 }), ctx4), ErrorCode.InvalidField, 'executor chunks');
    const request = pack([MessageTag.chunkRequest, 1, dg(1), MAX_CHECKPOINT_CHUNKS + 1]);
    expectErr(decodeMessage(request, ctx4), ErrorCode.InvalidField, 'index');
  });
});

describe('decoded fixed-width fields', () => {
  it('are copies: a kept digest or signature does not keep its whole message alive', () => {
    const ack: Message = { type: 'ack', digest: dg(10), ocHash: dg(11), replica: 1 as ReplicaId, sig: sg(14) };
    const frame = encodeMessage(ack);
    const decoded = decodeOk(frame, ctx4);
    if (decoded.type !== 'ack') throw new Error('decoded another type');
    for (const field of [decoded.digest, decoded.ocHash, decoded.sig]) expect(field.buffer).not.toBe(frame.buffer);
    expect(plain(decoded)).toEqual(plain(ack));
  });
});
