/**
 * End to end: four `pompe replica` processes (the built dist/) on loopback, driven by a direct-mode
 * client (ordering/collector over ws). Checks that every batch is ordered and executed, that the
 * replicas execute the same sequence (the executed-chain hash in /status), that bad input is
 * refused with error replies and counters without disturbing honest load, that the cluster keeps
 * going with its leader SIGKILLed, that the killed replica restarts from its store and catches
 * up, and that SIGTERM stops a replica cleanly.
 */
import { readFile } from 'node:fs/promises';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { decodeMessage, encodeMessage } from '../../common/codec.js';
import type { ReplicaId } from '../../common/ids.js';
import { MAX_FRAME_BYTES } from '../../common/limits.js';
import type { Message } from '../../common/messages.js';
import { loadedUws } from '../../server/transport/uws.js';
import { TestCluster, waitFor } from './cluster.js';
import { TestClient, type Completed } from './testClient.js';

const N = 4;
/** A replica on this Node serves on uWS where a build loads here, and on ws (saying why) elsewhere. */
const uws = loadedUws();
const expectedServer = { backend: uws.ok ? 'uws' : 'ws', tls: false, fallbackReason: uws.ok ? null : uws.reasons.join('; ') };
let cluster: TestCluster;
let client: TestClient;

beforeAll(async () => {
  // A generous Δ: this test checks behaviour, not latency, and runs beside other test files on a
  // shared CI machine, where a busy CPU stretches the ordering phase past the loopback default.
  cluster = await TestCluster.create(N, ['--delta-us', '25000']);
  await cluster.startAll();
  client = new TestClient(cluster.config);
  await client.connect();
}, 60_000);

afterAll(async () => {
  client?.close();
  await cluster?.destroy();
});

