/**
 * The composition root in-process, on a one-replica development cluster (n = 1, q = 1): start,
 * serve, order and execute, stop, restart from the store with the replay, and the environment
 * errors a start can meet. The four-process cluster is in test/e2e.
 */
import { createServer } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { freePortRange } from '../test/e2e/cluster.js';
import { TestClient } from '../test/e2e/testClient.js';
import { ConfError, defaultDataDir, markerFileName } from './conf.js';
import { genConf } from './genConf.js';
import { HttpListenError } from './http.js';
import type { ServerLogger } from './logging.js';
import { startReplica, type RunningReplica } from './replica.js';
import { StoreOpenError } from './store/errors.js';
import { tempDir } from './store/testFixtures.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { utf8 } from '../common/bytes.js';
import { PompeClient } from '../client/client.js';
import { encodeKvCommand, KvOp, KvStore } from '../ordering/kvStore.js';
import type { StateMachine } from '../ordering/stateMachine.js';
import { waitUntil } from './transport/testing.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const silentLogger = (): ServerLogger => Object.assign(pino({ level: 'silent' }), { close: async () => undefined });

/** A one-replica conf on random ports in a temp dir. */
async function devConf(checkpointIntervalSlots?: number): Promise<{ dir: string; ports: { peer: number; client: number; http: number } }> {
  const dir = await tempDir('replica');
  cleanups.push(dir.cleanup);
  const base = await freePortRange(3);
  const ports = { peer: base, client: base + 1, http: base + 2 };
  await genConf(
    { replicas: 1, devSingleReplica: true, out: dir.path, basePeerPort: ports.peer, baseClientPort: ports.client, baseHttpPort: ports.http, deltaUs: 20_000, checkpointIntervalSlots },
    nodeCrypto,
  );
  return { dir: dir.path, ports };
}

async function start(dir: string, extra: { dataDir?: string; stateMachine?: StateMachine } = {}): Promise<{ replica: RunningReplica; fatal: unknown[] }> {
  const fatal: unknown[] = [];
  const { stateMachine, ...opts } = extra;
  const replica = await startReplica({ confDir: dir, id: 0, ...opts }, { logger: silentLogger(), onFatal: (e) => fatal.push(e), ...(stateMachine === undefined ? {} : { stateMachine }) });
  cleanups.push(() => replica.close());
  return { replica, fatal };
}

/** Submits `count` batches from a fresh client key per call: a key used before would number its
 *  commands from 1 again, and they would be skipped as duplicates. */
async function load(replica: RunningReplica, count: number): Promise<void> {
  const client = new TestClient(replica.conf.config);
  try {
    await client.connect();
    await client.load(count, 4);
  } finally {
    client.close();
  }
}

