/**
 * Simulated clients, each with its own key (seeded): the identity it registers at every replica
 * (the transport's handshake, done directly here: `register`), signs its batches or commands with,
 * and is recorded under. Direct mode: the client forms batches itself and runs the real Collector.
 * Gateway mode: a thin client sends single signed commands to one replica and fails over to the
 * next replica when a command takes too long (its (key, seq) keeps it exactly-once).
 * Both keep an outstanding window and stop submitting at `stopAtUs`; they record what the checkers
 * need, in the world's true time. A Byzantine collector (sim/byzantineClient.ts) is a direct-mode
 * client with a tap between its collector and the network; a client that submits its commands twice
 * is one with `duplicates` set.
 */
import { BatchMode, encodeBatch, type DirectCommand } from '../common/batch.js';
import { batchSigner, signCommand } from '../common/batchAuth.js';
import { toHex, utf8 } from '../common/bytes.js';
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { CollectorToReplicaMsg, Message, ReplicaToCollectorMsg } from '../common/messages.js';
import { Collector, type CollectorEvent, type CollectorOutput } from '../ordering/collector.js';
import { encodeKvCommand, KvOp } from '../ordering/kvStore.js';
import type { Rng } from './rng.js';
import type { SimNode, World } from './world.js';

export type ClientMode = 'direct' | 'gateway';

/** A command as its client wrote it: its key (hex), number and payload hash (hex). */
export interface CommandRecord {
  readonly clientKey: string;
  readonly seq: number;
  readonly payloadHash: string;
}

/** A batch (direct mode) or a single command (gateway mode) as the checkers see it. */
export interface ClientRecord {
  readonly client: number;
  readonly digest: string | null;
  readonly commands: readonly CommandRecord[];
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
  /** Direct mode: sits between the collector and the network (a Byzantine collector). */
  readonly tap?: CollectorTap;
  /** Submits some commands twice: direct mode retries them in a new batch (new nonce, new digest),
   *  gateway mode sends them through two gateways at once. Each must still execute once. */
  readonly duplicates?: boolean;
  /** Proves this client's key at every replica (the transport's handshake, done directly). */
  readonly register: (node: number, publicKey: Uint8Array) => void;
}

/** A simulated client's key: derived from its node id, so a seed always gives the same clients. */
export function simClientSigner(crypto: CryptoBackend, node: number): Signer {
  return crypto.signer(crypto.sha256(utf8(`pompe/sim-client/${node}`)));
}

export type ReplyIn = { readonly from: ReplicaId; readonly msg: ReplicaToCollectorMsg };
export type SendOut = { readonly to: ReplicaId | 'all'; readonly msg: CollectorToReplicaMsg };

/** What a Byzantine collector changes about an honest one: which replies reach the collector (and
 *  when), which of its messages leave, and what it learns from the collector's events. */
export interface CollectorTap {
  /** A reply arrived: the replies to hand to the collector now (none: held or dropped). */
  reply(reply: ReplyIn, nowUs: number): ReplyIn[];
  /** The collector sends: what actually goes out. */
  send(out: SendOut, nowUs: number): SendOut[];
  /** Held replies now due. */
  tick(nowUs: number): ReplyIn[];
  nextWakeUs(): number | null;
  event?(event: CollectorEvent): void;
}

/** Duplicates (direct mode): a share of batches is retried in a new batch after this long. */
const DUPLICATE_SHARE = 0.3;
const DUPLICATE_DELAY_US: readonly [number, number] = [20_000, 500_000];

const COLLECTOR_RETRY_US = 200_000;
const COLLECTOR_MAX_RETRY_US = 2_000_000;

