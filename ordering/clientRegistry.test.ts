/**
 * Notices go only to connections that proved they hold the batch's collector key: a bounded
 * number per key, the newest first; a key off the allow-list is refused.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../common/bytes.js';
import { generateCluster } from '../common/config.js';
import type { Signer } from '../common/crypto/types.js';
import type { ClientIdentity } from './clientKeys.js';
import { ClientRegistry, MAX_CONNECTIONS_PER_CLIENT_KEY } from './clientRegistry.js';
import { testClient, testCrypto, testKeys } from './testHarness.js';

const identity = (s: Signer): ClientIdentity => ({ hex: toHex(s.publicKey), handle: testCrypto.parsePublicKey(s.publicKey)! });
const alice = identity(testClient(1));
const bob = identity(testClient(2));

describe('ClientRegistry', () => {
  it('routes a key’s notices to its own connections only', () => {
    const r = new ClientRegistry(testKeys(4).config);
    expect(r.authenticate(1, alice)).toBe('ok');
    expect(r.authenticate(2, bob)).toBe('ok');
    expect(r.authenticate(3, alice)).toBe('ok');
    expect(r.connectionsOf(alice.hex)).toEqual([1, 3]);
    expect(r.connectionsOf(bob.hex)).toEqual([2]);
    expect(r.identityOf(2)).toBe(bob);
    r.closed(1);
    expect(r.connectionsOf(alice.hex)).toEqual([3]);
    r.closed(3);
    expect(r.connectionsOf(alice.hex)).toEqual([]);
    expect(r.size).toBe(1);
  });

  it('keeps the newest connections of a key within the bound', () => {
    const r = new ClientRegistry(testKeys(4).config);
    for (let conn = 1; conn <= MAX_CONNECTIONS_PER_CLIENT_KEY + 2; conn++) r.authenticate(conn, alice);
    expect(r.connectionsOf(alice.hex)).toEqual(Array.from({ length: MAX_CONNECTIONS_PER_CLIENT_KEY }, (_, i) => i + 3));
  });

  it('refuses a key off the allow-list', () => {
    const { config } = generateCluster({ n: 4, keySeed: 'registry', clientKeys: [testClient(1).publicKey] }, testCrypto);
    const r = new ClientRegistry(config);
    expect(r.authenticate(1, alice)).toBe('ok');
    expect(r.authenticate(2, bob)).toBe('notAllowed');
    expect(r.identityOf(2)).toBeUndefined();
  });

  it('treats a second authentication of one connection as a bug of its driver', () => {
    const r = new ClientRegistry(testKeys(4).config);
    r.authenticate(1, alice);
    expect(() => r.authenticate(1, bob)).toThrow(/authenticated twice/);
  });
});
