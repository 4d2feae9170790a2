import { describe, expect, it } from 'vitest';
import { checkHealth, checkReady, commitStallLimitMs, MIN_COMMIT_STALL_MS, PERSIST_STALL_MS, PersistWatch } from './health.js';
import { MemoryReplicaStorage } from '../ordering/storage.js';
import { nodeCrypto } from '../common/crypto/node.js';

const healthy = { ok: true, reason: '' };
const ready = { health: healthy, peersUp: 3, peersNeeded: 2, peerCount: 3, committedHeight: 40, commitAgeMs: 100, idleBlockIntervalMs: 50, viewTimeoutMs: 500 };

describe('health and readiness', () => {
  it('is unhealthy when the loop stopped (with its reason) or a write is stuck', () => {
    expect(checkHealth({ running: true, fatal: null, oldestPendingWriteMs: 0 })).toEqual(healthy);
    expect(checkHealth({ running: false, fatal: 'disk full', oldestPendingWriteMs: 0 })).toEqual({ ok: false, reason: 'the replica stopped: disk full' });
    expect(checkHealth({ running: true, fatal: null, oldestPendingWriteMs: PERSIST_STALL_MS + 1500 }).reason).toMatch(/a store write has been pending for 11\.5 s/);
  });

  it('is not ready below q−1 peers, or when the committed height stands still past the limit', () => {
    expect(checkReady(ready)).toEqual(healthy);
    expect(checkReady({ ...ready, peersUp: 1 })).toEqual({ ok: false, reason: 'connected to 1 of 3 peers; 2 needed for a quorum' });
    const limit = commitStallLimitMs(50, 500);
    expect(limit).toBe(MIN_COMMIT_STALL_MS);
    expect(checkReady({ ...ready, commitAgeMs: limit - 1 }).ok).toBe(true);
    expect(checkReady({ ...ready, commitAgeMs: limit + 2000 }).reason).toBe('committed height 40 has not advanced for 7.0 s (limit 5.0 s)');
    // A cluster configured to idle slowly gets a limit that fits its idle blocks.
    expect(commitStallLimitMs(10_000, 500)).toBe(42_000);
    expect(checkReady({ ...ready, health: { ok: false, reason: 'x' } })).toEqual({ ok: false, reason: 'x' });
  });

  it('PersistWatch reports how long the oldest pending write has waited', async () => {
    let nowMs = 1000;
    const watch = new PersistWatch(() => nowMs);
    let release!: () => void;
    const base = new MemoryReplicaStorage(nodeCrypto, 4);
    const slow = Object.assign(Object.create(base) as MemoryReplicaStorage, {
      apply: () => new Promise<void>((resolve) => (release = resolve)),
    });
    const storage = watch.wrap(slow);
    expect(watch.oldestPendingMs()).toBe(0);
    const write = storage.apply([]);
    nowMs += 250;
    expect(watch.oldestPendingMs()).toBe(250);
    release();
    await write;
    expect(watch.oldestPendingMs()).toBe(0);
  });
});
