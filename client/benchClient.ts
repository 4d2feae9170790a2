/**
 * One logical benchmark client in direct mode: forms batches of the workload's commands, keeps
 * `outstanding` batches in flight (closed loop) or takes the batches a rate schedule hands it (open
 * loop), and records each batch's commands in its logs when the batch is ordered and executed. All
 * tracking is per batch: the commands of a batch share their batch's record, and a command's submit
 * time is the batch's plus i × the schedule's spacing (0 in the closed loop).
 */
import { encodeBatch } from '../common/batch.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest } from '../common/ids.js';
import type { BenchContext } from './benchContext.js';
import type { BatchOwner, BenchSession, SessionBatch } from './benchSession.js';
import { recordLatency } from './benchStats.js';
import type { KvWorkload } from './benchWorkload.js';
import type { DetailLogWriter, LatencyLogWriter } from './latencyLog.js';
import { CongestionWindow } from './congestionWindow.js';
import { countStatuses } from './results.js';

export interface ClientLogs {
  readonly order: LatencyLogWriter;
  readonly exec: LatencyLogWriter;
  readonly detail: DetailLogWriter;
}

export interface DirectClientOptions {
  readonly index: number;
  readonly clientId: number;
  readonly batchSize: number;
  /** Batches in flight at most. */
  readonly outstanding: number;
  /** Fewer in flight while batches restart `late` (client/congestionWindow.ts); false: always
   *  `outstanding`. */
  readonly adaptiveWindow: boolean;
  /** expiresAtUs = submission + this. */
  readonly batchLifetimeUs: number;
  readonly timeoutUs: number;
  /** Above this many bytes queued on any socket, new batches wait. */
  readonly sendHighWaterBytes: number;
  /** Closed loop: keep `outstanding` batches in flight. Open loop: submit what enqueue() gave. */
  readonly closedLoop: boolean;
}

interface BenchBatch extends SessionBatch {
  readonly firstSeq: number;
  readonly count: number;
  readonly submitUs: number;
  /** Submit time of command i: submitUs + i × stepUs. */
  readonly stepUs: number;
  readonly measured: boolean;
  orderedUs: number;
  ts: number;
}

/** Retry delay when a socket's send queue is above the high-water mark. */
const SEND_BACKOFF_MS = 1;

export class DirectBenchClient implements BatchOwner {
  private nextSeq = 1;
  private nonce = 0;
  /** Batches in flight. */
  inFlight = 0;
  /** Measured commands in flight. */
  inFlightMeasured = 0;
  private readonly latencies: Float64Array;
  private readonly submits: Float64Array;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private waitingForLog = false;
  /** Open loop: batches due but not yet submitted (the schedule sets it; pump drains it). */
  private readonly backlog: { count: number; submitUs: number; stepUs: number }[] = [];
  readonly window: CongestionWindow;

  constructor(
    private readonly ctx: BenchContext,
    private readonly session: BenchSession,
    private readonly crypto: CryptoBackend,
    private readonly workload: KvWorkload,
    readonly logs: ClientLogs,
    private readonly opts: DirectClientOptions,
  ) {
    session.addCollector(opts.clientId);
    this.window = new CongestionWindow(opts.outstanding);
    this.latencies = new Float64Array(opts.batchSize);
    this.submits = new Float64Array(opts.batchSize);
  }

  get index(): number {
    return this.opts.index;
  }

  get backlogged(): number {
    return this.backlog.length;
  }

  /** Open loop: a batch of `count` commands created at submitUs + i × stepUs is due. */
  enqueue(count: number, submitUs: number, stepUs: number): void {
    this.backlog.push({ count, submitUs, stepUs });
  }

