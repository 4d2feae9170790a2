/**
 * A fast stand-in for Ed25519 inside the simulator only: a signature is a keyed SHA-256 of the
 * message under the signer's secret, and verification recomputes it with the secret registered
 * for that public key. It is sound inside a simulation (Byzantine code is ours and never reads
 * another replica's secret) and ~100× cheaper than Ed25519, which makes long seed sweeps
 * affordable. Real Ed25519 (node:crypto) remains the simulator's default.
 *
 * Every statement is signed once and verified by every replica (and again by the checkers), so
 * signatures are remembered with the key and statement they belong to (SignatureMemo): a verify
 * that finds the same three byte strings answers without hashing. The memo only skips
 * recomputing a deterministic function; every answer is what recomputing would give.
 */
import { bytesEqual, concatBytes, slabBytes, toHex, utf8 } from '../common/bytes.js';
import type { CryptoBackend, KeyPair, PublicKeyHandle, Signer } from '../common/crypto/types.js';
import { nodeCrypto } from '../common/crypto/node.js';

const PUBLIC_TAG = utf8('sim/public');
const SIG_TAG_A = utf8('sim/sig/a');
const SIG_TAG_B = utf8('sim/sig/b');
const SIGNATURE_BYTES = 64;

/** Signatures remembered at most: a few seconds of a 7-replica run's statements. Past it the memo
 *  starts over (forgetting only costs a recomputation). */
const MEMO_ENTRIES = 1 << 16;

/** A key handle that carries its secret once the secret is known (no lookup per verify). */
interface FastPublicKey extends PublicKeyHandle {
  secret: Uint8Array | undefined;
}

interface Signed {
  readonly publicKey: Uint8Array;
  /** The signature, then the message. */
  readonly bytes: Uint8Array;
}

/** Valid (key, message, signature) triples by the signature's first 48 bits (a signature is a
 *  hash output: distinct statements practically never share them, and a clash only misses). */
class SignatureMemo {
  private readonly bySignature = new Map<number, Signed>();

  /** Copies: a caller may reuse or alter its arrays (a Byzantine replica corrupting a signature). */
  remember(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): void {
    if (this.bySignature.size >= MEMO_ENTRIES) this.bySignature.clear();
    const bytes = slabBytes(SIGNATURE_BYTES + message.length);
    bytes.set(signature, 0);
    bytes.set(message, SIGNATURE_BYTES);
    this.bySignature.set(memoKey(signature), { publicKey, bytes });
  }

  holds(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    const known = this.bySignature.get(memoKey(signature));
    if (known === undefined || known.bytes.length !== SIGNATURE_BYTES + message.length || !bytesEqual(known.publicKey, publicKey)) return false;
    const { bytes } = known;
    for (let i = 0; i < SIGNATURE_BYTES; i++) if (bytes[i] !== signature[i]) return false;
    for (let i = 0; i < message.length; i++) if (bytes[SIGNATURE_BYTES + i] !== message[i]) return false;
    return true;
  }
}

function memoKey(signature: Uint8Array): number {
  const low = ((signature[2]! << 24) | (signature[3]! << 16) | (signature[4]! << 8) | signature[5]!) >>> 0;
  return signature[0]! * 2 ** 40 + signature[1]! * 2 ** 32 + low;
}

export function createFastCrypto(): CryptoBackend {
  const secretsByPublic = new Map<string, Uint8Array>();
  const memo = new SignatureMemo();
  const sha256 = nodeCrypto.sha256;

  const publicKeyFromSecret = (secret: Uint8Array): Uint8Array => {
    const pub = sha256(concatBytes(PUBLIC_TAG, secret));
    secretsByPublic.set(toHex(pub), secret);
    return pub;
  };
  // One buffer, hashed twice with the tag swapped in place (the two tags have the same length).
  const signWith = (secret: Uint8Array, message: Uint8Array): Uint8Array => {
    const input = slabBytes(SIG_TAG_A.length + secret.length + message.length);
    input.set(SIG_TAG_A, 0);
    input.set(secret, SIG_TAG_A.length);
    input.set(message, SIG_TAG_A.length + secret.length);
    const signature = new Uint8Array(SIGNATURE_BYTES);
    signature.set(sha256(input), 0);
    input.set(SIG_TAG_B, 0);
    signature.set(sha256(input), 32);
    return signature;
  };

  return {
    ...nodeCrypto,
    name: 'node',
    generateKeyPair(): KeyPair {
      throw new Error('fast simulation crypto derives keys from seeds only');
    },
    signer(secretKey: Uint8Array): Signer {
      const publicKey = publicKeyFromSecret(secretKey);
      return {
        publicKey,
        sign: (message) => {
          const signature = signWith(secretKey, message);
          memo.remember(publicKey, message, signature);
          return signature;
        },
      };
    },
    parsePublicKey(raw: Uint8Array): PublicKeyHandle | null {
      if (raw.length !== 32) return null;
      const handle: FastPublicKey = { raw: raw.slice(), secret: undefined };
      return handle;
    },
    verify(key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean {
      if (signature.length !== SIGNATURE_BYTES) return false;
      if (memo.holds(key.raw, message, signature)) return true;
      const handle = key as FastPublicKey;
      // A key parsed before its signer was made learns its secret at its first verify.
      handle.secret ??= secretsByPublic.get(toHex(key.raw));
      if (handle.secret === undefined) return false;
      if (!bytesEqual(signWith(handle.secret, message), signature)) return false;
      memo.remember(key.raw, message, signature);
      return true;
    },
  };
}
