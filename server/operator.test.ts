/**
 * What operators and embedding applications get from a running replica (one-replica development
 * cluster, in process): /health, /ready, the info metric and phase histograms in /metrics, the
 * live status stream and dashboard page, and the events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { nodeCrypto } from '../common/crypto/node.js';
import { toHex } from '../common/bytes.js';
import { encodeKvCommand, KvOp } from '../ordering/kvStore.js';
import { freePortRange } from './freePorts.js';
import { PompeClient } from '../client/client.js';
import type { CommittedEvent, ExecutedEvent } from './events.js';
import { genConf } from './genConf.js';
import type { ServerLogger } from './logging.js';
import { startReplica, type RunningReplica } from './replica.js';
import { tempDir } from './store/testFixtures.js';
import { packageVersion } from './version.js';

/** The test's client: one key, so the events can be checked against it. */
const CLIENT_KEY = nodeCrypto.generateKeyPair();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const silentLogger = (): ServerLogger => Object.assign(pino({ level: 'silent' }), { close: async () => undefined });

async function devReplica(): Promise<{ replica: RunningReplica; dir: string; url: string }> {
  const dir = await tempDir('operator');
  cleanups.push(dir.cleanup);
  const base = await freePortRange(3);
  await genConf({ replicas: 1, devSingleReplica: true, out: dir.path, basePeerPort: base, baseClientPort: base + 1, baseHttpPort: base + 2, deltaUs: 20_000 }, nodeCrypto);
  const replica = await startReplica({ confDir: dir.path, id: 0 }, { logger: silentLogger() });
  cleanups.push(() => replica.close());
  return { replica, dir: dir.path, url: `http://127.0.0.1:${replica.httpPort}` };
}

async function submitSome(dir: string, count: number): Promise<void> {
  const client = await PompeClient.connect({ confDir: dir, key: CLIENT_KEY });
  try {
    const text = new TextEncoder();
    await Promise.all(Array.from({ length: count }, (_, i) => client.submit(encodeKvCommand(KvOp.Put, text.encode(`k${i}`), text.encode(`v${i}`)))));
  } finally {
    await client.close();
  }
}

/** Reads server-sent events from `url` until `count` data frames arrived. */
async function readFrames(url: string, count: number): Promise<unknown[]> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const frames: unknown[] = [];
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
      const event = text.slice(0, end);
      text = text.slice(end + 2);
      const data = event.split('\n').find((l) => l.startsWith('data: '));
      if (data !== undefined) frames.push(JSON.parse(data.slice(6)));
    }
    if (frames.length >= count) break;
  }
  controller.abort();
  return frames;
}

describe('operator endpoints', () => {
  it('/health and /ready answer 200 on a running cluster; /metrics has the info metric and phase histograms', async () => {
    const { replica, dir, url } = await devReplica();
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, reason: '' });
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(200);

    await submitSome(dir, 10);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const clusterId = replica.runningStatus().clusterId;
    expect(clusterId).toMatch(/^[0-9a-f]{16}$/);
    expect(metrics).toContain(`pompe_replica_info{replica="0",cluster_id="${clusterId}",version="${packageVersion()}"} 1`);
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
    // The client sent its batches to this replica, which stamped, acked, committed and executed them.
    for (const phase of ['stamp_to_ack', 'ack_to_commit', 'commit_to_execute', 'stamp_to_execute']) {
      const count = Number(new RegExp(`^pompe_batch_phase_seconds_count\\{phase="${phase}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
      expect(count, phase).toBeGreaterThan(0);
    }
    const status = replica.runningStatus();
    expect(status.health).toEqual({ ok: true, reason: '' });
    expect(status.ready.ok).toBe(true);
    expect(status.leader).toBe(0);
    expect(status.latency.total.stamp_to_execute.count).toBeGreaterThan(0);
    expect(status.latency.total.stamp_to_execute.p50Ms).toBeGreaterThan(0);
  });

  it('serves the dashboard page and a status stream that keeps coming', async () => {
    const { url } = await devReplica();
    const page = await fetch(`${url}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('EventSource');
    // Offline: nothing is loaded from elsewhere.
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/);
    const frames = (await readFrames(`${url}/status/stream`, 2)) as { replicas: { replica: number; view: number }[] }[];
    expect(frames).toHaveLength(2);
    expect(frames[1]!.replicas[0]!.replica).toBe(0);
  });
});

describe('replica events', () => {
  it('reports commits, executed batches with positions and per-command results, and view changes', async () => {
    const { replica, dir } = await devReplica();
    const committed: CommittedEvent[] = [];
    const executed: ExecutedEvent[] = [];
    const views: number[] = [];
    replica.events.on('committed', (e) => committed.push(e));
    replica.events.on('executed', (e) => executed.push(e));
    replica.events.on('viewChange', (e) => views.push(e.to));
    // A listener that throws is logged; the replica and the other listeners go on.
    replica.events.on('executed', () => {
      throw new Error('a buggy listener');
    });
    await submitSome(dir, 5);
    await new Promise((r) => setTimeout(r, 50));
    const commands = executed.flatMap((e) => e.commands.map((c) => ({ ...c, position: e.position })));
    expect(commands.map((c) => c.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(commands.every((c) => c.clientKey === toHex(CLIENT_KEY.publicKey) && c.status === 'executed')).toBe(true);
    // The kv store answers a put with an empty result; positions follow the executed sequence.
    expect(executed.map((e) => e.position)).toEqual([...executed.map((e) => e.position)].sort((a, b) => a - b));
    for (const e of executed) {
      expect(e.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(committed.some((c) => c.height === e.blockHeight)).toBe(true);
    }
    expect(views.length).toBeGreaterThan(0);
    expect(views).toEqual([...views].sort((a, b) => a - b));
    expect(replica.runningStatus().health.ok).toBe(true);
  });
});
