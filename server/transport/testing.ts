/**
 * Helpers for the transport's tests and benchmark: a cluster config on free loopback ports,
 * transports started on it (retrying on port collisions, over TLS if asked), and a recording handler.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { WebSocket } from 'ws';
import { decodeMessage, encodeMessage } from '../../common/codec.js';
import { generateCluster, type ClusterConfig, type GeneratedCluster } from '../../common/config.js';
import { utf8 } from '../../common/bytes.js';
import { nodeCrypto } from '../../common/crypto/node.js';
import type { Signer } from '../../common/crypto/types.js';
import { replicaId, type ReplicaId } from '../../common/ids.js';
import { MAX_REPLICAS } from '../../common/limits.js';
import type { ErrorMsg, HelloChallengeMsg, Message } from '../../common/messages.js';
import { helloMessage } from '../../common/signing.js';
import { answerClientChallenge, type ClientIdentity } from '../../ordering/clientKeys.js';
import { freePortRange } from '../freePorts.js';
import { makeClusterCertificates, type ClusterCertificates } from '../tlsCerts.js';
import type { ServerBackendChoice } from './backendChoice.js';
import type { TransportLimits } from './limits.js';
import { ListenError, type ServerTls } from './serverBackend.js';
import { Transport, type ClientConnId, type TransportHandlers, type TransportOptions } from './transport.js';

/** randomBasePort draws from here: above the defaults of real clusters (10000+i, 20000+i,
 *  30000+i), apart from freePortRange's range (server/freePorts.ts), and below Linux's ephemeral
 *  range (32768–60999), where any outgoing connection of any test may hold a port. */
const PORT_RANGE_START = 30_000 + MAX_REPLICAS + 100;
const PORT_RANGE_END = 32_700;
const START_ATTEMPTS = 20;

/** Silent unless TRANSPORT_TEST_LOG names a level (e.g. TRANSPORT_TEST_LOG=debug). */
export function testLogger(): Logger {
  return pino({ level: process.env['TRANSPORT_TEST_LOG'] ?? 'silent' });
}

/** n replicas on 127.0.0.1: replica i has peer port base + i, client port base + n + i. */
export function loopbackCluster(n: number, basePort: number, tlsCa?: string): GeneratedCluster {
  return generateCluster(
    {
      n,
      basePeerPort: basePort,
      baseClientPort: basePort + n,
      baseHttpPort: basePort + 2 * n,
      keySeed: 'pompe/transport-tests',
      ...(tlsCa === undefined ? {} : { tls: { ca: tlsCa } }),
    },
    nodeCrypto,
  );
}

/** A CA and n certificates for 127.0.0.1, with the files uWS reads; remove() deletes them. */
export interface TestCertificates extends ClusterCertificates {
  readonly files: readonly ServerTls[];
  remove(): void;
}

