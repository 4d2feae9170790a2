/**
 * The client library: what an application embeds to submit commands to a pompe-ts cluster and
 * learn when each is ordered and executed.
 *
 * ```ts
 * const client = await PompeClient.connect({ confDir: 'experiments/conf-local' });
 * const r = await client.submit(encodeKvCommand(KvOp.Put, key, value));   // executed
 * console.log(r.status, r.position, r.orderedLatencyMs, r.latencyMs);
 * const h = client.track(command);   // { seq, ordered, executed } for both moments
 * await h.ordered; await h.executed;
 * await client.close();
 * ```
 *
 * - `submit(command, { onOrdered })` resolves with the SubmitResult once the command executed (f+1
 *   replicas agree on position and result in direct mode), and calls onOrdered when it is ordered.
 * - `track(command)` returns `{ seq, ordered, executed }`, two promises; `ordered` never causes an
 *   unhandled rejection if only `executed` is awaited.
 * - Failures reject with PompeClientError (errors.ts: TIMEOUT, CLOSED, REFUSED, EXPIRED,
 *   UNAVAILABLE, NOT_ALLOWED, BAD_CONFIG).
 * - Identity: the client is its Ed25519 key (`key`, or a fresh one); it proves the key to every
 *   replica when it connects, and signs its batches (direct) or commands (gateway) with it.
 * - Below quorum (fewer than q replicas reachable in direct mode, none in gateway mode) for
 *   `quorumLossGraceMs`, the client is unavailable: commands in flight fail with UNAVAILABLE and
 *   new ones are refused at once, until enough replicas are back (`available`,
 *   `onAvailabilityChange`).
 * - Backpressure: at most `maxInFlight` commands are in flight; later submissions wait (FIFO), and
 *   their timeout starts when they leave the client. Latencies count from the submit() call.
 * - Sequence numbers start at `firstSeq` (1) and grow by one per command, in call order.
 *
 * Modes: direct (default) forms batches here and runs the ordering phase with a Collector;
 * gateway sends single commands to one replica and fails over (gatewayMode.ts).
 *
 * Portability: this module and what it imports run in a browser too (msgpackr, the pure ordering
 * core). What differs by platform — the crypto backend, the WebSocket transport, reading a conf
 * directory — is filled in by connect() from the platform defaults an entry module registers:
 * client.ts (Node: node:crypto, the `ws` package, files) or browser.ts (noble, the global
 * WebSocket). This module names neither, so a browser bundle never pulls in Node built-ins.
 */
import { BATCH_HEADER_BYTES, BATCH_TRAILER_BYTES, BatchMode, commandBytes } from '../common/batch.js';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { MAX_COMMAND_BYTES } from '../common/limits.js';
import type { CollectorStats } from '../ordering/collector.js';
import { DirectEngine } from './direct.js';
import { PompeClientError, PompeClientErrorCode } from './errors.js';
import { GatewayEngine, type GatewayStats } from './gatewayMode.js';
import { ReplicaLinks, type LinkStats } from './links.js';
import { resolveOptions, type PompeClientOptions, type ResolvedOptions } from './options.js';
import { markFailed, type OrderedInfo, type PendingCommand, type SubmitHandle, type SubmitResult } from './pending.js';
import { QuorumWatch, type Availability } from './quorumWatch.js';
import type { SocketFactory } from './transport.js';

export { PompeClientError, PompeClientErrorCode, isPompeClientError } from './errors.js';
export type { BatchOptions, ClientMode, PompeClientOptions } from './options.js';
export type { OrderedInfo, SubmitHandle, SubmitResult } from './pending.js';
export type { CommandStatus } from './results.js';
export type { SocketFactory, ClientSocket, SocketHandlers } from './transport.js';
export type { Availability } from './quorumWatch.js';

/** What connect() fills in when the caller leaves it out; registered by the platform's entry
 *  module (client.ts for Node, browser.ts for browsers). */
export interface PlatformDefaults {
  readonly crypto: CryptoBackend;
  readonly transport: SocketFactory;
  /** Reads a conf directory's cluster.json (Node only); BAD_CONFIG on failure. */
  readonly loadClusterConfig?: (confDir: string, crypto: CryptoBackend) => Promise<ClusterConfig>;
}

let platformDefaults: (() => Promise<PlatformDefaults>) | null = null;

/** Sets what connect() fills in (called once by an entry module when it loads). */
export function setPlatformDefaults(load: () => Promise<PlatformDefaults>): void {
  platformDefaults = load;
}

export interface SubmitOptions {
  /** Called once when the command is ordered (before the promise resolves). */
  readonly onOrdered?: (info: OrderedInfo) => void;
}

export interface ClientStats {
  /** The client's public key, hex. */
  readonly clientKey: string;
  readonly inFlight: number;
  readonly waiting: number;
  readonly submitted: number;
  readonly executed: number;
  readonly failed: number;
  readonly links: Readonly<LinkStats> & { readonly connected: number };
  /** Direct mode. */
  readonly collector: CollectorStats | null;
  /** Gateway mode. */
  readonly gateway: (Readonly<GatewayStats> & { readonly current: number }) | null;
}

