/**
 * Shared helpers for the ordering tests: a seeded cluster (same keys every run), batches, signed
 * timestamps, OCs, seals and a fresh ReplicaCore. Test support only; nothing in the cores uses it.
 */
import { BatchMode, encodeBatch, type DirectCommand } from '../common/batch.js';
import { batchSigner } from '../common/batchAuth.js';
import { utf8 } from '../common/bytes.js';
import { generateCluster, type ClusterConfig, type ProtocolConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId, Slot } from '../common/ids.js';
import type { OrderingCert, Seal, SealEntry, SignedTimestamp } from '../common/messages.js';
import { timestampMessage } from '../common/signing.js';
import { KvStore } from './kvStore.js';
import { ocHash } from './oc.js';
import { ReplicaCore } from './replica.js';
import { signSeal } from './seal.js';
import type { StateMachine } from './stateMachine.js';
import { MemoryReplicaStorage } from './storage.js';

export const testCrypto = nodeCrypto;

/** Test clusters start their clock here: slot 0 is [0, slotUs). */
export const TEST_PROTOCOL: Partial<ProtocolConfig> = { genesisUs: 0, slotUs: 5_000, deltaUs: 10_000 };

export interface TestKeys {
  readonly config: ClusterConfig;
  readonly signers: readonly Signer[];
}

const clusters = new Map<string, TestKeys>();

/** A cluster of n replicas with seeded keys (cached: key derivation is the slow part). */
export function testKeys(n = 4, protocol: Partial<ProtocolConfig> = {}): TestKeys {
  const merged = { ...TEST_PROTOCOL, ...protocol };
  const cacheKey = `${n}/${JSON.stringify(merged)}`;
  let keys = clusters.get(cacheKey);
  if (keys === undefined) {
    const { config, keyPairs } = generateCluster({ n, keySeed: `ordering-test-${n}`, protocol: merged }, testCrypto);
    keys = { config, signers: keyPairs.map((k) => testCrypto.signer(k.secretKey)) };
    clusters.set(cacheKey, keys);
  }
  return keys;
}

export interface TestBatch {
  readonly bytes: Uint8Array;
  readonly digest: Digest;
}

const clientSigners = new Map<number, Signer>();

/** Test client `n`'s key pair (seeded, cached): a client is its Ed25519 key. */
export function testClient(n = 0): Signer {
  let signer = clientSigners.get(n);
  if (signer === undefined) {
    signer = testCrypto.signer(testCrypto.sha256(utf8(`pompe/test-client/${n}`)));
    clientSigners.set(n, signer);
  }
  return signer;
}

/** A direct-mode batch of a test client (client 0 unless told), signed by it for `keys`' cluster. */
export function makeBatch(opts: {
  keys?: TestKeys;
  client?: Signer;
  nonce: number;
  expiresAtUs: number;
  commands?: readonly DirectCommand[];
}): TestBatch {
  const client = opts.client ?? testClient();
  const config = (opts.keys ?? testKeys()).config;
  const commands = opts.commands ?? [{ seq: opts.nonce + 1, payload: Uint8Array.of(opts.nonce & 0xff) }];
  const bytes = encodeBatch(
    { mode: BatchMode.Direct, collectorKey: client.publicKey, nonce: opts.nonce, expiresAtUs: opts.expiresAtUs, commands },
    batchSigner(config.clusterId, testCrypto, client),
  );
  return { bytes, digest: testCrypto.sha256(bytes) };
}

export function signStamp(keys: TestKeys, digest: Digest, replica: number, ts: number): SignedTimestamp {
  const sig = keys.signers[replica]!.sign(timestampMessage(keys.config.clusterId, digest, ts, replica as ReplicaId));
  return { replica: replica as ReplicaId, ts, sig };
}

/** An OC with the given (replica, ts) stamps, signed by those replicas, in increasing replica order. */
export function makeOc(keys: TestKeys, digest: Digest, stamps: readonly (readonly [replica: number, ts: number])[]): OrderingCert {
  const sorted = [...stamps].sort((a, b) => a[0] - b[0]);
  return { digest, stamps: sorted.map(([r, ts]) => signStamp(keys, digest, r, ts)) };
}

/** An OC from replicas 0..q−1 all stamping `ts` (median `ts`), and the seal entry for it. */
export function certified(keys: TestKeys, digest: Digest, ts: number): { oc: OrderingCert; entry: SealEntry } {
  const oc = makeOc(keys, digest, Array.from({ length: keys.config.q }, (_, r) => [r, ts] as const));
  return { oc, entry: { digest, ts, ocHash: ocHash(testCrypto, oc) } };
}

export function makeSeal(keys: TestKeys, replica: number, from: number, to: number, entries: readonly SealEntry[]): Seal {
  return signSeal(keys.config, testCrypto, keys.signers[replica]!, replica as ReplicaId, from as Slot, to as Slot, entries);
}

/** A fresh ReplicaCore (or one recovered from `storage`), with a KvStore unless told otherwise. */
export function newReplica(
  keys: TestKeys,
  id: number,
  opts: { storage?: MemoryReplicaStorage; stateMachine?: StateMachine } = {},
): ReplicaCore {
  return new ReplicaCore({
    config: keys.config,
    self: id as ReplicaId,
    crypto: testCrypto,
    signer: keys.signers[id]!,
    stateMachine: opts.stateMachine ?? new KvStore(),
    recovered: (opts.storage ?? new MemoryReplicaStorage(testCrypto, keys.config.n)).loadSync(),
  });
}
