import { describe, expect, it } from 'vitest';
import { fromHex, slabBytes, toHex } from './bytes.js';

describe('toHex', () => {
  it('writes lowercase hex that fromHex reads back, for every byte value', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = toHex(all);
    expect(hex).toBe(Array.from(all, (b) => b.toString(16).padStart(2, '0')).join(''));
    expect(fromHex(hex)).toEqual(all);
  });

  it('gives each call its own string (results do not change when later calls run)', () => {
    const first = toHex(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    const second = toHex(new Uint8Array([0x01, 0x02]));
    expect(first).toBe('deadbeef');
    expect(second).toBe('0102');
  });

  it('handles empty inputs and inputs longer than a digest or key', () => {
    expect(toHex(new Uint8Array(0))).toBe('');
    const long = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);
    expect(fromHex(toHex(long))).toEqual(long);
  });

  it('is right for every input length, below and above the reused arrays', () => {
    for (let n = 0; n <= 300; n++) {
      const input = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect(toHex(input)).toBe(Array.from(input, (b) => b.toString(16).padStart(2, '0')).join(''));
    }
  });

  it('reads a view at its own offset', () => {
    const frame = new Uint8Array([9, 9, 0xab, 0xcd, 9]);
    expect(toHex(frame.subarray(2, 4))).toBe('abcd');
  });
});

describe('slabBytes', () => {
  it('returns zeroed arrays that do not overlap', () => {
    const a = slabBytes(100);
    const b = slabBytes(100);
    a.fill(1);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(slabBytes(5000).length).toBe(5000);
  });
});
