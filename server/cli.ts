#!/usr/bin/env node
/**
 * The `pompe` command (package.json bin → dist/server/cli.js):
 *
 *   pompe keygen   --out <file> --replica <id>             a replica key file
 *   pompe gen-conf --replicas <n> --out <dir> [...]         a cluster's configuration directory
 *   pompe replica  --conf <dir> --id <i> [...]              run replica i
 *   pompe process  order|exec|client <dir> [--plot f] [--json]   summarise client logs
 *   pompe bench    --conf <dir> --clients <n> --duration <s> ...  the benchmark client (client/benchCommand.ts)
 *   pompe dashboard --conf <dir> [--port p]                  a live page of every replica (server/dashboard/)
 *
 * Every command has --help. Errors of the environment (a missing file, a port in use) print one
 * line and exit 1; usage errors exit 2 (commander's convention is 1, so it is overridden).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { toHex } from '../common/bytes.js';
import { COMMIT_RULES, type CommitRule } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { registerBenchCommand } from '../client/benchCommand.js';
import { MAX_REPLICAS } from '../common/limits.js';
import { ConfError } from './conf.js';
import { registerDashboardCommand } from './dashboard/command.js';
import { genConf, keygen, LOOPBACK_PROTOCOL } from './genConf.js';
import { isLogLevel, LOG_LEVELS } from './logging.js';
import { ExitCode, runReplicaProcess } from './replica.js';

const EXIT_USAGE = 2;

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got '${value}'`);
    }
    return n;
  };
}

function hostList(value: string): string[] {
  const hosts = value
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  if (hosts.length === 0) throw new InvalidArgumentError('expected a comma-separated list of hosts');
  return hosts;
}

function commitRule(value: string): CommitRule {
  if (!(COMMIT_RULES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${COMMIT_RULES.join(', ')}`);
  return value as CommitRule;
}

function logLevel(value: string): string {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

const PORT = integer('a port', 1, 65_535);
const REPLICA_ID = integer('a replica id', 0, MAX_REPLICAS - 1);

/** Runs an action; an environment error becomes one line on stderr and exit code 1. */
async function guarded(action: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await action()) ?? ExitCode.Ok;
  } catch (error) {
    if (!(error instanceof ConfError)) throw error;
    process.stderr.write(`pompe: ${error.message}\n`);
    process.exitCode = ExitCode.Environment;
  }
}

