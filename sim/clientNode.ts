/**
 * Simulated clients. Direct mode: the client forms batches itself and runs the real Collector.
 * Gateway mode: a thin client sends single commands to one replica and fails over to the next
 * replica when a command takes too long (the (client id, seq) tag keeps it exactly-once).
 * Both keep an outstanding window and stop submitting at `stopAtUs`; they record what the checkers
 * need, in the world's true time.
 */
import { encodeBatch, type Command } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import { MAX_REPLICAS } from '../common/limits.js';
import type { Message } from '../common/messages.js';
import { Collector, type CollectorOutput } from '../ordering/collector.js';
import { encodeKvCommand, KvOp } from '../ordering/kvStore.js';
import type { Rng } from './rng.js';
import type { SimNode, World } from './world.js';

export type ClientMode = 'direct' | 'gateway';

/** A batch (direct mode) or a single command (gateway mode) as the checkers see it. */
export interface ClientRecord {
  readonly client: number;
  readonly digest: string | null;
  readonly commands: readonly { readonly clientId: number; readonly seq: number }[];
  readonly submitUs: number;
  orderedUs: number | null;
  executedUs: number | null;
  ts: number | null;
  position: number | null;
  attempts: number;
  failed: string | null;
}

export interface ClientNodeOptions {
  readonly id: number;
  readonly world: World;
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly rng: Rng;
  readonly mode: ClientMode;
  readonly commandsPerBatch: number;
  readonly window: number;
  /** Least time between two submissions. */
  readonly intervalUs: number;
  readonly startAtUs: number;
  readonly stopAtUs: number;
  readonly batchLifetimeUs: number;
  /** Gateway mode: a command not executed after this long is resent through the next replica. */
  readonly failoverUs: number;
  readonly records: ClientRecord[];
  /** Called for every batch this client builds (the checkers learn its commands). */
  readonly onBatch?: (digest: Digest, record: ClientRecord) => void;
}

const COLLECTOR_RETRY_US = 200_000;
const COLLECTOR_MAX_RETRY_US = 2_000_000;

export class ClientNode implements SimNode {
  readonly id: number;
  readonly clientId: number;
  private readonly collector: Collector | null;
  private nextSeq = 1;
  private nonce = 0;
  private inFlight = 0;
  private nextSubmitUs: number;
  private readonly byDigest = new Map<string, ClientRecord>();
  /** Gateway mode: in-flight commands by seq, with their gateway and failover deadline. */
  private readonly thin = new Map<number, { record: ClientRecord; gateway: ReplicaId; deadlineUs: number; payload: Uint8Array }>();

  constructor(private readonly opts: ClientNodeOptions) {
    this.id = opts.id;
    // Collector ids below MAX_REPLICAS belong to replicas.
    this.clientId = MAX_REPLICAS + opts.id;
    this.nextSubmitUs = opts.startAtUs;
    this.collector =
      opts.mode === 'direct'
        ? new Collector({ config: opts.config, crypto: opts.crypto, verifySignatures: true, retryUs: COLLECTOR_RETRY_US, maxRetryUs: COLLECTOR_MAX_RETRY_US })
        : null;
  }

  get stats(): Collector['stats'] | null {
    return this.collector?.stats ?? null;
  }

  start(): void {
    if (this.collector !== null) {
      const hello = encodeMessage({ type: 'clientHello', collectorId: this.clientId });
      for (let r = 0; r < this.opts.config.n; r++) this.opts.world.send(this.id, r, hello);
    }
    this.schedule();
  }

  onDeliver(from: number, bytes: Uint8Array): void {
    if (from >= this.opts.config.n) return;
    const decoded = decodeMessage(bytes, { replicaCount: this.opts.config.n });
    if (!decoded.ok) return;
    const msg = decoded.value;
    if (this.collector !== null) {
      if (msg.type === 'tsReply' || msg.type === 'ack' || msg.type === 'refused' || msg.type === 'executed') {
        this.applyCollector(this.collector.step({ kind: 'reply', from: from as ReplicaId, msg }, this.opts.world.nowUs));
      }
    } else {
      this.onGatewayReply(msg);
    }
    this.schedule();
  }

  onWake(): void {
    const now = this.opts.world.nowUs;
    if (this.collector !== null) this.applyCollector(this.collector.step({ kind: 'tick' }, now));
    else this.failover(now);
    while (now >= this.nextSubmitUs && now < this.opts.stopAtUs && this.inFlight < this.opts.window) {
      this.submitOne(now);
      this.nextSubmitUs = now + this.opts.intervalUs;
    }
    this.schedule();
  }

