import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeMessage, encodeMessage } from '../../common/codec.js';
import { replicaId } from '../../common/ids.js';
import type { CommandMsg, Message } from '../../common/messages.js';
import { CloseCode } from './listener.js';
import { PEER_INFLIGHT_MAX_BYTES } from './limits.js';
import { RawClient, commandMsg, startTestCluster, waitUntil, type TestCluster } from './testing.js';
import { Transport } from './transport.js';

const FRAME_PAYLOAD = 50 * 1024;
const MiB = 1024 * 1024;

let cluster: TestCluster | null = null;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
  await cluster?.close();
  cluster = null;
});

const seqsOf = (msgs: Message[]): number[] => msgs.filter((m) => m.type === 'command').map((m) => (m as CommandMsg).seq);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Stands in for replica 1 on its peer port: sends a challenge, accepts any hello, records what
 * arrives per connection, and can stop reading (ws.pause(): the kernel buffers fill, then the
 * sender's writes stall) to play a slow receiver.
 */
class FakeAcceptor {
  readonly connections: { ws: WebSocket; received: Message[] }[] = [];
  pauseAfterHello = true;
  private constructor(private readonly server: WebSocketServer) {
    server.on('connection', (ws) => {
      const entry = { ws, received: [] as Message[] };
      this.connections.push(entry);
      ws.on('message', (data: Buffer) => {
        const r = decodeMessage(new Uint8Array(data), { replicaCount: 4 });
        if (!r.ok) return;
        entry.received.push(r.value);
        if (r.value.type === 'hello' && this.pauseAfterHello) ws.pause();
      });
      ws.on('error', () => undefined);
      ws.send(encodeMessage({ type: 'helloChallenge', replica: replicaId(1), nonce: new Uint8Array(32) }));
    });
  }
  static async listen(port: number): Promise<FakeAcceptor> {
    const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 64 * MiB });
    await new Promise((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new FakeAcceptor(server);
  }
  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Replica 0's transport, dialling a fake replica 1 (the other replicas are absent). */
async function withFakePeer(limits: Parameters<typeof startTestCluster>[0]['limits']): Promise<{ t0: Transport; fake: FakeAcceptor }> {
  for (let attempt = 0; ; attempt++) {
    const c = (cluster = await startTestCluster({ n: 4, start: [], ...(limits === undefined ? {} : { limits }) }));
    let fake: FakeAcceptor;
    try {
      fake = await FakeAcceptor.listen(c.cluster.config.replicas[1]!.peerPort);
    } catch (e) {
      if (attempt < 5) continue; // port taken: another cluster
      throw e;
    }
    cleanups.push(() => fake.close());
    const t0 = new Transport(c.options(0), c.inboxes[0]!);
    c.transports[0] = t0;
    await t0.start();
    return { t0, fake };
  }
}

/** The code a WebSocket reports when the connection ended without a close frame. */
const ABNORMAL_CLOSURE = 1006;

describe('backpressure', () => {
  it('a peer that stops reading: frames wait in our queue (bounded in flight) and all arrive, in order, once it reads again', async () => {
    const { t0, fake } = await withFakePeer(undefined);
    await waitUntil(() => t0.peersUp().includes(replicaId(1)), 'link up');
    const count = 1200; // 60 MB: far more than the kernel buffers, far below the queue limit
    for (let s = 0; s < count; s++) t0.sendToPeer(replicaId(1), commandMsg(s, FRAME_PAYLOAD));
    await waitUntil(() => {
      const p = t0.stats().peers.find((x) => x.peer === 1)!;
      return p.inflightBytes > 0 && p.queuedBytes > 0;
    }, 'a backlog behind a stalled socket');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stalled = t0.stats().peers.find((x) => x.peer === 1)!;
    expect(stalled.inflightBytes).toBeLessThanOrEqual(PEER_INFLIGHT_MAX_BYTES + FRAME_PAYLOAD + 100);
    expect(stalled.queuedBytes).toBeGreaterThan(30 * MiB);
    fake.connections[0]!.ws.resume();
    await waitUntil(() => fake.connections[0]!.received.length === count + 1, 'every frame', 30_000);
    expect(seqsOf(fake.connections[0]!.received)).toEqual(range(0, count));
    expect(t0.stats().droppedFrames).toBe(0);
    expect(fake.connections).toHaveLength(1);
  });

  it('a peer queue past its limit: the backlog is dropped and counted, the link is replaced, and later frames flow', async () => {
    const { t0, fake } = await withFakePeer({ peerQueueMaxBytes: 16 * MiB });
    await waitUntil(() => t0.peersUp().includes(replicaId(1)), 'link up');
    fake.pauseAfterHello = false; // the replacement connection reads normally
    for (let s = 0; s < 1000; s++) t0.sendToPeer(replicaId(1), commandMsg(s, FRAME_PAYLOAD)); // 50 MB > 16 MiB
    const dropped = t0.stats().droppedFrames;
    expect(dropped).toBeGreaterThan(0);
    await waitUntil(() => fake.connections.length === 2 && t0.peersUp().includes(replicaId(1)), 'a fresh link');
    t0.sendToPeer(replicaId(1), commandMsg(5000));
    await waitUntil(() => seqsOf(fake.connections[1]!.received).includes(5000), 'frames after the overflow');
    const second = seqsOf(fake.connections[1]!.received);
    // Every frame not dropped went out exactly once, in order, on one connection or the other.
    const first = seqsOf(fake.connections[0]!.received);
    expect(first.length + second.length).toBeLessThanOrEqual(1001);
    expect(second).toEqual([...second].sort((a, b) => a - b));
    expect(t0.stats().peers.find((p) => p.peer === 1)!.droppedFrames).toBe(dropped);
  });

  it('a peer that is down: only the newest frames are kept for it (shed, not an overflow), and they arrive once it is up', async () => {
    // The age limit is far off here: this case is about the byte limit.
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { peerDownQueueMaxBytes: 4 * MiB, peerDownQueueMaxAgeMs: 600_000 } }));
    const t0 = c.transports[0]!;
    const count = 400; // 20 MB for replica 1, which is not running
    for (let s = 0; s < count; s++) t0.sendToPeer(replicaId(1), commandMsg(s, FRAME_PAYLOAD));
    const link = t0.stats().peers.find((p) => p.peer === 1)!;
    expect(link.queuedBytes).toBeLessThanOrEqual(4 * MiB);
    expect(link.shedFrames).toBeGreaterThan(300);
    expect(t0.stats().droppedFrames).toBe(0);
    const t1 = new Transport(c.options(1), c.inboxes[1]!);
    c.transports[1] = t1;
    await t1.start();
    await waitUntil(() => c.inboxes[1]!.fromPeer(0).length === count - link.shedFrames, 'the kept frames');
    expect(seqsOf(c.inboxes[1]!.fromPeer(0))).toEqual(range(link.shedFrames, count));
  });

  it('a peer that is down: frames queued for it longer ago than the age limit are shed, the recent ones arrive once it is up', async () => {
    const maxAgeMs = 2_000;
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { peerDownQueueMaxAgeMs: maxAgeMs } }));
    const t0 = c.transports[0]!;
    for (let s = 0; s < 50; s++) t0.sendToPeer(replicaId(1), commandMsg(s)); // replica 1 is not running
    await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 500));
    for (let s = 50; s < 60; s++) t0.sendToPeer(replicaId(1), commandMsg(s));
    expect(t0.stats().peers.find((p) => p.peer === 1)!.shedFrames).toBe(50);
    const t1 = new Transport(c.options(1), c.inboxes[1]!);
    c.transports[1] = t1;
    await t1.start();
    await waitUntil(() => c.inboxes[1]!.fromPeer(0).length === 10, 'the recent frames');
    expect(seqsOf(c.inboxes[1]!.fromPeer(0))).toEqual(range(50, 60));
    expect(t0.stats().droppedFrames).toBe(0);
  });

  it('two real transports: a 100 MB burst to one peer is delivered in full and in order', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0, 1] }));
    await waitUntil(() => c.transports[0]!.peersUp().includes(replicaId(1)), 'link up');
    const count = 2000;
    for (let s = 0; s < count; s++) c.transports[0]!.sendToPeer(replicaId(1), commandMsg(s, FRAME_PAYLOAD));
    await waitUntil(() => c.inboxes[1]!.peer.length === count, 'the burst', 30_000);
    expect(seqsOf(c.inboxes[1]!.fromPeer(0))).toEqual(range(0, count));
    expect(c.transports[0]!.stats().droppedFrames).toBe(0);
  });

  it('a client that stops reading: replies queue (uWS drain) and all arrive once it reads again', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const t0 = c.transports[0]!;
    const client = await RawClient.connect(c.cluster.config.replicas[0]!.clientPort, 4);
    cleanups.push(() => client.close());
    await client.authenticate(c.cluster.config);
    await waitUntil(() => c.inboxes[0]!.authenticated.length === 1, 'client known');
    const conn = c.inboxes[0]!.authenticated[0]!.conn;
    client.ws.pause();
    const count = 500; // 25 MB, below the 32 MiB client queue limit plus what the socket holds
    for (let s = 0; s < count; s++) expect(t0.sendToClient(conn, commandMsg(s, FRAME_PAYLOAD))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(t0.stats().clientQueuedBytes).toBeGreaterThan(5 * MiB);
    client.ws.resume();
    await client.waitForMessage('command', count, 30_000);
    expect(seqsOf(client.received)).toEqual(range(0, count));
    expect(t0.stats().clientQueuedBytes).toBe(0);
    expect(t0.stats().droppedFrames).toBe(0);
  });

  it('a client queue past its limit: the client is disconnected, the drop counted, and the embedder told after its call returns', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { clientQueueMaxBytes: 4 * MiB } }));
    const t0 = c.transports[0]!;
    const client = await RawClient.connect(c.cluster.config.replicas[0]!.clientPort, 4);
    cleanups.push(() => client.close());
    await client.authenticate(c.cluster.config);
    await waitUntil(() => c.inboxes[0]!.authenticated.length === 1, 'client known');
    const conn = c.inboxes[0]!.authenticated[0]!.conn;
    client.ws.pause();
    let refusedAt = -1;
    for (let s = 0; s < 1000 && refusedAt < 0; s++) {
      if (!t0.sendToClient(conn, commandMsg(s, FRAME_PAYLOAD))) refusedAt = s;
      if (s % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1)); // let the socket fill
    }
    expect(refusedAt).toBeGreaterThan(0);
    expect(c.inboxes[0]!.closedClients).toEqual([]); // not re-entered inside sendToClient
    await waitUntil(() => c.inboxes[0]!.closedClients.includes(conn), 'onClientClosed');
    expect(t0.stats().droppedFrames).toBeGreaterThan(0);
    client.ws.resume();
    await client.waitClosed();
    // uWS writes the close frame past the backlog; ws queues it behind the frames the client never
    // read, and cuts the connection when the client does not answer it in time.
    if (t0.serverInfo()!.backend === 'uws') expect(client.closeCode).toBe(CloseCode.QueueOverflow);
    else expect([CloseCode.QueueOverflow, ABNORMAL_CLOSURE]).toContain(client.closeCode);
  });
});
