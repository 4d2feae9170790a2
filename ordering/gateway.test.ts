/**
 * Gateway mode: single commands from thin clients are batched by count or delay, and each thin
 * client hears about its own command, with its own result.
 */
import { describe, expect, it } from 'vitest';
import { BatchMode, decodeBatchCommands, encodeResults, readBatchHeader, type SignedCommand } from '../common/batch.js';
import { batchSigner, signCommand, verifyBatchSignature, verifyCommandSignature } from '../common/batchAuth.js';
import { toHex, utf8 } from '../common/bytes.js';
import { Gateway, type GatewayBatch } from './gateway.js';
import { testClient, testCrypto, testKeys } from './testHarness.js';

const LIFETIME = 30_000_000;
const keys = testKeys(4);
const GATEWAY_REPLICA = 2;
const gateway = (maxBatchCommands = 3, maxDelayUs = 1_000, maxBatchBytes = 1 << 20): Gateway =>
  new Gateway({
    collectorKey: keys.config.replicas[GATEWAY_REPLICA]!.publicKey,
    sign: batchSigner(keys.config.clusterId, testCrypto, keys.signers[GATEWAY_REPLICA]!),
    crypto: testCrypto,
    maxBatchCommands,
    maxBatchBytes,
    maxDelayUs,
    batchLifetimeUs: LIFETIME,
  });
/** Thin client `client`'s command `seq`, signed by it. */
const cmd = (client: number, seq: number, payload = utf8(`${client}/${seq}`)): SignedCommand =>
  signCommand(keys.config.clusterId, testCrypto, testClient(client), { seq, expiresAtUs: 10 * LIFETIME, payload });

