/**
 * wss:// on both ports: replicas dial each other over TLS and verify against the cluster's CA,
 * clients (the library's Node transport) verify too, and nothing talks in clear to a TLS port.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeMessage, encodeMessage } from '../../common/codec.js';
import { replicaId } from '../../common/ids.js';
import type { HelloChallengeMsg, Message } from '../../common/messages.js';
import { answerClientChallenge } from '../../ordering/clientKeys.js';
import { wsTransport } from '../../client/wsTransport.js';
import { replicaUrl } from '../../client/transport.js';
import { loadedUws } from './uws.js';
import { commandMsg, startTestCluster, testCertificates, testClientSigner, waitUntil, type TestCertificates, type TestCluster } from './testing.js';
import { Transport } from './transport.js';

let certs: TestCertificates;
let otherCa: TestCertificates;
let cluster: TestCluster | null = null;
beforeAll(async () => {
  certs = await testCertificates(4);
  otherCa = await testCertificates(4);
});
afterAll(() => {
  certs.remove();
  otherCa.remove();
});
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

/** Opens a client socket with the library's Node transport; resolves how it ended up. */
function clientConnect(url: string, ca: string | null): Promise<{ opened: boolean; reason: string; socket: ReturnType<typeof wsTransport>; frames: Message[] }> {
  return new Promise((resolve) => {
    const frames: Message[] = [];
    const socket = wsTransport(
      url,
      {
        onOpen: () => resolve({ opened: true, reason: '', socket, frames }),
        onMessage: (frame) => {
          const decoded = decodeMessage(frame, { replicaCount: 4 });
          if (decoded.ok) frames.push(decoded.value);
        },
        onClose: (reason) => resolve({ opened: false, reason, socket, frames }),
      },
      { ca },
    );
  });
}

const backends = loadedUws().ok ? (['uws', 'ws'] as const) : (['ws'] as const);

describe.each(backends)('TLS on the %s backend', (serverBackend) => {
  it('peers link up over wss:// and deliver; the transport says TLS', async () => {
    const c = (cluster = await startTestCluster({ n: 4, tls: certs, serverBackend }));
    await waitUntil(() => c.transports.every((t) => t!.peersUp().length === 3), 'mesh over TLS');
    c.transports[2]!.sendToPeer(replicaId(0), commandMsg(7));
    await waitUntil(() => c.inboxes[0]!.fromPeer(2).length === 1, 'delivery over TLS');
    expect(c.transports[0]!.serverInfo()).toMatchObject({ backend: serverBackend, tls: true });
  });

  it('a client verifying against the cluster CA talks to the client port; one without it, or in clear, cannot', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], tls: certs, serverBackend }));
    const port = c.cluster.config.replicas[0]!.clientPort;
    const good = await clientConnect(replicaUrl('127.0.0.1', port, true), certs.caPem);
    expect(good.opened).toBe(true);
    // The client port's handshake first: answer the challenge with a client key.
    await waitUntil(() => good.frames.some((m) => m.type === 'helloChallenge'), 'the challenge over TLS');
    const challenge = good.frames.find((m) => m.type === 'helloChallenge') as HelloChallengeMsg;
    good.socket.send(encodeMessage(answerClientChallenge(c.cluster.config.clusterId, testClientSigner(), challenge.replica, challenge.nonce)));
    good.socket.send(encodeMessage(commandMsg(3)));
    await waitUntil(() => c.inboxes[0]!.client.length === 1, 'the command over TLS');
    good.socket.close();

    const untrusted = await clientConnect(replicaUrl('127.0.0.1', port, true), otherCa.caPem);
    expect(untrusted).toMatchObject({ opened: false, reason: expect.stringMatching(/certificate/) });
    const systemRoots = await clientConnect(replicaUrl('127.0.0.1', port, true), null);
    expect(systemRoots).toMatchObject({ opened: false, reason: expect.stringMatching(/certificate/) });
    const clear = await clientConnect(replicaUrl('127.0.0.1', port, false), null);
    expect(clear.opened).toBe(false);
  });

  it('a replica whose certificate another CA signed never links up with the others', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0, 1, 2], tls: certs, serverBackend }));
    const impostor = new Transport({ ...c.options(3), tls: otherCa.files[3]! }, c.inboxes[3]!);
    c.transports[3] = impostor;
    await impostor.start();
    await waitUntil(() => c.transports.slice(0, 3).every((t) => t!.peersUp().length === 2), 'the honest mesh');
    // The others dial it and refuse its certificate, on every attempt.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const t of c.transports.slice(0, 3)) expect(t!.peersUp()).not.toContain(3);
  });
});

describe('a plain-text dialler on a TLS peer port', () => {
  it('gets no WebSocket', async () => {
    const c = (cluster = await startTestCluster({ n: 4, start: [0], tls: certs }));
    const ws = new WebSocket(`ws://127.0.0.1:${c.cluster.config.replicas[0]!.peerPort}/`);
    const outcome = await new Promise<string>((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('error', () => resolve('error'));
    });
    ws.terminate();
    expect(outcome).toBe('error');
  });
});