describe('startReplica on a one-replica cluster', () => {
  it('orders and executes, serves /status and /metrics, stops, and restarts from its store', async () => {
    const { dir, ports } = await devConf();
    const first = await start(dir);
    await load(first.replica, 20);
    const before = first.replica.runningStatus();
    expect(before.executedBatches).toBe(20);
    expect(before.executedChainPosition).toBe(19);
    expect(before.committedHeight).toBeGreaterThan(0);

    const status = (await (await fetch(`http://127.0.0.1:${ports.http}/status`)).json()) as {
      replica: number;
      executedChainHash: string;
      memoryMiB: { rss: number; heapUsed: number; external: number };
    };
    expect(status.replica).toBe(0);
    expect(status.executedChainHash).toBe(before.executedChainHash);
    // This replica runs in the test's process: its memory is the process's.
    expect(status.memoryMiB.rss).toBeGreaterThan(status.memoryMiB.heapUsed);
    expect(status.memoryMiB.heapUsed).toBeGreaterThan(1);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text();
    expect(metrics).toMatch(/^pompe_view \d+$/m);
    expect(metrics).toMatch(/^pompe_executed_batches_total 20$/m);
    expect(metrics).toMatch(/^pompe_persist_seconds_count \d+$/m);
    expect(metrics).toMatch(/^process_cpu_seconds_total /m);
    expect((await fetch(`http://127.0.0.1:${ports.http}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${ports.http}/status`, { method: 'POST' })).status).toBe(405);
    await first.replica.close();

    // The replay re-executes the committed chain: the same executed sequence, then more.
    const second = await start(dir);
    const replayed = second.replica.runningStatus();
    expect(replayed.executedChainHash).toBe(before.executedChainHash);
    expect(replayed.executedBatches).toBe(20);
    await load(second.replica, 5);
    expect(second.replica.runningStatus().executedChainPosition).toBe(24);
    expect(second.replica.runningStatus().executedBatches).toBe(25);
    expect(first.fatal).toEqual([]);
    expect(second.fatal).toEqual([]);
  });

  it('restarts from its latest checkpoint, replaying only the blocks above it, to the same executed sequence', async () => {
    const { dir } = await devConf(25); // a checkpoint every 50 ms
    const first = await start(dir);
    await load(first.replica, 30);
    await waitUntil(() => (first.replica.runningStatus().checkpoint.stable?.height ?? 0) > 0, 'a stable checkpoint');
    await waitUntil(() => first.replica.runningStatus().prunedBelowHeight > 0, 'a prune');
    const before = first.replica.runningStatus();
    await first.replica.close();

    const second = await start(dir);
    const after = second.replica.runningStatus();
    expect(after.boot?.checkpointHeight).toBeGreaterThan(0);
    expect(after.boot!.replayedBlocks).toBeLessThan(before.committedHeight);
    expect(after.executedChainHash).toBe(before.executedChainHash);
    expect(after.executedCommands).toBe(30);
    await load(second.replica, 5);
    expect(second.replica.runningStatus().executedBatches).toBe(35);
    expect([...first.fatal, ...second.fatal]).toEqual([]);
  });

  it('a state machine that throws: those commands fail with EXECUTION_FAILED, the replica goes on', async () => {
    const { dir } = await devConf();
    const kv = new KvStore();
    const stateMachine: StateMachine = {
      execute: (commands) => {
        if (commands.some((c) => new TextDecoder().decode(c.payload).includes('boom'))) throw new Error('boom');
        return kv.execute(commands);
      },
      snapshot: () => kv.snapshot(),
      restore: () => kv.restore(),
    };
    const { replica, fatal } = await start(dir, { stateMachine });
    const client = await PompeClient.connect({ confDir: dir });
    cleanups.push(() => client.close());
    const put = (k: string, v: string): Uint8Array => encodeKvCommand(KvOp.Put, utf8(k), utf8(v));
    await expect(client.submit(put('a', 'boom'))).rejects.toMatchObject({ code: 'EXECUTION_FAILED' });
    const ok = await client.submit(put('b', 'fine'));
    expect(ok.status).toBe('executed');
    expect(replica.runningStatus().executedBatches).toBe(2);
    expect(fatal).toEqual([]);
  });

  it('a state machine whose snapshot throws stops the embedded replica and reports it, without exiting the process', async () => {
    const { dir } = await devConf(25);
    const kv = new KvStore();
    const stateMachine: StateMachine = {
      execute: (commands) => kv.execute(commands),
      snapshot: () => {
        throw new Error('no snapshot today');
      },
      restore: () => kv.restore(),
    };
    const replica = await startReplica({ confDir: dir, id: 0 }, { logger: silentLogger(), stateMachine });
    cleanups.push(() => replica.close());
    const stopped = await replica.stopped;
    expect(String(stopped.error)).toMatch(/no snapshot today/);
  });

  it('refuses to start afresh when the store it created is gone', async () => {
    const { dir } = await devConf();
    await (await start(dir)).replica.close();
    await rm(defaultDataDir(dir, 0), { recursive: true, force: true });
    const attempt = start(dir);
    await expect(attempt).rejects.toThrow(StoreOpenError);
    await expect(attempt).rejects.toThrow(markerFileName(0));
    // Deleting the marker is the documented way to start afresh.
    await rm(join(dir, markerFileName(0)));
    await (await start(dir)).replica.close();
  });

  it('refuses a second replica on the same data directory', async () => {
    const { dir } = await devConf();
    await start(dir);
    // Another conf (its own ports) pointed at the same store: the store's lock refuses it.
    const other = await devConf();
    await expect(start(other.dir, { dataDir: defaultDataDir(dir, 0) })).rejects.toMatchObject({ name: 'StoreOpenError', problem: 'locked' });
    // The same conf again: its HTTP port is taken, before the store is even opened.
    await expect(start(dir)).rejects.toThrow(HttpListenError);
  });

  it('reports configuration problems as ConfErrors', async () => {
    const { dir } = await devConf();
    await expect(startReplica({ confDir: join(dir, 'missing'), id: 0 }, { logger: silentLogger() })).rejects.toMatchObject({ name: 'ConfError', problem: 'missing' });
    await expect(startReplica({ confDir: dir, id: 3 }, { logger: silentLogger() })).rejects.toThrow(ConfError);
  });

  it('closes what it started when a port is taken', async () => {
    const { dir, ports } = await devConf();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(ports.http, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    await expect(start(dir)).rejects.toThrow(HttpListenError);
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    // The store and the transport were closed: a new start gets them again.
    await (await start(dir)).replica.close();
  });
});