describe('Gateway', () => {
  it('cuts a batch when it holds maxBatchCommands, with the commands in arrival order', () => {
    const g = gateway(3);
    expect(g.add(10, cmd(1, 1), 100)).toBeNull();
    expect(g.add(11, cmd(2, 7), 150)).toBeNull();
    const b = g.add(10, cmd(1, 2), 200);
    expect(b).not.toBeNull();
    const commands = decodeBatchCommands(b!.bytes);
    expect(commands.ok && commands.value.map((c) => [toHex(c.clientKey), c.seq])).toEqual([
      [toHex(testClient(1).publicKey), 1],
      [toHex(testClient(2).publicKey), 7],
      [toHex(testClient(1).publicKey), 2],
    ]);
    const header = readBatchHeader(b!.bytes);
    expect(header.ok && header.value).toMatchObject({ mode: BatchMode.Gateway, expiresAtUs: 200 + LIFETIME });
    expect(header.ok && toHex(header.value.collectorKey)).toBe(toHex(keys.config.replicas[GATEWAY_REPLICA]!.publicKey));
    expect(b!.digest).toEqual(testCrypto.sha256(b!.bytes));
    expect(g.openCommands).toBe(0);
  });

  it('signs the batch with the gateway replica’s key and keeps every thin client’s signature', () => {
    const g = gateway(2);
    g.add(10, cmd(1, 1), 0);
    const b = g.add(11, cmd(2, 1), 0)!;
    expect(verifyBatchSignature(keys.config.clusterId, testCrypto, keys.config.replicas[GATEWAY_REPLICA]!.key, b.bytes)).toBe(true);
    const commands = decodeBatchCommands(b.bytes);
    expect(commands.ok).toBe(true);
    if (!commands.ok) return;
    commands.value.forEach((c, i) => {
      const key = testCrypto.parsePublicKey(testClient(i + 1).publicKey)!;
      expect(verifyCommandSignature(keys.config.clusterId, testCrypto, key, { ...c, sig: c.sig! })).toBe(true);
    });
  });

  it('cuts the open batch before a command that would not fit it', () => {
    const g = gateway(100, 1_000, 2_000);
    expect(g.add(10, cmd(1, 1, new Uint8Array(900)), 0)).toBeNull();
    const first = g.add(10, cmd(1, 2, new Uint8Array(900)), 0);
    expect(first).not.toBeNull();
    expect(first!.bytes.length).toBeLessThanOrEqual(2_000);
    expect(g.openCommands).toBe(1);
  });

  it('cuts a partial batch once its first command has waited maxDelayUs', () => {
    const g = gateway(100, 1_000);
    g.add(10, cmd(1, 1), 5_000);
    g.add(10, cmd(1, 2), 5_900);
    expect(g.nextWakeUs()).toBe(6_000);
    expect(g.tick(5_999)).toBeNull();
    const b = g.tick(6_000);
    const commands = decodeBatchCommands(b!.bytes);
    expect(commands.ok && commands.value).toHaveLength(2);
    expect(g.nextWakeUs()).toBeNull();
    expect(g.tick(100_000)).toBeNull();
  });

  it('gives every batch its own digest, even with the same commands', () => {
    const g = gateway(1);
    const a = g.add(10, cmd(1, 1), 0)!;
    const b = g.add(10, cmd(1, 1), 0)!;
    expect(a.digest).not.toEqual(b.digest);
  });

  function threeCommandBatch(g: Gateway): GatewayBatch {
    g.add(10, cmd(1, 1), 0);
    g.add(11, cmd(2, 5), 0);
    return g.add(12, cmd(3, 9), 0)!;
  }

  it('tells each thin client its own command was ordered, with the batch’s timestamp', () => {
    const g = gateway();
    const b = threeCommandBatch(g);
    const replies = g.onCollectorEvent({ kind: 'ordered', digest: b.digest, ts: 777, ocHash: b.digest, attempts: 1, throttled: false });
    expect(replies).toEqual([
      { conn: 10, msg: { type: 'commandOrdered', seq: 1, digest: b.digest, ts: 777 } },
      { conn: 11, msg: { type: 'commandOrdered', seq: 5, digest: b.digest, ts: 777 } },
      { conn: 12, msg: { type: 'commandOrdered', seq: 9, digest: b.digest, ts: 777 } },
    ]);
  });

  it('gives each thin client the result of its own command on execution, once', () => {
    const g = gateway();
    const b = threeCommandBatch(g);
    const results = encodeResults([Uint8Array.of(0, 65), Uint8Array.of(1), Uint8Array.of(0, 67)]);
    const replies = g.onCollectorEvent({ kind: 'executed', digest: b.digest, position: 4, ts: 9, results });
    expect(replies.map((r) => [r.conn, r.msg])).toEqual([
      [10, { type: 'commandExecuted', seq: 1, position: 4, result: Uint8Array.of(0, 65) }],
      [11, { type: 'commandExecuted', seq: 5, position: 4, result: Uint8Array.of(1) }],
      [12, { type: 'commandExecuted', seq: 9, position: 4, result: Uint8Array.of(0, 67) }],
    ]);
    expect(g.onCollectorEvent({ kind: 'executed', digest: b.digest, position: 4, ts: 9, results })).toEqual([]);
  });

  it('gives every command of a malformed batch the batch’s single result', () => {
    const g = gateway();
    const b = threeCommandBatch(g);
    const replies = g.onCollectorEvent({ kind: 'executed', digest: b.digest, position: 0, ts: 9, results: encodeResults([Uint8Array.of(2)]) });
    expect(replies.map((r) => (r.msg as { result: Uint8Array }).result)).toEqual([Uint8Array.of(2), Uint8Array.of(2), Uint8Array.of(2)]);
  });

  it('says nothing for a failed batch (its thin clients time out and resubmit) or an unknown one', () => {
    const g = gateway();
    const b = threeCommandBatch(g);
    expect(g.onCollectorEvent({ kind: 'failed', digest: b.digest, reason: 'expired' })).toEqual([]);
    expect(g.onCollectorEvent({ kind: 'executed', digest: b.digest, position: 0, ts: 9, results: encodeResults([]) })).toEqual([]);
    expect(g.onCollectorEvent({ kind: 'ordered', digest: testCrypto.sha256(utf8('other')), ts: 1, ocHash: b.digest, attempts: 1, throttled: false })).toEqual([]);
  });
});
