/**
 * Gateway mode: single commands from thin clients are batched by count or delay, and each thin
 * client hears about its own command, with its own result.
 */
import { describe, expect, it } from 'vitest';
import { decodeBatchCommands, encodeResults, readBatchHeader } from '../common/batch.js';
import { utf8 } from '../common/bytes.js';
import type { CommandMsg } from '../common/messages.js';
import { Gateway, type GatewayBatch } from './gateway.js';
import { testCrypto } from './testHarness.js';

const LIFETIME = 30_000_000;
const gateway = (maxBatchCommands = 3, maxDelayUs = 1_000): Gateway =>
  new Gateway({ collectorId: 2, crypto: testCrypto, maxBatchCommands, maxBatchBytes: 1 << 20, maxDelayUs, batchLifetimeUs: LIFETIME });
const cmd = (clientId: number, seq: number): CommandMsg => ({ type: 'command', clientId, seq, payload: utf8(`${clientId}/${seq}`) });

describe('Gateway', () => {
  it('cuts a batch when it holds maxBatchCommands, with the commands in arrival order', () => {
    const g = gateway(3);
    expect(g.add(10, cmd(1, 1), 100)).toBeNull();
    expect(g.add(11, cmd(2, 7), 150)).toBeNull();
    const b = g.add(10, cmd(1, 2), 200);
    expect(b).not.toBeNull();
    const commands = decodeBatchCommands(b!.bytes);
    expect(commands.ok && commands.value.map((c) => [c.clientId, c.seq])).toEqual([
      [1, 1],
      [2, 7],
      [1, 2],
    ]);
    const header = readBatchHeader(b!.bytes);
    expect(header.ok && header.value).toMatchObject({ collectorId: 2, expiresAtUs: 200 + LIFETIME });
    expect(b!.digest).toEqual(testCrypto.sha256(b!.bytes));
    expect(g.openCommands).toBe(0);
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
    const replies = g.onCollectorEvent({ kind: 'ordered', digest: b.digest, ts: 777, ocHash: b.digest, attempts: 1 });
    expect(replies).toEqual([
      { conn: 10, msg: { type: 'commandOrdered', clientId: 1, seq: 1, digest: b.digest, ts: 777 } },
      { conn: 11, msg: { type: 'commandOrdered', clientId: 2, seq: 5, digest: b.digest, ts: 777 } },
      { conn: 12, msg: { type: 'commandOrdered', clientId: 3, seq: 9, digest: b.digest, ts: 777 } },
    ]);
  });

  it('gives each thin client the result of its own command on execution, once', () => {
    const g = gateway();
    const b = threeCommandBatch(g);
    const results = encodeResults([Uint8Array.of(0, 65), Uint8Array.of(1), Uint8Array.of(0, 67)]);
    const replies = g.onCollectorEvent({ kind: 'executed', digest: b.digest, position: 4, ts: 9, results });
    expect(replies.map((r) => [r.conn, r.msg])).toEqual([
      [10, { type: 'commandExecuted', clientId: 1, seq: 1, position: 4, result: Uint8Array.of(0, 65) }],
      [11, { type: 'commandExecuted', clientId: 2, seq: 5, position: 4, result: Uint8Array.of(1) }],
      [12, { type: 'commandExecuted', clientId: 3, seq: 9, position: 4, result: Uint8Array.of(0, 67) }],
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
    expect(g.onCollectorEvent({ kind: 'ordered', digest: testCrypto.sha256(utf8('other')), ts: 1, ocHash: b.digest, attempts: 1 })).toEqual([]);
  });
});
