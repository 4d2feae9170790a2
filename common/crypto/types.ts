/**
 * One crypto interface, two backends (DESIGN.md "Performance"): `node` (node:crypto / OpenSSL,
 * used by replicas for speed) and `noble` (@noble/curves + @noble/hashes, portable, for the client
 * library in a browser). Both must accept and reject exactly the same signatures (strict RFC 8032),
 * which a test checks on shared vectors: a signature one replica accepts and another rejects would
 * split the cluster.
 */
import type { Digest } from '../ids.js';

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SECRET_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/** A parsed public key, ready for repeated verification (node: a cached KeyObject). */
export interface PublicKeyHandle {
  readonly raw: Uint8Array;
}

/** Signs with one fixed secret key. */
export interface Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface KeyPair {
  /** The 32-byte Ed25519 seed (RFC 8032 private key). */
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export interface CryptoBackend {
  readonly name: 'node' | 'noble';
  sha256(data: Uint8Array): Digest;
  /** SHA-256 over the concatenation of parts, without building the concatenation. */
  sha256Parts(parts: readonly Uint8Array[]): Digest;
  /** Uses the platform's secure randomness: for key generation in scripts and servers only. */
  generateKeyPair(): KeyPair;
  /** Throws on a secret key of the wrong length (a local file, checked by the caller first). */
  signer(secretKey: Uint8Array): Signer;
  /** Returns null for a malformed public key (wrong length, not a valid point encoding). */
  parsePublicKey(raw: Uint8Array): PublicKeyHandle | null;
  /** False for any invalid or malformed signature; never throws on bad input. */
  verify(key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean;
}
