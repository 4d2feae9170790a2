/**
 * One logical benchmark client in gateway mode: single commands to a replica (which batches them),
 * `window` commands in flight (closed loop) or those a rate schedule makes due (open loop). Each
 * command is tracked on its own here, since its gateway, not this client, decides its batch; the
 * detail log's index is 0 for every command (the gateway does not report a command's place in its
 * batch, and equal (position, index) keys are never counted as out of order by the process script).
 */
import type { ClusterConfig } from '../common/config.js';
import type { BenchContext } from './benchContext.js';
import type { ClientLogs } from './benchClient.js';
import type { BenchSession } from './benchSession.js';
import { recordLatency } from './benchStats.js';
import type { KvWorkload } from './benchWorkload.js';
import type { PompeClientError } from './errors.js';
import { GatewayEngine } from './gatewayMode.js';
import { resolveOptions } from './options.js';
import type { OrderedInfo, PendingCommand, SubmitResult } from './pending.js';

export interface GatewayClientOptions {
  readonly index: number;
  readonly clientId: number;
  /** Commands in flight at most. */
  readonly window: number;
  readonly timeoutMs: number;
  readonly failoverMs: number;
  readonly closedLoop: boolean;
}

export class GatewayBenchClient {
  private readonly engine: GatewayEngine;
  private nextSeq = 1;
  /** Commands in flight. */
  inFlight = 0;
  inFlightMeasured = 0;
  private waitingForLog = false;
  private readonly backlog: { count: number; submitUs: number; stepUs: number }[] = [];

  constructor(
    private readonly ctx: BenchContext,
    config: ClusterConfig,
    session: BenchSession,
    private readonly workload: KvWorkload,
    readonly logs: ClientLogs,
    private readonly opts: GatewayClientOptions,
  ) {
    const resolved = resolveOptions(
      {
        mode: 'gateway',
        clientId: opts.clientId,
        gateway: opts.index % config.n,
        timeoutMs: opts.timeoutMs,
        gatewayFailoverMs: opts.failoverMs,
        clock: ctx.clock,
      },
      config,
    );
    this.engine = new GatewayEngine(config, session.links, resolved, { released: () => this.released() });
    session.addGateway(opts.clientId, this.engine);
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

  private submit(submitUs: number): void {
    const seq = this.nextSeq++;
    // The engine encodes the command into its frame at once, so a scratch view is safe here.
    const payload = this.workload.commands(this.opts.clientId, seq, 1)[0]!.payload;
    const measured = this.ctx.isMeasured(submitUs);
    const cmd: PendingCommand = {
      seq,
      payload,
      submitUs,
      orderedUs: -1,
      ts: null,
      outcome: null,
      resolveOrdered: (info) => this.onOrdered(info, measured),
      resolveExecuted: (result) => this.onExecuted(cmd, result, measured),
      reject: (error) => this.onFailed(error, measured),
    };
    this.inFlight++;
    if (measured) {
      this.inFlightMeasured++;
      if (this.opts.closedLoop) this.ctx.counters.offered++;
    }
    this.engine.start(cmd);
  }

  private onOrdered(info: OrderedInfo, measured: boolean): void {
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
    if (!measured) return;
    this.inFlightMeasured--;
    const nowUs = this.ctx.clock();
    if (this.ctx.inInterval(nowUs)) counters.executedInInterval++;
    else counters.drainedExecuted++;
    counters.statuses[result.status]++;
    const latencyUs = result.latencyMs * 1000;
    recordLatency(this.ctx.execHistogram, latencyUs);
    let ok = this.logs.exec.record(nowUs, latencyUs);
    // Without the gateway's commandOrdered the timestamp is unknown (a made-up one would count as a
    // timestamp order violation); a duplicate's position is where a later copy was skipped, not
    // where the command executed (it would count as a linearizability violation). Neither gets a
    // detail line.
    if (cmd.ts === null || result.status !== 'executed') counters.detailSkipped++;
    else {
      const detail = { submitWallUs: cmd.submitUs, orderedWallUs: cmd.orderedUs, executedWallUs: nowUs, tsUs: cmd.ts, position: result.position, index: 0 };
      ok = this.logs.detail.record(detail) && ok;
    }
    if (!ok) this.ctx.blockOnLog(Promise.all([this.logs.exec.whenWritable(), this.logs.detail.whenWritable()]).then(() => undefined));
  }

  private onFailed(error: PompeClientError, measured: boolean): void {
    if (!measured) return;
    this.inFlightMeasured--;
    this.ctx.counters.failedCommands++;
    if (error.code === 'TIMEOUT') this.ctx.counters.timedOutCommands++;
  }

  private released(): void {
    this.inFlight--;
    this.pump();
  }
}