  /** Submits what may be submitted now: the backlog (open loop) or up to `outstanding` batches. */
  pump(): void {
    const { closedLoop } = this.opts;
    const limit = this.opts.adaptiveWindow ? this.window.limit : this.opts.outstanding;
    while (this.ctx.running && this.inFlight < limit) {
      if (!closedLoop && this.backlog.length === 0) return;
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
      if (this.session.links.maxBufferedBytes() > this.opts.sendHighWaterBytes) {
        this.ctx.counters.sendBackoffs++;
        if (this.retryTimer === null) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.pump();
          }, SEND_BACKOFF_MS);
        }
        return;
      }
      const due = closedLoop ? null : this.backlog.shift()!;
      this.submitBatch(due?.count ?? this.opts.batchSize, due?.submitUs ?? this.ctx.clock(), due?.stepUs ?? 0);
    }
  }

  stop(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.backlog.length = 0;
  }

  private submitBatch(count: number, submitUs: number, stepUs: number): void {
    const nowUs = this.ctx.clock();
    const { clientId } = this.opts;
    const firstSeq = this.nextSeq;
    this.nextSeq += count;
    const expiresAtUs = nowUs + this.opts.batchLifetimeUs;
    const commands = this.workload.commands(clientId, firstSeq, count);
    const bytes = encodeBatch({ collectorId: clientId, nonce: this.nonce++, expiresAtUs, commands });
    const digest: Digest = this.crypto.sha256(bytes);
    const batch: BenchBatch = {
      owner: this,
      digest,
      deadlineUs: nowUs + this.opts.timeoutUs,
      firstSeq,
      count,
      submitUs,
      stepUs,
      measured: this.ctx.isMeasured(submitUs),
      orderedUs: -1,
      ts: 0,
    };
    this.inFlight++;
    if (batch.measured) {
      this.inFlightMeasured += count;
      if (this.opts.closedLoop) this.ctx.counters.offered += count;
    }
    this.session.submit(batch, bytes, expiresAtUs);
  }

  onOrdered(b: SessionBatch, ts: number, nowUs: number, attempts: number): void {
    const batch = b as BenchBatch;
    this.window.onOrdered(attempts);
    batch.orderedUs = nowUs;
    batch.ts = ts;
    this.ctx.counters.orderedTotal += batch.count;
    if (!batch.measured) return;
    if (this.ctx.inInterval(nowUs)) this.ctx.counters.orderedInInterval += batch.count;
    const lat = this.latenciesOf(batch, nowUs);
    this.record(this.ctx.orderHistogram, batch, lat);
    if (!this.logs.order.recordBatch(nowUs, lat)) this.ctx.blockOnLog(this.logs.order.whenWritable());
  }

  onExecuted(b: SessionBatch, position: number, ts: number, results: Uint8Array, nowUs: number): void {
    const batch = b as BenchBatch;
    this.inFlight--;
    if (batch.measured) this.inFlightMeasured -= batch.count;
    const { counters } = this.ctx;
    counters.executedTotal += batch.count;
    if (batch.measured) {
      if (this.ctx.inInterval(nowUs)) counters.executedInInterval += batch.count;
      else counters.drainedExecuted += batch.count;
      countStatuses(results, batch.count, counters.statuses);
      const lat = this.latenciesOf(batch, nowUs);
      this.record(this.ctx.execHistogram, batch, lat);
      let ok = this.logs.exec.recordBatch(nowUs, lat);
      if (batch.orderedUs < 0) {
        // The Collector confirmed execution without reporting the ordering (after a restart the
        // batch executed under an earlier attempt's ack): its time and timestamp are unknown, and
        // a made-up timestamp would show as a timestamp order violation. No order or detail line.
        counters.orderUnobserved += batch.count;
        counters.detailSkipped += batch.count;
      } else {
        const submits = this.submits.subarray(0, batch.count);
        for (let i = 0; i < batch.count; i++) submits[i] = Math.floor(batch.submitUs + i * batch.stepUs);
        // The executed timestamp, not the ordered one: after a restart of phase 1 a batch may execute
        // under an earlier attempt's certificate.
        ok = this.logs.detail.recordBatch({ orderedWallUs: batch.orderedUs, executedWallUs: nowUs, tsUs: ts, position }, submits) && ok;
      }
      if (!ok) this.ctx.blockOnLog(Promise.all([this.logs.exec.whenWritable(), this.logs.detail.whenWritable()]).then(() => undefined));
    }
    this.pump();
  }

  onFailed(b: SessionBatch, _reason: string, timedOut: boolean): void {
    const batch = b as BenchBatch;
    this.inFlight--;
    if (batch.measured) {
      this.inFlightMeasured -= batch.count;
      this.ctx.counters.failedCommands += batch.count;
      if (timedOut) this.ctx.counters.timedOutCommands += batch.count;
    }
    this.pump();
  }

  private latenciesOf(batch: BenchBatch, nowUs: number): Float64Array {
    const lat = this.latencies.subarray(0, batch.count);
    for (let i = 0; i < batch.count; i++) lat[i] = nowUs - (batch.submitUs + i * batch.stepUs);
    return lat;
  }

  private record(h: BenchContext['orderHistogram'], batch: BenchBatch, lat: Float64Array): void {
    if (batch.stepUs === 0) recordLatency(h, lat[0]!, batch.count);
    else for (let i = 0; i < lat.length; i++) recordLatency(h, lat[i]!);
  }
}
