import { afterEach, describe, expect, it } from 'vitest';
import { encodeMessage } from '../../common/codec.js';
import { ErrorCode } from '../../common/errors.js';
import { asDigest, height, replicaId, view } from '../../common/ids.js';
import { MAX_CONNECTIONS_PER_ADDRESS } from '../../common/limits.js';
import type { CommandMsg, Message } from '../../common/messages.js';
import { CloseCode, PEER_ONLY_TYPES } from './listener.js';
import { RawClient, commandMsg, startTestCluster, waitUntil, type TestCluster } from './testing.js';

let cluster: TestCluster | null = null;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await cluster?.close();
  cluster = null;
});

async function clientOf(c: TestCluster, replica = 0): Promise<RawClient> {
  const r = await RawClient.connect(c.cluster.config.replicas[replica]!.clientPort, c.cluster.config.n);
  raws.push(r);
  return r;
}

const digest = asDigest(new Uint8Array(32).fill(1));
const sig = new Uint8Array(64);
const qc = { view: view(0), block: digest, signers: new Uint8Array(1), sigs: [] };
/** One valid instance of every peer-only type. */
const peerOnly: Message[] = [
  { type: 'proposal', block: { parent: digest, view: view(1), height: height(1), proposer: replicaId(0), justify: qc, payload: new Uint8Array(0) }, tc: null },
  { type: 'vote', view: view(1), block: digest, voter: replicaId(1), sig, attachment: new Uint8Array(0) },
  { type: 'timeout', view: view(1), voter: replicaId(1), highQc: qc, sig, attachment: new Uint8Array(0), lastTc: null },
  { type: 'blockRequest', digest, maxBlocks: 1 },
  { type: 'blockResponse', blocks: [] },
  { type: 'batchRequest', digests: [digest] },
  { type: 'batchResponse', batches: [new Uint8Array(3)] },
  { type: 'helloChallenge', replica: replicaId(1), nonce: new Uint8Array(32) },
  { type: 'hello', replica: replicaId(1), nonce: new Uint8Array(32), sig },
];

describe('client links', () => {
  it('delivers client messages with a connection id, replies reach the client, and closes are reported', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const t0 = c.transports[0]!;
    const inbox = c.inboxes[0]!;
    const a = await clientOf(c);
    const b = await clientOf(c);
    a.send({ type: 'clientHello', collectorId: 7 });
    b.send({ type: 'submit', batch: new Uint8Array([1, 2, 3]) });
    await waitUntil(() => inbox.client.length === 2, 'client messages');
    const connA = inbox.client.find((m) => m.msg.type === 'clientHello')!.conn;
    const connB = inbox.client.find((m) => m.msg.type === 'submit')!.conn;
    expect(connA).not.toBe(connB);
    expect(t0.stats().clientConnections).toBe(2);

    expect(t0.sendToClient(connA, commandMsg(5))).toBe(true);
    const [reply] = await a.waitForMessage('command');
    expect((reply as CommandMsg).seq).toBe(5);

    // Closed by the client: reported.
    b.close();
    await waitUntil(() => inbox.closedClients.includes(connB), 'onClientClosed');
    expect(t0.sendToClient(connB, commandMsg(6))).toBe(false);

    // Closed by the replica: the client sees why; the embedder is not told what it did itself.
    t0.closeClient(connA);
    await a.waitClosed();
    expect(a.closeCode).toBe(CloseCode.ClosedByReplica);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(inbox.closedClients).toEqual([connB]);
    expect(t0.sendToClient(connA, commandMsg(7))).toBe(false);
    expect(t0.stats().clientConnections).toBe(0);
  });

  it('refuses every peer-only message type on a client link with an error, and delivers none', async () => {
    expect(peerOnly.map((m) => m.type).sort()).toEqual([...PEER_ONLY_TYPES].sort());
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const client = await clientOf(c);
    for (const m of peerOnly) client.sendRaw(encodeMessage(m));
    client.send(commandMsg(1)); // still delivered afterwards
    const errors = await client.waitForMessage('error', peerOnly.length);
    expect(errors.every((e) => e.code === ErrorCode.HandshakeFailed && /replica-to-replica/.test(e.message))).toBe(true);
    await waitUntil(() => c.inboxes[0]!.client.length === 1, 'the command');
    expect(c.inboxes[0]!.client[0]!.msg.type).toBe('command');
    expect(c.transports[0]!.stats().rejectedFrames).toEqual({ [ErrorCode.HandshakeFailed]: peerOnly.length });
  });

  it(`accepts at most MAX_CONNECTIONS_PER_ADDRESS (${MAX_CONNECTIONS_PER_ADDRESS}) connections per address, and again once one closes`, async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const t0 = c.transports[0]!;
    const clients = await Promise.all(Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () => clientOf(c)));
    await expect(clientOf(c)).rejects.toThrow(/HTTP 429/);
    expect(t0.stats().connectionsRefused).toBe(1);
    expect(t0.stats().clientConnections).toBe(MAX_CONNECTIONS_PER_ADDRESS);
    // The peer port keeps its own count: a replica can still dial in.
    const peerPortConn = await RawClient.connect(c.cluster.config.replicas[0]!.peerPort, 4);
    raws.push(peerPortConn);
    clients[0]!.close();
    await waitUntil(() => t0.stats().clientConnections === MAX_CONNECTIONS_PER_ADDRESS - 1, 'a slot freed');
    await clientOf(c);
  });

  it('applies a lower configured cap to the peer port too', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { maxConnectionsPerAddress: 3 } }));
    const port = c.cluster.config.replicas[0]!.peerPort;
    for (let i = 0; i < 3; i++) raws.push(await RawClient.connect(port, 4));
    await expect(RawClient.connect(port, 4)).rejects.toThrow(/HTTP 429/);
    expect(c.transports[0]!.stats().connectionsRefused).toBe(1);
  });
});
