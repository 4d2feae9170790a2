/**
 * A benchmark session: one socket per replica and what runs over it. In direct mode one
 * CollectorDriver carries the batches of every client on the session (the Collector keys batches by
 * digest, not by client), events go back to each batch's owner, and a sweep abandons batches past
 * their deadline. In gateway mode each client has its own GatewayEngine on the shared sockets,
 * found by client id. The benchmark runs one session for all its clients (default) or one per client.
 */
import { toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
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
  /** `attempts`: phase-1 attempts the batch took (1: ordered without a restart). */
  onOrdered(batch: SessionBatch, ts: number, nowUs: number, attempts: number): void;
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
  private readonly batches = new Map<string, SessionBatch>();
  private readonly gateways = new Map<number, GatewayEngine>();
  private readonly timeouts: Sweeper;

  constructor(private readonly opts: SessionOptions) {
    this.links = new ReplicaLinks({ config: opts.config, transport: opts.transport, onMessage: (from, msg) => this.onMessage(from, msg) });
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

  addCollector(collectorId: number): void {
    this.links.addCollectorId(collectorId);
  }

  addGateway(clientId: number, engine: GatewayEngine): void {
    this.gateways.set(clientId, engine);
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
        this.gateways.get(msg.clientId)?.onMessage(from, msg);
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
        batch.owner.onOrdered(batch, event.ts, nowUs, event.attempts);
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
