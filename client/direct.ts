/**
 * Direct mode: the client forms batches itself (by size, or after a delay: whichever comes first),
 * signs each with its key, and drives each through the ordering phase with a Collector
 * (collectorDriver.ts), then resolves every command of the batch from the execution results f+1
 * replicas agreed on.
 */
import { BATCH_HEADER_BYTES, BATCH_TRAILER_BYTES, BatchMode, commandBytes, encodeBatch, type DirectCommand } from '../common/batch.js';
import { batchSigner } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest, ReplicaId } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import type { CollectorEvent, CollectorStats } from '../ordering/collector.js';
import { CollectorDriver } from './collectorDriver.js';
import { collectorFailure, PompeClientError, PompeClientErrorCode } from './errors.js';
import type { ReplicaLinks } from './links.js';
import type { ResolvedOptions } from './options.js';
import { markExecuted, markFailed, markOrdered, type EngineHost, type PendingCommand } from './pending.js';
import { batchResults } from './results.js';
import { Sweeper, sweepIntervalFor } from './sweeper.js';

const EMPTY_BATCH_BYTES = BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES;

interface InFlightBatch {
  readonly digest: Digest;
  readonly commands: PendingCommand[];
  readonly deadlineUs: number;
}

export class DirectEngine {
  private readonly driver: CollectorDriver;
  private open: PendingCommand[] = [];
  private openBytes = EMPTY_BATCH_BYTES;
  private openTimer: ReturnType<typeof setTimeout> | null = null;
  private cutQueued = false;
  private nonce = 0;
  private readonly batches = new Map<string, InFlightBatch>();
  private readonly timeouts: Sweeper;
  private readonly sign: (body: Uint8Array) => Uint8Array;
  private closed = false;

  constructor(
    private readonly config: ClusterConfig,
    private readonly crypto: CryptoBackend,
    links: ReplicaLinks,
    private readonly opts: ResolvedOptions,
    private readonly host: EngineHost,
  ) {
    this.driver = new CollectorDriver({
      config,
      crypto,
      links,
      clock: opts.clock,
      verifySignatures: opts.verifySignatures,
      retryUs: opts.retryMs * 1000,
      maxRetryUs: opts.maxRetryMs * 1000,
      onEvent: (event, nowUs) => this.onEvent(event, nowUs),
    });
    this.sign = batchSigner(config.clusterId, crypto, opts.signer);
    this.timeouts = new Sweeper(sweepIntervalFor(opts.timeoutMs), () => this.sweepTimeouts());
  }

  collectorStats(): CollectorStats {
    return this.driver.stats();
  }

  get openCommands(): number {
    return this.open.length;
  }

  get batchesInFlight(): number {
    return this.batches.size;
  }

  start(cmd: PendingCommand): void {
    const size = commandBytes(BatchMode.Direct, cmd.payload.length);
    if (this.open.length > 0 && this.openBytes + size > this.config.protocol.maxBatchBytes) this.cut();
    this.open.push(cmd);
    this.openBytes += size;
    if (this.open.length >= this.opts.batch.maxCommands) {
      this.cut();
    } else if (this.open.length === 1) {
      this.armCut();
    }
  }

  onMessage(from: ReplicaId, msg: Message): void {
    if (msg.type === 'tsReply' || msg.type === 'ack' || msg.type === 'refused' || msg.type === 'executed') this.driver.onReply(from, msg);
  }

  /** Rejects everything still open or in flight with `error` and stops every timer. */
  close(error: PompeClientError): void {
    if (this.closed) return;
    this.closed = true;
    this.disarmCut();
    this.timeouts.stop();
    this.driver.close();
    for (const cmd of this.open) this.fail(cmd, error);
    this.open = [];
    for (const batch of this.batches.values()) for (const cmd of batch.commands) this.fail(cmd, error);
    this.batches.clear();
  }

  /** Fails everything open or in flight with `error` (abandoning its batches) and keeps running. */
  failInFlight(error: PompeClientError): void {
    this.disarmCut();
    const open = this.open;
    this.open = [];
    this.openBytes = BATCH_HEADER_BYTES;
    for (const cmd of open) this.fail(cmd, error);
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const batch of batches) {
      this.driver.abandon(batch.digest);
      for (const cmd of batch.commands) this.fail(cmd, error);
    }
  }

  private armCut(): void {
    if (this.opts.batch.maxDelayMs === 0) {
      // End of the current turn: commands submitted in one synchronous run share the batch.
      if (this.cutQueued) return;
      this.cutQueued = true;
      queueMicrotask(() => {
        this.cutQueued = false;
        if (this.open.length > 0 && !this.closed) this.cut();
      });
    } else {
      this.openTimer = setTimeout(() => {
        this.openTimer = null;
        if (this.open.length > 0 && !this.closed) this.cut();
      }, this.opts.batch.maxDelayMs);
    }
  }

  private disarmCut(): void {
    if (this.openTimer !== null) clearTimeout(this.openTimer);
    this.openTimer = null;
  }

  private cut(): void {
    this.disarmCut();
    const commands = this.open;
    this.open = [];
    this.openBytes = EMPTY_BATCH_BYTES;
    const nowUs = this.opts.clock();
    const lifetimeUs = Math.min(this.opts.timeoutMs * 1000, this.config.protocol.batchLifetimeUs);
    const expiresAtUs = nowUs + lifetimeUs;
    const tagged: DirectCommand[] = commands.map((c) => ({ seq: c.seq, payload: c.payload }));
    const bytes = encodeBatch({ mode: BatchMode.Direct, collectorKey: this.opts.signer.publicKey, nonce: this.nonce++, expiresAtUs, commands: tagged }, this.sign);
    const digest = this.crypto.sha256(bytes);
    this.batches.set(toHex(digest), { digest, commands, deadlineUs: nowUs + this.opts.timeoutMs * 1000 });
    this.timeouts.poke();
    this.driver.submit(bytes, digest, expiresAtUs);
  }

  private onEvent(event: CollectorEvent, nowUs: number): void {
    const key = toHex(event.digest);
    const batch = this.batches.get(key);
    if (batch === undefined) return;
    switch (event.kind) {
      case 'ordered':
        for (const cmd of batch.commands) markOrdered(cmd, nowUs, event.ts, event.digest);
        return;
      case 'executed': {
        this.batches.delete(key);
        const results = batchResults(event.results, batch.commands.length);
        batch.commands.forEach((cmd, index) => {
          const r = results[index]!;
          markExecuted(cmd, nowUs, { status: r.status, result: r.result, position: event.position, index, ts: event.ts });
          this.host.released(cmd);
        });
        return;
      }
      case 'failed': {
        this.batches.delete(key);
        const error = collectorFailure(event.reason);
        for (const cmd of batch.commands) this.fail(cmd, error);
        return;
      }
    }
  }

  private sweepTimeouts(): boolean {
    const nowUs = this.opts.clock();
    for (const [key, batch] of this.batches) {
      if (nowUs < batch.deadlineUs) continue;
      this.batches.delete(key);
      this.driver.abandon(batch.digest);
      const error = new PompeClientError(
        PompeClientErrorCode.Timeout,
        `batch ${key.slice(0, 16)} not executed within ${this.opts.timeoutMs} ms (it may still execute, once)`,
      );
      for (const cmd of batch.commands) this.fail(cmd, error);
    }
    return this.batches.size > 0;
  }

  private fail(cmd: PendingCommand, error: PompeClientError): void {
    if (cmd.outcome !== null) return;
    markFailed(cmd, error);
    this.host.released(cmd);
  }
}
