import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeResults } from '../common/batch.js';
import { formatClusterConfig, generateCluster, type ClusterConfig } from '../common/config.js';
import { encodeMessage } from '../common/codec.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { replicaId } from '../common/ids.js';
import { encodeKvCommand, KvOp } from '../ordering/kvStore.js';
import { PompeClient, PompeClientError, type PompeClientOptions } from './client.js';
import { batchResults, countStatuses, emptyStatusCounts } from './results.js';
import { ReplicaHarness } from './testReplicaHarness.js';

const text = new TextEncoder();
const put = (key: string, value: string): Uint8Array => encodeKvCommand(KvOp.Put, text.encode(key), text.encode(value));
const get = (key: string): Uint8Array => encodeKvCommand(KvOp.Get, text.encode(key));
const str = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

let harness: ReplicaHarness | null = null;
const clients: PompeClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await harness?.close();
  harness = null;
});

async function connect(options: Omit<PompeClientOptions, 'config'>, config = harness!.config!): Promise<PompeClient> {
  const client = await PompeClient.connect({ config, timeoutMs: 20_000, ...options });
  clients.push(client);
  return client;
}

async function expectError(promise: Promise<unknown>, code: string): Promise<PompeClientError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PompeClientError);
  expect((error as PompeClientError).code).toBe(code);
  return error as PompeClientError;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// First in the file, so that the resource check starts from a process with nothing else open.
