/**
 * One logical benchmark client in direct mode: forms batches of the workload's commands, keeps
 * `outstanding` batches in flight (closed loop) or takes the batches a rate schedule hands it (open
 * loop), and records each batch's commands in its logs when the batch is ordered and executed. All
 * tracking is per batch: the commands of a batch share their batch's record, and a command's submit
 * time is the batch's plus i × the schedule's spacing (0 in the closed loop). Every command gets a
 * detail line whatever becomes of it (detailLog.ts), warm-up included; the latency logs hold the
 * measured ones.
 */
import { BatchMode, encodeBatch } from '../common/batch.js';
import { toHex } from '../common/bytes.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { Digest } from '../common/ids.js';
import type { BenchContext } from './benchContext.js';
import type { BatchOwner, BenchSession, SessionBatch } from './benchSession.js';
import { recordLatency } from './benchStats.js';
import type { KvWorkload } from './benchWorkload.js';
import type { DetailLogWriter, LatencyLogWriter } from './latencyLog.js';
import { CongestionWindow } from './congestionWindow.js';
import { executedOutcome, type DetailBatch, type DetailOutcome } from './detailLog.js';
import { commandStatuses, type CommandStatus } from './results.js';

export interface ClientLogs {
  readonly order: LatencyLogWriter;
  readonly exec: LatencyLogWriter;
  readonly detail: DetailLogWriter;
}

export interface DirectClientOptions {
  readonly index: number;
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
  private nonce = 0;
  /** Batches in flight. */
  inFlight = 0;
  /** Measured commands in flight. */
  inFlightMeasured = 0;
  private readonly latencies: Float64Array;
  private readonly statuses: CommandStatus[] = [];
  /** Batches submitted and not yet executed or failed: logged as unfinished at the end. */
  private readonly pending = new Set<BenchBatch>();
  /** This client's identity in the detail log. */
  private readonly name: string;
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
    this.window = new CongestionWindow(opts.outstanding);
    this.latencies = new Float64Array(opts.batchSize);
    this.name = toHex(session.signer.publicKey);
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

  /** At the end of the run: a detail line for every command still in flight. */
  logUnfinished(): void {
    for (const batch of this.pending) this.detail(batch, null, () => 'unfinished');
    this.pending.clear();
  }

  private submitBatch(count: number, submitUs: number, stepUs: number): void {
    const nowUs = this.ctx.clock();
    const firstSeq = this.session.takeSeqs(count);
    const expiresAtUs = nowUs + this.opts.batchLifetimeUs;
    const commands = this.workload.commands(firstSeq, count);
    const bytes = encodeBatch(
      { mode: BatchMode.Direct, collectorKey: this.session.signer.publicKey, nonce: this.nonce++, expiresAtUs, commands },
      this.session.sign,
    );
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
    this.pending.add(batch);
    this.ctx.counters.submittedTotal += count;
    if (batch.measured) {
      this.inFlightMeasured += count;
      if (this.opts.closedLoop) this.ctx.counters.offered += count;
    }
    this.session.submit(batch, bytes, expiresAtUs);
  }

  onOrdered(b: SessionBatch, ts: number, nowUs: number, attempts: number, throttled: boolean): void {
    const batch = b as BenchBatch;
    this.window.onOrdered(attempts, throttled);
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
    this.pending.delete(batch);
    if (batch.measured) this.inFlightMeasured -= batch.count;
    const { counters } = this.ctx;
    counters.executedTotal += batch.count;
    const statuses = commandStatuses(results, batch.count, this.statuses);
    const ordered = batch.orderedUs >= 0;
    // The executed timestamp, not the ordered one: after a restart of phase 1 a batch may execute
    // under an earlier attempt's certificate.
    let ok = this.detail(batch, { executedUs: nowUs, tsUs: ts, position }, (i) => executedOutcome(statuses[i]!, ordered));
    if (batch.measured) {
      if (this.ctx.inInterval(nowUs)) counters.executedInInterval += batch.count;
      else counters.drainedExecuted += batch.count;
      for (const status of statuses) counters.statuses[status]++;
      const lat = this.latenciesOf(batch, nowUs);
      this.record(this.ctx.execHistogram, batch, lat);
      ok = this.logs.exec.recordBatch(nowUs, lat) && ok;
      // Confirmed without the ordering reported (after a restart the batch executed under an earlier
      // attempt's ack): no order line; its detail lines say executed_unordered.
      if (!ordered) counters.orderUnobserved += batch.count;
    }
    if (!ok) this.ctx.blockOnLog(Promise.all([this.logs.exec.whenWritable(), this.logs.detail.whenWritable()]).then(() => undefined));
    this.pump();
  }

  onFailed(b: SessionBatch, _reason: string, timedOut: boolean): void {
    const batch = b as BenchBatch;
    this.inFlight--;
    this.pending.delete(batch);
    this.ctx.counters.failedTotal += batch.count;
    if (batch.measured) {
      this.inFlightMeasured -= batch.count;
      this.ctx.counters.failedCommands += batch.count;
      if (timedOut) this.ctx.counters.timedOutCommands += batch.count;
    }
    const outcome: DetailOutcome = timedOut ? 'timed_out' : 'failed';
    if (!this.detail(batch, null, () => outcome)) this.ctx.blockOnLog(this.logs.detail.whenWritable());
    this.pump();
  }

  /** The batch's detail lines; `executed` null when it did not execute. */
  private detail(
    batch: BenchBatch,
    executed: { executedUs: number; tsUs: number; position: number } | null,
    outcome: (i: number) => DetailOutcome,
  ): boolean {
    const ordered = batch.orderedUs >= 0;
    const line: DetailBatch = {
      client: this.name,
      digest: toHex(batch.digest),
      orderedUs: ordered ? batch.orderedUs : null,
      executedUs: executed?.executedUs ?? null,
      tsUs: executed?.tsUs ?? (ordered ? batch.ts : null),
      position: executed?.position ?? null,
      measured: batch.measured,
    };
    return this.logs.detail.recordBatch(line, batch.firstSeq, batch.count, (i) => batch.submitUs + i * batch.stepUs, outcome);
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
