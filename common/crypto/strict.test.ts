import { ed25519 } from '@noble/curves/ed25519.js';
import { numberToBytesLE } from '@noble/curves/utils.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeStrictPublicKey,
  hasStrictSignatureEncoding,
  isCanonicalPointEncoding,
  isCanonicalScalar,
  isSmallOrderEncoding,
  SMALL_ORDER_ENCODINGS,
} from './strict.js';

const L = ed25519.Point.Fn.ORDER;
const P = ed25519.Point.Fp.ORDER;
const le32 = (x: bigint): Uint8Array => numberToBytesLE(x, 32);

const decodes = (bytes: Uint8Array, zip215: boolean): boolean => {
  try {
    ed25519.Point.fromBytes(bytes, zip215);
    return true;
  } catch {
    return false;
  }
};

describe('isCanonicalScalar', () => {
  it('accepts exactly 0 ≤ S < L', () => {
    for (const [s, canonical] of [
      [0n, true],
      [1n, true],
      [L - 1n, true],
      [L, false],
      [L + 1n, false],
      [2n ** 253n, false],
      [2n ** 256n - 1n, false],
    ] as const) {
      expect(isCanonicalScalar(le32(s)), `S = ${s}`).toBe(canonical);
    }
  });

  it('agrees with a bigint comparison on random scalars near L', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: L - 2n ** 130n, max: L + 2n ** 130n }), (s) => {
        expect(isCanonicalScalar(le32(s))).toBe(s < L);
      }),
    );
  });

  it('reads at an offset and refuses short input', () => {
    const sig = new Uint8Array(64);
    sig.set(le32(L), 32);
    expect(isCanonicalScalar(sig, 32)).toBe(false);
    expect(isCanonicalScalar(sig, 0)).toBe(true);
    expect(isCanonicalScalar(new Uint8Array(31))).toBe(false);
  });
});

describe('isCanonicalPointEncoding', () => {
  it('on encodings that decode at all, agrees with noble strict (RFC 8032) decoding', () => {
    const near: Uint8Array[] = [];
    for (let d = -20n; d <= 18n; d++) near.push(le32(P + d));
    for (let y = 0n; y <= 18n; y++) near.push(le32(y));
    const withSign = near.map((b) => {
      const c = Uint8Array.from(b);
      c[31]! |= 0x80;
      return c;
    });
    let checked = 0;
    for (const b of [...near, ...withSign]) {
      if (!decodes(b, true)) continue;
      checked++;
      expect(isCanonicalPointEncoding(b), Buffer.from(b).toString('hex')).toBe(decodes(b, false));
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('agrees with noble on random encodings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (b) => {
        if (decodes(b, true)) expect(isCanonicalPointEncoding(b)).toBe(decodes(b, false));
      }),
      { numRuns: 300 },
    );
  });
});

describe('isSmallOrderEncoding', () => {
  it('matches the table and nothing else', () => {
    for (const e of SMALL_ORDER_ENCODINGS) expect(isSmallOrderEncoding(e)).toBe(true);
    expect(isSmallOrderEncoding(ed25519.Point.BASE.toBytes())).toBe(false);
  });
});

describe('hasStrictSignatureEncoding', () => {
  const base = ed25519.Point.BASE.toBytes();
  const sig = (r: Uint8Array, s: bigint): Uint8Array => {
    const out = new Uint8Array(64);
    out.set(r, 0);
    out.set(le32(s), 32);
    return out;
  };
  it('needs 64 bytes, a canonical R of large order, and S < L', () => {
    expect(hasStrictSignatureEncoding(sig(base, 5n))).toBe(true);
    expect(hasStrictSignatureEncoding(sig(base, L))).toBe(false);
    expect(hasStrictSignatureEncoding(sig(SMALL_ORDER_ENCODINGS[0]!, 5n))).toBe(false);
    expect(hasStrictSignatureEncoding(sig(le32(P + 1n), 5n))).toBe(false);
    expect(hasStrictSignatureEncoding(sig(base, 5n).subarray(0, 63))).toBe(false);
  });
});

describe('decodeStrictPublicKey', () => {
  it('accepts honest keys and refuses small-order, mixed-order, off-curve and non-canonical ones', () => {
    const honest = ed25519.getPublicKey(new Uint8Array(32).fill(3));
    expect(decodeStrictPublicKey(honest)).not.toBeNull();
    for (const e of SMALL_ORDER_ENCODINGS) expect(decodeStrictPublicKey(e)).toBeNull();
    const mixed = ed25519.Point.fromBytes(honest).add(ed25519.Point.fromBytes(SMALL_ORDER_ENCODINGS[4]!)).toBytes();
    expect(decodeStrictPublicKey(mixed)).toBeNull();
    expect(decodeStrictPublicKey(le32(2n))).toBeNull(); // y = 2 is not on the curve
    expect(decodeStrictPublicKey(le32(P + 1n))).toBeNull();
    expect(decodeStrictPublicKey(honest.subarray(0, 31))).toBeNull();
    expect(decodeStrictPublicKey(new Uint8Array(33))).toBeNull();
  });
});
