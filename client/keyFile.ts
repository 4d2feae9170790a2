/**
 * A client's key pair in a file (Node): `{"publicKey": "<hex>", "secretKey": "<hex>"}`, written
 * by `pompe keygen --client --out <file>` or saveClientKey, read by loadClientKey and passed to
 * `PompeClient.connect({ key })`. A client keeps its identity across runs this way (for an
 * allow-list, say); it must then continue its sequence numbers (`firstSeq`) above the ones it used
 * in the last 10 minutes, or replicas skip its commands as repeats.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { nodeCrypto } from '../common/crypto/node.js';
import type { CryptoBackend, KeyPair } from '../common/crypto/types.js';
import { formatClientKeyFile, MAX_SECRET_FILE_CHARS, parseClientKeyFile } from '../common/keys.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';

/** Reads a client key file; BAD_CONFIG if it cannot be read or does not hold a matching key pair. */
export async function loadClientKey(path: string, crypto: CryptoBackend = nodeCrypto): Promise<KeyPair> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PompeClientError(PompeClientErrorCode.BadConfig, `cannot read client key file ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (text.length > MAX_SECRET_FILE_CHARS) throw new PompeClientError(PompeClientErrorCode.BadConfig, `${path} is too large for a client key file`);
  const parsed = parseClientKeyFile(text, crypto);
  if (!parsed.ok) throw new PompeClientError(PompeClientErrorCode.BadConfig, `${path}: ${parsed.error.message}`);
  return parsed.value;
}

/** Writes a client key file readable by its owner only; refuses to overwrite unless `force`. */
export async function saveClientKey(path: string, keyPair: KeyPair, force = false): Promise<void> {
  await writeFile(path, formatClientKeyFile(keyPair), { mode: 0o600, flag: force ? 'w' : 'wx' });
}

/** A fresh client key pair. */
export function newClientKey(crypto: CryptoBackend = nodeCrypto): KeyPair {
  return crypto.generateKeyPair();
}
