import { afterEach, describe, expect, it } from 'vitest';
import { toHex } from '../../common/bytes.js';
import { encodeMessage } from '../../common/codec.js';
import { ErrorCode } from '../../common/errors.js';
import { asDigest, height, replicaId, view, type Slot } from '../../common/ids.js';
import { MAX_CONNECTIONS_PER_ADDRESS } from '../../common/limits.js';
import type { CommandMsg, Message } from '../../common/messages.js';
import { clientHelloMessage } from '../../common/signing.js';
import { CloseCode, PEER_ONLY_TYPES } from './listener.js';
import { RawClient, commandMsg, startTestCluster, testClientSigner, waitUntil, type TestCluster } from './testing.js';

let cluster: TestCluster | null = null;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await cluster?.close();
  cluster = null;
});

/** A raw client connection, authenticated as test client `as` unless told not to. */
async function clientOf(c: TestCluster, replica = 0, as: number | null = 0): Promise<RawClient> {
  const r = await RawClient.connect(c.cluster.config.replicas[replica]!.clientPort, c.cluster.config.n);
  raws.push(r);
  if (as !== null) await r.authenticate(c.cluster.config, testClientSigner(as));
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
  { type: 'checkpoint', height: height(1), toSlot: 1 as Slot, position: 0, block: digest, state: digest, replica: replicaId(1), sig },
  { type: 'checkpointRequest' },
  { type: 'checkpointCert', cert: { height: height(1), toSlot: 1 as Slot, position: 0, block: digest, state: digest, signers: qc.signers, sigs: qc.sigs } },
  { type: 'chunkRequest', height: height(1), state: digest, index: 0 },
  { type: 'chunkResponse', height: height(1), state: digest, index: 1, bytes: new Uint8Array(3) },
];