export async function testCertificates(n: number): Promise<TestCertificates> {
  const certs = await makeClusterCertificates(Array.from({ length: n }, () => '127.0.0.1'), 'transport-tests', Date.now());
  const dir = mkdtempSync(join(tmpdir(), 'pompe-tls-test-'));
  const files = certs.replicas.map((c, i) => {
    const tls = { certFile: join(dir, `replica-${i}.tls.crt`), keyFile: join(dir, `replica-${i}.tls.key`), certPem: c.certPem, keyPem: c.keyPem };
    writeFileSync(tls.certFile, c.certPem);
    writeFileSync(tls.keyFile, c.keyPem, { mode: 0o600 });
    return tls;
  });
  return { ...certs, files, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function randomBasePort(n: number): number {
  const span = PORT_RANGE_END - PORT_RANGE_START - 3 * n;
  return PORT_RANGE_START + Math.floor(Math.random() * span);
}

/** Records everything a transport delivers. */
export class Inbox implements TransportHandlers {
  readonly peer: { from: ReplicaId; msg: Message }[] = [];
  readonly authenticated: { conn: ClientConnId; identity: ClientIdentity; address: string }[] = [];
  readonly client: { conn: ClientConnId; msg: Message }[] = [];
  readonly closedClients: ClientConnId[] = [];
  readonly status: { peer: ReplicaId; up: boolean }[] = [];
  onPeer: ((from: ReplicaId, msg: Message) => void) | null = null;

  onPeerMessage(from: ReplicaId, msg: Message): void {
    this.peer.push({ from, msg });
    this.onPeer?.(from, msg);
  }
  onClientAuthenticated(conn: ClientConnId, identity: ClientIdentity, address: string): void {
    this.authenticated.push({ conn, identity, address });
  }
  onClientMessage(conn: ClientConnId, msg: Message): void {
    this.client.push({ conn, msg });
  }
  onClientClosed(conn: ClientConnId): void {
    this.closedClients.push(conn);
  }
  onPeerStatus(peer: ReplicaId, up: boolean): void {
    this.status.push({ peer, up });
  }
  fromPeer(from: number): Message[] {
    return this.peer.filter((p) => p.from === from).map((p) => p.msg);
  }
}

export interface TestClusterOptions {
  readonly n: number;
  /** Which replicas get a Transport (default: all). */
  readonly start?: readonly number[];
  readonly limits?: Partial<TransportLimits>;
  readonly logger?: Logger;
  readonly serverBackend?: ServerBackendChoice;
  /** Serve and dial over TLS with these certificates (testCertificates). */
  readonly tls?: TestCertificates;
}

export interface TestCluster {
  readonly cluster: GeneratedCluster;
  readonly basePort: number;
  readonly transports: (Transport | null)[];
  readonly inboxes: Inbox[];
  /** Options for a (new) Transport of replica i on this cluster. */
  options(i: number): TransportOptions;
  close(): Promise<void>;
}

/** Starts transports for a fresh cluster, moving to other ports if any port is taken. */
export async function startTestCluster(opts: TestClusterOptions): Promise<TestCluster> {
  const { n } = opts;
  const which = opts.start ?? Array.from({ length: n }, (_, i) => i);
  const logger = opts.logger ?? testLogger();
  for (let attempt = 1; ; attempt++) {
    // Checked free, so that a replica the test starts later (not in `start`) finds its ports free
    // too: only the cluster's own transports retry on a taken port.
    const basePort = await freePortRange(3 * n);
    const cluster = loopbackCluster(n, basePort, opts.tls?.caPem);
    const options = (i: number): TransportOptions => ({
      config: cluster.config,
      self: replicaId(i),
      signer: nodeCrypto.signer(cluster.keyPairs[i]!.secretKey),
      crypto: nodeCrypto,
      logger: logger.child({ replica: i }),
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
      ...(opts.serverBackend === undefined ? {} : { serverBackend: opts.serverBackend }),
      ...(opts.tls === undefined ? {} : { tls: opts.tls.files[i]! }),
    });
    const inboxes = Array.from({ length: n }, () => new Inbox());
    const transports: (Transport | null)[] = Array.from({ length: n }, () => null);
    const close = async (): Promise<void> => {
      await Promise.all(transports.map((t) => t?.close()));
    };
    try {
      for (const i of which) {
        const t = new Transport(options(i), inboxes[i]!);
        transports[i] = t;
        await t.start();
      }
      return { cluster, basePort, transports, inboxes, options, close };
    } catch (e) {
      await close();
      if (!(e instanceof ListenError) || attempt >= START_ATTEMPTS) throw e;
    }
  }
}

/** Polls `condition` every 5 ms; rejects with `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A small client-type message with a sequence number (delivered on peer and client links; the
 *  transport does not look at its signature). */
export function commandMsg(seq: number, payloadBytes = 16): Message {
  const payload = new Uint8Array(payloadBytes);
  payload.fill(seq & 0xff);
  return { type: 'command', clientKey: new Uint8Array(32).fill(1), seq, expiresAtUs: 1, payload, sig: new Uint8Array(64) };
}

/** A test client's key: client `n` of the transport tests. */
export function testClientSigner(n = 0): Signer {
  return nodeCrypto.signer(nodeCrypto.sha256(utf8(`pompe/transport-test-client/${n}`)));
}

/** A bare `ws` client for poking at a listener: records every frame it gets back, decoded. */
export class RawClient {
  readonly received: Message[] = [];
  /** Frames that did not decode (they should never occur: the listener sends valid frames). */
  readonly undecodable: Uint8Array[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private readonly closed: Promise<void>;

  private constructor(
    readonly ws: WebSocket,
    replicaCount: number,
  ) {
    ws.on('message', (data: Buffer) => {
      const r = decodeMessage(new Uint8Array(data), { replicaCount });
      if (r.ok) this.received.push(r.value);
      else this.undecodable.push(new Uint8Array(data));
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve();
      }),
    );
  }

  /** Answers the replica's challenge as `signer`'s key (a client port's handshake); resolves once sent. */
  async authenticate(config: ClusterConfig, signer: Signer = testClientSigner()): Promise<void> {
    const [challenge] = await this.waitForMessage('helloChallenge');
    this.send(answerClientChallenge(config.clusterId, signer, challenge!.replica, challenge!.nonce));
  }

  /** Resolves once connected; rejects if the upgrade is refused (e.g. HTTP 429). */
  static connect(port: number, replicaCount: number, host = '127.0.0.1'): Promise<RawClient> {
    const ws = new WebSocket(`ws://${host}:${port}/`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    const client = new RawClient(ws, replicaCount);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(msg: Message): void {
    this.ws.send(encodeMessage(msg), { binary: true });
  }

  sendRaw(data: Uint8Array | string, binary = true): void {
    this.ws.send(data, { binary });
  }

  errors(): ErrorMsg[] {
    return this.received.filter((m): m is ErrorMsg => m.type === 'error');
  }

  async waitForMessage<T extends Message['type']>(type: T, count = 1, timeoutMs = 10_000): Promise<Extract<Message, { type: T }>[]> {
    const of = (): Extract<Message, { type: T }>[] => this.received.filter((m): m is Extract<Message, { type: T }> => m.type === type);
    await waitUntil(() => of().length >= count, `${count} ${type} message(s)`, timeoutMs);
    return of();
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    return Promise.race([this.closed, new Promise<void>((_, reject) => setTimeout(() => reject(new Error('connection not closed in time')), timeoutMs).unref())]);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Answers a peer-port challenge as replica `as`, signing with `secretKey` (the right one or not). */
export function helloFor(challenge: HelloChallengeMsg, config: ClusterConfig, as: number, secretKey: Uint8Array, nonce = challenge.nonce): Message {
  const sig = nodeCrypto.signer(secretKey).sign(helloMessage(config.clusterId, replicaId(as), challenge.replica, nonce));
  return { type: 'hello', replica: replicaId(as), nonce, sig };
}