function reportLogsOnFailure(): void {
  onTestFailed(async () => {
    console.error(await cluster.tails());
  });
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;


/** A raw WebSocket that records every frame it receives, decoded. */
async function rawSocket(port: number): Promise<{ ws: WebSocket; got: Message[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const got: Message[] = [];
  ws.on('message', (data: Buffer) => {
    const decoded = decodeMessage(new Uint8Array(data), { replicaCount: N });
    if (decoded.ok) got.push(decoded.value);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, got, closed };
}

const errorCodes = (msgs: readonly Message[]): string[] => msgs.flatMap((m) => (m.type === 'error' ? [m.code] : []));

describe('a four-replica cluster of real processes', () => {
  it('orders and executes every batch, and all replicas execute the same sequence', async () => {
    reportLogsOnFailure();
    const heightBefore = Math.max(...(await cluster.statuses()).map((s) => s.committedHeight));
    const startedMs = performance.now();
    const results = await client.load(200, 8);
    const seconds = (performance.now() - startedMs) / 1000;
    expect(results).toHaveLength(200);
    expect(new Set(results.map((r) => r.position)).size).toBe(200);
    const unordered = results.filter((r) => r.orderedMs < 0).length;
    console.log(
      `e2e: 200 batches in ${seconds.toFixed(2)} s = ${(200 / seconds).toFixed(0)} batches/s (8 in flight); ` +
        `(${unordered} without an ordered event) order p50 ${p50(results.map((r) => r.orderedMs)).toFixed(1)} ms, exec p50 ${p50(results.map((r) => r.executedMs)).toFixed(1)} ms`,
    );
    const agreed = await cluster.agreedChain([0, 1, 2, 3], 199);
    for (const s of agreed) {
      expect(s.executedBatches).toBe(200);
      expect(s.executedCommands).toBe(200);
      expect(s.committedHeight).toBeGreaterThan(heightBefore);
      expect(s.transport.server).toEqual(expectedServer);
    }
    // Committed height keeps growing (idle fillers), everywhere.
    await waitFor(
      'committed heights to grow',
      async () => {
        const later = await cluster.statuses();
        return later.every((s, i) => s.committedHeight > agreed[i]!.committedHeight) ? true : undefined;
      },
      10_000,
    );
  });

  it('refuses malformed, oversized and unauthenticated input with errors and counters, while honest load completes', async () => {
    reportLogsOnFailure();
    const target = 1;
    const r = cluster.config.replicas[target]!;
    const honest = client.load(100, 4);

    // Client port: bad msgpack, a text frame, a frame over the limit, a clientHello whose
    // signature does not prove its key (the connection is closed).
    const c = await rawSocket(r.clientPort);
    const clientChallenge = await waitFor('the client challenge', async () => c.got.find((m) => m.type === 'helloChallenge'), 5_000);
    if (clientChallenge.type !== 'helloChallenge') throw new Error('unreachable');
    c.ws.send(Buffer.from([0xc1, 0x00, 0xff]));
    c.ws.send('not a frame');
    c.ws.send(Buffer.alloc(MAX_FRAME_BYTES + 1));
    c.ws.send(encodeMessage({ type: 'clientHello', key: cluster.config.replicas[0]!.publicKey, nonce: clientChallenge.nonce, sig: new Uint8Array(64) }));
    await waitFor('client-port error replies', async () => (errorCodes(c.got).length >= 4 ? true : undefined), 10_000);
    expect(errorCodes(c.got).sort()).toEqual(['FRAME_TOO_LARGE', 'HANDSHAKE_FAILED', 'MALFORMED_FRAME', 'MALFORMED_FRAME']);
    expect(await c.closed).not.toBe(1000);

    // Peer port: a message before the handshake, then a hello with a bad signature.
    const p = await rawSocket(r.peerPort);
    const challenge = await waitFor('the hello challenge', async () => p.got.find((m) => m.type === 'helloChallenge'), 5_000);
    p.ws.send(encodeMessage({ type: 'submit', batch: new Uint8Array(40) }));
    if (challenge.type !== 'helloChallenge') throw new Error('unreachable');
    p.ws.send(encodeMessage({ type: 'hello', replica: 0 as ReplicaId, nonce: challenge.nonce, sig: new Uint8Array(64) }));
    expect(await p.closed).not.toBe(1000);
    expect(errorCodes(p.got)).toEqual(['HANDSHAKE_FAILED', 'HANDSHAKE_FAILED']);

    const results: Completed[] = await honest;
    expect(results).toHaveLength(100);

    const s = await cluster.status(target);
    expect(s.transport.rejectedFrames['MALFORMED_FRAME']).toBeGreaterThanOrEqual(2);
    expect(s.transport.rejectedFrames['FRAME_TOO_LARGE']).toBeGreaterThanOrEqual(1);
    expect(s.transport.rejectedFrames['HANDSHAKE_FAILED']).toBeGreaterThanOrEqual(2);
    expect(s.transport.handshakeFailures).toBeGreaterThanOrEqual(1);
    const metrics = await cluster.metrics(target);
    expect(metrics).toMatch(/pompe_transport_frames_rejected_total\{link="client",code="MALFORMED_FRAME"\} [2-9]/);
    expect(metrics).toMatch(/pompe_transport_frames_rejected_total\{link="peer",code="HANDSHAKE_FAILED"\} [2-9]/);
    expect(metrics).toMatch(/pompe_step_seconds_count\{input="client"\} \d+/);
    expect(metrics).toMatch(/pompe_executed_commands_total \d+/);
    await cluster.agreedChain([0, 1, 2, 3], 299);
  });

  it('keeps executing with the leader SIGKILLed; the restarted replica replays its store and catches up', async () => {
    reportLogsOnFailure();
    const before = await cluster.statuses();
    const leader = before.find((s) => s.leading)?.replica ?? 0;
    const survivors = [0, 1, 2, 3].filter((i) => i !== leader);
    let kill: Promise<number | null> | null = null;
    const results = await client.load(150, 8, (done) => {
      if (done === 30) kill = cluster.kill(leader);
    });
    expect(results).toHaveLength(150);
    expect(kill).not.toBeNull();
    await kill;
    const afterKill = await cluster.agreedChain(survivors, 449);
    expect(afterKill.every((s) => s.executedBatches === 450)).toBe(true);

    cluster.start(leader);
    const restarted = await cluster.waitUp(leader);
    // The replay rebuilt what it had executed before the kill: its chain is a prefix of the others'.
    expect(restarted.executedChainPosition).toBeGreaterThanOrEqual(29);
    const log = await readFile(cluster.logFile(leader), 'utf8');
    expect(log).toMatch(/"replayedBlocks":[1-9]/);

    // More load with the restarted replica back in; then all four agree again.
    expect(await client.load(30, 4)).toHaveLength(30);
    const all = await cluster.agreedChain([0, 1, 2, 3], 479, 30_000);
    expect(all.every((s) => s.executedBatches === 480)).toBe(true);
  });

  it('stops a replica gracefully on SIGTERM (exit 0, store closed, log flushed)', async () => {
    reportLogsOnFailure();
    const target = 2;
    expect(await cluster.kill(target, 'SIGTERM')).toBe(0);
    const log = await readFile(cluster.logFile(target), 'utf8');
    expect(log).toMatch(/"msg":"stopping"/);
    expect(log.trimEnd().split('\n').at(-1)).toMatch(/"msg":"replica stopped"/);
    // The other three still make progress without it.
    expect(await client.load(10, 4)).toHaveLength(10);
  });
});
