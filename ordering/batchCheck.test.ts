/**
 * Phase-1 admission: a correct replica stamps only batches whose collector proved its key on the
 * connection, whose keys the cluster admits, and whose every signature verifies.
 */
import { describe, expect, it } from 'vitest';
import { BatchMode, encodeBatch, readBatchHeader, type BatchHeader, type SignedCommand } from '../common/batch.js';
import { batchSigner, signCommand } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import { generateCluster } from '../common/config.js';
import type { Signer } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import { RefusalReason } from '../common/messages.js';
import { BatchChecker, type BatchOrigin } from './batchCheck.js';
import { ClientKeyCache, KEY_PARSES_PER_SOURCE_PER_SECOND, type ClientIdentity } from './clientKeys.js';
import { makeBatch, testClient, testCrypto, testKeys } from './testHarness.js';

const keys = testKeys(4);
const { config } = keys;
const alice = testClient(1);
const mallory = testClient(2);
const identity = (s: Signer): ClientIdentity => ({ hex: toHex(s.publicKey), handle: testCrypto.parsePublicKey(s.publicKey)! });
const fromClient = (s: Signer | null): BatchOrigin => ({ kind: 'client', identity: s === null ? null : identity(s) });
const fromPeer = (r: number): BatchOrigin => ({ kind: 'peer', replica: r as ReplicaId });

function checker(c = config): BatchChecker {
  return new BatchChecker(c, testCrypto, new ClientKeyCache(testCrypto));
}

function header(bytes: Uint8Array): BatchHeader {
  const h = readBatchHeader(bytes);
  if (!h.ok) throw new Error(h.error.message);
  return h.value;
}

function check(ch: BatchChecker, bytes: Uint8Array, origin: BatchOrigin, nowUs = 0): RefusalReason | null {
  return ch.check(bytes, toHex(testCrypto.sha256(bytes)), header(bytes), origin, nowUs);
}

let nonce = 0;
const direct = (client: Signer, sign: Signer = client): Uint8Array =>
  encodeBatch(
    { mode: BatchMode.Direct, collectorKey: client.publicKey, nonce: nonce++, expiresAtUs: 1e9, commands: [{ seq: 1, payload: Uint8Array.of(1) }] },
    batchSigner(config.clusterId, testCrypto, sign),
  );
const thin = (client: Signer, seq = 1): SignedCommand => signCommand(config.clusterId, testCrypto, client, { seq, expiresAtUs: 1e9, payload: Uint8Array.of(seq) });
const gatewayBatch = (replica: number, commands: readonly SignedCommand[], signAs = replica): Uint8Array =>
  encodeBatch(
    { mode: BatchMode.Gateway, collectorKey: config.replicas[replica]!.publicKey, nonce: nonce++, expiresAtUs: 1e9, commands },
    batchSigner(config.clusterId, testCrypto, keys.signers[signAs]!),
  );

