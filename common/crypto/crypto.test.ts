/**
 * Both backends must accept and reject exactly the same signatures: a signature one replica accepts
 * and another rejects would split the cluster. Every case below is judged by both backends, and
 * also by the two libraries on their own (raw OpenSSL; noble's built-in strict verify), which
 * records why strict.ts and noble.ts's own verification exist: wherever a `native` column
 * disagrees with the other, a shared rule was needed.
 */
import { createPublicKey, verify as opensslVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, fromHex, toHex, utf8 } from '../bytes.js';
import { cryptoBackend, isCryptoBackendName, nobleCrypto, nodeCrypto, type CryptoBackend, type PublicKeyHandle } from './index.js';
import { RFC8032_ED25519_VECTORS } from './rfc8032-vectors.js';
import { SMALL_ORDER_ENCODINGS } from './strict.js';

const backends: readonly CryptoBackend[] = [nodeCrypto, nobleCrypto];

const hex = (text: string): Uint8Array => {
  const bytes = fromHex(text);
  if (bytes === null) throw new Error(`bad hex in test: ${text}`);
  return bytes;
};

/** Parsed keys by backend and key hex: parsing (a subgroup check, noble's window table) is done
 *  once per key in real use, and the tests should not spend their time on it either. */
const parsedKeys = new Map<string, PublicKeyHandle | null>();
function parsed(backend: CryptoBackend, publicKey: Uint8Array): PublicKeyHandle | null {
  const id = `${backend.name}:${toHex(publicKey)}`;
  if (!parsedKeys.has(id)) parsedKeys.set(id, backend.parsePublicKey(publicKey));
  return parsedKeys.get(id)!;
}

/** What a backend says: a key it refuses to parse verifies nothing. */
function backendAccepts(backend: CryptoBackend, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = parsed(backend, publicKey);
  return key !== null && backend.verify(key, message, signature);
}

