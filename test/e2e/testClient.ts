/**
 * A minimal direct-mode client for the end-to-end tests: the ordering/ Collector driven over `ws`
 * links to every replica's client port, answering each replica's challenge with its key. It
 * reconnects to replicas that go away (the test kills one), and counts what the replicas answered
 * with `error` notices.
 */
import { WebSocket } from 'ws';
import { BatchMode, encodeBatch } from '../../common/batch.js';
import { batchSigner } from '../../common/batchAuth.js';
import { toHex, utf8 } from '../../common/bytes.js';
import { decodeMessage, encodeMessage } from '../../common/codec.js';
import type { ClusterConfig } from '../../common/config.js';
import { nodeCrypto } from '../../common/crypto/node.js';
import type { Signer } from '../../common/crypto/types.js';
import type { ReplicaId } from '../../common/ids.js';
import type { Message, ReplicaToCollectorMsg } from '../../common/messages.js';
import { answerClientChallenge } from '../../ordering/clientKeys.js';
import { Collector, type CollectorEvent, type CollectorOutput } from '../../ordering/collector.js';
import { KvOp, encodeKvCommand } from '../../ordering/kvStore.js';

const REPLY_TYPES = new Set(['tsReply', 'ack', 'refused', 'executed']);
/** The collector's first re-send delay, doubled up to the max (replicas on loopback answer in ms). */
const RETRY_US = 200_000;
const MAX_RETRY_US = 1_000_000;
const TICK_MS = 10;
const RECONNECT_MS = 200;
/** How long a test batch may live: longer than any test phase. */
const BATCH_LIFETIME_US = 60_000_000;

const nowUs = (): number => Date.now() * 1000;

export interface Completed {
  readonly orderedMs: number;
  readonly executedMs: number;
  readonly position: number;
}

interface Waiter {
  readonly submittedMs: number;
  orderedMs: number;
  resolve(c: Completed): void;
  reject(e: Error): void;
}

export class TestClient {
  private readonly collector: Collector;
  private readonly links: (WebSocket | null)[];
  private readonly waiters = new Map<string, Waiter>();
  private readonly ticker: NodeJS.Timeout;
  private closed = false;
  private seq = 0;
  private readonly sign: (body: Uint8Array) => Uint8Array;
  readonly errorNotices: { replica: number; code: string }[] = [];

  constructor(
    private readonly config: ClusterConfig,
    /** The client's key. */
    readonly signer: Signer = nodeCrypto.signer(nodeCrypto.generateKeyPair().secretKey),
  ) {
    this.sign = batchSigner(config.clusterId, nodeCrypto, signer);
    this.collector = new Collector({ config, crypto: nodeCrypto, verifySignatures: true, retryUs: RETRY_US, maxRetryUs: MAX_RETRY_US });
    this.links = config.replicas.map(() => null);
    this.ticker = setInterval(() => this.apply(this.collector.step({ kind: 'tick' }, nowUs())), TICK_MS);
  }

  /** Connects to every replica; resolves once all links are open. */
  async connect(): Promise<void> {
    await Promise.all(this.config.replicas.map((_, i) => this.open(i)));
  }

  private open(i: number): Promise<void> {
    const r = this.config.replicas[i]!;
    const ws = new WebSocket(`ws://${r.host}:${r.clientPort}/`);
    ws.binaryType = 'nodebuffer';
    return new Promise((resolve) => {
      ws.on('message', (data: Buffer) => {
        const frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        if (this.links[i] === ws) return this.onFrame(i, frame);
        // The replica's challenge: answer it with this client's key; the link is up from then on.
        const decoded = decodeMessage(frame, { replicaCount: this.config.n });
        if (!decoded.ok || decoded.value.type !== 'helloChallenge') return;
        ws.send(encodeMessage(answerClientChallenge(this.config.clusterId, this.signer, i as ReplicaId, decoded.value.nonce)));
        this.links[i] = ws;
        resolve();
      });
      const gone = (): void => {
        if (this.links[i] === ws) this.links[i] = null;
        resolve(); // a replica that is down does not stop the client
        if (!this.closed) setTimeout(() => void this.open(i), RECONNECT_MS).unref();
      };
      ws.on('close', gone);
      ws.on('error', () => ws.terminate());
    });
  }

  private onFrame(from: number, frame: Uint8Array): void {
    const decoded = decodeMessage(frame, { replicaCount: this.config.n });
    if (!decoded.ok) throw new Error(`replica ${from} sent an undecodable frame: ${decoded.error.message}`);
    const msg: Message = decoded.value;
    if (msg.type === 'error') {
      this.errorNotices.push({ replica: from, code: msg.code });
      return;
    }
    if (!REPLY_TYPES.has(msg.type)) return;
    this.apply(this.collector.step({ kind: 'reply', from: from as ReplicaId, msg: msg as ReplicaToCollectorMsg }, nowUs()));
  }

  private apply(out: CollectorOutput): void {
    for (const { to, msg } of out.send) {
      const frame = encodeMessage(msg);
      if (to === 'all') for (const ws of this.links) ws?.send(frame);
      else this.links[to]?.send(frame);
    }
    for (const e of out.events) this.onEvent(e);
  }

  private onEvent(e: CollectorEvent): void {
    const key = Buffer.from(e.digest).toString('hex');
    const w = this.waiters.get(key);
    if (w === undefined) return;
    if (e.kind === 'ordered') w.orderedMs = performance.now() - w.submittedMs;
    else if (e.kind === 'executed') {
      this.waiters.delete(key);
      w.resolve({ orderedMs: w.orderedMs, executedMs: performance.now() - w.submittedMs, position: e.position });
    } else {
      this.waiters.delete(key);
      w.reject(new Error(`batch failed: ${e.reason}`));
    }
  }

  /** Submits one batch of one 32-byte put; resolves when f+1 replicas report the same execution. */
  submit(): Promise<Completed> {
    const seq = ++this.seq;
    const key = utf8(`k${String(seq).padStart(7, '0')}`);
    const value = utf8(`v-${toHex(this.signer.publicKey).slice(0, 8)}-${seq}`.padEnd(21, '.').slice(0, 21));
    const expiresAtUs = nowUs() + BATCH_LIFETIME_US;
    const batch = encodeBatch(
      { mode: BatchMode.Direct, collectorKey: this.signer.publicKey, nonce: seq, expiresAtUs, commands: [{ seq, payload: encodeKvCommand(KvOp.Put, key, value) }] },
      this.sign,
    );
    const digest = nodeCrypto.sha256(batch);
    return new Promise<Completed>((resolve, reject) => {
      this.waiters.set(Buffer.from(digest).toString('hex'), { submittedMs: performance.now(), orderedMs: -1, resolve, reject });
      this.apply(this.collector.step({ kind: 'submit', batch, digest, expiresAtUs }, nowUs()));
    });
  }

  /** Submits `count` batches keeping `inFlight` outstanding; `onDone` after each execution. */
  async load(count: number, inFlight: number, onDone?: (done: number) => void): Promise<Completed[]> {
    const results: Completed[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        next++;
        results.push(await this.submit());
        onDone?.(results.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
    return results;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
    for (const ws of this.links) ws?.terminate();
    for (const w of this.waiters.values()) w.reject(new Error('client closed'));
    this.waiters.clear();
  }
}