export function buildProgram(): Command {
  const program = new Command('pompe')
    .description('pompe-ts: Byzantine fair ordering (Pompe) on HotStuff')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  program
    .command('keygen')
    .description('write a fresh Ed25519 key file for one replica (mode 0600) and print its public key')
    .requiredOption('--out <file>', 'key file to write')
    .requiredOption('--replica <id>', 'the replica the key belongs to', REPLICA_ID)
    .option('--force', 'overwrite an existing file', false)
    .action((o: { out: string; replica: number; force: boolean }) =>
      guarded(async () => {
        const publicKey = await keygen(o.out, o.replica, o.force, nodeCrypto);
        process.stdout.write(`${toHex(publicKey)}\n`);
      }),
    );

  program
    .command('gen-conf')
    .description('generate a cluster configuration directory: cluster.json, replica-<i>.secret.json, server.hosts, client.hosts')
    .requiredOption('--replicas <n>', 'number of replicas (n = 3f + 1; at least 4, or 1 with --dev-single-replica)', integer('--replicas', 1, MAX_REPLICAS))
    .requiredOption('--out <dir>', 'directory to write')
    .option('--hosts <list>', 'comma-separated hosts; replica i runs on host i mod count', hostList)
    .option('--client-hosts <list>', 'comma-separated client hosts for client.hosts', hostList)
    .option('--base-peer-port <port>', 'replica i listens for peers on base + i', PORT, 10_000)
    .option('--base-client-port <port>', 'replica i listens for clients on base + i', PORT, 20_000)
    .option('--base-http-port <port>', 'replica i serves /status and /metrics on base + i', PORT, 30_000)
    .addOption(new Option('--commit-rule <rule>', 'HotStuff commit rule').choices(COMMIT_RULES).argParser(commitRule).default(LOOPBACK_PROTOCOL.commitRule))
    .option('--slot-us <us>', 'slot length', integer('--slot-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.slotUs)
    .option('--delta-us <us>', 'Δ: sealing lag and timestamp tolerance', integer('--delta-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.deltaUs)
    .option('--view-timeout-ms <ms>', 'first view timeout', integer('--view-timeout-ms', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.viewTimeoutMs)
    .option('--min-block-interval-us <us>', 'least time between two proposals', integer('--min-block-interval-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.minBlockIntervalUs)
    .option('--idle-block-interval-us <us>', 'time between proposals when idle', integer('--idle-block-interval-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.idleBlockIntervalUs)
    .option('--dev-single-replica', 'a one-replica development cluster (tolerates no fault)', false)
    .option('--force', 'replace an existing configuration (new keys: a new cluster)', false)
    .action(
      (o: {
        replicas: number;
        out: string;
        hosts?: string[];
        clientHosts?: string[];
        basePeerPort: number;
        baseClientPort: number;
        baseHttpPort: number;
        commitRule: CommitRule;
        slotUs: number;
        deltaUs: number;
        viewTimeoutMs: number;
        minBlockIntervalUs: number;
        idleBlockIntervalUs: number;
        devSingleReplica: boolean;
        force: boolean;
      }) =>
        guarded(async () => {
          const result = await genConf({ ...o }, nodeCrypto);
          for (const w of result.warnings) process.stderr.write(`pompe gen-conf: warning: ${w}\n`);
          process.stdout.write(`wrote ${result.files.length} files to ${o.out}\n`);
        }),
    );

  program
    .command('replica')
    .description('run one replica (stops gracefully on SIGTERM or SIGINT)')
    .requiredOption('--conf <dir>', 'configuration directory (cluster.json and replica-<id>.secret.json)')
    .requiredOption('--id <i>', 'which replica to run', REPLICA_ID)
    .option('--data-dir <dir>', 'store directory (default: <conf>/data/replica-<id>)')
    .option('--log-file <file>', 'append the log to this file instead of stdout')
    .option('--log-level <level>', `one of ${LOG_LEVELS.join(', ')}`, logLevel, 'info')
    .option('--allow-uws-fallback', 'run even if the uWebSockets.js native binary is missing (slow)', false)
    .action((o: { conf: string; id: number; dataDir?: string; logFile?: string; logLevel: string; allowUwsFallback: boolean }) =>
      guarded(async () => {
        const code = await runReplicaProcess({
          confDir: o.conf,
          id: o.id,
          dataDir: o.dataDir,
          logFile: o.logFile,
          logLevel: isLogLevel(o.logLevel) ? o.logLevel : 'info',
          allowUwsFallback: o.allowUwsFallback,
        });
        // Closed handles may leave nothing to keep the loop alive, but a library timer might.
        process.exit(code);
      }),
    );

  program
    .command('process')
    .description('summarise client logs as Pompe-HS process.py does, plus throughput, fairness and plots')
    .argument('<kind>', 'order, exec or client: reads the files whose name contains it')
    .argument('<dir>', 'directory of client logs')
    .option('--plot <file>', 'also draw the figure (.svg or .png)')
    .option('--json', 'print a JSON summary instead of the text block', false)
    .action((kind: string, dir: string, o: { plot?: string; json: boolean }) =>
      guarded(async () => {
        // Loaded on demand: the plotting libraries take a while to load, and a replica needs none of them.
        const { runProcess } = await import('../experiments/process.js');
        return runProcess({ kind, dir, plot: o.plot, json: o.json });
      }),
    );

  // ---------------------------------------------------------------------------------------------
  // `pompe bench`: the benchmark client, registered by its own module (client/benchCommand.ts).
  registerBenchCommand(program);
  // ---------------------------------------------------------------------------------------------
  // `pompe dashboard`: the cluster's live page (server/dashboard/command.ts).
  registerDashboardCommand(program);

  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; everything else commander rejects is a usage error.
      process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    throw error;
  }
}

/** True when this file is the script node runs (also through the npm bin symlink). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
