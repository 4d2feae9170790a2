/**
 * Bitmaps as used on the wire: ⌈size/8⌉ bytes, bit i in byte ⌊i/8⌋ at position (i mod 8) counted
 * from the least significant bit. Signer sets of certificates and a seal's entries in a block
 * payload are both written this way.
 */
export function bitmapBytes(size: number): number {
  return (size + 7) >>> 3;
}

export function newBitmap(size: number): Uint8Array {
  return new Uint8Array(bitmapBytes(size));
}

export function bitmapGet(bitmap: Uint8Array, index: number): boolean {
  return ((bitmap[index >>> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

export function bitmapSet(bitmap: Uint8Array, index: number): void {
  bitmap[index >>> 3]! |= 1 << (index & 7);
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let c = 0;
  for (let x = b; x !== 0; x &= x - 1) c++;
  return c;
});

export function bitmapCount(bitmap: Uint8Array): number {
  let total = 0;
  for (let i = 0; i < bitmap.length; i++) total += POPCOUNT[bitmap[i]!]!;
  return total;
}

/** Indexes of set bits in increasing order. */
export function bitmapIndexes(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let byte = 0; byte < bitmap.length; byte++) {
    let b = bitmap[byte]!;
    while (b !== 0) {
      const low = b & -b;
      out.push(byte * 8 + 31 - Math.clz32(low));
      b ^= low;
    }
  }
  return out;
}

/** True when no bit at or above `size` is set (a well-formed bitmap for `size` members). */
export function bitmapFits(bitmap: Uint8Array, size: number): boolean {
  if (bitmap.length !== bitmapBytes(size)) return false;
  const extra = bitmap.length * 8 - size;
  if (extra === 0) return true;
  const last = bitmap[bitmap.length - 1]!;
  return (last >>> (8 - extra)) === 0;
}