describe('BatchChecker: direct batches', () => {
  it('admits a batch its collector signed, from a connection authenticated as that collector', () => {
    expect(check(checker(), makeBatch({ client: alice, nonce: 1, expiresAtUs: 1e9 }).bytes, fromClient(alice))).toBeNull();
  });

  it('refuses a batch tagged with another client’s key, whoever signed it', () => {
    const ch = checker();
    // Mallory names Alice as collector: signed by Mallory it fails the signature, and on
    // Mallory's connection it is not hers to send.
    expect(check(ch, direct(alice, mallory), fromClient(mallory))).toBe(RefusalReason.BadSignature);
    expect(check(ch, direct(alice, mallory), fromClient(alice))).toBe(RefusalReason.BadSignature);
    // Alice's own genuine batch, replayed on Mallory's connection.
    expect(check(ch, direct(alice), fromClient(mallory))).toBe(RefusalReason.BadSignature);
  });

  it('refuses a batch from a connection that never proved a key, and a gateway batch from a client', () => {
    const ch = checker();
    expect(check(ch, direct(alice), fromClient(null))).toBe(RefusalReason.BadSignature);
    expect(check(ch, gatewayBatch(1, [thin(alice)]), fromClient(alice))).toBe(RefusalReason.BadSignature);
  });

  it('refuses a key off the allow-list, and admits a listed one', () => {
    const { config: listed } = generateCluster({ n: 4, keySeed: 'ordering-test-4', protocol: config.protocol, clientKeys: [alice.publicKey] }, testCrypto);
    const ch = new BatchChecker(listed, testCrypto, new ClientKeyCache(testCrypto));
    const sign = (s: Signer): Uint8Array =>
      encodeBatch(
        { mode: BatchMode.Direct, collectorKey: s.publicKey, nonce: nonce++, expiresAtUs: 1e9, commands: [{ seq: 1, payload: Uint8Array.of(1) }] },
        batchSigner(listed.clusterId, testCrypto, s),
      );
    expect(check(ch, sign(alice), fromClient(alice))).toBeNull();
    expect(check(ch, sign(mallory), fromClient(mallory))).toBe(RefusalReason.NotAllowed);
  });

  it('refuses any change to a signed batch', () => {
    const bytes = Uint8Array.from(direct(alice));
    bytes[bytes.length - 70]! ^= 1; // the last payload byte
    expect(check(checker(), bytes, fromClient(alice))).toBe(RefusalReason.BadSignature);
  });
});

describe('BatchChecker: gateway batches', () => {
  it('admits a replica’s batch of thin clients’ signed commands, from that replica', () => {
    expect(check(checker(), gatewayBatch(1, [thin(alice), thin(mallory)]), fromPeer(1))).toBeNull();
  });

  it('refuses a batch that names another replica as gateway, or is not signed by it', () => {
    const ch = checker();
    expect(check(ch, gatewayBatch(2, [thin(alice)]), fromPeer(1))).toBe(RefusalReason.BadSignature);
    expect(check(ch, gatewayBatch(1, [thin(alice)], 2), fromPeer(1))).toBe(RefusalReason.BadSignature);
    expect(check(ch, direct(alice), fromPeer(1))).toBe(RefusalReason.BadSignature);
  });

  it('refuses a batch in which the gateway forged or altered one thin client’s command', () => {
    const ch = checker();
    const forged: SignedCommand = { ...thin(mallory, 7), clientKey: alice.publicKey };
    expect(check(ch, gatewayBatch(1, [thin(alice), forged]), fromPeer(1))).toBe(RefusalReason.BadSignature);
    const altered: SignedCommand = { ...thin(alice, 3), payload: Uint8Array.of(99) };
    expect(check(ch, gatewayBatch(1, [altered]), fromPeer(1))).toBe(RefusalReason.BadSignature);
    const renumbered: SignedCommand = { ...thin(alice, 3), seq: 4 };
    expect(check(ch, gatewayBatch(1, [renumbered]), fromPeer(1))).toBe(RefusalReason.BadSignature);
  });

  it('checks a batch once: the same bytes again pass without verifying', () => {
    let verifies = 0;
    const counting = { ...testCrypto, verify: (...args: Parameters<typeof testCrypto.verify>) => (verifies++, testCrypto.verify(...args)) };
    const ch = new BatchChecker(config, counting, new ClientKeyCache(counting));
    const bytes = gatewayBatch(1, [thin(alice), thin(mallory)]);
    expect(check(ch, bytes, fromPeer(1))).toBeNull();
    expect(verifies).toBe(3);
    expect(check(ch, bytes, fromPeer(1))).toBeNull();
    expect(verifies).toBe(3);
  });

  it('budgets the fresh keys one source makes it parse, and goes further on a retry', () => {
    const ch = checker();
    const fresh = Array.from({ length: KEY_PARSES_PER_SOURCE_PER_SECOND + 1 }, (_, i) => thin(testClient(1000 + i)));
    const bytes = gatewayBatch(1, fresh);
    expect(check(ch, bytes, fromPeer(1), 0)).toBe(RefusalReason.Overloaded);
    // A second later the budget has refilled: the keys parsed before stay cached.
    expect(check(ch, bytes, fromPeer(1), 1_000_000)).toBeNull();
  });
});
