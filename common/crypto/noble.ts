/**
 * The `noble` backend: @noble/curves + @noble/hashes, pure JavaScript, so the client library also
 * runs in a browser (import this file directly there: index.ts also loads node:crypto).
 *
 * Keys are decoded strictly (RFC 8032 §5.1.3, as noble's zip215: false) under the shared rules of
 * strict.ts. Verification checks the cofactorless equation [S]B = R + [k]A by recomputing R and
 * comparing encodings, exactly as OpenSSL does — not noble's built-in ed25519.verify, which checks
 * the cofactored equation and so accepts signatures with a small-order component in R that the
 * `node` backend rejects (strict.ts explains; crypto.test.ts shows the cases). Signing follows
 * RFC 8032 §5.1.6 with the secret scalar and prefix expanded once per signer.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { assert } from '../assert.js';
import { bytesEqual } from '../bytes.js';
import { asDigest, type Digest } from '../ids.js';
import { decodeStrictPublicKey, hasStrictSignatureEncoding } from './strict.js';
import {
  ED25519_SECRET_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  type CryptoBackend,
  type KeyPair,
  type PublicKeyHandle,
  type Signer,
} from './types.js';

const BASE = ed25519.Point.BASE;
const scalarField = ed25519.Point.Fn;
const HALF = ED25519_SIGNATURE_BYTES / 2;
/** wNAF window for each public key's multiples. Measured: 4 bits verifies ~2× faster than none
 *  for ~110 KB per key; 8 bits ~3.5× but ~8× the memory (~1 MB per key). */
const KEY_PRECOMPUTE_WINDOW_BITS = 4;

class NoblePublicKey implements PublicKeyHandle {
  constructor(
    readonly raw: Uint8Array,
    /** The decoded point A, kept so verification does not decode it again. */
    readonly point: EdwardsPoint,
  ) {}
}

/** SHA-512 of the parts as a little-endian integer reduced mod L (RFC 8032 §5.1.6 steps 2, 4). */
function hashToScalar(...parts: Uint8Array[]): bigint {
  const h = sha512.create();
  for (const part of parts) h.update(part);
  return scalarField.create(bytesToNumberLE(h.digest()));
}

function signer(secretKey: Uint8Array): Signer {
  assert(secretKey.length === ED25519_SECRET_KEY_BYTES, `Ed25519 secret key must be ${ED25519_SECRET_KEY_BYTES} bytes, got ${secretKey.length}`);
  const { scalar, prefix, pointBytes } = ed25519.utils.getExtendedPublicKey(secretKey);
  const publicKey = Uint8Array.from(pointBytes);
  return {
    publicKey,
    sign(message: Uint8Array): Uint8Array {
      const r = hashToScalar(prefix, message);
      // r = 0 has probability 2^-252; BASE.multiply (constant time) refuses it, as noble's own sign does.
      const encodedR = BASE.multiply(r).toBytes();
      const k = hashToScalar(encodedR, publicKey, message);
      const s = scalarField.create(r + k * scalar);
      const signature = new Uint8Array(ED25519_SIGNATURE_BYTES);
      signature.set(encodedR, 0);
      signature.set(numberToBytesLE(s, HALF), HALF);
      return signature;
    },
  };
}

function randomSecretKey(): Uint8Array {
  // Web Crypto randomness: present in browsers and in Node ≥ 19 as globalThis.crypto.
  return globalThis.crypto.getRandomValues(new Uint8Array(ED25519_SECRET_KEY_BYTES));
}

export const nobleCrypto: CryptoBackend = {
  name: 'noble',

  sha256(data: Uint8Array): Digest {
    return asDigest(sha256(data));
  },

  sha256Parts(parts: readonly Uint8Array[]): Digest {
    const h = sha256.create();
    for (const part of parts) h.update(part);
    return asDigest(h.digest());
  },

  generateKeyPair(): KeyPair {
    const secretKey = randomSecretKey();
    return { secretKey, publicKey: signer(secretKey).publicKey };
  },

  signer,

  parsePublicKey(raw: Uint8Array): PublicKeyHandle | null {
    const point = decodeStrictPublicKey(raw);
    if (point === null) return null;
    // Keys are verified against many times: a window table roughly doubles verification speed
    // for ~130 KB per key, built on first use.
    point.precompute(KEY_PRECOMPUTE_WINDOW_BITS, true);
    return new NoblePublicKey(Uint8Array.from(raw), point);
  },

  verify(key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean {
    assert(key instanceof NoblePublicKey, 'verify() was given a public key handle from another backend');
    if (!hasStrictSignatureEncoding(signature)) return false;
    try {
      const encodedR = signature.subarray(0, HALF);
      const s = bytesToNumberLE(signature.subarray(HALF)); // < L: checked above
      const k = hashToScalar(encodedR, key.raw, message);
      const expectedR = BASE.multiplyUnsafe(s).subtract(key.point.multiplyUnsafe(k));
      return bytesEqual(expectedR.toBytes(), encodedR);
    } catch {
      return false;
    }
  },
};
