/**
 * The Ed25519 acceptance rules both backends share, so that they accept exactly the same
 * signatures (a signature one replica accepts and another rejects would split the cluster).
 *
 * RFC 8032 leaves implementations room, and the two libraries use it differently (crypto.test.ts
 * records what each says on its own for every edge case):
 *  - OpenSSL decodes public keys leniently (y ≥ p is reduced, x = 0 with the sign bit set is
 *    accepted) and does not reject small-order keys: with the identity as key, (R = [S]B, S)
 *    verifies for every message. noble (zip215: false) rejects all of these.
 *    → A public key must be a canonical encoding of a point in the prime-order subgroup
 *      (decodeStrictPublicKey, checked once per key by parsePublicKey in both backends).
 *  - OpenSSL checks the cofactorless equation R = [S]B − [k]A by comparing encodings; noble's
 *    built-in verify checks the cofactored one, [8][S]B = [8]R + [8][k]A, so a signer who adds a
 *    small-order component to R gets a signature noble accepts and OpenSSL rejects. No cheap
 *    pre-check removes that (it needs a subgroup check of R: a scalar multiplication per
 *    signature), so the noble backend computes the cofactorless equation itself (noble.ts).
 *  - Both reject S ≥ L and non-canonical R on their own; hasStrictSignatureEncoding states those
 *    rules explicitly and also rejects a small-order R (only the identity could pass the
 *    cofactorless equation under a prime-order key, and an honest signer never produces it).
 *
 * Signature checks here are byte comparisons (cheap, per signature); the key check does curve
 * arithmetic with noble, once per key, in both backends.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { assert } from '../assert.js';
import { fromHex } from '../bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './types.js';

const ENCODING_BYTES = 32;

function littleEndianConstant(hex: string): Uint8Array {
  const bytes = fromHex(hex);
  assert(bytes !== null && bytes.length === ENCODING_BYTES, `bad 32-byte constant ${hex}`);
  return bytes;
}

/** L = 2^252 + 27742317777372353535851937790883648493, the prime subgroup order, little-endian. */
const GROUP_ORDER_LE = littleEndianConstant('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');
/** p = 2^255 − 19, the field prime, little-endian. */
const FIELD_PRIME_LE = littleEndianConstant('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');

/**
 * Canonical encodings of the 8 points of small order (the torsion subgroup): the identity, the
 * point of order 2, the two of order 4 and the four of order 8. crypto.test.ts recomputes them.
 */
export const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity (0, 1)
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2: (0, −1)
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4: (√−1, 0), x even
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4: x odd
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
].map(littleEndianConstant);

/** a < b for two 32-byte little-endian numbers, comparing from the most significant byte. */
function lessThanLE(a: Uint8Array, aOffset: number, b: Uint8Array, mask = 0xff): boolean {
  for (let i = ENCODING_BYTES - 1; i >= 0; i--) {
    const x = i === ENCODING_BYTES - 1 ? a[aOffset + i]! & mask : a[aOffset + i]!;
    const y = b[i]!;
    if (x !== y) return x < y;
  }
  return false;
}

/** The scalar S (little-endian, at `offset`) is reduced: S < L (RFC 8032 §5.1.7 step 1). */
export function isCanonicalScalar(bytes: Uint8Array, offset = 0): boolean {
  return bytes.length >= offset + ENCODING_BYTES && lessThanLE(bytes, offset, GROUP_ORDER_LE);
}

/**
 * The 32 bytes at `offset` are the one canonical encoding of their point, if they encode one:
 * y < p, and the sign bit is clear when x = 0 (x = 0 exactly when y = ±1).
 */
export function isCanonicalPointEncoding(bytes: Uint8Array, offset = 0): boolean {
  if (bytes.length < offset + ENCODING_BYTES) return false;
  if (!lessThanLE(bytes, offset, FIELD_PRIME_LE, 0x7f)) return false;
  const signBit = (bytes[offset + ENCODING_BYTES - 1]! & 0x80) !== 0;
  if (!signBit) return true;
  return !encodesYPlusMinusOne(bytes, offset);
}

/** y (sign bit ignored) is 1 or p − 1. */
function encodesYPlusMinusOne(bytes: Uint8Array, offset: number): boolean {
  const first = bytes[offset]!;
  const last = bytes[offset + ENCODING_BYTES - 1]! & 0x7f;
  if (first === 0x01 && last === 0x00) return allBytesAre(bytes, offset + 1, offset + ENCODING_BYTES - 1, 0x00);
  if (first === 0xec && last === 0x7f) return allBytesAre(bytes, offset + 1, offset + ENCODING_BYTES - 1, 0xff);
  return false;
}

function allBytesAre(bytes: Uint8Array, from: number, to: number, value: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== value) return false;
  return true;
}

/** The 32 bytes at `offset` are the canonical encoding of a small-order point. */
export function isSmallOrderEncoding(bytes: Uint8Array, offset = 0): boolean {
  outer: for (const candidate of SMALL_ORDER_ENCODINGS) {
    for (let i = 0; i < ENCODING_BYTES; i++) if (bytes[offset + i] !== candidate[i]) continue outer;
    return true;
  }
  return false;
}

/**
 * The signature's bytes obey the shared rules: 64 bytes, R a canonical point encoding and not of
 * small order, S < L. It says nothing about validity: the curve equation is the backend's job.
 */
export function hasStrictSignatureEncoding(signature: Uint8Array): boolean {
  return (
    signature.length === ED25519_SIGNATURE_BYTES &&
    isCanonicalScalar(signature, ENCODING_BYTES) &&
    isCanonicalPointEncoding(signature, 0) &&
    !isSmallOrderEncoding(signature, 0)
  );
}

/**
 * Decodes a public key under the shared rules, or returns null: 32 bytes, a canonical encoding of
 * a curve point (RFC 8032 §5.1.3 strictly), in the prime-order subgroup (so neither small-order
 * nor carrying a small-order component). Every honestly generated key [a]B passes. Costs a scalar
 * multiplication: call it once per key and keep the result.
 */
export function decodeStrictPublicKey(raw: Uint8Array): EdwardsPoint | null {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES || !isCanonicalPointEncoding(raw)) return null;
  let point: EdwardsPoint;
  try {
    point = ed25519.Point.fromBytes(raw, false);
  } catch {
    return null; // not on the curve
  }
  if (point.isSmallOrder() || !point.isTorsionFree()) return null;
  return point;
}
