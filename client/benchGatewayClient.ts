/**
 * One logical benchmark client in gateway mode: single commands to a replica (which batches them),
 * `window` commands in flight (closed loop) or those a rate schedule makes due (open loop). Each
 * command is tracked on its own here, since its gateway, not this client, decides its batch; its
 * detail line has no index (the gateway does not report a command's place in its batch) and the
 * digest the gateway reported with the ordering, if it did.
 */
import type { ClusterConfig } from '../common/config.js';
import { toHex } from '../common/bytes.js';
import type { CryptoBackend, KeyPair } from '../common/crypto/types.js';
import type { BenchContext } from './benchContext.js';
import type { ClientLogs } from './benchClient.js';
import type { BenchSession } from './benchSession.js';
import { recordLatency } from './benchStats.js';
import type { KvWorkload } from './benchWorkload.js';
import { executedOutcome, type DetailOutcome } from './detailLog.js';
import type { PompeClientError } from './errors.js';
import { GatewayEngine } from './gatewayMode.js';
import { resolveOptions } from './options.js';
import type { OrderedInfo, PendingCommand, SubmitResult } from './pending.js';

export interface GatewayClientOptions {
  readonly index: number;
  /** The session's key pair (a gateway client has a session of its own). */
  readonly key: KeyPair;
  /** Commands in flight at most. */
  readonly window: number;
  readonly timeoutMs: number;
  readonly failoverMs: number;
  readonly closedLoop: boolean;
}

export class GatewayBenchClient {
  private readonly engine: GatewayEngine;
  /** Commands in flight. */
  inFlight = 0;
  inFlightMeasured = 0;
  private waitingForLog = false;
  /** Commands in flight (logged as unfinished at the end), by sequence number. */
  private readonly pending = new Map<number, PendingCommand>();
  private readonly digests = new Map<number, string>();
  private readonly name: string;
  private readonly backlog: { count: number; submitUs: number; stepUs: number }[] = [];

  constructor(
    private readonly ctx: BenchContext,
    config: ClusterConfig,
    crypto: CryptoBackend,
    private readonly session: BenchSession,
    private readonly workload: KvWorkload,
    readonly logs: ClientLogs,
    private readonly opts: GatewayClientOptions,
  ) {
    const resolved = resolveOptions(
      {
        mode: 'gateway',
        key: opts.key,
        gateway: opts.index % config.n,
        timeoutMs: opts.timeoutMs,
        gatewayFailoverMs: opts.failoverMs,
        clock: ctx.clock,
      },
      config,
      crypto,
    );
    this.name = toHex(opts.key.publicKey);
    this.engine = new GatewayEngine(config, crypto, session.links, resolved, { released: () => this.released() });
    session.setGateway(this.engine);
  }

  get index(): number {
    return this.opts.index;
  }

  get failovers(): number {
    return this.engine.stats.failovers;
  }

  enqueue(count: number, submitUs: number, stepUs: number): void {
    this.backlog.push({ count, submitUs, stepUs });
  }

  pump(): void {
    while (this.ctx.running && this.inFlight < this.opts.window) {
      if (this.ctx.logBlocked) {
        if (!this.waitingForLog) {
          this.waitingForLog = true;
          this.ctx.whenLogWritable(() => {
            this.waitingForLog = false;
            this.pump();
          });
        }
        return;
      }
      if (this.opts.closedLoop) {
        this.submit(this.ctx.clock());
        continue;
      }
      const due = this.backlog[0];
      if (due === undefined) return;
      this.submit(Math.floor(due.submitUs));
      due.submitUs += due.stepUs;
      if (--due.count === 0) this.backlog.shift();
    }
  }

  stop(): void {
    this.backlog.length = 0;
    this.engine.close(null);
  }

  /** At the end of the run: a detail line for every command still in flight. */
  logUnfinished(): void {
    for (const cmd of this.pending.values()) this.detail(cmd, null, 'unfinished');
    this.pending.clear();
    this.digests.clear();
  }

