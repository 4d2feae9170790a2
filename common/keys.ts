/**
 * Key files, as text (reading and writing the files is server/'s, client/'s and scripts/' job).
 * A replica's: `{"replica": <id>, "publicKey": "<hex, 32 bytes>", "secretKey": "<hex, 32-byte seed>"}`;
 * a client's: the same without `replica` (a client's identity is its public key).
 * The public key is stored beside the seed so that a key file mixed up with another replica's
 * entry in the cluster config is caught when loading, not when peers start rejecting signatures.
 */
import { bytesEqual, toHex } from './bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SECRET_KEY_BYTES, type CryptoBackend, type KeyPair } from './crypto/types.js';
import { ok, type Result } from './errors.js';
import { replicaId, type ReplicaId } from './ids.js';
import { parseJsonText, Problems, readHex, readInteger, readObject } from './json-input.js';
import { MAX_REPLICAS } from './limits.js';

/** A key file is ~170 characters; anything far larger is not a key file. */
export const MAX_SECRET_FILE_CHARS = 4096;

const WHAT = 'secret key file';

export interface SecretFile {
  readonly replica: ReplicaId;
  readonly keyPair: KeyPair;
}

export function formatSecretFile(replica: ReplicaId, keyPair: KeyPair): string {
  return `${JSON.stringify({ replica, publicKey: toHex(keyPair.publicKey), secretKey: toHex(keyPair.secretKey) }, null, 2)}\n`;
}

/** Never throws: bad input is an InvalidConfig error naming the field. */
export function parseSecretFile(text: string, backend: CryptoBackend): Result<SecretFile> {
  const parsed = parseKeyFile(text, backend, WHAT, true);
  if (!parsed.ok) return parsed;
  return ok({ replica: replicaId(parsed.value.replica!), keyPair: parsed.value.keyPair });
}

const CLIENT_WHAT = 'client key file';

export function formatClientKeyFile(keyPair: KeyPair): string {
  return `${JSON.stringify({ publicKey: toHex(keyPair.publicKey), secretKey: toHex(keyPair.secretKey) }, null, 2)}\n`;
}

/** A client's key file; never throws: bad input is an InvalidConfig error naming the field. */
export function parseClientKeyFile(text: string, backend: CryptoBackend): Result<KeyPair> {
  const parsed = parseKeyFile(text, backend, CLIENT_WHAT, false);
  return parsed.ok ? ok(parsed.value.keyPair) : parsed;
}

function parseKeyFile(text: string, backend: CryptoBackend, what: string, withReplica: boolean): Result<{ replica: number | undefined; keyPair: KeyPair }> {
  const parsed = parseJsonText(text, what, MAX_SECRET_FILE_CHARS);
  if (!parsed.ok) return parsed;
  const problems = new Problems(what);
  const obj = readObject(parsed.value, '', withReplica ? ['replica', 'publicKey', 'secretKey'] : ['publicKey', 'secretKey'], [], problems);
  if (obj === undefined) return problems.toError();
  const replica = withReplica ? readInteger(obj, 'replica', '', 0, MAX_REPLICAS - 1, problems) : undefined;
  const publicKey = readHex(obj, 'publicKey', '', ED25519_PUBLIC_KEY_BYTES, problems);
  // Never echo secret bytes into an error message: readHex reports only lengths and syntax.
  const secretKey = readHex(obj, 'secretKey', '', ED25519_SECRET_KEY_BYTES, problems);
  if ((withReplica && replica === undefined) || publicKey === undefined || secretKey === undefined || !problems.empty) {
    return problems.toError();
  }
  const derived = backend.signer(secretKey).publicKey;
  if (!bytesEqual(derived, publicKey)) {
    problems.add(`publicKey ${toHex(publicKey)} does not match secretKey, whose public key is ${toHex(derived)}`);
    return problems.toError();
  }
  return ok({ replica, keyPair: { secretKey, publicKey } });
}
