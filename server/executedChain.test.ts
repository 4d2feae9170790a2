/**
 * The executed-chain fingerprint survives a checkpoint: a chain restored from a snapshot goes on
 * with the same hash as the one it was taken from.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from '../common/bytes.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { Digest } from '../common/ids.js';
import { encodeKvCommand, KvOp, KvStore } from '../ordering/kvStore.js';
import { ExecutedChain } from './executedChain.js';

function step(chain: ExecutedChain, position: number): void {
  const digest = nodeCrypto.sha256(utf8(`batch ${position}`)) as Digest;
  chain.execute([{ clientKey: new Uint8Array(32).fill(1), seq: position + 1, expiresAtUs: position + 1_000_000, payload: encodeKvCommand(KvOp.Put, utf8(`k${position}`), utf8('v')) }], { position, ts: position, digest, blockHeight: 1 });
}

describe('ExecutedChain snapshots', () => {
  it('a chain restored from a snapshot continues with the same head as the original', () => {
    const original = new ExecutedChain(new KvStore(), nodeCrypto);
    for (let p = 0; p < 5; p++) step(original, p);
    const copy = new ExecutedChain(new KvStore(), nodeCrypto);
    const restore = copy.restore();
    for (const chunk of original.snapshot()) restore.add(chunk);
    restore.finish();
    expect(copy.head()).toEqual(original.head());
    step(original, 5);
    step(copy, 5);
    expect(copy.head()).toEqual(original.head());
  });

  it('refuses a snapshot without its head chunk', () => {
    const restore = new ExecutedChain(new KvStore(), nodeCrypto).restore();
    expect(() => restore.finish()).toThrow(/head chunk/);
    expect(() => new ExecutedChain(new KvStore(), nodeCrypto).restore().add(new Uint8Array(3))).toThrow(/head chunk/);
  });
});