const SPKI_PREFIX = hex('302a300506032b6570032100');
/** OpenSSL with no pre-checks. */
function rawOpenssl(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, publicKey)), format: 'der', type: 'spki' });
    return opensslVerify(null, message, key, signature);
  } catch {
    return false;
  }
}
/** noble's built-in RFC 8032 strict verify (cofactored equation). It throws on wrong lengths. */
function rawNoble(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

// ---- Curve arithmetic to build malformed signatures (test-only; backends never do this) ----

const Point = ed25519.Point;
const B = Point.BASE;
const Fn = Point.Fn;
const L = Fn.ORDER;
const FIELD_PRIME = Point.Fp.ORDER;
const le32 = (x: bigint): Uint8Array => numberToBytesLE(x, 32);
const challenge = (r: Uint8Array, a: Uint8Array, m: Uint8Array): bigint => Fn.create(bytesToNumberLE(sha512(concatBytes(r, a, m))));
const withSignBit = (bytes: Uint8Array): Uint8Array => {
  const out = Uint8Array.from(bytes);
  out[31]! |= 0x80;
  return out;
};

/** The honest signer of the edge cases: RFC 8032 TEST 1's key. */
const honest = ed25519.utils.getExtendedPublicKey(hex(RFC8032_ED25519_VECTORS[0]!.secretKey));
const honestKey = honest.pointBytes;
const message = utf8('pompe edge case');

/** A signature by secret scalar `a` (public encoding `aBytes`) with nonce point encoding `rBytes` for nonce r. */
const forge = (a: bigint, aBytes: Uint8Array, r: bigint, rBytes: Uint8Array, m: Uint8Array): Uint8Array =>
  concatBytes(rBytes, le32(Fn.create(r + challenge(rBytes, aBytes, m) * a)));

const order8 = Point.fromBytes(SMALL_ORDER_ENCODINGS[4]!);

/** The first message `${prefix} #i` whose challenge k satisfies want(k). */
function findMessage(prefix: string, rBytes: Uint8Array, aBytes: Uint8Array, want: (k: bigint) => boolean): Uint8Array {
  for (let i = 0; i < 1000; i++) {
    const m = utf8(`${prefix} #${i}`);
    if (want(challenge(rBytes, aBytes, m))) return m;
  }
  throw new Error(`no message found for ${prefix}`);
}

interface EdgeCase {
  readonly name: string;
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  /** What both backends must say. */
  readonly accept: boolean;
  /** What the libraries say on their own. */
  readonly native: { readonly openssl: boolean; readonly nobleCofactored: boolean };
}

function edgeCases(): EdgeCase[] {
  const cases: EdgeCase[] = [];
  const add = (c: EdgeCase): void => void cases.push(c);
  const good = nobleCrypto.signer(hex(RFC8032_ED25519_VECTORS[0]!.secretKey)).sign(message);
  const both = (value: boolean) => ({ openssl: value, nobleCofactored: value });
  const tweak = (f: (sig: Uint8Array) => void): Uint8Array => {
    const sig = Uint8Array.from(good);
    f(sig);
    return sig;
  };

  add({ name: 'valid', publicKey: honestKey, message, signature: good, accept: true, native: both(true) });
  add({ name: 'signature of another message', publicKey: honestKey, message: utf8('another message'), signature: good, accept: false, native: both(false) });
  const otherKey = nodeCrypto.signer(new Uint8Array(32).fill(9)).publicKey;
  add({ name: 'signature under another key', publicKey: otherKey, message, signature: good, accept: false, native: both(false) });
  for (const length of [0, 1, 32, 63, 65, 128]) {
    const sig = new Uint8Array(length);
    sig.set(good.subarray(0, Math.min(length, 64)));
    add({ name: `signature of ${length} bytes`, publicKey: honestKey, message, signature: sig, accept: false, native: both(false) });
  }
  add({ name: 'all-zero signature', publicKey: honestKey, message, signature: new Uint8Array(64), accept: false, native: both(false) });
  add({ name: 'R: lowest bit flipped', publicKey: honestKey, message, signature: tweak((s) => (s[0]! ^= 1)), accept: false, native: both(false) });
  add({ name: 'R: sign bit flipped', publicKey: honestKey, message, signature: tweak((s) => (s[31]! ^= 0x80)), accept: false, native: both(false) });
  add({ name: 'S: lowest bit flipped', publicKey: honestKey, message, signature: tweak((s) => (s[32]! ^= 1)), accept: false, native: both(false) });
  add({ name: 'S: top bit flipped (S ≥ 2^255)', publicKey: honestKey, message, signature: tweak((s) => (s[63]! ^= 0x80)), accept: false, native: both(false) });
  const s = bytesToNumberLE(good.subarray(32));
  add({ name: 'S + L (non-canonical S)', publicKey: honestKey, message, signature: concatBytes(good.subarray(0, 32), le32(s + L)), accept: false, native: both(false) });
  add({ name: 'S = L', publicKey: honestKey, message, signature: concatBytes(good.subarray(0, 32), le32(L)), accept: false, native: both(false) });

  // R with a small-order component: the cofactored equation ignores it, OpenSSL's does not.
  const r = 0x1234_5678_9abcn;
  const rPlusTorsion = B.multiply(r).add(order8).toBytes();
  add({
    name: 'R = rB + T (order-8 component)',
    publicKey: honestKey,
    message,
    signature: forge(honest.scalar, honestKey, r, rPlusTorsion, message),
    accept: false,
    native: { openssl: false, nobleCofactored: true },
  });
  // R of small order (nonce r = 0), so S = k·a.
  for (const [i, encoding] of SMALL_ORDER_ENCODINGS.entries()) {
    add({
      name: `R = small-order point #${i} (${toHex(encoding).slice(0, 8)}…), r = 0`,
      publicKey: honestKey,
      message,
      signature: forge(honest.scalar, honestKey, 0n, encoding, message),
      accept: false,
      // Only the identity satisfies the cofactorless equation; strict.ts rejects it too.
      native: { openssl: i === 0, nobleCofactored: true },
    });
  }
  const identityNonCanonical = le32(FIELD_PRIME + 1n); // y = p + 1 ≡ 1
  add({
    name: 'R = identity encoded with y = p + 1 (non-canonical)',
    publicKey: honestKey,
    message,
    signature: forge(honest.scalar, honestKey, 0n, identityNonCanonical, message),
    accept: false,
    native: both(false),
  });
  add({
    name: 'R = identity with the sign bit set (x = 0, non-canonical)',
    publicKey: honestKey,
    message,
    signature: forge(honest.scalar, honestKey, 0n, withSignBit(SMALL_ORDER_ENCODINGS[0]!), message),
    accept: false,
    native: both(false),
  });
  add({
    name: 'R not on the curve (y = 2)',
    publicKey: honestKey,
    message,
    signature: concatBytes(le32(2n), good.subarray(32)),
    accept: false,
    native: both(false),
  });

  // Small-order public keys, canonical and not: with k·A = 0, (R = [S]B, S) verifies under the
  // cofactorless equation for any S. OpenSSL accepts these forgeries; noble rejects the keys.
  const smallOrderKeys: [string, Uint8Array][] = [
    ...SMALL_ORDER_ENCODINGS.map((e, i): [string, Uint8Array] => [`#${i} ${toHex(e).slice(0, 8)}…`, e]),
    ['identity, y = p + 1', identityNonCanonical],
    ['identity, sign bit set', withSignBit(SMALL_ORDER_ENCODINGS[0]!)],
    ['order 2, sign bit set', withSignBit(SMALL_ORDER_ENCODINGS[1]!)],
    ['order 4, y = p', le32(FIELD_PRIME)],
    ['order 4, y = p, sign bit set', withSignBit(le32(FIELD_PRIME))],
  ];
  for (const [label, key] of smallOrderKeys) {
    const point: EdwardsPoint = Point.fromBytes(key, true); // ZIP-215 decoding, to learn the point
    const sValue = 42n;
    const rBytes = B.multiply(sValue).toBytes();
    const m = findMessage(`small-order key ${label}`, rBytes, key, (k) => point.multiplyUnsafe(k).is0());
    add({
      name: `public key of small order: ${label}`,
      publicKey: key,
      message: m,
      signature: concatBytes(rBytes, le32(sValue)),
      accept: false,
      native: { openssl: true, nobleCofactored: false },
    });
  }
  // The all-zero key is the order-4 point (√−1, 0): an all-zero signature verifies under OpenSSL
  // when k ≡ 3 (mod 4), since then −[k]A = A = R.
  {
    const zero = new Uint8Array(32);
    const a = Point.fromBytes(zero);
    const m = findMessage('all-zero key', zero, zero, (k) => a.multiplyUnsafe(k).negate().equals(a));
    add({ name: 'all-zero key, all-zero signature', publicKey: zero, message: m, signature: new Uint8Array(64), accept: false, native: { openssl: true, nobleCofactored: false } });
  }

  // A key with a small-order component, A = [a]B + T, whose owner signs honestly: OpenSSL accepts
  // when 8 | k (then [k]T = 0), noble's cofactored equation always. strict.ts refuses the key.
  {
    const a = 0xfeed_beefn;
    const mixedKey = B.multiply(a).add(order8).toBytes();
    const nonce = 0xabcdn;
    const rBytes = B.multiply(nonce).toBytes();
    for (const [label, want, openssl] of [
      ['8 | k', (k: bigint) => k % 8n === 0n, true],
      ['8 ∤ k', (k: bigint) => k % 8n !== 0n, false],
    ] as const) {
      const m = findMessage(`mixed-order key ${label}`, rBytes, mixedKey, want);
      add({
        name: `public key with a small-order component, ${label}`,
        publicKey: mixedKey,
        message: m,
        signature: forge(a, mixedKey, nonce, rBytes, m),
        accept: false,
        native: { openssl, nobleCofactored: true },
      });
    }
  }

  add({ name: 'public key not on the curve (y = 2)', publicKey: le32(2n), message, signature: good, accept: false, native: both(false) });
  add({ name: 'public key of 31 bytes', publicKey: honestKey.subarray(0, 31), message, signature: good, accept: false, native: both(false) });
  // y ≥ p for a point of large order: find y = p + c that decodes (as y = c) to such a point.
  for (let c = 2n; c < 19n; c++) {
    let point: EdwardsPoint;
    try {
      point = Point.fromBytes(le32(c));
    } catch {
      continue;
    }
    if (point.isSmallOrder()) continue;
    add({ name: `public key with y = p + ${c} (non-canonical)`, publicKey: le32(FIELD_PRIME + c), message, signature: good, accept: false, native: both(false) });
    break;
  }
  return cases;
}

describe('the backends', () => {
  it('are found by name', () => {
    expect(cryptoBackend('node')).toBe(nodeCrypto);
    expect(cryptoBackend('noble')).toBe(nobleCrypto);
    expect(isCryptoBackendName('noble')).toBe(true);
    expect(isCryptoBackendName('openssl')).toBe(false);
  });

  it('refuse a public key handle from the other backend (a programmer error)', () => {
    const key = nodeCrypto.parsePublicKey(honestKey)!;
    expect(() => nobleCrypto.verify(key, message, new Uint8Array(64))).toThrow(/another backend/);
    expect(() => nodeCrypto.verify(nobleCrypto.parsePublicKey(honestKey)!, message, new Uint8Array(64))).toThrow(/another backend/);
  });

  it('refuse a secret key of the wrong length', () => {
    for (const backend of backends) expect(() => backend.signer(new Uint8Array(31))).toThrow(/32 bytes/);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('RFC 8032 vectors, %s backend', (_name, backend) => {
  for (const v of RFC8032_ED25519_VECTORS) {
    it(v.name, () => {
      const signer = backend.signer(hex(v.secretKey));
      expect(toHex(signer.publicKey)).toBe(v.publicKey);
      expect(toHex(signer.sign(hex(v.message)))).toBe(v.signature);
      const key = backend.parsePublicKey(hex(v.publicKey));
      expect(key).not.toBeNull();
      expect(backend.verify(key!, hex(v.message), hex(v.signature))).toBe(true);
    });
  }
});

describe('edge cases: both backends agree', () => {
  const cases = edgeCases();
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const node = backendAccepts(nodeCrypto, c.publicKey, c.message, c.signature);
    const noble = backendAccepts(nobleCrypto, c.publicKey, c.message, c.signature);
    expect({ node, noble }).toEqual({ node: c.accept, noble: c.accept });
  });

  // What the libraries say without our rules: the cases where the two columns differ are the ones
  // that needed strict.ts (keys) or noble.ts's cofactorless verification (R with torsion).
  it.each(cases.map((c) => [c.name, c] as const))('native behaviour recorded: %s', (_name, c) => {
    expect({ openssl: rawOpenssl(c.publicKey, c.message, c.signature), nobleCofactored: rawNoble(c.publicKey, c.message, c.signature) }).toEqual(c.native);
  });

  it('includes cases where the libraries disagree on their own', () => {
    expect(cases.filter((c) => c.native.openssl !== c.native.nobleCofactored).length).toBeGreaterThan(10);
  });
});

describe('the small-order table', () => {
  it('lists exactly the 8 torsion points, canonically encoded', () => {
    const multiples = new Set<string>();
    for (let k = 0n; k < 8n; k++) multiples.add(toHex(order8.multiplyUnsafe(k).toBytes()));
    expect(new Set(SMALL_ORDER_ENCODINGS.map(toHex))).toEqual(multiples);
    for (const e of SMALL_ORDER_ENCODINGS) expect(Point.fromBytes(e, false).isSmallOrder()).toBe(true);
  });
});

describe('cross-backend properties', () => {
  const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const messageArb = fc.uint8Array({ maxLength: 600 });

  it('derive the same key and the same (deterministic) signature, and verify each other', () => {
    fc.assert(
      fc.property(seedArb, messageArb, (seed, m) => {
        const a = nodeCrypto.signer(seed);
        const b = nobleCrypto.signer(seed);
        expect(toHex(a.publicKey)).toBe(toHex(b.publicKey));
        const sigA = a.sign(m);
        const sigB = b.sign(m);
        expect(toHex(sigA)).toBe(toHex(sigB));
        expect(nodeCrypto.verify(nodeCrypto.parsePublicKey(a.publicKey)!, m, sigB)).toBe(true);
        expect(nobleCrypto.verify(nobleCrypto.parsePublicKey(b.publicKey)!, m, sigA)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('reject a signature with any one bit flipped, and a changed message', () => {
    fc.assert(
      fc.property(seedArb, messageArb, fc.integer({ min: 0, max: 511 }), (seed, m, bit) => {
        const signer = nodeCrypto.signer(seed);
        const sig = signer.sign(m);
        sig[bit >> 3]! ^= 1 << (bit & 7);
        const other = concatBytes(m, new Uint8Array([1]));
        for (const backend of backends) {
          const key = backend.parsePublicKey(signer.publicKey)!;
          expect(backend.verify(key, m, sig)).toBe(false);
          expect(backend.verify(key, other, signer.sign(m))).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('agree on R with a random small-order component added', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: L - 1n }), fc.integer({ min: 0, max: 7 }), messageArb, (nonce, t, m) => {
        const rBytes = B.multiply(nonce).add(Point.fromBytes(SMALL_ORDER_ENCODINGS[t]!)).toBytes();
        const sig = forge(honest.scalar, honestKey, nonce, rBytes, m);
        const expected = t === 0; // the identity adds nothing
        expect(backendAccepts(nodeCrypto, honestKey, m, sig)).toBe(expected);
        expect(backendAccepts(nobleCrypto, honestKey, m, sig)).toBe(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('agree on random public keys and random signatures', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (key, sig) => {
        const a = nodeCrypto.parsePublicKey(key);
        const b = nobleCrypto.parsePublicKey(key);
        expect(a === null).toBe(b === null);
        expect(backendAccepts(nodeCrypto, honestKey, message, sig)).toBe(false);
        expect(backendAccepts(nobleCrypto, honestKey, message, sig)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('generate key pairs the other backend agrees with', () => {
    for (const backend of backends) {
      const pair = backend.generateKeyPair();
      expect(pair.secretKey.length).toBe(32);
      for (const other of backends) expect(toHex(other.signer(pair.secretKey).publicKey)).toBe(toHex(pair.publicKey));
    }
    expect(bytesEqual(nobleCrypto.generateKeyPair().secretKey, nobleCrypto.generateKeyPair().secretKey)).toBe(false);
  });
});

describe('sha256', () => {
  const known: [string, string][] = [
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['616263', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ];
  it.each(backends.map((b) => [b.name, b] as const))('%s: known digests', (_name, backend) => {
    for (const [input, digest] of known) {
      const out = backend.sha256(hex(input));
      expect(out).toBeInstanceOf(Uint8Array);
      expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype);
      expect(toHex(out)).toBe(digest);
      expect(toHex(backend.sha256Parts([hex(input)]))).toBe(digest);
    }
    expect(toHex(backend.sha256Parts([]))).toBe(known[0]![1]);
  });

  it('sha256Parts is the hash of the concatenation, in both backends', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 6 }), (parts) => {
        const expected = toHex(nodeCrypto.sha256(concatBytes(...parts)));
        for (const backend of backends) {
          expect(toHex(backend.sha256Parts(parts))).toBe(expected);
          expect(toHex(backend.sha256(concatBytes(...parts)))).toBe(expected);
        }
      }),
      { numRuns: 200 },
    );
  });
});
