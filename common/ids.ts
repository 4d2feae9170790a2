import { assert } from './assert.js';

/** Index of a replica in the cluster config, 0 ≤ id < n. */
export type ReplicaId = number & { readonly __brand: 'ReplicaId' };
/** A HotStuff view (round). Genesis is view 0. */
export type View = number & { readonly __brand: 'View' };
/** Height of a block in the chain. Genesis is height 0. */
export type Height = number & { readonly __brand: 'Height' };
/** A time slot: slot(ts) = ⌊(ts − genesisUs) / slotUs⌋ (see time.ts). */
export type Slot = number & { readonly __brand: 'Slot' };
/** SHA-256 output, exactly 32 bytes. */
export type Digest = Uint8Array & { readonly __brand: 'Digest' };

/** Largest integer carried on the wire: u64 fields above 2^53 are rejected (DESIGN.md). */
export const MAX_WIRE_INTEGER = Number.MAX_SAFE_INTEGER;

export function isWireInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function checked<T extends number>(value: number, what: string): T {
  assert(isWireInteger(value), `${what} must be a non-negative safe integer, got ${value}`);
  return value as T;
}

export const replicaId = (value: number): ReplicaId => checked<ReplicaId>(value, 'replica id');
export const view = (value: number): View => checked<View>(value, 'view');
export const height = (value: number): Height => checked<Height>(value, 'height');
export const slot = (value: number): Slot => checked<Slot>(value, 'slot');

export const DIGEST_BYTES = 32;

export function asDigest(bytes: Uint8Array): Digest {
  assert(bytes.length === DIGEST_BYTES, `digest must be ${DIGEST_BYTES} bytes, got ${bytes.length}`);
  return bytes as Digest;
}