  private submit(submitUs: number): void {
    const seq = this.session.takeSeqs(1);
    // The engine encodes the command into its frame at once, so a scratch view is safe here.
    const payload = this.workload.commands(seq, 1)[0]!.payload;
    const measured = this.ctx.isMeasured(submitUs);
    const cmd: PendingCommand = {
      seq,
      payload,
      submitUs,
      orderedUs: -1,
      ts: null,
      outcome: null,
      resolveOrdered: (info) => this.onOrdered(cmd, info, measured),
      resolveExecuted: (result) => this.onExecuted(cmd, result, measured),
      reject: (error) => this.onFailed(cmd, error, measured),
    };
    this.inFlight++;
    this.pending.set(seq, cmd);
    this.ctx.counters.submittedTotal++;
    if (measured) {
      this.inFlightMeasured++;
      if (this.opts.closedLoop) this.ctx.counters.offered++;
    }
    this.engine.start(cmd);
  }

  private onOrdered(cmd: PendingCommand, info: OrderedInfo, measured: boolean): void {
    if (info.digest !== null) this.digests.set(cmd.seq, toHex(info.digest));
    const { counters } = this.ctx;
    counters.orderedTotal++;
    if (!measured) return;
    // Reported at execution because the gateway never said it was ordered: no order line.
    if (info.ts === null) {
      counters.orderUnobserved++;
      return;
    }
    const nowUs = this.ctx.clock();
    if (this.ctx.inInterval(nowUs)) counters.orderedInInterval++;
    const latencyUs = info.latencyMs * 1000;
    recordLatency(this.ctx.orderHistogram, latencyUs);
    if (!this.logs.order.record(nowUs, latencyUs)) this.ctx.blockOnLog(this.logs.order.whenWritable());
  }

  private onExecuted(cmd: PendingCommand, result: SubmitResult, measured: boolean): void {
    const { counters } = this.ctx;
    counters.executedTotal++;
    const nowUs = this.ctx.clock();
    // A duplicate's position is where a later copy was skipped, not where the command executed.
    let ok = this.detail(cmd, { executedUs: nowUs, tsUs: result.ts, position: result.position }, executedOutcome(result.status, cmd.ts !== null));
    if (measured) {
      this.inFlightMeasured--;
      if (this.ctx.inInterval(nowUs)) counters.executedInInterval++;
      else counters.drainedExecuted++;
      counters.statuses[result.status]++;
      const latencyUs = result.latencyMs * 1000;
      recordLatency(this.ctx.execHistogram, latencyUs);
      ok = this.logs.exec.record(nowUs, latencyUs) && ok;
    }
    if (!ok) this.ctx.blockOnLog(Promise.all([this.logs.exec.whenWritable(), this.logs.detail.whenWritable()]).then(() => undefined));
  }

  private onFailed(cmd: PendingCommand, error: PompeClientError, measured: boolean): void {
    this.ctx.counters.failedTotal++;
    const timedOut = error.code === 'TIMEOUT';
    if (!this.detail(cmd, null, timedOut ? 'timed_out' : 'failed')) this.ctx.blockOnLog(this.logs.detail.whenWritable());
    if (!measured) return;
    this.inFlightMeasured--;
    this.ctx.counters.failedCommands++;
    if (timedOut) this.ctx.counters.timedOutCommands++;
  }

  /** The command's detail line (it leaves the pending set); `executed` null when it did not execute. */
  private detail(cmd: PendingCommand, executed: { executedUs: number; tsUs: number | null; position: number } | null, outcome: DetailOutcome): boolean {
    this.pending.delete(cmd.seq);
    const digest = this.digests.get(cmd.seq) ?? null;
    this.digests.delete(cmd.seq);
    return this.logs.detail.record({
      client: this.name,
      seq: cmd.seq,
      digest,
      submitUs: cmd.submitUs,
      orderedUs: cmd.orderedUs >= 0 && cmd.ts !== null ? cmd.orderedUs : null,
      executedUs: executed?.executedUs ?? null,
      tsUs: executed?.tsUs ?? cmd.ts,
      position: executed?.position ?? null,
      index: null,
      outcome,
      measured: this.ctx.isMeasured(cmd.submitUs),
    });
  }

  private released(): void {
    this.inFlight--;
    this.pump();
  }
}
