/**
 * For tests only: n real ordering ReplicaCores (ordering + HotStuff) in this process, each behind a
 * `ws` server on 127.0.0.1, enough to test the client library for real over sockets without the
 * replica process (server/). A mini driver per replica, as server/ drives one: decode each frame
 * with the codec, step the core on the wall clock, persist to a MemoryReplicaStorage synchronously,
 * then send, then tick at nextWakeUs. Replica-to-replica messages go through the codec too but not
 * through sockets (delivered on the next event-loop turn). A replica can be stopped (its port
 * closes, its peers' messages to it are lost) and started again from its storage.
 */
import { randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeMessage, encodeMessage, HELLO_NONCE_BYTES } from '../common/codec.js';
import { generateCluster, type ClusterConfig, type ProtocolConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { KeyPair } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { checkClientHello, ClientKeyCache } from '../ordering/clientKeys.js';
import { KvStore } from '../ordering/kvStore.js';
import { ReplicaCore } from '../ordering/replica.js';
import { MemoryReplicaStorage } from '../ordering/storage.js';
import type { ExecutionRecord, ReplicaInput, ReplicaOutput } from '../ordering/types.js';
import { wallClockUs } from './clock.js';

/**
 * All n replicas, their consensus and the client share one thread here, so a message can wait
 * several ms behind other replicas' signing and voting; with the default Δ of 10 ms that makes
 * batches `late` (the sealed frontier passes them) and tests flaky. 50 ms is ample on a loaded
 * machine and costs only latency, which these tests do not measure.
 */
export const HARNESS_DELTA_US = 50_000;
/** Blocks at most every 10 ms (default 1 ms): at 1 ms, four replicas validating and voting on one
 *  thread use most of it, and the ordering phase starves. */
export const HARNESS_MIN_BLOCK_INTERVAL_US = 10_000;

export interface HarnessOptions {
  readonly n?: number;
  /** Protocol overrides (default: DEFAULT_PROTOCOL with the two HARNESS_ values above). */
  readonly protocol?: Partial<ProtocolConfig>;
  /** Gateway batching of every replica (thin clients' commands). */
  readonly gateway?: { readonly maxBatchCommands: number; readonly maxDelayUs: number };
  /** Replicas not started at first (down from the beginning). */
  readonly down?: readonly number[];
}

class MiniReplica {
  readonly storage: MemoryReplicaStorage;
  readonly executed: ExecutionRecord[] = [];
  core: ReplicaCore | null = null;
  /** While true, nothing this replica sends to clients leaves (it still takes part in consensus):
   *  a gateway that swallows its thin clients' replies. */
  mutedToClients = false;
  private server: WebSocketServer | null = null;
  private readonly conns = new Map<number, WebSocket>();
  private readonly keys = new ClientKeyCache(nodeCrypto);
  private nextConn = 1;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAtUs = Number.POSITIVE_INFINITY;
  port = 0;

  constructor(
    readonly id: ReplicaId,
    private readonly cluster: ReplicaHarness,
    private readonly keyPair: KeyPair,
    n: number,
  ) {
    this.storage = new MemoryReplicaStorage(nodeCrypto, n);
  }

  get up(): boolean {
    return this.core !== null;
  }

  /** Listens (on a fresh port the first time, the same port after) and starts the core. */
  async start(): Promise<void> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: this.port, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    server.on('connection', (ws) => this.accept(ws));
    if (this.cluster.config !== null) this.startCore();
  }

  startCore(): void {
    const config = this.cluster.config!;
    this.core = new ReplicaCore({
      config,
      self: this.id,
      crypto: nodeCrypto,
      signer: nodeCrypto.signer(this.keyPair.secretKey),
      stateMachine: new KvStore(),
      recovered: this.storage.loadSync(),
      ...(this.cluster.options.gateway === undefined ? {} : { gateway: this.cluster.options.gateway }),
    });
    const chain = this.storage.committedChainSync();
    this.core.replayCommitted(chain.blocks, chain.batches);
    this.step({ kind: 'start' });
  }

  async stop(): Promise<void> {
    this.core = null;
    this.clearTimer();
    for (const ws of this.conns.values()) ws.terminate();
    this.conns.clear();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  deliverPeer(from: ReplicaId, frame: Uint8Array): void {
    if (this.core === null) return;
    const decoded = decodeMessage(frame, { replicaCount: this.cluster.config!.n });
    if (decoded.ok) this.step({ kind: 'peer', from, msg: decoded.value });
  }

  private accept(ws: WebSocket): void {
    if (this.core === null) {
      ws.terminate();
      return;
    }
    const conn = this.nextConn++;
    this.conns.set(conn, ws);
    // As the server's transport does: a challenge first; nothing reaches the core before the
    // client proves its key.
    const nonce = new Uint8Array(randomBytes(HELLO_NONCE_BYTES));
    let authenticated = false;
    ws.send(encodeMessage({ type: 'helloChallenge', replica: this.id, nonce }));
    ws.on('message', (data, isBinary) => {
      if (!isBinary || this.core === null) return;
      const buf = data as Buffer;
      const config = this.cluster.config!;
      const decoded = decodeMessage(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), { replicaCount: config.n });
      if (!decoded.ok) {
        ws.send(encodeMessage({ type: 'error', code: decoded.error.code, message: decoded.error.message.slice(0, 200) }));
        return;
      }
      const msg = decoded.value;
      if (authenticated) return this.step({ kind: 'client', conn, msg });
      const identity = msg.type === 'clientHello' ? checkClientHello(config, this.keys, this.id, nonce, msg, nodeCrypto) : `${msg.type} before the handshake`;
      if (typeof identity === 'string') {
        ws.send(encodeMessage({ type: 'error', code: 'HANDSHAKE_FAILED', message: identity }));
        ws.close();
        return;
      }
      authenticated = true;
      this.step({ kind: 'clientAuthenticated', conn, identity });
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      this.conns.delete(conn);
      if (this.core !== null) this.step({ kind: 'clientClosed', conn });
    });
  }

  private step(input: ReplicaInput): void {
    if (this.core === null) return;
    this.apply(this.core.step(input, wallClockUs()));
  }

  private apply(out: ReplicaOutput): void {
    // Persist, then send, then report: as server/ does.
    this.storage.applySync(out.persist);
    for (const { to, msg } of out.toPeers) this.cluster.sendPeer(this.id, to, encodeMessage(msg));
    for (const { conn, msg } of out.toClients) this.sendClient(conn, msg);
    for (const req of out.serveBlocks) {
      const blocks = this.storage.consensus.readBlocksSync(req.digest, req.maxBlocks);
      if (blocks.length > 0) this.cluster.sendPeer(this.id, req.to, encodeMessage({ type: 'blockResponse', blocks }));
    }
    for (const req of out.serveBatches) {
      const batches = this.storage.readBatchesSync(req.digests);
      if (batches.length > 0) this.cluster.sendPeer(this.id, req.to, encodeMessage({ type: 'batchResponse', batches }));
    }
    this.executed.push(...out.executed);
    this.schedule();
  }

  private sendClient(conn: number, msg: Message): void {
    if (this.mutedToClients) return;
    const ws = this.conns.get(conn);
    if (ws !== undefined && ws.readyState === WebSocket.OPEN) ws.send(encodeMessage(msg));
  }

  private schedule(): void {
    const next = this.core?.nextWakeUs() ?? null;
    if (next === null || next >= this.timerAtUs) return;
    this.clearTimer();
    this.timerAtUs = next;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAtUs = Number.POSITIVE_INFINITY;
        this.step({ kind: 'tick' });
        this.schedule();
      },
      Math.max(0, Math.ceil((next - wallClockUs()) / 1000)),
    );
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAtUs = Number.POSITIVE_INFINITY;
  }
}

