/**
 * `pompe bench`: the benchmark client's command line (registered on the `pompe` CLI by
 * registerBenchCommand; also runnable on its own: `node dist/client/benchCommand.js bench ...`).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { BATCH_HEADER_BYTES, BATCH_TRAILER_BYTES, BatchMode, commandBytes } from '../common/batch.js';
import { cryptoBackend, isCryptoBackendName } from '../common/crypto/index.js';
import { MAX_COMMANDS_PER_BATCH, MAX_CONNECTIONS_PER_ADDRESS } from '../common/limits.js';
import { AUTO_PER_CLIENT_MAX, BenchError, resolveSocketSharing, runBench, type BenchOptions, type SocketSharing } from './bench.js';
import { DEFAULT_COMMAND_BYTES, MIN_COMMAND_BYTES } from './benchWorkload.js';
import { isPompeClientError } from './errors.js';
import { loadClusterConfig } from './nodeDefaults.js';
import { wsTransport } from './wsTransport.js';
import { isEntryPoint } from './entryPoint.js';

/** Exit codes: the run could not start or measured nothing; bad command line or config. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** Default in-flight cap per client in the open loop (--rate): high enough not to throttle the
 *  offered load on a healthy cluster, bounded so a stalled one does not eat the client's memory. */
const DEFAULT_OPEN_LOOP_OUTSTANDING = 64;
/** Largest key space: keys are u64 on the wire but drawn as doubles; 2^48 is plenty. */
const MAX_KEY_SPACE = 2 ** 48;
/** Largest command the benchmark builds (the cluster's maxBatchBytes bounds it further). */
const MAX_BENCH_COMMAND_BYTES = 64 * 1024;

export function intArg(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return n;
  };
}

export function secondsArg(name: string, min: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > 86_400) throw new InvalidArgumentError(`${name} must be a number of seconds from ${min} to 86400`);
    return n;
  };
}

interface RawOptions {
  conf: string;
  clients: number;
  duration: number;
  batchSize: number;
  outstanding?: number;
  rate?: number;
  batchDelayMs: number;
  commandBytes: number;
  mode: 'direct' | 'gateway';
  logDir: string;
  clientIndexBase: number;
  keySpace: number;
  warmup: number;
  sockets: SocketSharing | 'auto';
  verify: boolean;
  adaptiveWindow: boolean;
  timeoutMs: number;
  failoverMs: number;
  drainMs: number;
  connectTimeoutMs: number;
  retryMs: number;
  crypto: string;
}

const HELP_AFTER = `
Runs <clients> logical clients in this process for --duration seconds (after --warmup), then
drains what is in flight (up to --drain-ms) and prints a summary. Each client i (numbered from
--client-index-base) writes, in --log-dir:
  client<i>.order.log, client<i>.exec.log   one line per command, Pompe-HS format:
      2026-11-20 12:00:00.123456 [pompe info] 0.002481   (completion time, latency in s)
  client<i>.detail.log                      submit/ordered/executed µs, ts, position, index
Summarise them with: pompe process exec|order <log-dir>

Load: closed loop by default (--outstanding batches in flight per client); --rate offers that many
commands per second in total (open loop; --outstanding then caps batches in flight per client,
default ${DEFAULT_OPEN_LOOP_OUTSTANDING}). Commands are kv puts: 1 op byte, 2 key-length bytes, an
8-byte key from [0, --key-space), and the rest value (32 bytes in all by default).
Direct mode: a client whose batches restart late again and again (the cluster orders slower than Δ) halves its
window of batches in flight and grows it back by one per window of batches ordered at the first
attempt, up to --outstanding (--no-adaptive-window: always --outstanding; offered beyond capacity,
restarts then feed on themselves and throughput collapses).
Gateway mode sends single commands to a replica, --outstanding x --batch-size in flight per client.
SIGINT/SIGTERM stop the run at once: the logs are flushed and the summary printed.`;