const noop = (): void => {};

export class PompeClient {
  /** This client's public key (hex): its identity at the replicas. */
  readonly clientKey: string;
  readonly mode: ResolvedOptions['mode'];
  private readonly links: ReplicaLinks;
  private readonly engine: DirectEngine | GatewayEngine;
  private nextSeq: number;
  private inFlight = 0;
  /** Commands not yet started, from `waitingHead` on; a started one's slot is cleared at once. */
  private readonly waiting: (PendingCommand | undefined)[] = [];
  private waitingHead = 0;
  private closed = false;
  private submitted = 0;
  private executed = 0;
  private failed = 0;
  private readonly maxCommandBytes: number;
  private readonly quorum: QuorumWatch;

  private constructor(
    readonly config: ClusterConfig,
    crypto: CryptoBackend,
    transport: SocketFactory,
    private readonly opts: ResolvedOptions,
  ) {
    this.clientKey = opts.clientKeyHex;
    this.mode = opts.mode;
    this.nextSeq = opts.firstSeq;
    this.links = new ReplicaLinks({
      config,
      transport,
      signer: opts.signer,
      onMessage: (from, msg) => this.engine.onMessage(from, msg),
      onLinkChange: () => this.quorum.update(this.links.connected),
      reconnectInitialMs: opts.reconnectInitialMs,
      reconnectMaxMs: opts.reconnectMaxMs,
    });
    this.quorum = new QuorumWatch({
      needed: opts.mode === 'direct' ? config.q : 1,
      graceMs: opts.quorumLossGraceMs,
      onChange: (availability) => this.availabilityChanged(availability),
    });
    const host = { released: (cmd: PendingCommand) => this.released(cmd) };
    this.engine = opts.mode === 'direct' ? new DirectEngine(config, crypto, this.links, opts, host) : new GatewayEngine(config, crypto, this.links, opts, host);
    // In either mode a command must fit one of the cluster's batches on its own.
    const overhead = BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES + commandBytes(opts.mode === 'direct' ? BatchMode.Direct : BatchMode.Gateway, 0);
    this.maxCommandBytes = Math.min(MAX_COMMAND_BYTES, config.protocol.maxBatchBytes - overhead);
  }

