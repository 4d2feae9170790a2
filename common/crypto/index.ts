/**
 * The crypto backends behind one interface (types.ts). Replicas pick `node`; a browser client
 * imports noble.ts directly, since this module also loads node:crypto.
 */
import { unreachable } from '../assert.js';
import { nobleCrypto } from './noble.js';
import { nodeCrypto } from './node.js';
import type { CryptoBackend } from './types.js';

export * from './types.js';
export { nobleCrypto } from './noble.js';
export { nodeCrypto } from './node.js';

export type CryptoBackendName = CryptoBackend['name'];

export const CRYPTO_BACKEND_NAMES: readonly CryptoBackendName[] = ['node', 'noble'];

/** For command-line flags and config values: a string is a backend name. */
export function isCryptoBackendName(value: string): value is CryptoBackendName {
  return (CRYPTO_BACKEND_NAMES as readonly string[]).includes(value);
}

export function cryptoBackend(name: CryptoBackendName): CryptoBackend {
  switch (name) {
    case 'node':
      return nodeCrypto;
    case 'noble':
      return nobleCrypto;
    default:
      return unreachable(name, 'crypto backend');
  }
}