export function registerBenchCommand(program: Command): Command {
  return program
    .command('bench')
    .description('Benchmark client: N clients against a cluster, Pompe-HS order/exec logs, summary')
    .requiredOption('--conf <dir>', 'cluster config directory (holding cluster.json) or file')
    .requiredOption('--clients <n>', 'logical clients in this process', intArg('--clients', 1, 10_000))
    .requiredOption('--duration <s>', 'measured run time in seconds', secondsArg('--duration', 0.001))
    .option('--batch-size <n>', 'commands per batch', intArg('--batch-size', 1, MAX_COMMANDS_PER_BATCH), 1000)
    .option('--outstanding <n>', 'batches in flight per client (closed loop; cap with --rate)', intArg('--outstanding', 1, 100_000))
    .option('--no-adaptive-window', 'keep --outstanding batches in flight even while batches restart late (no back-off)')
    .option('--rate <commands/s>', 'open loop: commands per second offered by this process', intArg('--rate', 1, 100_000_000))
    .option('--batch-delay-ms <ms>', 'open loop: a partial batch leaves after this long', intArg('--batch-delay-ms', 0, 10_000), 5)
    .option('--command-bytes <n>', 'bytes per command', intArg('--command-bytes', MIN_COMMAND_BYTES, MAX_BENCH_COMMAND_BYTES), DEFAULT_COMMAND_BYTES)
    .addOption(new Option('--mode <mode>', 'who forms batches').choices(['direct', 'gateway']).default('direct'))
    .option('--log-dir <dir>', 'where the client logs go', 'experiments/log')
    .option('--client-index-base <n>', 'number of the first client in log names', intArg('--client-index-base', 0, 1_000_000), 0)
    .option('--key-space <n>', 'distinct keys written', intArg('--key-space', 1, MAX_KEY_SPACE), 100_000)
    .option('--warmup <s>', 'seconds before measuring (not logged, not counted)', secondsArg('--warmup', 0), 0)
    .addOption(
      new Option('--sockets <how>', `sockets to each replica: one per client, one shared by all, or auto (per client up to ${AUTO_PER_CLIENT_MAX} clients)`)
        .choices(['auto', 'per-client', 'shared'])
        .default('auto'),
    )
    .option('--no-verify', 'do not check replicas’ ack and execution signatures')
    .option('--timeout-ms <ms>', 'a batch not executed within this is abandoned and counted failed', intArg('--timeout-ms', 1, 120_000), 30_000)
    .option('--failover-ms <ms>', 'gateway mode: resend through the next replica after this', intArg('--failover-ms', 1, 120_000), 2_000)
    .option('--drain-ms <ms>', 'after the duration, wait this long for in-flight work', intArg('--drain-ms', 0, 600_000), 3_000)
    .option('--connect-timeout-ms <ms>', 'wait this long for a quorum of replicas', intArg('--connect-timeout-ms', 1, 600_000), 10_000)
    .option('--retry-ms <ms>', 're-send to silent replicas after this (doubling)', intArg('--retry-ms', 1, 60_000), 500)
    .addOption(new Option('--crypto <backend>', 'signature checks: node:crypto or noble').choices(['node', 'noble']).default('node'))
    .addHelpText('after', HELP_AFTER)
    .action(async (raw: RawOptions) => {
      process.exitCode = await benchAction(raw);
    });
}

async function benchAction(raw: RawOptions): Promise<number> {
  const crypto = cryptoBackend(isCryptoBackendName(raw.crypto) ? raw.crypto : 'node');
  let config;
  try {
    config = await loadClusterConfig(raw.conf, crypto);
  } catch (error) {
    process.stderr.write(`bench: ${isPompeClientError(error) ? error.message : String(error)}\n`);
    return EXIT_USAGE;
  }
  const sockets = resolveSocketSharing(raw.sockets, raw.clients);
  const options: BenchOptions = {
    config,
    crypto,
    transport: wsTransport,
    clients: raw.clients,
    durationS: raw.duration,
    warmupS: raw.warmup,
    batchSize: raw.batchSize,
    outstanding: raw.outstanding ?? (raw.rate === undefined ? 4 : DEFAULT_OPEN_LOOP_OUTSTANDING),
    rate: raw.rate ?? null,
    batchDelayMs: raw.batchDelayMs,
    commandBytes: raw.commandBytes,
    keySpace: raw.keySpace,
    mode: raw.mode,
    logDir: raw.logDir,
    clientIndexBase: raw.clientIndexBase,
    sockets,
    verifySignatures: raw.verify,
    adaptiveWindow: raw.adaptiveWindow,
    timeoutMs: raw.timeoutMs,
    failoverMs: raw.failoverMs,
    drainMs: raw.drainMs,
    connectTimeoutMs: raw.connectTimeoutMs,
    retryMs: raw.retryMs,
    out: (text) => void process.stdout.write(text),
    progress: process.stderr.isTTY ? (text) => void process.stderr.write(text) : null,
    handleSignals: true,
  };
  if (sockets === 'per-client' && raw.clients > MAX_CONNECTIONS_PER_ADDRESS) {
    process.stderr.write(`bench: --sockets per-client opens ${raw.clients} connections to each replica; replicas accept ${MAX_CONNECTIONS_PER_ADDRESS} per address\n`);
    return EXIT_USAGE;
  }
  const perBatch = raw.mode === 'direct' ? raw.batchSize : 1;
  if (BATCH_HEADER_BYTES + BATCH_TRAILER_BYTES + perBatch * commandBytes(BatchMode.Direct, raw.commandBytes) > config.protocol.maxBatchBytes) {
    process.stderr.write(
      `bench: a batch of ${perBatch} command(s) of ${raw.commandBytes} bytes exceeds the cluster's maxBatchBytes (${config.protocol.maxBatchBytes}); lower --batch-size or --command-bytes\n`,
    );
    return EXIT_USAGE;
  }
  try {
    const summary = await runBench(options);
    if (summary.executed + summary.drainedExecuted === 0) {
      process.stderr.write('bench: no command executed\n');
      return EXIT_FAILED;
    }
    return 0;
  } catch (error) {
    if (error instanceof BenchError) {
      process.stderr.write(`bench: ${error.message}\n`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

if (isEntryPoint(import.meta.url)) {
  const program = new Command('pompe');
  registerBenchCommand(program);
  await program.parseAsync(process.argv);
}
