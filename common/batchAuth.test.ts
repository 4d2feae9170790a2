import { describe, expect, it } from 'vitest';
import { BatchMode, decodeBatchCommands, encodeBatch, type SignedCommand } from './batch.js';
import { batchSigner, signCommand, verifyBatchSignature, verifyCommandSignature } from './batchAuth.js';
import { nobleCrypto } from './crypto/noble.js';
import { nodeCrypto } from './crypto/node.js';
import type { CryptoBackend } from './crypto/types.js';

const CLUSTER = new Uint8Array(32).fill(1);
const OTHER_CLUSTER = new Uint8Array(32).fill(2);

describe.each<[string, CryptoBackend]>([
  ['node', nodeCrypto],
  ['noble', nobleCrypto],
])('batch and command signatures (%s backend)', (_, crypto) => {
  const collector = crypto.signer(new Uint8Array(32).fill(11));
  const thin = crypto.signer(new Uint8Array(32).fill(12));
  const collectorKey = crypto.parsePublicKey(collector.publicKey)!;
  const thinKey = crypto.parsePublicKey(thin.publicKey)!;
  const direct = encodeBatch(
    { mode: BatchMode.Direct, collectorKey: collector.publicKey, nonce: 1, expiresAtUs: 9_000, commands: [{ seq: 1, payload: Uint8Array.of(1, 2) }] },
    batchSigner(CLUSTER, crypto, collector),
  );

  it('accepts a batch signed by its collector, and nothing else', () => {
    expect(verifyBatchSignature(CLUSTER, crypto, collectorKey, direct)).toBe(true);
    expect(verifyBatchSignature(CLUSTER, crypto, thinKey, direct)).toBe(false);
    expect(verifyBatchSignature(OTHER_CLUSTER, crypto, collectorKey, direct)).toBe(false);
    for (const at of [0, 3, 40, direct.length - 70, direct.length - 1]) {
      const tampered = Uint8Array.from(direct);
      tampered[at]! ^= 1;
      expect(verifyBatchSignature(CLUSTER, crypto, collectorKey, tampered)).toBe(false);
    }
  });

  it('binds a thin client signature to its key, sequence number, deadline, payload and cluster', () => {
    const cmd = signCommand(CLUSTER, crypto, thin, { seq: 5, expiresAtUs: 7_000, payload: Uint8Array.of(9) });
    expect(cmd.clientKey).toEqual(thin.publicKey);
    expect(verifyCommandSignature(CLUSTER, crypto, thinKey, cmd)).toBe(true);
    const variants: SignedCommand[] = [
      { ...cmd, seq: 6 },
      { ...cmd, expiresAtUs: 7_001 },
      { ...cmd, payload: Uint8Array.of(8) },
      { ...cmd, clientKey: collector.publicKey },
    ];
    for (const v of variants) expect(verifyCommandSignature(CLUSTER, crypto, thinKey, v)).toBe(false);
    expect(verifyCommandSignature(OTHER_CLUSTER, crypto, thinKey, cmd)).toBe(false);
    expect(verifyCommandSignature(CLUSTER, crypto, collectorKey, { ...cmd, clientKey: collector.publicKey })).toBe(false);
  });

  it('keeps a thin client signature valid inside a gateway batch', () => {
    const cmd = signCommand(CLUSTER, crypto, thin, { seq: 1, expiresAtUs: 7_000, payload: Uint8Array.of(3, 4) });
    const gateway = encodeBatch(
      { mode: BatchMode.Gateway, collectorKey: collector.publicKey, nonce: 2, expiresAtUs: 9_000, commands: [cmd] },
      batchSigner(CLUSTER, crypto, collector),
    );
    expect(verifyBatchSignature(CLUSTER, crypto, collectorKey, gateway)).toBe(true);
    const decoded = decodeBatchCommands(gateway);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const [inside] = decoded.value;
    expect(verifyCommandSignature(CLUSTER, crypto, thinKey, { ...inside!, sig: inside!.sig! })).toBe(true);
  });
});