describe('client links', () => {
  it('delivers client messages with a connection id, replies reach the client, and closes are reported', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const t0 = c.transports[0]!;
    const inbox = c.inboxes[0]!;
    const a = await clientOf(c, 0, 1);
    const b = await clientOf(c, 0, 2);
    a.send({ type: 'sequence', oc: { digest, stamps: [] }, batch: null });
    b.send({ type: 'submit', batch: new Uint8Array([1, 2, 3]) });
    await waitUntil(() => inbox.client.length === 2, 'client messages');
    const connA = inbox.client.find((m) => m.msg.type === 'sequence')!.conn;
    const connB = inbox.client.find((m) => m.msg.type === 'submit')!.conn;
    // Each connection was announced with the key it proved, before its messages.
    expect(inbox.authenticated.map((x) => [x.conn, toHex(x.identity.handle.raw)])).toEqual(
      expect.arrayContaining([
        [connA, toHex(testClientSigner(1).publicKey)],
        [connB, toHex(testClientSigner(2).publicKey)],
      ]),
    );
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
    expect(errors.every((e) => e.code === ErrorCode.HandshakeFailed && /not accepted on an authenticated client link/.test(e.message))).toBe(true);
    await waitUntil(() => c.inboxes[0]!.client.length === 1, 'the command');
    expect(c.inboxes[0]!.client[0]!.msg.type).toBe('command');
    expect(c.transports[0]!.stats().rejectedFrames).toEqual({ [ErrorCode.HandshakeFailed]: peerOnly.length });
  });

  it('delivers nothing from a connection before it proves a key, and closes one whose proof fails', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const inbox = c.inboxes[0]!;
    const early = await clientOf(c, 0, null);
    await early.waitForMessage('helloChallenge');
    early.send(commandMsg(1));
    const [refused] = await early.waitForMessage('error');
    expect(refused).toMatchObject({ code: ErrorCode.HandshakeFailed });
    expect(refused!.message).toMatch(/before the handshake/);

    // Signed by another key than the one it names.
    const liar = await clientOf(c, 0, null);
    const [challenge] = await liar.waitForMessage('helloChallenge');
    const sig = testClientSigner(9).sign(clientHelloMessage(c.cluster.config.clusterId, challenge!.replica, challenge!.nonce));
    liar.send({ type: 'clientHello', key: testClientSigner(1).publicKey, nonce: challenge!.nonce, sig });
    await liar.waitClosed();
    expect(liar.closeCode).toBe(CloseCode.HandshakeFailed);
    expect(liar.errors()[0]!.message).toMatch(/does not verify/);

    // A replayed answer to another connection's challenge.
    const replayer = await clientOf(c, 0, null);
    await replayer.waitForMessage('helloChallenge');
    replayer.send({ type: 'clientHello', key: testClientSigner(1).publicKey, nonce: challenge!.nonce, sig });
    await replayer.waitClosed();
    expect(replayer.errors()[0]!.message).toMatch(/different nonce/);

    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(inbox.client).toEqual([]);
    expect(inbox.authenticated).toEqual([]);
    expect(c.transports[0]!.stats().handshakeFailures).toBe(2);
  });

  it('holds one identity per connection: a second clientHello is refused', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const client = await clientOf(c, 0, 1);
    await waitUntil(() => c.inboxes[0]!.authenticated.length === 1, 'authenticated');
    client.send({ type: 'clientHello', key: testClientSigner(2).publicKey, nonce: new Uint8Array(32), sig: new Uint8Array(64) });
    const [error] = await client.waitForMessage('error');
    expect(error!.code).toBe(ErrorCode.HandshakeFailed);
    expect(c.inboxes[0]!.authenticated).toHaveLength(1);
  });

  it('closes a client connection that does not answer its challenge in time', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { handshakeTimeoutMs: 100 } }));
    const silent = await clientOf(c, 0, null);
    await silent.waitClosed();
    expect(silent.closeCode).toBe(CloseCode.HandshakeTimeout);
  });

  it(`accepts at most MAX_CONNECTIONS_PER_ADDRESS (${MAX_CONNECTIONS_PER_ADDRESS}) connections per address, and again once one closes`, async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const t0 = c.transports[0]!;
    const clients = await Promise.all(Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () => clientOf(c, 0, null)));
    await expect(clientOf(c, 0, null)).rejects.toThrow(/HTTP 429/);
    expect(t0.stats().connectionsRefused).toBe(1);
    expect(t0.stats().clientConnections).toBe(MAX_CONNECTIONS_PER_ADDRESS);
    // The peer port keeps its own count: a replica can still dial in.
    const peerPortConn = await RawClient.connect(c.cluster.config.replicas[0]!.peerPort, 4);
    raws.push(peerPortConn);
    clients[0]!.close();
    await waitUntil(() => t0.stats().clientConnections === MAX_CONNECTIONS_PER_ADDRESS - 1, 'a slot freed');
    await clientOf(c, 0, null);
  });

  it('checks no more client handshakes per address than its budget: the next hello is refused OVERLOADED unchecked, the connection closed', async () => {
    // A burst of maxConnectionsPerAddress (3) handshakes, then one a second.
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { maxConnectionsPerAddress: 3, clientHandshakesPerAddressPerSecond: 1 } }));
    const inbox = c.inboxes[0]!;
    for (let i = 0; i < 3; i++) {
      const r = await clientOf(c, 0, i);
      await waitUntil(() => inbox.authenticated.length === i + 1, `client ${i} authenticated`);
      r.close();
      await waitUntil(() => c.transports[0]!.stats().clientConnections === 0, 'its connection gone');
    }
    const throttled = await clientOf(c, 0, 3);
    const [refused] = await throttled.waitForMessage('error');
    expect(refused).toMatchObject({ code: ErrorCode.Overloaded });
    await throttled.waitClosed();
    expect(throttled.closeCode).toBe(CloseCode.HandshakeThrottled);
    expect(inbox.authenticated).toHaveLength(3);
    const stats = c.transports[0]!.stats();
    expect(stats.handshakesThrottled).toBe(1);
    expect(stats.handshakeFailures).toBe(0);
    // A second later the address has a handshake again.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    await clientOf(c, 0, 4);
    await waitUntil(() => inbox.authenticated.length === 4, 'a handshake a second later');
  });

  it('budgets new keys per address apart from handshakes: a known key reconnects past it, and a throttled address is refused at the upgrade until a key is due', async () => {
    // A burst of 3 new keys, then one a second; handshakes plenty.
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { freshClientKeysBurst: 3, freshClientKeysPerAddressPerSecond: 1 } }));
    const t0 = c.transports[0]!;
    const inbox = c.inboxes[0]!;
    const connectAndLeave = async (key: number): Promise<void> => {
      const before = inbox.authenticated.length;
      const r = await clientOf(c, 0, key);
      await waitUntil(() => inbox.authenticated.length === before + 1, `client ${key} authenticated`);
      r.close();
      await waitUntil(() => t0.stats().clientConnections === 0, 'its connection gone');
    };
    for (const key of [0, 1, 2]) await connectAndLeave(key);
    // Known keys cost no parse: they come back past the spent new-key budget.
    for (const key of [0, 1, 2, 0]) await connectAndLeave(key);
    const throttled = await clientOf(c, 0, 3);
    const [refused] = await throttled.waitForMessage('error');
    expect(refused).toMatchObject({ code: ErrorCode.Overloaded, message: expect.stringMatching(/new client keys/) });
    await throttled.waitClosed();
    expect(throttled.closeCode).toBe(CloseCode.HandshakeThrottled);
    // Redialling at once is refused before the WebSocket handshake, whatever key it would bring.
    await expect(clientOf(c, 0, null)).rejects.toThrow(/HTTP 429/);
    expect(t0.stats()).toMatchObject({ handshakesThrottled: 1, connectionsRefused: 1 });
    // Within a second the address has a new key again, and one only.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    await connectAndLeave(3);
    const next = await clientOf(c, 0, 4);
    await next.waitClosed();
    expect(next.closeCode).toBe(CloseCode.HandshakeThrottled);
    expect(inbox.authenticated).toHaveLength(8);
  });

  it('budgets new keys from all addresses together: past that budget a new key is refused whatever its address has left, a known key still reconnects', async () => {
    // Plenty per address; 2 new keys in all, then one a second.
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { freshClientKeysTotalBurst: 2, freshClientKeysPerSecond: 1 } }));
    const t0 = c.transports[0]!;
    const inbox = c.inboxes[0]!;
    for (const key of [0, 1]) {
      const r = await clientOf(c, 0, key);
      await waitUntil(() => inbox.authenticated.length === key + 1, `client ${key} authenticated`);
      r.close();
      await waitUntil(() => t0.stats().clientConnections === 0, 'its connection gone');
    }
    const throttled = await clientOf(c, 0, 2);
    const [refused] = await throttled.waitForMessage('error');
    expect(refused).toMatchObject({ code: ErrorCode.Overloaded, message: expect.stringMatching(/new client keys from all addresses/) });
    await throttled.waitClosed();
    expect(throttled.closeCode).toBe(CloseCode.HandshakeThrottled);
    expect(inbox.authenticated).toHaveLength(2);
    // Once the shared budget has a key again (and the address's refusal has run out), a known key
    // and one new key get in.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    await clientOf(c, 0, 0);
    await waitUntil(() => inbox.authenticated.length === 3, 'a known key');
    await clientOf(c, 0, 2);
    await waitUntil(() => inbox.authenticated.length === 4, 'one new key a second later');
    expect(t0.stats()).toMatchObject({ handshakesThrottled: 1, handshakeFailures: 0 });
  });

  it('sheds a faulty client: closed with its reason and reported, its address refused for the cooldown, its neighbours kept', async () => {
    // On ws, whose close handler runs after end() returns (uWS runs it inside end()), so that a
    // second shed of the same link reaches the listener while the link is still open.
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { shedCooldownMs: 1_500 }, serverBackend: 'ws' }));
    const t0 = c.transports[0]!;
    const inbox = c.inboxes[0]!;
    const faulty = await clientOf(c, 0, 1);
    const neighbour = await clientOf(c, 0, 2);
    await waitUntil(() => inbox.authenticated.length === 2, 'both authenticated');
    const conn = inbox.authenticated.find((x) => toHex(x.identity.handle.raw) === toHex(testClientSigner(1).publicKey))!.conn;
    t0.shedClient(conn, 'a batch its key did not sign');
    // Judged faulty again before its close completes (more of its input in the same read): once.
    t0.shedClient(conn, 'a batch its key did not sign');
    await faulty.waitClosed();
    expect(faulty.closeCode).toBe(CloseCode.Shed);
    expect(faulty.errors()[0]).toMatchObject({ code: ErrorCode.Overloaded, message: expect.stringMatching(/shed: a batch its key did not sign/) });
    // Reported to the embedder, which must forget the connection as for any close it did not ask for.
    await waitUntil(() => inbox.closedClients.includes(conn), 'onClientClosed');
    expect(neighbour.isOpen).toBe(true);
    await expect(clientOf(c, 0, 3)).rejects.toThrow(/HTTP 429/);
    expect(t0.stats()).toMatchObject({ clientsShed: 1, connectionsRefused: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1_550));
    await clientOf(c, 0, 3);
    await waitUntil(() => inbox.authenticated.length === 3, 'a client of that address after the cooldown');
  });

  it('applies a lower configured cap to the peer port too', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { maxConnectionsPerAddress: 3 } }));
    const port = c.cluster.config.replicas[0]!.peerPort;
    for (let i = 0; i < 3; i++) raws.push(await RawClient.connect(port, 4));
    await expect(RawClient.connect(port, 4)).rejects.toThrow(/HTTP 429/);
    expect(c.transports[0]!.stats().connectionsRefused).toBe(1);
  });
});
