/**
 * The benchmark client (Pompe-HS style): N logical clients in one process against a cluster, for a
 * fixed time, each writing client<i>.order.log, client<i>.exec.log (Pompe-HS line format, one line
 * per command) and client<i>.detail.log (for the process script's fairness check), streamed while
 * running and flushed at the end or on SIGINT/SIGTERM; then a summary.
 *
 * Timeline: connect; warmup (work submitted then is neither logged nor counted); the measured
 * interval of `durationS` (work submitted in it is logged; rates count completions inside it);
 * then no new work, in-flight work drains for up to `drainMs` (its completions are logged too), and
 * everything closes.
 *
 * Load: closed loop (default) keeps `outstanding` batches of `batchSize` commands in flight per
 * client; with `rate` the process offers that many commands per second in total (open loop), cut
 * into batches of `batchSize` or whatever `batchDelayMs` gathered, with at most `outstanding`
 * batches in flight per client (a backlog waits and its latency counts from each command's
 * scheduled time). Gateway mode sends single commands: `outstanding × batchSize` in flight.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterConfig } from '../common/config.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import { BenchContext } from './benchContext.js';
import { DirectBenchClient, type ClientLogs } from './benchClient.js';
import { GatewayBenchClient } from './benchGatewayClient.js';
import { ProgressLine } from './benchProgress.js';
import { BenchSession } from './benchSession.js';
import { formatSummary, summarizeHistogram, type BenchSummary } from './benchStats.js';
import { KvWorkload } from './benchWorkload.js';
import { wallClockUs } from './clock.js';
import { DetailLogWriter, installFlushOnSignal, LatencyLogWriter } from './latencyLog.js';
import type { SocketFactory } from './transport.js';

export type SocketSharing = 'shared' | 'per-client';

/**
 * Clients up to which `--sockets auto` gives each client its own sockets. Measured on 2 cores, 4
 * replicas, 4 clients × 4 batches of 1000: per-client sockets executed ~17.5k cmd/s against ~12.7k
 * shared, with half the late restarts, because on a shared socket each client's small Sequence
 * messages queue behind the other clients' 36 KB batches. Replicas accept 256 connections per
 * address (MAX_CONNECTIONS_PER_ADDRESS); 64 leaves room for a few benchmark processes on one host.
 */
export const AUTO_PER_CLIENT_MAX = 64;

export function resolveSocketSharing(choice: SocketSharing | 'auto', clients: number): SocketSharing {
  if (choice !== 'auto') return choice;
  return clients <= AUTO_PER_CLIENT_MAX ? 'per-client' : 'shared';
}

export interface BenchOptions {
  readonly config: ClusterConfig;
  readonly crypto: CryptoBackend;
  readonly transport: SocketFactory;
  readonly clients: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly batchSize: number;
  readonly outstanding: number;
  /** Direct mode: halve a client's window when its batches restart `late`, grow it back when they
   *  do not (client/congestionWindow.ts); false: always `outstanding` in flight. */
  readonly adaptiveWindow: boolean;
  /** Open loop: commands per second offered by the whole process; null: closed loop. */
  readonly rate: number | null;
  readonly batchDelayMs: number;
  readonly commandBytes: number;
  readonly keySpace: number;
  readonly mode: 'direct' | 'gateway';
  readonly logDir: string;
  readonly clientIndexBase: number;
  readonly sockets: SocketSharing;
  readonly verifySignatures: boolean;
  readonly timeoutMs: number;
  readonly failoverMs: number;
  readonly drainMs: number;
  readonly connectTimeoutMs: number;
  readonly retryMs: number;
  /** Where the summary goes, and the progress line (when `progress`). */
  readonly out: (text: string) => void;
  readonly progress: ((text: string) => void) | null;
  /** Close the logs and print the summary on SIGINT/SIGTERM, then exit (the CLI sets it). */
  readonly handleSignals: boolean;
  /** How to exit after a signal (default process.exit; tests replace it). */
  readonly exitOnSignal?: (code: number) => void;
}

export class BenchError extends Error {
  override readonly name = 'BenchError';
}

