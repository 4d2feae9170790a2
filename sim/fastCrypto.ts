/**
 * A fast stand-in for Ed25519 inside the simulator only: a signature is a keyed SHA-256 of the
 * message under the signer's secret, and verification recomputes it with the secret registered
 * for that public key. It is sound inside a simulation (Byzantine code is ours and never reads
 * another replica's secret) and ~100× cheaper than Ed25519, which makes long seed sweeps
 * affordable. Real Ed25519 (node:crypto) remains the simulator's default.
 */
import { bytesEqual, concatBytes, toHex, utf8 } from '../common/bytes.js';
import type { CryptoBackend, KeyPair, PublicKeyHandle, Signer } from '../common/crypto/types.js';
import { nodeCrypto } from '../common/crypto/node.js';

const PUBLIC_TAG = utf8('sim/public');
const SIG_TAG_A = utf8('sim/sig/a');
const SIG_TAG_B = utf8('sim/sig/b');

export function createFastCrypto(): CryptoBackend {
  const secretsByPublic = new Map<string, Uint8Array>();
  const sha256 = nodeCrypto.sha256;

  const publicKeyFromSecret = (secret: Uint8Array): Uint8Array => {
    const pub = sha256(concatBytes(PUBLIC_TAG, secret));
    secretsByPublic.set(toHex(pub), secret);
    return pub;
  };
  const signWith = (secret: Uint8Array, message: Uint8Array): Uint8Array =>
    concatBytes(nodeCrypto.sha256Parts([SIG_TAG_A, secret, message]), nodeCrypto.sha256Parts([SIG_TAG_B, secret, message]));

  return {
    ...nodeCrypto,
    name: 'node',
    generateKeyPair(): KeyPair {
      throw new Error('fast simulation crypto derives keys from seeds only');
    },
    signer(secretKey: Uint8Array): Signer {
      const publicKey = publicKeyFromSecret(secretKey);
      return { publicKey, sign: (message) => signWith(secretKey, message) };
    },
    parsePublicKey(raw: Uint8Array): PublicKeyHandle | null {
      return raw.length === 32 ? { raw } : null;
    },
    verify(key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean {
      const secret = secretsByPublic.get(toHex(key.raw));
      if (secret === undefined || signature.length !== 64) return false;
      return bytesEqual(signWith(secret, message), signature);
    },
  };
}
