import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { nobleCrypto, nodeCrypto, type CryptoBackend } from './crypto/index.js';
import { ErrorCode } from './errors.js';
import { replicaId } from './ids.js';
import { formatClientKeyFile, formatSecretFile, MAX_SECRET_FILE_CHARS, parseClientKeyFile, parseSecretFile } from './keys.js';

const SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'; // RFC 8032 TEST 1
const PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

const file = (fields: Record<string, unknown>): string => JSON.stringify({ replica: 2, publicKey: PUBLIC, secretKey: SEED, ...fields });

function expectError(text: string, backend: CryptoBackend, pattern: RegExp): void {
  const result = parseSecretFile(text, backend);
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.error.code).toBe(ErrorCode.InvalidConfig);
  expect(result.error.message).toMatch(pattern);
  expect(result.error.message).not.toContain(SEED.slice(8)); // never echo the secret
}

describe.each([nodeCrypto, nobleCrypto].map((b) => [b.name, b] as const))('secret key file (%s)', (_name, backend) => {
  it('round-trips', () => {
    const keyPair = backend.generateKeyPair();
    const text = formatSecretFile(replicaId(5), keyPair);
    expect(text.endsWith('\n')).toBe(true);
    const parsed = parseSecretFile(text, backend);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.replica).toBe(5);
    expect(toHex(parsed.value.keyPair.secretKey)).toBe(toHex(keyPair.secretKey));
    expect(toHex(parsed.value.keyPair.publicKey)).toBe(toHex(keyPair.publicKey));
  });

  it('reads the documented format, hex in either case', () => {
    const parsed = parseSecretFile(file({ secretKey: SEED.toUpperCase() }), backend);
    expect(parsed.ok && toHex(parsed.value.keyPair.publicKey)).toBe(PUBLIC);
  });

  it('rejects text that is not a JSON object', () => {
    expectError('', backend, /not valid JSON/);
    expectError('{"replica": 1,', backend, /not valid JSON/);
    expectError('[1, 2]', backend, /top level must be an object, got an array/);
    expectError('null', backend, /got null/);
    expectError(' '.repeat(MAX_SECRET_FILE_CHARS + 1), backend, /more than the limit/);
  });

  it('rejects missing, unknown and mistyped fields', () => {
    expectError(JSON.stringify({ replica: 2, publicKey: PUBLIC }), backend, /secretKey is missing/);
    expectError(file({ secretkey: SEED }), backend, /secretkey is not a known field/);
    expectError(file({ replica: '2' }), backend, /replica must be an integer, got string/);
    expectError(file({ replica: -1 }), backend, /replica must be between 0 and 127, got -1/);
    expectError(file({ replica: 1.5 }), backend, /replica must be an integer/);
    expectError(file({ secretKey: 42 }), backend, /secretKey must be a hex string, got number/);
  });

  it('rejects bad hex and wrong lengths', () => {
    expectError(file({ secretKey: `${SEED.slice(2)}zz` }), backend, /secretKey is not valid hex/);
    expectError(file({ secretKey: SEED.slice(1) }), backend, /secretKey is not valid hex/);
    expectError(file({ secretKey: SEED.slice(2) }), backend, /secretKey must be 32 bytes \(64 hex characters\), got 31 bytes/);
    expectError(file({ publicKey: `${PUBLIC}00` }), backend, /publicKey must be 32 bytes .* got 33 bytes/);
  });

  it('rejects a public key that is not the secret key\'s', () => {
    const other = toHex(backend.generateKeyPair().publicKey);
    expectError(file({ publicKey: other }), backend, /publicKey .* does not match secretKey, whose public key is d75a9801/);
  });

  it('lists every problem at once', () => {
    expectError(JSON.stringify({ replica: 'x', publicKey: 'abc', extra: 1 }), backend, /secretKey is missing.*extra is not a known field.*replica must be an integer.*publicKey is not valid hex/);
  });
});

describe.each([nodeCrypto, nobleCrypto].map((b) => [b.name, b] as const))('client key file (%s)', (_name, backend) => {
  it('round-trips, without a replica id', () => {
    const keyPair = backend.generateKeyPair();
    const text = formatClientKeyFile(keyPair);
    expect(JSON.parse(text)).not.toHaveProperty('replica');
    const parsed = parseClientKeyFile(text, backend);
    expect(parsed.ok && toHex(parsed.value.publicKey)).toBe(toHex(keyPair.publicKey));
  });

  it('refuses a mismatched pair and a replica key file, naming the problem, never the secret', () => {
    const bad = parseClientKeyFile(JSON.stringify({ publicKey: PUBLIC.replace('d7', 'd8'), secretKey: SEED }), backend);
    expect(!bad.ok && bad.error.message).toMatch(/client key file.*does not match secretKey/);
    expect(!bad.ok && bad.error.message).not.toContain(SEED.slice(8));
    const replicaFile = parseClientKeyFile(file({}), backend);
    expect(!replicaFile.ok && replicaFile.error.message).toMatch(/replica is not a known field/);
  });
});
