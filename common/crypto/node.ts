/**
 * The `node` backend: node:crypto (OpenSSL). Replicas use it for speed (DESIGN.md "Performance").
 * Key objects are built once per key, never per signature. The shared strict rules (strict.ts)
 * run before OpenSSL sees a key or a signature, so this backend and `noble` agree on every input.
 */
import * as nodeCryptoModule from 'node:crypto';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { assert } from '../assert.js';
import { bytesEqual, fromHex } from '../bytes.js';
import { asDigest, type Digest } from '../ids.js';
import { decodeStrictPublicKey, hasStrictSignatureEncoding } from './strict.js';
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SECRET_KEY_BYTES,
  type CryptoBackend,
  type KeyPair,
  type PublicKeyHandle,
  type Signer,
} from './types.js';

function derPrefix(hex: string): Uint8Array {
  const bytes = fromHex(hex);
  assert(bytes !== null, `bad DER prefix ${hex}`);
  return bytes;
}

/** SubjectPublicKeyInfo for Ed25519 (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 },
 *  BIT STRING (no unused bits) } followed by the 32 raw key bytes. */
const SPKI_ED25519_PREFIX = derPrefix('302a300506032b6570032100');
/** PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410): SEQUENCE { INTEGER 0, SEQUENCE { OID },
 *  OCTET STRING { OCTET STRING } } followed by the 32-byte seed. */
const PKCS8_ED25519_PREFIX = derPrefix('302e020100300506032b657004220420');

function withPrefix(prefix: Uint8Array, raw: Uint8Array): Buffer {
  const out = Buffer.alloc(prefix.length + raw.length);
  out.set(prefix, 0);
  out.set(raw, prefix.length);
  return out;
}

/** A plain Uint8Array copy: node returns Buffers, and callers compare and store plain arrays. */
const plain = (buf: Uint8Array): Uint8Array => new Uint8Array(buf);

/** crypto.hash (Node ≥ 20.12) hashes in one call without a Hash object: faster for the small
 *  inputs that dominate. Older Node 20 releases lack it (a named import would fail to link).
 *  Digests come back as 'binary' (latin1) strings, one character per byte on the JS heap, read into
 *  a plain array: a Buffer result costs a backing store outside the heap per hash, about three
 *  times the hash itself for the statement-sized inputs replicas hash. */
const oneShotHash = (nodeCryptoModule as { hash?: typeof nodeCryptoModule.hash }).hash;
const sha256Latin1: (data: Uint8Array) => string =
  typeof oneShotHash === 'function'
    ? (data) => oneShotHash('sha256', data, 'binary')
    : (data) => createHash('sha256').update(data).digest('binary');

/** The bytes of a latin1 string (each character one byte, as node's latin1 digests are). */
function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

class NodePublicKey implements PublicKeyHandle {
  constructor(
    readonly raw: Uint8Array,
    readonly keyObject: KeyObject,
  ) {}
}

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  assert(secretKey.length === ED25519_SECRET_KEY_BYTES, `Ed25519 secret key must be ${ED25519_SECRET_KEY_BYTES} bytes, got ${secretKey.length}`);
  const der = withPrefix(PKCS8_ED25519_PREFIX, secretKey);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0); // OpenSSL holds its own copy; do not leave the seed in a stray buffer
  }
}

function rawPublicKey(privateKey: KeyObject): Uint8Array {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  assert(
    spki.length === SPKI_ED25519_PREFIX.length + ED25519_PUBLIC_KEY_BYTES &&
      bytesEqual(spki.subarray(0, SPKI_ED25519_PREFIX.length), SPKI_ED25519_PREFIX),
    'OpenSSL exported an unexpected Ed25519 SubjectPublicKeyInfo',
  );
  return plain(spki.subarray(SPKI_ED25519_PREFIX.length));
}

function signer(secretKey: Uint8Array): Signer {
  const key = privateKeyObject(secretKey);
  const publicKey = rawPublicKey(key);
  return {
    publicKey,
    sign: (message: Uint8Array): Uint8Array => plain(cryptoSign(null, message, key)),
  };
}

export const nodeCrypto: CryptoBackend = {
  name: 'node',

  sha256(data: Uint8Array): Digest {
    return asDigest(latin1Bytes(sha256Latin1(data)));
  },

  sha256Parts(parts: readonly Uint8Array[]): Digest {
    const h = createHash('sha256');
    for (const part of parts) h.update(part);
    return asDigest(latin1Bytes(h.digest('binary')));
  },

  generateKeyPair(): KeyPair {
    const secretKey = plain(randomBytes(ED25519_SECRET_KEY_BYTES));
    return { secretKey, publicKey: rawPublicKey(privateKeyObject(secretKey)) };
  },

  signer,

  parsePublicKey(raw: Uint8Array): PublicKeyHandle | null {
    // OpenSSL imports any 32 bytes without looking at the point; the shared rules decide.
    if (decodeStrictPublicKey(raw) === null) return null;
    const copy = plain(raw);
    try {
      return new NodePublicKey(copy, createPublicKey({ key: withPrefix(SPKI_ED25519_PREFIX, copy), format: 'der', type: 'spki' }));
    } catch {
      return null;
    }
  },

  verify(key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean {
    assert(key instanceof NodePublicKey, 'verify() was given a public key handle from another backend');
    if (!hasStrictSignatureEncoding(signature)) return false;
    try {
      return cryptoVerify(null, message, key.keyObject, signature);
    } catch {
      return false;
    }
  },
};
