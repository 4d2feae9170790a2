/**
 * End to end, issue 13: a replica that lost its disk rejoins. Four `pompe replica` processes take
 * checkpoints every 0.4 s under load and prune below them; one is SIGKILLed while load runs, its
 * store deleted (and the marker that would refuse an empty store, as an operator would), and it is
 * restarted empty once its peers have pruned past where it was. It must catch up by state transfer
 * (its peers' latest stable checkpoint, checked chunk by chunk) and then execute the same sequence
 * as the others (the executed-chain hash in /status, carried through the snapshot), the client
 * seeing every batch executed exactly once, and no replica reporting a fault against it.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { defaultDataDir, markerFileName } from '../../server/conf.js';
import { TestCluster, waitFor } from './cluster.js';
import { TestClient, type Completed } from './testClient.js';

const N = 4;
const WIPED = 3;
const SURVIVORS = [0, 1, 2];
let cluster: TestCluster;
let client: TestClient;

beforeAll(async () => {
  // Checkpoints every 200 slots of 2 ms; a generous Δ as in cluster.test.ts (a shared CI machine).
  cluster = await TestCluster.create(N, ['--delta-us', '25000', '--checkpoint-interval-slots', '200']);
  await cluster.startAll();
  client = new TestClient(cluster.config);
  await client.connect();
}, 60_000);

afterAll(async () => {
  client?.close();
  await cluster?.destroy();
});


describe('a replica that lost its store', () => {
  it('catches up by state transfer, then executes the same sequence; no command lost or doubled', async () => {
    onTestFailed(async () => console.error(await cluster.tails(30)));
    const results: Completed[] = [];
    results.push(...(await client.load(100, 8)));

    // Killed under load, its store and marker deleted.
    const more = client.load(300, 8, (done) => {
      if (done === 20) void cluster.kill(WIPED);
    });
    results.push(...(await more));
    await rm(defaultDataDir(cluster.dir, WIPED), { recursive: true, force: true });
    await rm(join(cluster.dir, markerFileName(WIPED)), { force: true });

    // The others went on, took checkpoints and pruned the blocks it would need.
    const pruned = await waitFor(
      'the survivors to prune below a stable checkpoint',
      async () => {
        const all = await cluster.statuses(SURVIVORS);
        return all.every((s) => s.prunedBelowHeight > 0 && s.checkpoint.stable !== null) ? all : undefined;
      },
      30_000,
      200,
    );
    expect(Math.min(...pruned.map((s) => s.prunedBelowHeight))).toBeGreaterThan(0);

    cluster.start(WIPED);
    const rejoined = await waitFor(
      'the wiped replica to install a checkpoint from its peers',
      async () => {
        const s = await cluster.status(WIPED);
        return s.boot !== null && s.boot.installs >= 1 && s.phase === 'running' ? s : undefined;
      },
      30_000,
      100,
    );
    expect(rejoined.checkpoint.latestHeight).toBeGreaterThan(0);
    const log = await readFile(cluster.logFile(WIPED), 'utf8');
    expect(log).toMatch(/installing a checkpoint fetched from peers/);

    // More load with it back; all four agree on the executed chain, and on checkpoint states.
    results.push(...(await client.load(100, 8)));
    const all = await cluster.agreedChain([0, 1, 2, 3], 499, 30_000);
    expect(all.every((s) => s.executedBatches === 500 && s.executedCommands === 500)).toBe(true);
    expect(results).toHaveLength(500);
    expect(new Set(results.map((r) => r.position)).size).toBe(500);
    expect(Math.max(...results.map((r) => r.position))).toBe(499);
    await waitFor(
      'a checkpoint the wiped replica took itself, matching the others at its height',
      async () => {
        const statuses = await cluster.statuses();
        const mine = statuses[WIPED]!.checkpoint.stable;
        if (mine === null || mine.height <= rejoined.checkpoint.latestHeight) return undefined;
        const same = statuses.filter((s) => s.checkpoint.stable?.height === mine.height);
        return same.length >= 2 && same.every((s) => s.checkpoint.stable!.state === mine.state) ? true : undefined;
      },
      20_000,
      200,
    );
    // Nothing the rejoining replica did was reported as a fault by its peers.
    for (const s of await cluster.statuses(SURVIVORS)) expect(s.faults).toEqual({});
  }, 120_000);
});