export class ReplicaHarness {
  config: ClusterConfig | null = null;
  private readonly replicas: MiniReplica[] = [];
  private readonly pendingDeliveries = new Set<ReturnType<typeof setImmediate>>();

  private constructor(readonly options: HarnessOptions) {}

  /** Starts n replicas (4 by default) on fresh loopback ports; the config names those ports. */
  static async start(options: HarnessOptions = {}): Promise<ReplicaHarness> {
    const harness = new ReplicaHarness(options);
    const n = options.n ?? 4;
    // Genesis a second ago: replicas refuse timestamps below it.
    const genesisUs = Math.floor(wallClockUs() / 1_000_000) * 1_000_000 - 1_000_000;
    const generated = generateCluster({ n, keySeed: `client-harness-${n}`, protocol: { genesisUs, deltaUs: HARNESS_DELTA_US, minBlockIntervalUs: HARNESS_MIN_BLOCK_INTERVAL_US, ...options.protocol } }, nodeCrypto);
    for (let i = 0; i < n; i++) harness.replicas.push(new MiniReplica(i as ReplicaId, harness, generated.keyPairs[i]!, n));
    // Ports first (the config must name them), then the cores.
    for (const r of harness.replicas) await r.start();
    const config: ClusterConfig = {
      ...generated.config,
      replicas: generated.config.replicas.map((info, i) => ({ ...info, clientPort: harness.replicas[i]!.port })),
    };
    harness.config = config;
    const down = new Set(options.down ?? []);
    for (const r of harness.replicas) {
      if (down.has(r.id)) await r.stop();
      else r.startCore();
    }
    return harness;
  }

  get n(): number {
    return this.replicas.length;
  }

  replica(i: number): MiniReplica {
    return this.replicas[i]!;
  }

  /** Commands the replica's state machine executed (duplicates excluded). */
  executedCommands(i: number): number {
    return this.replicas[i]!.core?.status().executedCommands ?? 0;
  }

  async stopReplica(i: number): Promise<void> {
    await this.replicas[i]!.stop();
  }

  /** Restarts a stopped replica from its storage, on its old port. */
  async startReplica(i: number): Promise<void> {
    await this.replicas[i]!.start();
  }

  sendPeer(from: ReplicaId, to: ReplicaId | 'all', frame: Uint8Array): void {
    const targets = to === 'all' ? this.replicas.filter((r) => r.id !== from) : [this.replicas[to]!];
    for (const target of targets) {
      const handle = setImmediate(() => {
        this.pendingDeliveries.delete(handle);
        target.deliverPeer(from, frame);
      });
      this.pendingDeliveries.add(handle);
    }
  }

  async close(): Promise<void> {
    for (const r of this.replicas) await r.stop();
    for (const handle of this.pendingDeliveries) clearImmediate(handle);
    this.pendingDeliveries.clear();
  }
}
