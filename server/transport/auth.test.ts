import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { decodeMessage, encodeMessage, HELLO_NONCE_BYTES } from '../../common/codec.js';
import { ErrorCode } from '../../common/errors.js';
import { asDigest, replicaId, view } from '../../common/ids.js';
import type { Message } from '../../common/messages.js';
import { CloseCode } from './listener.js';
import { RawClient, commandMsg, helloFor, startTestCluster, waitUntil, type TestCluster } from './testing.js';
import { Transport } from './transport.js';

let cluster: TestCluster | null = null;
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await cluster?.close();
  cluster = null;
});

async function rawTo(c: TestCluster, port: number): Promise<RawClient> {
  const r = await RawClient.connect(port, c.cluster.config.n);
  raws.push(r);
  return r;
}

describe('peer-port authentication', () => {
  it('challenges every new connection with its replica id and a fresh 32-byte nonce', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const port = c.cluster.config.replicas[0]!.peerPort;
    const [a, b] = [await rawTo(c, port), await rawTo(c, port)];
    const [ca] = await a.waitForMessage('helloChallenge');
    const [cb] = await b.waitForMessage('helloChallenge');
    expect(ca!.replica).toBe(0);
    expect(ca!.nonce).toHaveLength(HELLO_NONCE_BYTES);
    expect(Buffer.from(ca!.nonce).equals(Buffer.from(cb!.nonce))).toBe(false);
  });

  it('a connection that never answers gets HANDSHAKE_FAILED errors, nothing is delivered, and it is closed after the timeout', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], limits: { handshakeTimeoutMs: 1500 } }));
    const t0 = c.transports[0]!;
    const r = await rawTo(c, c.cluster.config.replicas[0]!.peerPort);
    await r.waitForMessage('helloChallenge');
    r.send(commandMsg(1));
    r.send({ type: 'vote', view: view(1), block: asDigest(new Uint8Array(32)), voter: replicaId(1), sig: new Uint8Array(64), attachment: new Uint8Array(0) });
    r.sendRaw(new Uint8Array(2000)); // larger than any hello: refused without decoding
    const errors = await r.waitForMessage('error', 3);
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.HandshakeFailed, ErrorCode.HandshakeFailed, ErrorCode.HandshakeFailed]);
    expect(errors[0]!.message).toMatch(/before the handshake/);
    await r.waitClosed();
    expect(r.closeCode).toBe(CloseCode.HandshakeTimeout);
    expect(c.inboxes[0]!.peer).toHaveLength(0);
    const s = t0.stats();
    expect(s.rejectedFrames[ErrorCode.HandshakeFailed]).toBe(3);
    expect(s.handshakeFailures).toBe(1);
    expect(s.inboundPeers).toEqual([]);
  });

  it.each([
    ['a signature by another key', (sk: Uint8Array[]) => ({ as: 1, key: sk[2]! })],
    ['a claim to be another replica', (sk: Uint8Array[]) => ({ as: 3, key: sk[1]! })],
    ['a claim to be the acceptor itself', (sk: Uint8Array[]) => ({ as: 0, key: sk[0]! })],
  ])('a hello with %s is refused: error, connection closed, later frames never delivered', async (_what, pick) => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const secretKeys = c.cluster.keyPairs.map((k) => k.secretKey);
    const { as, key } = pick(secretKeys);
    const r = await rawTo(c, c.cluster.config.replicas[0]!.peerPort);
    const [challenge] = await r.waitForMessage('helloChallenge');
    r.send(helloFor(challenge!, c.cluster.config, as, key));
    r.send(commandMsg(7)); // sent right behind the hello: must not be delivered
    const [error] = await r.waitForMessage('error');
    expect(error!.code).toBe(ErrorCode.HandshakeFailed);
    await r.waitClosed();
    expect(r.closeCode).toBe(CloseCode.HandshakeFailed);
    expect(c.inboxes[0]!.peer).toHaveLength(0);
    expect(c.transports[0]!.stats().handshakeFailures).toBe(1);
  });

  it('a hello that answers another connection’s nonce is refused', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const port = c.cluster.config.replicas[0]!.peerPort;
    const [a, b] = [await rawTo(c, port), await rawTo(c, port)];
    const [challengeA] = await a.waitForMessage('helloChallenge');
    const [challengeB] = await b.waitForMessage('helloChallenge');
    // A correctly signed hello, but for a's challenge, presented on b.
    b.send(helloFor(challengeB!, c.cluster.config, 1, c.cluster.keyPairs[1]!.secretKey, challengeA!.nonce));
    await b.waitClosed();
    expect(b.closeCode).toBe(CloseCode.HandshakeFailed);
    expect(b.errors()[0]!.message).toMatch(/nonce/);
  });

  it('a correct hello authenticates: frames are delivered as from that replica; a newer connection replaces it', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0] }));
    const port = c.cluster.config.replicas[0]!.peerPort;
    const sk1 = c.cluster.keyPairs[1]!.secretKey;
    const first = await rawTo(c, port);
    first.send(helloFor((await first.waitForMessage('helloChallenge'))[0]!, c.cluster.config, 1, sk1));
    first.send(commandMsg(1));
    await waitUntil(() => c.inboxes[0]!.peer.length === 1, 'delivery from the authenticated link');
    expect(c.inboxes[0]!.peer[0]!.from).toBe(1);
    // A second hello on an authenticated link is refused (the link stays up).
    first.send(helloFor({ type: 'helloChallenge', replica: replicaId(0), nonce: new Uint8Array(32) }, c.cluster.config, 1, sk1));
    await first.waitForMessage('error');

    const second = await rawTo(c, port);
    second.send(helloFor((await second.waitForMessage('helloChallenge'))[0]!, c.cluster.config, 1, sk1));
    await first.waitClosed();
    expect(first.closeCode).toBe(CloseCode.Replaced);
    second.send(commandMsg(2));
    await waitUntil(() => c.inboxes[0]!.peer.length === 2, 'delivery from the replacing link');
    expect(c.inboxes[0]!.peer.map((p) => p.from)).toEqual([1, 1]);
    expect(c.transports[0]!.stats().inboundPeers).toEqual([1]);
  });

  it('the dialling side refuses an acceptor that is not the replica it meant to dial', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [] }));
    // An impostor on replica 1's peer port that claims to be replica 2.
    const impostor = new WebSocketServer({ host: '127.0.0.1', port: c.cluster.config.replicas[1]!.peerPort });
    await new Promise((resolve) => impostor.once('listening', resolve));
    let connections = 0;
    const received: Message[] = [];
    impostor.on('connection', (ws) => {
      connections++;
      ws.on('message', (data: Buffer) => {
        const r = decodeMessage(new Uint8Array(data), { replicaCount: 4 });
        if (r.ok) received.push(r.value);
      });
      ws.send(encodeMessage({ type: 'helloChallenge', replica: replicaId(2), nonce: new Uint8Array(32).fill(7) }));
    });
    try {
      const t0 = new Transport(c.options(0), c.inboxes[0]!);
      c.transports[0] = t0;
      t0.sendToPeer(replicaId(1), commandMsg(1));
      await t0.start();
      await waitUntil(() => connections >= 2, 'the transport redials after refusing the impostor');
      expect(t0.peersUp()).toEqual([]);
      expect(received).toEqual([]); // no hello, no queued message
      expect(t0.stats().peers.find((p) => p.peer === 1)!.queuedFrames).toBe(1);
    } finally {
      await cluster.close();
      for (const ws of impostor.clients) ws.terminate();
      await new Promise((resolve) => impostor.close(resolve));
    }
  });
});
