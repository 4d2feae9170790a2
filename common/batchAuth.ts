/**
 * Signing and checking batches and thin clients' commands (common/batch.ts formats, signing.ts
 * layouts). One place for both sides: a collector signs with batchSigner, a thin client with
 * signCommand, and a replica checks with verifyBatchSignature and verifyCommandSignature before it
 * gives a timestamp (ordering/batchCheck.ts).
 */
import { batchBody, batchSignature, type SignedCommand } from './batch.js';
import type { CryptoBackend, PublicKeyHandle, Signer } from './crypto/types.js';
import { batchMessage, commandMessage } from './signing.js';

/** The `sign` argument of encodeBatch for a collector holding `signer`. */
export function batchSigner(clusterId: Uint8Array, crypto: CryptoBackend, signer: Signer): (body: Uint8Array) => Uint8Array {
  return (body) => signer.sign(batchMessage(clusterId, crypto.sha256(body)));
}

/** True if the batch ends with `key`'s signature over the bytes before it. */
export function verifyBatchSignature(clusterId: Uint8Array, crypto: CryptoBackend, key: PublicKeyHandle, bytes: Uint8Array): boolean {
  return crypto.verify(key, batchMessage(clusterId, crypto.sha256(batchBody(bytes))), batchSignature(bytes));
}

/** A thin client's command, signed by it. */
export function signCommand(
  clusterId: Uint8Array,
  crypto: CryptoBackend,
  signer: Signer,
  command: { readonly seq: number; readonly expiresAtUs: number; readonly payload: Uint8Array },
): SignedCommand {
  const clientKey = signer.publicKey;
  const sig = signer.sign(commandMessage(clusterId, clientKey, command.seq, command.expiresAtUs, crypto.sha256(command.payload)));
  return { clientKey, seq: command.seq, expiresAtUs: command.expiresAtUs, payload: command.payload, sig };
}

/** True if `sig` is `key`'s signature over the command; `key` must be the handle of `command.clientKey`. */
export function verifyCommandSignature(
  clusterId: Uint8Array,
  crypto: CryptoBackend,
  key: PublicKeyHandle,
  command: { readonly clientKey: Uint8Array; readonly seq: number; readonly expiresAtUs: number; readonly payload: Uint8Array; readonly sig: Uint8Array },
): boolean {
  const message = commandMessage(clusterId, command.clientKey, command.seq, command.expiresAtUs, crypto.sha256(command.payload));
  return crypto.verify(key, message, command.sig);
}
