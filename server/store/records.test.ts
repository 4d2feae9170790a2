import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../common/assert.js';
import { ByteWriter, utf8 } from '../../common/bytes.js';
import type { Height } from '../../common/ids.js';
import { crc32, decodeCommittedRecord, decodeSafetyRecord, encodeCommittedRecord, encodeSafetyRecord } from './records.js';
import { TEST_REPLICAS, testDigest, testQc, testSafety } from './testFixtures.js';

describe('store records', () => {
  it('computes the standard CRC-32', () => {
    expect(crc32(utf8('123456789'))).toBe(0xcbf43926);
  });

  it('round-trips the safety state, with and without a timeout certificate, and the genesis QC', () => {
    for (const state of [testSafety(9), testSafety(9, false), { ...testSafety(0, false), highQc: testQc(0, testDigest(1), []) }]) {
      expect(decodeSafetyRecord(encodeSafetyRecord(state), TEST_REPLICAS)).toEqual(state);
    }
    const tip = { height: 2 ** 40 as Height, digest: testDigest(3) };
    expect(decodeCommittedRecord(encodeCommittedRecord(tip))).toEqual(tip);
  });

  it('asserts on every flipped bit and on truncation', () => {
    const record = encodeSafetyRecord(testSafety(5));
    for (let i = 0; i < record.length; i++) {
      const bad = record.slice();
      bad[i]! ^= 1 << (i % 8);
      expect(() => decodeSafetyRecord(bad, TEST_REPLICAS)).toThrow(AssertionError);
    }
    for (const length of [0, 3, record.length - 1]) {
      expect(() => decodeSafetyRecord(record.subarray(0, length), TEST_REPLICAS)).toThrow(/store corrupted: the safety record is unreadable/);
    }
    const tip = encodeCommittedRecord({ height: 7 as Height, digest: testDigest(1) });
    expect(() => decodeCommittedRecord(tip.subarray(1))).toThrow(/store corrupted: the committed record/);
  });

  it('asserts on a well-checksummed record that does not fit the schema', () => {
    // Valid checksums over bad contents: the decoder must check structure, not only the CRC.
    const withCrc = (body: Uint8Array): Uint8Array => {
      const out = new Uint8Array(body.length + 4);
      out.set(body);
      new DataView(out.buffer).setUint32(body.length, crc32(body));
      return out;
    };
    const good = encodeSafetyRecord(testSafety(5));
    const body = good.subarray(0, good.length - 4);
    const wrongFormat = body.slice();
    wrongFormat[0] = 2;
    expect(() => decodeSafetyRecord(withCrc(wrongFormat), TEST_REPLICAS)).toThrow(/format 2, expected 1/);
    expect(() => decodeSafetyRecord(withCrc(new ByteWriter().bytes(body).u8(0).finish()), TEST_REPLICAS)).toThrow(/1 bytes after the end/);
    // Signers of a 4-replica cluster read as a 2-replica cluster: bits set beyond n.
    expect(() => decodeSafetyRecord(good, 2)).toThrow(/not a bitmap over 2 replicas/);
  });
});
