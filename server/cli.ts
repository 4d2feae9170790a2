#!/usr/bin/env node
/**
 * The `pompe` command (package.json bin → dist/server/cli.js):
 *
 *   pompe keygen   --out <file> --replica <id> | --client  a replica's key file (on its host), or a client's
 *   pompe gen-conf --replicas <n> --out <dir> [...]         a cluster's configuration directory
 *   pompe replica  --conf <dir> --id <i> [...]              run replica i
 *   pompe systemd  --conf <dir> --id <i> [...]              a systemd unit that supervises replica i
 *   pompe process  order|exec|client <dir> [--plot f] [--json]   summarise client logs
 *   pompe bench    --conf <dir> --clients <n> --duration <s> ...  the benchmark client (client/benchCommand.ts)
 *   pompe dashboard --conf <dir> [--port p]                  a live page of every replica (server/dashboard/)
 *   pompe flood    --conf <dir> --kind valid|junk|fresh --duration <s>   a flooding client (client/floodCommand.ts)
 *
 * Every command has --help. Errors of the environment (a missing file, a port in use) print one
 * line and exit 1; usage errors exit 2 (commander's convention is 1, so it is overridden).
 */
import { realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { toHex } from '../common/bytes.js';
import { COMMIT_RULES, MIN_BFT_REPLICAS, MIN_CHECKPOINT_INTERVAL_SLOTS, type CommitRule } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { registerBenchCommand } from '../client/benchCommand.js';
import { registerFloodCommand } from '../client/floodCommand.js';
import { MAX_REPLICAS } from '../common/limits.js';
import { ConfError } from './conf.js';
import { BYZANTINE_KINDS, type ByzantineKind } from './faultInjection.js';
import { registerDashboardCommand } from './dashboard/command.js';
import { clientKeygen, genConf, keygen, LOOPBACK_PROTOCOL, readClientKeys, readPublicKeys } from './genConf.js';
import { isLogFormat, isLogLevel, LOG_FORMATS, LOG_LEVELS, type LogFormat } from './logging.js';
import { ExitCode, runReplicaProcess } from './replica.js';
import { systemdUnit, unitName } from './systemdUnit.js';
import { packageVersion } from './version.js';
import { isServerBackendChoice, SERVER_BACKEND_CHOICES, SERVER_BACKEND_ENV, type ServerBackendChoice } from './transport/backendChoice.js';

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
  const hosts = value.split(',').map((h) => h.trim());
  // An empty entry is a typo (a,,b or a trailing comma), and dropping it would shift replicas to other hosts.
  if (hosts.some((h) => h.length === 0)) throw new InvalidArgumentError(`expected a comma-separated list of hosts without empty entries, got '${value}'`);
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

function logFormat(value: string): LogFormat {
  if (!isLogFormat(value)) throw new InvalidArgumentError(`expected one of ${LOG_FORMATS.join(', ')}`);
  return value;
}

function serverBackend(value: string): ServerBackendChoice {
  if (!isServerBackendChoice(value)) throw new InvalidArgumentError(`expected one of ${SERVER_BACKEND_CHOICES.join(', ')}`);
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
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  program
    .command('keygen')
    .description(
      "write a fresh Ed25519 key file for one replica (mode 0600) and print its public key; run it on the replica's host, " +
        'so the secret never leaves it, and give the printed keys to gen-conf --public-keys; or, with --client, a client key file',
    )
    .requiredOption('--out <file>', 'key file to write (in the conf directory: replica-<id>.secret.json)')
    .option('--replica <id>', 'the replica the key belongs to', REPLICA_ID)
    .option('--client', 'a client key file instead (its identity: for PompeClient.connect({ key }) and an allow-list)', false)
    .option('--force', 'overwrite an existing file', false)
    .action((o: { out: string; replica?: number; client: boolean; force: boolean }) =>
      guarded(async () => {
        if ((o.replica === undefined) === !o.client) {
          process.stderr.write('pompe keygen: give exactly one of --replica <id> and --client\n');
          return EXIT_USAGE;
        }
        const publicKey = o.client ? await clientKeygen(o.out, o.force, nodeCrypto) : await keygen(o.out, o.replica!, o.force, nodeCrypto);
        process.stdout.write(`${toHex(publicKey)}\n`);
      }),
    );

  program
    .command('gen-conf')
    .description(
      'generate a cluster configuration directory: cluster.json, replica-<i>.secret.json (unless --public-keys), ' +
        'replica-<i>.tls.crt and .tls.key (with --tls), server.hosts, client.hosts',
    )
    .requiredOption('--replicas <n>', 'number of replicas (n = 3f + 1; at least 4, or 1 with --dev-single-replica)', integer('--replicas', 1, MAX_REPLICAS))
    .requiredOption('--out <dir>', 'directory to write')
    .option(
      '--public-keys <keys>',
      'the replicas\' public keys (hex, in id order) as printed by `pompe keygen` on each host: comma-separated, or a file with one per line; no secret key is written',
    )
    .option('--tls', 'serve wss://: make a cluster CA (its key is not kept) and a certificate per replica for its host', false)
    .option('--hosts <list>', 'comma-separated hosts; replica i runs on host i mod count', hostList)
    .option('--client-hosts <list>', 'comma-separated client hosts for client.hosts', hostList)
    .option('--base-peer-port <port>', 'replica i listens for peers on base + i', PORT, 10_000)
    .option('--base-client-port <port>', 'replica i listens for clients on base + i', PORT, 20_000)
    .option('--base-http-port <port>', 'replica i serves /status and /metrics on base + i', PORT, 30_000)
    .addOption(new Option('--commit-rule <rule>', 'HotStuff commit rule').choices(COMMIT_RULES).argParser(commitRule).default(LOOPBACK_PROTOCOL.commitRule))
    .option('--slot-us <us>', 'slot length', integer('--slot-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.slotUs)
    // No commander default: gen-conf must see whether Δ was chosen (it warns when a crowded host keeps the default).
    .option('--delta-us <us>', `Δ: sealing lag and timestamp tolerance (default: ${LOOPBACK_PROTOCOL.deltaUs})`, integer('--delta-us', 1, Number.MAX_SAFE_INTEGER))
    .option('--view-timeout-ms <ms>', 'first view timeout', integer('--view-timeout-ms', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.viewTimeoutMs)
    .option('--min-block-interval-us <us>', 'least time between two proposals', integer('--min-block-interval-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.minBlockIntervalUs)
    .option('--idle-block-interval-us <us>', 'time between proposals when idle', integer('--idle-block-interval-us', 1, Number.MAX_SAFE_INTEGER), LOOPBACK_PROTOCOL.idleBlockIntervalUs)
    .option(
      '--checkpoint-interval-slots <slots>',
      'K: a checkpoint after the first block crossing a multiple of K slots',
      integer('--checkpoint-interval-slots', MIN_CHECKPOINT_INTERVAL_SLOTS, Number.MAX_SAFE_INTEGER),
      LOOPBACK_PROTOCOL.checkpointIntervalSlots,
    )
    .option('--dev-single-replica', 'a one-replica development cluster (tolerates no fault)', false)
    .option('--client-keys <path>', 'admit only these client keys: a directory of client key files (pompe keygen --client), or a file of hex public keys, one per line')
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
        deltaUs?: number;
        viewTimeoutMs: number;
        minBlockIntervalUs: number;
        idleBlockIntervalUs: number;
        checkpointIntervalSlots: number;
        devSingleReplica: boolean;
        clientKeys?: string;
        force: boolean;
        publicKeys?: string;
        tls: boolean;
      }, command: Command) =>
        guarded(async () => {
          // Said in terms of the options: the config's own check would name its JSON key.
          if (o.devSingleReplica && o.replicas !== 1) command.error(`error: --dev-single-replica is a one-replica cluster: give --replicas 1, not ${o.replicas}`);
          if (!o.devSingleReplica && o.replicas < MIN_BFT_REPLICAS) {
            command.error(
              `error: --replicas ${o.replicas}: tolerating f faults takes n = 3f + 1 replicas, at least ${MIN_BFT_REPLICAS}; ` +
                'for a one-replica development cluster (no fault tolerated) give --replicas 1 --dev-single-replica',
            );
          }
          const publicKeys = o.publicKeys === undefined ? undefined : await readPublicKeys(o.publicKeys);
          const { clientKeys: keysPath, ...rest } = o;
          const clientKeys = keysPath === undefined ? undefined : await readClientKeys(keysPath, nodeCrypto);
          const result = await genConf({ ...rest, publicKeys, ...(clientKeys === undefined ? {} : { clientKeys }) }, nodeCrypto);
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
    .addOption(
      new Option('--log-format <format>', 'JSON lines, or pretty lines for a person (auto: pretty on a terminal)').choices(LOG_FORMATS).argParser(logFormat).default('auto'),
    )
    .addOption(
      new Option(
        '--server-backend <backend>',
        'server library for the ports: auto (uWebSockets.js if a build loads on this Node, else ws with a warning), uws (refuse to start without it: benchmarks), ws',
      )
        .choices(SERVER_BACKEND_CHOICES)
        .argParser(serverBackend)
        .env(SERVER_BACKEND_ENV)
        .default('auto'),
    )
    .option('--tls-cert <file>', "this replica's TLS certificate when cluster.json has tls (default: <conf>/replica-<id>.tls.crt)")
    .option('--tls-key <file>', "this replica's TLS key (default: <conf>/replica-<id>.tls.key)")
    .addOption(
      new Option('--byzantine <kind>', `misbehave on purpose, for experiments under attack (${BYZANTINE_KINDS.join(', ')}; see server/faultInjection.ts)`).choices([
        ...BYZANTINE_KINDS,
      ]),
    )
    .action(
      (o: {
        conf: string;
        id: number;
        dataDir?: string;
        logFile?: string;
        logLevel: string;
        logFormat: LogFormat;
        serverBackend: ServerBackendChoice;
        tlsCert?: string;
        tlsKey?: string;
        byzantine?: ByzantineKind;
      }) =>
        guarded(async () => {
          const code = await runReplicaProcess({
            confDir: o.conf,
            id: o.id,
            dataDir: o.dataDir,
            logFile: o.logFile,
            logLevel: isLogLevel(o.logLevel) ? o.logLevel : 'info',
            logFormat: o.logFormat,
            serverBackend: o.serverBackend,
            tlsCertFile: o.tlsCert,
            tlsKeyFile: o.tlsKey,
            byzantine: o.byzantine,
          });
          // Closed handles may leave nothing to keep the loop alive, but a library timer might.
          process.exit(code);
        }),
    );

  program
    .command('systemd')
    .description("write a systemd unit that runs replica <id> from this host's node and pompe (restart on failure, own user, limits)")
    .requiredOption('--conf <dir>', 'configuration directory on this host')
    .requiredOption('--id <i>', 'which replica', REPLICA_ID)
    .option('--user <name>', 'the system user the replica runs as', 'pompe')
    .option('--data-dir <dir>', 'store directory (default: /var/lib/pompe/replica-<id>, made by systemd)')
    .option('--out <file>', 'write the unit here (e.g. /etc/systemd/system/pompe-replica-<id>.service) instead of stdout')
    .action((o: { conf: string; id: number; user: string; dataDir?: string; out?: string }) =>
      guarded(async () => {
        const unit = systemdUnit({ id: o.id, confDir: o.conf, dataDir: o.dataDir, user: o.user, nodePath: process.execPath, cliPath: realpathSync(fileURLToPath(import.meta.url)) });
        if (o.out === undefined) {
          process.stdout.write(unit);
          return;
        }
        await mkdir(dirname(o.out), { recursive: true });
        await writeFile(o.out, unit, { mode: 0o644 });
        process.stderr.write(`wrote ${o.out} (${unitName(o.id)})\n`);
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
        // Both checked before reading what may be gigabytes of logs.
        if (o.plot !== undefined) {
          const { missingPlotLibraries } = await import('../experiments/process/plot.js');
          const missing = await missingPlotLibraries();
          if (missing !== null) throw new ConfError('missing', o.plot, missing);
        }
        const { isLogKind, latencyLogFiles } = await import('../experiments/process/logFiles.js');
        if (isLogKind(kind) && (await latencyLogFiles(dir, kind).catch(() => null))?.length === 0) {
          throw new ConfError('missing', dir, `no ${kind} logs there (files whose name contains '${kind}', e.g. client0.${kind}.log)`);
        }
        // Loaded on demand: a replica needs none of the process script.
        const { runProcess } = await import('../experiments/process.js');
        return runProcess({ kind, dir, plot: o.plot, json: o.json });
      }),
    );

  // ---------------------------------------------------------------------------------------------
  // `pompe bench`: the benchmark client, registered by its own module (client/benchCommand.ts).
  registerBenchCommand(program);
  registerFloodCommand(program);
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