/** Above this many bytes queued on a socket, clients hold new batches (the replica is not reading). */
const SEND_HIGH_WATER_BYTES = 16 * 1024 * 1024;
/** The open loop's schedule runs this often; batches are cut by size or batchDelayMs in between. */
const RATE_TICK_MS = 1;
/** How often the drain checks whether everything in flight has finished. */
const DRAIN_POLL_MS = 10;

type BenchClient = DirectBenchClient | GatewayBenchClient;

async function openLogs(dir: string, index: number): Promise<ClientLogs> {
  const [order, exec, detail] = await Promise.all([
    LatencyLogWriter.open(join(dir, `client${index}.order.log`)),
    LatencyLogWriter.open(join(dir, `client${index}.exec.log`)),
    DetailLogWriter.open(join(dir, `client${index}.detail.log`)),
  ]);
  return { order, exec, detail };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runBench(o: BenchOptions): Promise<BenchSummary> {
  const clock = wallClockUs;
  const ctx = new BenchContext(clock);
  const { config } = o;
  await mkdir(o.logDir, { recursive: true });
  const logs = await Promise.all(Array.from({ length: o.clients }, (_, i) => openLogs(o.logDir, o.clientIndexBase + i)));
  const allWriters = logs.flatMap((l) => [l.order, l.exec, l.detail]);

  // One client key per session: per client, or one shared (direct mode only: a thin client is its key).
  const sessionCount = o.sockets === 'shared' && o.mode === 'direct' ? 1 : o.clients;
  const keys = Array.from({ length: sessionCount }, () => o.crypto.generateKeyPair());
  const sessions = keys.map(
    (key) =>
      new BenchSession({
        config,
        crypto: o.crypto,
        signer: o.crypto.signer(key.secretKey),
        transport: o.transport,
        clock,
        verifySignatures: o.verifySignatures,
        retryUs: o.retryMs * 1000,
        maxRetryUs: o.retryMs * 10_000,
        timeoutMs: o.timeoutMs,
      }),
  );
  const closedLoop = o.rate === null;
  const clients: BenchClient[] = logs.map((clientLogs, i) => {
    const session = sessions[sessionCount === 1 ? 0 : i]!;
    const index = o.clientIndexBase + i;
    const workload = new KvWorkload(o.commandBytes, o.keySpace, o.mode === 'direct' ? o.batchSize : 1);
    if (o.mode === 'gateway') {
      return new GatewayBenchClient(ctx, config, o.crypto, session, workload, clientLogs, {
        index,
        key: keys[i]!,
        window: o.outstanding * o.batchSize,
        timeoutMs: o.timeoutMs,
        failoverMs: o.failoverMs,
        closedLoop,
      });
    }
    return new DirectBenchClient(ctx, session, o.crypto, workload, clientLogs, {
      index,
      batchSize: o.batchSize,
      outstanding: o.outstanding,
      adaptiveWindow: o.adaptiveWindow,
      batchLifetimeUs: config.protocol.batchLifetimeUs,
      timeoutUs: o.timeoutMs * 1000,
      sendHighWaterBytes: SEND_HIGH_WATER_BYTES,
      closedLoop,
    });
  });

  const closeEverything = async (): Promise<void> => {
    for (const c of clients) c.stop();
    for (const s of sessions) s.close();
    await Promise.all(allWriters.map((w) => w.close()));
  };

  // Every session must reach a quorum before the clock starts.
  const needed = config.q;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  const connected = await Promise.race([
    Promise.all(sessions.map((s) => s.links.whenConnected(needed))).then(() => true),
    new Promise<false>((resolve) => (connectTimer = setTimeout(() => resolve(false), o.connectTimeoutMs))),
  ]);
  clearTimeout(connectTimer);
  if (!connected) {
    const reached = Math.min(...sessions.map((s) => s.links.connected));
    await closeEverything();
    throw new BenchError(`reached ${reached} of ${config.n} replicas within ${o.connectTimeoutMs} ms; ${needed} are needed (are the replicas running?)`);
  }

  const cpuAtStart = process.cpuUsage();
  const startUs = clock();
  ctx.measureStartUs = startUs + o.warmupS * 1e6;
  ctx.measureEndUs = ctx.measureStartUs + o.durationS * 1e6;
  ctx.running = true;

  const inFlightBatches = (): number => clients.reduce((sum, c) => sum + c.inFlight, 0);
  const progress =
    o.progress === null
      ? null
      : new ProgressLine(
          {
            counters: ctx.counters,
            clock,
            inFlight: () => `${inFlightBatches().toLocaleString('en-US')} ${o.mode === 'direct' ? 'batches' : 'commands'}`,
          },
          o.progress,
          startUs,
        );
  progress?.start();

  // The open loop's schedule: per client, commands become due at rate/clients per second.
  let ticker: ReturnType<typeof setTimeout> | null = null;
  if (!closedLoop) {
    const perClient = o.rate! / o.clients;
    const stepUs = 1e6 / perClient;
    const created = new Array<number>(clients.length).fill(0);
    const delayUs = o.batchDelayMs * 1000;
    const cutSize = o.mode === 'direct' ? o.batchSize : 1;
    const tick = (): void => {
      ticker = null;
      if (!ctx.running) return;
      const nowUs = clock();
      const due = Math.floor(((nowUs - startUs) * perClient) / 1e6);
      const offer = (c: BenchClient, i: number, count: number): void => {
        const firstUs = startUs + created[i]! * stepUs;
        c.enqueue(count, firstUs, stepUs);
        created[i]! += count;
        // Measured or not as a whole, by its first command, as the client decides when it submits.
        if (ctx.isMeasured(firstUs)) ctx.counters.offered += count;
      };
      clients.forEach((c, i) => {
        let pending = due - created[i]!;
        while (pending >= cutSize) {
          offer(c, i, cutSize);
          pending -= cutSize;
        }
        if (pending > 0 && nowUs - (startUs + created[i]! * stepUs) >= delayUs) offer(c, i, pending);
        c.pump();
      });
      ticker = setTimeout(tick, RATE_TICK_MS);
    };
    tick();
  } else {
    for (const c of clients) c.pump();
  }

  // The run ends at measureEnd, or earlier on a signal (then without draining).
  let finishing: Promise<BenchSummary> | null = null;
  let settle!: { resolve: (s: BenchSummary) => void; reject: (e: unknown) => void };
  const done = new Promise<BenchSummary>((resolve, reject) => (settle = { resolve, reject }));
  let endTimer: ReturnType<typeof setTimeout> | null = null;
  let removeSignalHandlers = (): void => {};
  const finish = (stoppedBy: string, drain: boolean): Promise<BenchSummary> => {
    finishing ??= (async () => {
      if (endTimer !== null) clearTimeout(endTimer);
      ctx.running = false;
      const stopUs = clock();
      if (ticker !== null) clearTimeout(ticker);
      progress?.stop();
      if (drain) {
        const drainUntil = clock() + o.drainMs * 1000;
        while (inFlightBatches() > 0 && clock() < drainUntil) await sleep(DRAIN_POLL_MS);
      }
      const unfinished = clients.reduce((sum, c) => sum + c.inFlightMeasured, 0);
      // Every command offered gets a detail line: those still in flight are logged unfinished.
      for (const c of clients) c.logUnfinished();
      const cpu = process.cpuUsage(cpuAtStart);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      await closeEverything();
      removeSignalHandlers();
      const collector = sessions.map((s) => s.collectorStats());
      const refusals: Record<string, number> = {};
      for (const s of collector) for (const [r, n] of Object.entries(s.refusals)) refusals[r] = (refusals[r] ?? 0) + n;
      const measuredUs = Math.max(0, Math.min(stopUs, ctx.measureEndUs) - ctx.measureStartUs);
      const seconds = measuredUs / 1e6;
      const c = ctx.counters;
      const summary: BenchSummary = {
        clients: o.clients,
        mode: o.mode,
        sockets: o.sockets,
        batchSize: o.batchSize,
        loop: closedLoop ? `closed loop, ${o.outstanding} outstanding` : `open loop, ${o.rate} commands/s`,
        measuredSeconds: seconds,
        warmupSeconds: o.warmupS,
        offered: c.offered,
        ordered: c.orderedInInterval,
        executed: c.executedInInterval,
        orderedPerSecond: seconds > 0 ? c.orderedInInterval / seconds : 0,
        executedPerSecond: seconds > 0 ? c.executedInInterval / seconds : 0,
        drainedExecuted: c.drainedExecuted,
        unfinished,
        orderLatency: summarizeHistogram(ctx.orderHistogram),
        execLatency: summarizeHistogram(ctx.execHistogram),
        restarts: collector.reduce((sum, s) => sum + s.restarts, 0),
        resends: collector.reduce((sum, s) => sum + s.resends, 0),
        window: windowSummary(clients, o),
        refusals,
        allCommands: { submitted: c.submittedTotal, executed: c.executedTotal, failed: c.failedTotal },
        failedCommands: c.failedCommands,
        timedOutCommands: c.timedOutCommands,
        duplicateResults: c.statuses.duplicate,
        malformedResults: c.statuses.malformed,
        notRunResults: c.statuses.seqTooFar + c.statuses.expired + c.statuses.tooManyClients,
        gatewayFailovers: clients.reduce((sum, cl) => sum + (cl instanceof GatewayBenchClient ? cl.failovers : 0), 0),
        orderUnobserved: c.orderUnobserved,
        logBackoffs: c.logBackoffs,
        sendBackoffs: c.sendBackoffs,
        linkDisconnects: sessions.reduce((sum, s) => sum + s.links.stats.disconnects, 0),
        stoppedBy,
        clientCpuSeconds: cpuSeconds,
        clientCpuUsPerCommand: ctx.counters.executedTotal === 0 ? 0 : (cpuSeconds * 1e6) / ctx.counters.executedTotal,
        logs: clients.map((cl) => ({
          index: cl.index,
          orderLines: cl.logs.order.linesWritten,
          execLines: cl.logs.exec.linesWritten,
          detailLines: cl.logs.detail.linesWritten,
        })),
      };
      o.out(formatSummary(summary));
      await writeRunRecord(o, startUs, clock(), summary);
      return summary;
    })();
    finishing.then(settle.resolve, settle.reject);
    return finishing;
  };
  if (o.handleSignals) {
    // installFlushOnSignal closes what it is given, then exits with 128 + the signal number.
    removeSignalHandlers = installFlushOnSignal([{ close: () => finish('signal', false).then(() => undefined), path: o.logDir }], {
      ...(o.exitOnSignal === undefined ? {} : { exit: o.exitOnSignal }),
    });
  }
  const untilEndMs = Math.max(0, (ctx.measureEndUs - clock()) / 1000);
  endTimer = setTimeout(() => void finish('duration', true).catch(() => {}), untilEndMs);
  return await done;
}

/** The file each benchmark process leaves beside its logs (data.sh folds them into run.json). */
export const benchRecordName = (clientIndexBase: number): string => `client${clientIndexBase}.bench.json`;

/** What this run was asked to do, when it ran and what it measured, for run.json. */
async function writeRunRecord(o: BenchOptions, startUs: number, endUs: number, summary: BenchSummary): Promise<void> {
  const options = {
    clients: o.clients,
    clientIndexBase: o.clientIndexBase,
    durationS: o.durationS,
    warmupS: o.warmupS,
    mode: o.mode,
    batchSize: o.batchSize,
    outstanding: o.outstanding,
    adaptiveWindow: o.adaptiveWindow,
    rate: o.rate,
    batchDelayMs: o.batchDelayMs,
    commandBytes: o.commandBytes,
    keySpace: o.keySpace,
    sockets: o.sockets,
    verifySignatures: o.verifySignatures,
    crypto: o.crypto.name,
    timeoutMs: o.timeoutMs,
    drainMs: o.drainMs,
  };
  const record = {
    options,
    startedAt: new Date(startUs / 1000).toISOString(),
    endedAt: new Date(endUs / 1000).toISOString(),
    summary,
  };
  await writeFile(join(o.logDir, benchRecordName(o.clientIndexBase)), `${JSON.stringify(record, null, 2)}\n`);
}

/** How the direct clients' windows moved (null: gateway mode, or a fixed window). */
function windowSummary(clients: readonly BenchClient[], o: BenchOptions): BenchSummary['window'] {
  const direct = clients.filter((c): c is DirectBenchClient => c instanceof DirectBenchClient);
  if (!o.adaptiveWindow || direct.length === 0) return null;
  return {
    max: o.outstanding,
    halvings: direct.reduce((sum, c) => sum + c.window.halvings, 0),
    smallest: Math.min(...direct.map((c) => c.window.smallestLimit)),
    final: direct.reduce((sum, c) => sum + c.window.limit, 0) / direct.length,
  };
}