  private submitOne(now: number): void {
    if (this.collector !== null) {
      const commands: Command[] = [];
      for (let i = 0; i < this.opts.commandsPerBatch; i++) commands.push(this.command());
      const expiresAtUs = now + this.opts.batchLifetimeUs;
      const bytes = encodeBatch({ collectorId: this.clientId, nonce: this.nonce++, expiresAtUs, commands });
      const digest = this.opts.crypto.sha256(bytes);
      const record = this.newRecord(toHex(digest), commands, now);
      this.byDigest.set(toHex(digest), record);
      this.opts.onBatch?.(digest, record);
      this.inFlight++;
      this.applyCollector(this.collector.step({ kind: 'submit', batch: bytes, digest, expiresAtUs }, now));
    } else {
      const command = this.command();
      const record = this.newRecord(null, [command], now);
      const gateway = (this.id % this.opts.config.n) as ReplicaId;
      this.thin.set(command.seq, { record, gateway, deadlineUs: now + this.opts.failoverUs, payload: command.payload });
      this.inFlight++;
      this.sendCommand(gateway, command.seq, command.payload);
    }
  }

  private command(): Command {
    const seq = this.nextSeq++;
    const key = new Uint8Array(8);
    new DataView(key.buffer).setUint32(4, this.opts.rng.int(0, 999));
    return { clientId: this.clientId, seq, payload: encodeKvCommand(KvOp.Put, key, this.opts.rng.bytes(21)) };
  }

  private newRecord(digest: string | null, commands: readonly Command[], now: number): ClientRecord {
    const record: ClientRecord = {
      client: this.id,
      digest,
      commands: commands.map((c) => ({ clientId: c.clientId, seq: c.seq })),
      submitUs: now,
      orderedUs: null,
      executedUs: null,
      ts: null,
      position: null,
      attempts: 1,
      failed: null,
    };
    this.opts.records.push(record);
    return record;
  }

  private applyCollector(out: CollectorOutput): void {
    const now = this.opts.world.nowUs;
    for (const { to, msg } of out.send) {
      const bytes = encodeMessage(msg);
      if (to === 'all') for (let r = 0; r < this.opts.config.n; r++) this.opts.world.send(this.id, r, bytes);
      else this.opts.world.send(this.id, to, bytes);
    }
    for (const event of out.events) {
      const record = this.byDigest.get(toHex(event.digest));
      if (record === undefined) continue;
      if (event.kind === 'ordered') {
        record.orderedUs = now;
        record.ts = event.ts;
        record.attempts = event.attempts;
      } else if (event.kind === 'executed') {
        record.executedUs = now;
        record.position = event.position;
        this.byDigest.delete(record.digest!);
        this.inFlight--;
      } else {
        record.failed = event.reason;
        this.byDigest.delete(record.digest!);
        this.inFlight--;
      }
    }
  }

  private sendCommand(gateway: ReplicaId, seq: number, payload: Uint8Array): void {
    this.opts.world.send(this.id, gateway, encodeMessage({ type: 'command', clientId: this.clientId, seq, payload }));
  }

  private onGatewayReply(msg: Message): void {
    if (msg.type !== 'commandOrdered' && msg.type !== 'commandExecuted') return;
    const entry = this.thin.get(msg.seq);
    if (entry === undefined || msg.clientId !== this.clientId) return;
    const now = this.opts.world.nowUs;
    if (msg.type === 'commandOrdered') {
      if (entry.record.orderedUs === null) {
        entry.record.orderedUs = now;
        entry.record.ts = msg.ts;
      }
      return;
    }
    entry.record.executedUs = now;
    entry.record.position = msg.position;
    this.thin.delete(msg.seq);
    this.inFlight--;
  }

  private failover(now: number): void {
    for (const [seq, entry] of this.thin) {
      if (now < entry.deadlineUs) continue;
      entry.gateway = ((entry.gateway + 1) % this.opts.config.n) as ReplicaId;
      entry.deadlineUs = now + this.opts.failoverUs;
      entry.record.attempts++;
      this.sendCommand(entry.gateway, seq, entry.payload);
    }
  }

  private schedule(): void {
    const now = this.opts.world.nowUs;
    let next: number | null = null;
    const consider = (t: number | null): void => {
      if (t !== null && (next === null || t < next)) next = t;
    };
    consider(this.collector?.nextWakeUs() ?? null);
    for (const entry of this.thin.values()) consider(entry.deadlineUs);
    if (now < this.opts.stopAtUs && this.nextSubmitUs < this.opts.stopAtUs && this.inFlight < this.opts.window) {
      consider(Math.max(now, this.nextSubmitUs));
    }
    this.opts.world.setWake(this.id, next);
  }
}