  /**
   * Connects to the cluster and resolves once enough replicas are reachable: q in direct mode
   * (fewer cannot order anything); in gateway mode the chosen gateway, or another replica once the
   * gateway could not be reached. Rejects with BAD_CONFIG for bad options or config, NOT_ALLOWED
   * if f+1 replicas refuse this client's key (an allow-list without it), TIMEOUT if the replicas
   * cannot be reached within connectTimeoutMs.
   */
  static async connect(options: PompeClientOptions): Promise<PompeClient> {
    if (options.config !== undefined && options.confDir !== undefined) {
      throw new PompeClientError(PompeClientErrorCode.BadConfig, 'give either config or confDir, not both');
    }
    let { config, crypto, transport } = options;
    if (config === undefined || crypto === undefined || transport === undefined) {
      if (platformDefaults === null) {
        throw new PompeClientError(PompeClientErrorCode.BadConfig, 'give config, crypto and transport (or import the client from pompe-ts/client or pompe-ts/browser)');
      }
      const defaults = await platformDefaults();
      crypto ??= defaults.crypto;
      transport ??= defaults.transport;
      if (config === undefined) {
        if (options.confDir === undefined) throw new PompeClientError(PompeClientErrorCode.BadConfig, 'give config or confDir');
        if (defaults.loadClusterConfig === undefined) throw new PompeClientError(PompeClientErrorCode.BadConfig, 'confDir needs Node: give config');
        config = await defaults.loadClusterConfig(options.confDir, crypto);
      }
    }
    const resolved = resolveOptions(options, config, crypto);
    const client = new PompeClient(config, crypto, transport, resolved);
    const needed = client.quorum.state.needed;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), resolved.connectTimeoutMs)));
    const ready = resolved.mode === 'direct' ? client.links.whenConnected(needed) : client.links.whenPreferredOrAny(resolved.gateway);
    // One Byzantine replica could claim to refuse anyone: f+1 refusals include a correct one.
    const refused = client.links.whenRefused(config.f + 1).then(() => 'notAllowed' as const);
    const outcome = await Promise.race([ready.then(() => 'ok' as const), refused, timedOut]);
    clearTimeout(timer);
    if (outcome === 'notAllowed') {
      await client.close();
      throw new PompeClientError(PompeClientErrorCode.NotAllowed, `${config.f + 1} replicas refused client key ${resolved.clientKeyHex}: it is not on the cluster's allow-list`);
    }
    if (outcome === 'timeout') {
      const reached = client.links.connected;
      await client.close();
      throw new PompeClientError(
        PompeClientErrorCode.Timeout,
        `reached ${reached} of ${config.n} replicas within ${resolved.connectTimeoutMs} ms, need ${needed}`,
      );
    }
    return client;
  }

  /** Submits one command; resolves when it executed. See the module comment. */
  submit(command: Uint8Array, options: SubmitOptions = {}): Promise<SubmitResult> {
    const handle = this.track(command);
    if (options.onOrdered !== undefined) handle.ordered.then(options.onOrdered, noop);
    return handle.executed;
  }

  /** Submits one command; returns promises for its ordering and its execution. */
  track(command: Uint8Array): SubmitHandle {
    const seq = this.nextSeq++;
    let resolveOrdered!: (info: OrderedInfo) => void;
    let rejectOrdered!: (error: PompeClientError) => void;
    let resolveExecuted!: (result: SubmitResult) => void;
    let rejectExecuted!: (error: PompeClientError) => void;
    const ordered = new Promise<OrderedInfo>((res, rej) => ((resolveOrdered = res), (rejectOrdered = rej)));
    const executed = new Promise<SubmitResult>((res, rej) => ((resolveExecuted = res), (rejectExecuted = rej)));
    // Callers often await only `executed`; a rejection of `ordered` must not be reported unhandled.
    ordered.catch(noop);
    const cmd: PendingCommand = {
      seq,
      payload: command,
      submitUs: this.opts.clock(),
      orderedUs: -1,
      ts: null,
      outcome: null,
      resolveOrdered,
      resolveExecuted,
      reject: (error) => {
        rejectOrdered(error);
        rejectExecuted(error);
      },
    };
    this.submitted++;
    if (this.closed) {
      this.reject(cmd, new PompeClientError(PompeClientErrorCode.Closed, 'the client is closed'));
    } else if (!this.quorum.available) {
      this.reject(cmd, this.unavailableError('the command was not sent'));
    } else if (!(command instanceof Uint8Array) || command.length > this.maxCommandBytes) {
      const size = command instanceof Uint8Array ? `${command.length} bytes` : typeof command;
      this.reject(cmd, new PompeClientError(PompeClientErrorCode.Refused, `a command of ${size} exceeds the cluster's limit of ${this.maxCommandBytes} bytes`));
    } else if (this.inFlight < this.opts.maxInFlight) {
      this.inFlight++;
      this.engine.start(cmd);
    } else {
      this.waiting.push(cmd);
    }
    return { seq, ordered, executed };
  }

  /** Replicas whose link is up right now. */
  get connectedReplicas(): number {
    return this.links.connected;
  }

  /** False while fewer replicas are reachable than the client needs (see quorumLossGraceMs). */
  get available(): boolean {
    return this.quorum.available;
  }

  stats(): ClientStats {
    const e = this.engine;
    return {
      clientKey: this.clientKey,
      inFlight: this.inFlight,
      waiting: this.waiting.length - this.waitingHead,
      submitted: this.submitted,
      executed: this.executed,
      failed: this.failed,
      links: { ...this.links.stats, connected: this.links.connected },
      collector: e instanceof DirectEngine ? e.collectorStats() : null,
      gateway: e instanceof GatewayEngine ? { ...e.stats, current: e.gateway } : null,
    };
  }

  /**
   * Rejects every unsettled command with CLOSED (they may still execute), stops every timer and
   * closes every socket: no handle is left behind. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.quorum.cancel();
    const error = new PompeClientError(PompeClientErrorCode.Closed, 'the client was closed before the command completed (it may still execute)');
    for (let i = this.waitingHead; i < this.waiting.length; i++) this.reject(this.waiting[i]!, error);
    this.waiting.length = 0;
    this.waitingHead = 0;
    this.engine.close(error);
    this.links.close();
  }

  private unavailableError(what: string): PompeClientError {
    const { connected, needed } = this.quorum.state;
    return new PompeClientError(
      PompeClientErrorCode.Unavailable,
      `${connected} of ${this.config.n} replicas reachable, ${needed} needed: ${what}`,
    );
  }

  /** Below quorum past the grace: fail what waits and what is in flight at once. Back: tell. */
  private availabilityChanged(availability: Availability): void {
    if (this.closed) return;
    if (!availability.available) {
      const waiting = this.unavailableError('the command was not sent');
      for (let i = this.waitingHead; i < this.waiting.length; i++) this.reject(this.waiting[i]!, waiting);
      this.waiting.length = 0;
      this.waitingHead = 0;
      this.engine.failInFlight(this.unavailableError('the command may still execute, once'));
    }
    this.opts.onAvailabilityChange?.(availability);
  }

  /** Fails a command that never went in flight. */
  private reject(cmd: PendingCommand, error: PompeClientError): void {
    if (cmd.outcome !== null) return;
    markFailed(cmd, error);
    this.failed++;
  }

  /** An in-flight command settled: count it and let the next waiting one in. */
  private released(cmd: PendingCommand): void {
    this.inFlight--;
    if (cmd.outcome === 'executed') this.executed++;
    else this.failed++;
    while (this.inFlight < this.opts.maxInFlight && this.waitingHead < this.waiting.length && !this.closed && this.quorum.available) {
      const next = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead++] = undefined;
      if (this.waitingHead === this.waiting.length) {
        this.waiting.length = 0;
        this.waitingHead = 0;
      } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
        this.waiting.splice(0, this.waitingHead);
        this.waitingHead = 0;
      }
      this.inFlight++;
      this.engine.start(next);
    }
  }
}