export class ClientNode implements SimNode {
  readonly id: number;
  readonly signer: Signer;
  private readonly sign: (body: Uint8Array) => Uint8Array;
  private readonly keyHex: string;
  private readonly collector: Collector | null;
  private nextSeq = 1;
  private nonce = 0;
  private inFlight = 0;
  private nextSubmitUs: number;
  private readonly byDigest = new Map<string, ClientRecord>();
  /** Gateway mode: in-flight commands by seq, with their gateway and failover deadline. */
  private readonly thin = new Map<number, { record: ClientRecord; gateway: ReplicaId; deadlineUs: number; frame: Uint8Array }>();
  /** Direct mode with `duplicates`: commands to submit again in a new batch, and when. */
  private readonly retries: { atUs: number; commands: readonly DirectCommand[] }[] = [];
  duplicatesSent = 0;

  constructor(private readonly opts: ClientNodeOptions) {
    this.id = opts.id;
    this.signer = simClientSigner(opts.crypto, opts.id);
    this.sign = batchSigner(opts.config.clusterId, opts.crypto, this.signer);
    this.keyHex = toHex(this.signer.publicKey);
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
    this.opts.register(this.id, this.signer.publicKey);
    this.schedule();
  }

  onDeliver(from: number, bytes: Uint8Array): void {
    if (from >= this.opts.config.n) return;
    const decoded = decodeMessage(bytes, { replicaCount: this.opts.config.n });
    if (!decoded.ok) return;
    const msg = decoded.value;
    if (this.collector !== null) {
      if (msg.type === 'tsReply' || msg.type === 'ack' || msg.type === 'refused' || msg.type === 'executed') {
        const reply: ReplyIn = { from: from as ReplicaId, msg };
        this.feed(this.opts.tap === undefined ? [reply] : this.opts.tap.reply(reply, this.opts.world.nowUs));
      }
    } else {
      this.onGatewayReply(msg);
    }
    this.schedule();
  }

  onWake(): void {
    const now = this.opts.world.nowUs;
    if (this.collector !== null) {
      if (this.opts.tap !== undefined) this.feed(this.opts.tap.tick(now));
      this.applyCollector(this.collector.step({ kind: 'tick' }, now));
      this.retryDue(now);
    } else {
      this.failover(now);
    }
    while (now >= this.nextSubmitUs && now < this.opts.stopAtUs && this.inFlight < this.opts.window) {
      this.submitOne(now);
      this.nextSubmitUs = now + this.opts.intervalUs;
    }
    this.schedule();
  }

  private feed(replies: readonly ReplyIn[]): void {
    for (const { from, msg } of replies) this.applyCollector(this.collector!.step({ kind: 'reply', from, msg }, this.opts.world.nowUs));
  }

  private submitOne(now: number): void {
    if (this.collector !== null) {
      const commands: DirectCommand[] = [];
      for (let i = 0; i < this.opts.commandsPerBatch; i++) commands.push(this.command());
      this.submitBatch(commands, now);
      if (this.opts.duplicates === true && this.opts.rng.chance(DUPLICATE_SHARE)) {
        this.retries.push({ atUs: now + this.opts.rng.int(...DUPLICATE_DELAY_US), commands });
      }
    } else {
      const command = this.command();
      const record = this.newRecord(null, [command], now);
      const gateway = (this.id % this.opts.config.n) as ReplicaId;
      // Signed once, with the client's own deadline: every gateway it goes through carries the same.
      const frame = encodeMessage({
        type: 'command',
        ...signCommand(this.opts.config.clusterId, this.opts.crypto, this.signer, { seq: command.seq, expiresAtUs: now + this.opts.batchLifetimeUs, payload: command.payload }),
      });
      this.thin.set(command.seq, { record, gateway, deadlineUs: now + this.opts.failoverUs, frame });
      this.inFlight++;
      this.opts.world.send(this.id, gateway, frame);
      if (this.opts.duplicates === true && this.opts.rng.chance(DUPLICATE_SHARE)) {
        // The same command through a second gateway at once: two batches will hold it.
        this.duplicatesSent++;
        this.opts.world.send(this.id, (gateway + 1) % this.opts.config.n, frame);
      }
    }
  }

