/**
 * A benchmark session: one client identity (its own key pair) with one socket per replica, and
 * what runs over it. In direct mode one CollectorDriver carries the batches of every client on the
 * session (the Collector keys batches by digest, not by client), events go back to each batch's
 * owner, and a sweep abandons batches past their deadline. Clients sharing a session share its key,
 * so they number their commands from the session's one counter. In gateway mode a session serves
 * one client (its GatewayEngine). The benchmark runs one session per client (default up to
 * AUTO_PER_CLIENT_MAX clients), or one shared by all.
 */
import { batchSigner } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend, Signer } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import type { CollectorEvent, CollectorStats } from '../ordering/collector.js';
import { CollectorDriver } from './collectorDriver.js';
import type { GatewayEngine } from './gatewayMode.js';
import { ReplicaLinks } from './links.js';
import { Sweeper, sweepIntervalFor } from './sweeper.js';
import type { SocketFactory } from './transport.js';

/** What a session needs from a batch's owner. */
export interface BatchOwner {
  /** `attempts`: phase-1 attempts the batch took (1: ordered without a restart); `throttled`: f+1
   *  replicas answered `overloaded` on the way. */
  onOrdered(batch: SessionBatch, ts: number, nowUs: number, attempts: number, throttled: boolean): void;
  /** `ts`: the timestamp the batch executed at (from the agreeing Executed notices). */
  onExecuted(batch: SessionBatch, position: number, ts: number, results: Uint8Array, nowUs: number): void;
  onFailed(batch: SessionBatch, reason: string, timedOut: boolean, nowUs: number): void;
}

export interface SessionBatch {
  readonly owner: BatchOwner;
  readonly digest: Digest;
  readonly deadlineUs: number;
}

export interface SessionOptions {
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  /** The session's client key: it authenticates the sockets and signs the batches or commands. */
  readonly signer: Signer;
  readonly transport: SocketFactory;
  readonly clock: () => number;
  readonly verifySignatures: boolean;
  readonly retryUs: number;
  readonly maxRetryUs: number;
  /** Batches not executed this long after submission are abandoned (counted as timed out). */
  readonly timeoutMs: number;
}

export class BenchSession {
  readonly links: ReplicaLinks;
  private readonly driver: CollectorDriver;
  /** Signs a direct batch body with the session's key. */
  readonly sign: (body: Uint8Array) => Uint8Array;
  private readonly batches = new Map<string, SessionBatch>();
  private gateway: GatewayEngine | null = null;
  private readonly timeouts: Sweeper;
  private nextSeq = 1;

  constructor(private readonly opts: SessionOptions) {
    this.sign = batchSigner(opts.config.clusterId, opts.crypto, opts.signer);
    this.links = new ReplicaLinks({
      config: opts.config,
      transport: opts.transport,
      signer: opts.signer,
      onMessage: (from, msg) => this.onMessage(from, msg),
    });
    this.driver = new CollectorDriver({
      config: opts.config,
      crypto: opts.crypto,
      links: this.links,
      clock: opts.clock,
      verifySignatures: opts.verifySignatures,
      retryUs: opts.retryUs,
      maxRetryUs: opts.maxRetryUs,
      onEvent: (event, nowUs) => this.onEvent(event, nowUs),
    });
    this.timeouts = new Sweeper(sweepIntervalFor(opts.timeoutMs), () => this.sweep());
  }

  /** Batches (direct mode) in flight on this session. */
  get inFlightBatches(): number {
    return this.batches.size;
  }

  get signer(): Signer {
    return this.opts.signer;
  }

  /** The first of `count` fresh sequence numbers of the session's key. */
  takeSeqs(count: number): number {
    const first = this.nextSeq;
    this.nextSeq += count;
    return first;
  }

  /** Gateway mode: the one client of this session. */
  setGateway(engine: GatewayEngine): void {
    this.gateway = engine;
  }

  /** Direct mode: drives a batch (already encoded and hashed once by its owner). */
  submit(batch: SessionBatch, bytes: Uint8Array, expiresAtUs: number): void {
    this.batches.set(toHex(batch.digest), batch);
    this.timeouts.poke();
    this.driver.submit(bytes, batch.digest, expiresAtUs);
  }

  collectorStats(): CollectorStats {
    return this.driver.stats();
  }

  close(): void {
    this.timeouts.stop();
    this.driver.close();
    this.links.close();
  }

  private onMessage(from: ReplicaId, msg: Message): void {
    switch (msg.type) {
      case 'tsReply':
      case 'ack':
      case 'refused':
      case 'executed':
        this.driver.onReply(from, msg);
        return;
      case 'commandOrdered':
      case 'commandExecuted':
        this.gateway?.onMessage(from, msg);
        return;
      default:
        return;
    }
  }

  private onEvent(event: CollectorEvent, nowUs: number): void {
    const key = toHex(event.digest);
    const batch = this.batches.get(key);
    if (batch === undefined) return;
    switch (event.kind) {
      case 'ordered':
        batch.owner.onOrdered(batch, event.ts, nowUs, event.attempts, event.throttled);
        return;
      case 'executed':
        this.batches.delete(key);
        batch.owner.onExecuted(batch, event.position, event.ts, event.results, nowUs);
        return;
      case 'failed':
        this.batches.delete(key);
        batch.owner.onFailed(batch, event.reason, false, nowUs);
        return;
    }
  }

  private sweep(): boolean {
    const nowUs = this.opts.clock();
    for (const [key, batch] of this.batches) {
      if (nowUs < batch.deadlineUs) continue;
      this.batches.delete(key);
      this.driver.abandon(batch.digest);
      batch.owner.onFailed(batch, 'timed out', true, nowUs);
    }
    return this.batches.size > 0;
  }
}