describe('connect, options and close', () => {
  /** Servers that accept connections and never answer, on 3 of 4 ports; the 4th refuses. */
  async function silentCluster(): Promise<{ config: ClusterConfig; close: () => Promise<void> }> {
    const servers: WebSocketServer[] = [];
    for (let i = 0; i < 3; i++) {
      const s = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await new Promise((resolve) => s.once('listening', resolve));
      // A challenge, as a replica sends, then nothing.
      s.on('connection', (ws) => ws.send(encodeMessage({ type: 'helloChallenge', replica: replicaId(i), nonce: new Uint8Array(32) })));
      servers.push(s);
    }
    const { config } = generateCluster({ n: 4, keySeed: 'silent' }, nodeCrypto);
    const closedPort = 1; // nothing listens on port 1: connections are refused
    const ports = [...servers.map((s) => (s.address() as { port: number }).port), closedPort];
    return {
      config: { ...config, replicas: config.replicas.map((r, i) => ({ ...r, clientPort: ports[i]! })) },
      close: async () => {
        for (const s of servers) {
          for (const c of s.clients) c.terminate();
          await new Promise((resolve) => s.close(resolve));
        }
      },
    };
  }

  it('close() rejects what is pending with CLOSED and leaves no timer or socket behind', async () => {
    // Start from a moment with no timer pending (the runner's start-up timers come and go).
    await waitFor('no pending timer', () => !process.getActiveResourcesInfo().includes('Timeout'));
    const before = process.getActiveResourcesInfo();
    const silent = await silentCluster();
    const client = await PompeClient.connect({ config: silent.config, timeoutMs: 60_000, maxInFlight: 2, batch: { maxCommands: 1, maxDelayMs: 0 } });
    const handles = [client.track(put('a', '1')), client.track(put('b', '2')), client.track(put('c', '3'))];
    expect(client.stats()).toMatchObject({ inFlight: 2, waiting: 1 });
    await sleep(50); // the refused replica is now waiting to redial, batches are armed
    await client.close();
    for (const h of handles) {
      await expectError(h.executed, 'CLOSED');
      await expectError(h.ordered, 'CLOSED');
    }
    await client.close(); // idempotent
    await silent.close();
    await sleep(50);
    // Nothing of ours is left: no kind of resource is more numerous than before the test began
    // (the test runner's own timers may come and go, so "fewer" is fine).
    const counts = (list: string[]): Record<string, number> => list.reduce<Record<string, number>>((m, r) => ((m[r] = (m[r] ?? 0) + 1), m), {});
    const [b, a] = [counts(before), counts(process.getActiveResourcesInfo())];
    for (const [kind, n] of Object.entries(a)) expect(`${kind}: ${n}`).toBe(`${kind}: ${Math.min(n, b[kind] ?? 0)}`);
  });

  it('connect rejects with TIMEOUT when too few replicas answer', async () => {
    const { config } = generateCluster({ n: 4, keySeed: 'nobody', baseClientPort: 1 }, nodeCrypto);
    const error = await expectError(PompeClient.connect({ config, connectTimeoutMs: 300 }), 'TIMEOUT');
    expect(error.message).toMatch(/reached 0 of 4 replicas/);
  });

  it('bad options and configs are BAD_CONFIG', async () => {
    const { config } = generateCluster({ n: 4, keySeed: 'bad' }, nodeCrypto);
    await expectError(PompeClient.connect({ config, key: { secretKey: new Uint8Array(31), publicKey: new Uint8Array(32) } }), 'BAD_CONFIG');
    const key = nodeCrypto.generateKeyPair();
    await expectError(PompeClient.connect({ config, key: { ...key, publicKey: nodeCrypto.generateKeyPair().publicKey } }), 'BAD_CONFIG');
    await expectError(PompeClient.connect({ config, batch: { maxCommands: 0 } }), 'BAD_CONFIG');
    await expectError(PompeClient.connect({ config, timeoutMs: -5 }), 'BAD_CONFIG');
    await expectError(PompeClient.connect({ config, mode: 'sideways' as 'direct' }), 'BAD_CONFIG');
    await expectError(PompeClient.connect({ config, confDir: '/tmp' }), 'BAD_CONFIG');
    await expectError(PompeClient.connect({}), 'BAD_CONFIG');
    await expectError(PompeClient.connect({ confDir: '/nonexistent/pompe-conf' }), 'BAD_CONFIG');
    const dir = await mkdtemp(join(tmpdir(), 'pompe-client-'));
    try {
      await writeFile(join(dir, 'cluster.json'), '{"version": 1}');
      const error = await expectError(PompeClient.connect({ confDir: dir }), 'BAD_CONFIG');
      expect(error.message).toMatch(/cluster\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loads cluster.json from a conf directory', async () => {
    harness = await ReplicaHarness.start();
    const dir = await mkdtemp(join(tmpdir(), 'pompe-client-'));
    try {
      await writeFile(join(dir, 'cluster.json'), formatClusterConfig(harness.config!));
      const client = await PompeClient.connect({ confDir: dir });
      clients.push(client);
      expect((await client.submit(put('c', 'd'))).status).toBe('executed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('direct mode', () => {
  it('a put then a get executes, f+1 replicas agreeing, and returns the value', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({});
    let orderedSeen: number | null = null;
    const r1 = await client.submit(put('alpha', 'one'), { onOrdered: (info) => (orderedSeen = info.latencyMs) });
    expect(r1).toMatchObject({ seq: 1, status: 'executed', index: 0 });
    expect(r1.result).toHaveLength(0);
    const r2 = await client.submit(get('alpha'));
    expect(r2.status).toBe('executed');
    expect(str(r2.result)).toBe('one');
    expect(r2.seq).toBe(2);
    expect(r2.position).toBeGreaterThan(r1.position);
    // Ordering completes before execution, and the callback saw it.
    expect(orderedSeen).not.toBeNull();
    for (const r of [r1, r2]) {
      expect(r.orderedLatencyMs).not.toBeNull();
      expect(r.orderedLatencyMs!).toBeGreaterThan(0);
      expect(r.orderedLatencyMs!).toBeLessThan(r.latencyMs);
      expect(r.ts).toBeGreaterThan(harness.config!.protocol.genesisUs);
    }
    const stats = client.stats();
    expect(stats.collector).toMatchObject({ submitted: 2, ordered: 2, executed: 2, failed: 0, badReplies: 0 });
    expect(stats).toMatchObject({ submitted: 2, executed: 2, failed: 0, inFlight: 0 });
    // Every replica executed both (the client needed only f+1 of them to agree).
    await waitFor('all replicas to execute', () => [0, 1, 2, 3].every((i) => harness!.executedCommands(i) === 2));
  });

  it('track() gives an ordered promise that settles before executed', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({});
    const order: string[] = [];
    const h = client.track(put('k', 'v'));
    const done = Promise.all([h.ordered.then(() => order.push('ordered')), h.executed.then(() => order.push('executed'))]);
    await done;
    expect(order).toEqual(['ordered', 'executed']);
    const [o, e] = [await h.ordered, await h.executed];
    expect(o.seq).toBe(h.seq);
    expect(o.ts).toBe(e.ts);
    expect(o.digest).toHaveLength(32);
    expect(o.latencyMs).toBeLessThan(e.latencyMs);
  });

  it('cuts a batch when it holds maxCommands: ten commands in two batches of five', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({ batch: { maxCommands: 5, maxDelayMs: 10_000 } });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => client.submit(put(`k${i}`, `v${i}`))));
    expect(client.stats().collector!.submitted).toBe(2);
    const positions = new Set(results.map((r) => r.position));
    expect(positions.size).toBe(2);
    // Commands keep their order inside each batch, and each batch is one position.
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    expect(results.slice(0, 5).every((r) => r.position === results[0]!.position)).toBe(true);
    expect(results.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('cuts a partial batch after maxDelayMs', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({ batch: { maxCommands: 1000, maxDelayMs: 150 } });
    const first = client.submit(put('a', '1'));
    await sleep(50);
    const second = client.submit(put('b', '2'));
    const [r1, r2] = await Promise.all([first, second]);
    expect(client.stats().collector!.submitted).toBe(1);
    expect(r1.position).toBe(r2.position);
    expect([r1.index, r2.index]).toEqual([0, 1]);
    // The batch waited for its delay: the first command was not ordered before it left.
    expect(r1.orderedLatencyMs!).toBeGreaterThanOrEqual(150);
  });

  it('with maxDelayMs 0, commands submitted in one synchronous run share a batch; later ones get their own', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({ batch: { maxCommands: 1000, maxDelayMs: 0 } });
    const together = [client.submit(put('x', '1')), client.submit(put('y', '2')), client.submit(put('z', '3'))];
    await sleep(0);
    const alone = client.submit(put('w', '4'));
    const results = await Promise.all([...together, alone]);
    expect(client.stats().collector!.submitted).toBe(2);
    expect(new Set(results.slice(0, 3).map((r) => r.position)).size).toBe(1);
    expect(results[3]!.position).not.toBe(results[0]!.position);
  });

  it('keeps working with one replica of four down from the start, and when one goes down and comes back', async () => {
    harness = await ReplicaHarness.start({ down: [3] });
    const client = await connect({});
    expect(client.connectedReplicas).toBe(3);
    const r = await client.submit(put('p', 'q'));
    expect(r.status).toBe('executed');
    expect(str((await client.submit(get('p'))).result)).toBe('q');

    await harness.startReplica(3);
    await waitFor('the client to reconnect to replica 3', () => client.connectedReplicas === 4);
    await harness.stopReplica(1);
    await waitFor('the client to see replica 1 go', () => client.connectedReplicas === 3);
    const after = await Promise.all([client.submit(put('r', 's')), client.submit(get('r'))]);
    expect(after.map((x) => x.status)).toEqual(['executed', 'executed']);
    expect(str(after[1]!.result)).toBe('s');
    expect(client.stats().links.disconnects).toBe(1);
  });

  it('rejects with TIMEOUT when no quorum answers (both promises), and frees the slot', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({ timeoutMs: 800, maxInFlight: 1 });
    await harness.stopReplica(2);
    await harness.stopReplica(3);
    const h = client.track(put('t', 'u'));
    const error = await expectError(h.executed, 'TIMEOUT');
    expect(error.message).toMatch(/800 ms/);
    await expectError(h.ordered, 'TIMEOUT');
    expect(client.stats()).toMatchObject({ inFlight: 0, failed: 1 });
  });

  it('below quorum it fails fast with UNAVAILABLE (in flight and new), and recovers when replicas return', async () => {
    harness = await ReplicaHarness.start();
    const changes: boolean[] = [];
    const client = await connect({ timeoutMs: 30_000, quorumLossGraceMs: 200, onAvailabilityChange: (a) => changes.push(a.available) });
    expect(client.available).toBe(true);
    await harness.stopReplica(2);
    await harness.stopReplica(3);
    const startedMs = Date.now();
    const inFlight = client.track(put('q', '1'));
    const error = await expectError(inFlight.executed, 'UNAVAILABLE');
    // Far sooner than the 30 s timeout: the grace, plus the time to notice both links closed.
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    expect(error.message).toMatch(/2 of 4 replicas reachable, 3 needed/);
    expect(client.available).toBe(false);
    await expectError(client.submit(put('q', '2')), 'UNAVAILABLE');
    expect(changes).toEqual([false]);

    await harness.startReplica(2);
    await waitFor('the client to become available', () => client.available);
    expect(changes).toEqual([false, true]);
    const r = await client.submit(put('q', '3'));
    expect(r.status).toBe('executed');
  });

  it('rejects with EXPIRED when the batch lifetime runs out before ordering', async () => {
    harness = await ReplicaHarness.start({ protocol: { batchLifetimeUs: 300_000 } });
    const client = await connect({ timeoutMs: 10_000, retryMs: 100 });
    await harness.stopReplica(2);
    await harness.stopReplica(3);
    await expectError(client.submit(put('e', 'f')), 'EXPIRED');
  });

  it('backpressure: at most maxInFlight commands leave the client; the rest wait in order', async () => {
    harness = await ReplicaHarness.start();
    const client = await connect({ maxInFlight: 2, batch: { maxCommands: 1000, maxDelayMs: 0 } });
    const pending = Array.from({ length: 5 }, (_, i) => client.submit(put(`b${i}`, `${i}`)));
    expect(client.stats()).toMatchObject({ inFlight: 2, waiting: 3 });
    const results = await Promise.all(pending);
    expect(results.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    // Commands left in order, so their positions never go down.
    for (let i = 1; i < results.length; i++) expect(results[i]!.position).toBeGreaterThanOrEqual(results[i - 1]!.position);
    expect(client.stats()).toMatchObject({ inFlight: 0, waiting: 0, executed: 5 });
  });

  it('refuses a command larger than the cluster accepts, and a submit after close', async () => {
    harness = await ReplicaHarness.start({ protocol: { maxBatchBytes: 4096 } });
    const client = await connect({});
    await expectError(client.submit(new Uint8Array(5000)), 'REFUSED');
    await client.close();
    await expectError(client.submit(put('a', 'b')), 'CLOSED');
  });
});

describe('gateway mode', () => {
  it('a put then a get through the gateway', async () => {
    harness = await ReplicaHarness.start({ gateway: { maxBatchCommands: 100, maxDelayUs: 1_000 } });
    const client = await connect({ mode: 'gateway', gateway: 2 });
    const r1 = await client.submit(put('g', 'h'));
    expect(r1).toMatchObject({ seq: 1, status: 'executed', index: null });
    expect(r1.ts).not.toBeNull();
    expect(r1.orderedLatencyMs!).toBeLessThan(r1.latencyMs);
    const r2 = await client.submit(get('g'));
    expect(str(r2.result)).toBe('h');
    expect(client.stats().gateway).toMatchObject({ current: 2, failovers: 0 });
  });

  it('fails over to the next replica when the gateway is down, and the command executes once', async () => {
    harness = await ReplicaHarness.start({ gateway: { maxBatchCommands: 100, maxDelayUs: 1_000 } });
    const client = await connect({ mode: 'gateway', gateway: 0, gatewayFailoverMs: 1_000 });
    // Replica 0 keeps ordering and executing but never answers its thin clients.
    harness.replica(0).mutedToClients = true;
    const r = await client.submit(put('once', 'only'));
    // Replica 0 batched it too; whichever copy executed second was skipped as a duplicate.
    expect(['executed', 'duplicate']).toContain(r.status);
    const { gateway } = client.stats();
    expect(gateway!.failovers).toBeGreaterThanOrEqual(1);
    expect(gateway!.current).not.toBe(0);
    await waitFor('replicas to execute both batches', () => harness!.replica(1).executed.length >= 1);
    await sleep(300);
    expect(harness.executedCommands(1)).toBe(1);
    // Later commands go to the new gateway straight away (not through replica 0 first).
    const sentBefore = client.stats().gateway!.sent;
    const r2 = await client.submit(get('once'));
    expect(str(r2.result)).toBe('only');
    expect(client.stats().gateway!.sent - sentBefore).toBe(client.stats().gateway!.failovers - gateway!.failovers + 1);
  });

  it('skips a gateway whose link is down', async () => {
    harness = await ReplicaHarness.start({ down: [0], gateway: { maxBatchCommands: 100, maxDelayUs: 1_000 } });
    const client = await connect({ mode: 'gateway', gateway: 0 });
    await waitFor('links', () => client.connectedReplicas === 3);
    const r = await client.submit(put('s', 't'));
    expect(r.status).toBe('executed');
    expect(client.stats().gateway).toMatchObject({ current: 1, failovers: 0 });
  });
});

describe('results', () => {
  it('maps status bytes, and a single malformed entry to every command', () => {
    const blob = encodeResults([Uint8Array.of(0, 7, 8), Uint8Array.of(1), Uint8Array.of(0)]);
    expect(batchResults(blob, 3).map((r) => [r.status, [...r.result]])).toEqual([
      ['executed', [7, 8]],
      ['duplicate', []],
      ['executed', []],
    ]);
    const malformed = encodeResults([Uint8Array.of(2)]);
    expect(batchResults(malformed, 4).map((r) => r.status)).toEqual(['malformed', 'malformed', 'malformed', 'malformed']);
    const counts = emptyStatusCounts();
    expect(batchResults(encodeResults([Uint8Array.of(3)]), 1).map((r) => r.status)).toEqual(['resultTooLarge']);
    countStatuses(blob, 3, counts);
    countStatuses(malformed, 4, counts);
    countStatuses(new Uint8Array(2), 5, counts);
    expect(counts).toEqual({ ...emptyStatusCounts(), executed: 2, duplicate: 1, malformed: 9 });
  });
});