  private submitBatch(commands: readonly DirectCommand[], now: number): void {
    const expiresAtUs = now + this.opts.batchLifetimeUs;
    const bytes = encodeBatch({ mode: BatchMode.Direct, collectorKey: this.signer.publicKey, nonce: this.nonce++, expiresAtUs, commands }, this.sign);
    const digest = this.opts.crypto.sha256(bytes);
    const record = this.newRecord(toHex(digest), commands, now);
    this.byDigest.set(toHex(digest), record);
    this.opts.onBatch?.(digest, record);
    this.inFlight++;
    this.applyCollector(this.collector!.step({ kind: 'submit', batch: bytes, digest, expiresAtUs }, now));
  }

  /** Retries due now: the same commands (same tags) in a new batch, as a client that gave up on
   *  the first one would send them. The window does not hold them back. */
  private retryDue(now: number): void {
    for (let i = 0; i < this.retries.length; ) {
      const r = this.retries[i]!;
      if (r.atUs > now || now >= this.opts.stopAtUs) {
        i++;
        continue;
      }
      this.retries.splice(i, 1);
      this.duplicatesSent++;
      this.submitBatch(r.commands, now);
    }
  }

  private command(): DirectCommand {
    const seq = this.nextSeq++;
    const key = new Uint8Array(8);
    new DataView(key.buffer).setUint32(4, this.opts.rng.int(0, 999));
    return { seq, payload: encodeKvCommand(KvOp.Put, key, this.opts.rng.bytes(21)) };
  }

  private newRecord(digest: string | null, commands: readonly DirectCommand[], now: number): ClientRecord {
    const { sha256 } = this.opts.crypto;
    const record: ClientRecord = {
      client: this.id,
      digest,
      commands: commands.map((c) => ({ clientKey: this.keyHex, seq: c.seq, payloadHash: toHex(sha256(c.payload)) })),
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
    const sends = this.opts.tap === undefined ? out.send : out.send.flatMap((s) => this.opts.tap!.send(s, now));
    for (const { to, msg } of sends) {
      const bytes = encodeMessage(msg);
      if (to === 'all') for (let r = 0; r < this.opts.config.n; r++) this.opts.world.send(this.id, r, bytes);
      else this.opts.world.send(this.id, to, bytes);
    }
    for (const event of out.events) {
      this.opts.tap?.event?.(event);
      const record = this.byDigest.get(toHex(event.digest));
      if (record === undefined) continue;
      if (event.kind === 'ordered') {
        record.orderedUs = now;
        record.ts = event.ts;
        record.attempts = event.attempts;
      } else if (event.kind === 'executed') {
        record.executedUs = now;
        record.position = event.position;
        record.ts = event.ts;
        this.byDigest.delete(record.digest!);
        this.inFlight--;
      } else {
        record.failed = event.reason;
        this.byDigest.delete(record.digest!);
        this.inFlight--;
      }
    }
  }

  private onGatewayReply(msg: Message): void {
    if (msg.type !== 'commandOrdered' && msg.type !== 'commandExecuted') return;
    const entry = this.thin.get(msg.seq);
    if (entry === undefined) return;
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
    for (const entry of this.thin.values()) {
      if (now < entry.deadlineUs) continue;
      entry.gateway = ((entry.gateway + 1) % this.opts.config.n) as ReplicaId;
      entry.deadlineUs = now + this.opts.failoverUs;
      entry.record.attempts++;
      this.opts.world.send(this.id, entry.gateway, entry.frame);
    }
  }

  private schedule(): void {
    const now = this.opts.world.nowUs;
    let next: number | null = null;
    const consider = (t: number | null): void => {
      if (t !== null && (next === null || t < next)) next = t;
    };
    consider(this.collector?.nextWakeUs() ?? null);
    consider(this.opts.tap?.nextWakeUs() ?? null);
    for (const r of this.retries) if (r.atUs < this.opts.stopAtUs) consider(Math.max(now, r.atUs));
    for (const entry of this.thin.values()) consider(entry.deadlineUs);
    if (now < this.opts.stopAtUs && this.nextSubmitUs < this.opts.stopAtUs && this.inFlight < this.opts.window) {
      consider(Math.max(now, this.nextSubmitUs));
    }
    this.opts.world.setWake(this.id, next);
  }
}
