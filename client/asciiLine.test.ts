import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_INTEGER_BYTES, writeDigits, writeInteger } from './asciiLine.js';

const text = (out: Uint8Array, end: number): string => Buffer.from(out.subarray(0, end)).toString('latin1');

describe('writeInteger', () => {
  it('writes what String() writes for every safe integer, within MAX_INTEGER_BYTES', () => {
    const out = new Uint8Array(MAX_INTEGER_BYTES);
    for (const v of [0, 9, 10, 99, 100, 1_764_950_400_123_456, 999_999_999_999_999, 8_999_999_999_999_999, Number.MAX_SAFE_INTEGER, -1, Number.MIN_SAFE_INTEGER]) {
      expect(text(out, writeInteger(out, 0, v))).toBe(String(v));
    }
    fc.assert(
      fc.property(fc.maxSafeInteger(), (v) => {
        expect(text(out, writeInteger(out, 0, v))).toBe(String(v));
      }),
    );
  });

  it('refuses what is not a safe integer', () => {
    const out = new Uint8Array(64);
    for (const v of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) expect(() => writeInteger(out, 0, v)).toThrow(RangeError);
  });
});

describe('writeDigits', () => {
  it('pads with zeros to the width, never cuts', () => {
    const out = new Uint8Array(32);
    expect(text(out, writeDigits(out, 0, 5, 6))).toBe('000005');
    expect(text(out, writeDigits(out, 0, 123_456, 6))).toBe('123456');
    expect(text(out, writeDigits(out, 0, 1_234_567, 6))).toBe('1234567');
    expect(text(out, writeDigits(out, 0, 0, 1))).toBe('0');
  });
});
