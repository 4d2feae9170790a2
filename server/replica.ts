/**
 * The replica process: the composition root that wires the pure ReplicaCore to disk, network,
 * time, logs and metrics (DESIGN.md "The house"). Shaped like lodestar's node: `startReplica(opts,
 * modules)` starts the modules in order and registers each one's shutdown as it goes, so a failed
 * start and a normal stop both close what was started, in reverse:
 *
 *   logger → conf → HTTP (/status answers from here on) → store (open) → rate sampler
 *   → transport (constructed) → core host (restore the latest checkpoint, replay the blocks above
 *     it, start the drive loop) → transport (listening)
 *
 * The drive loop steps the core through a StepObserver (stepObserver.ts), which feeds the
 * replica-side latency histograms, the leader and readiness, and the events an embedding
 * application subscribes to (`replica.events`, events.ts).
 *
 * Stopping (SIGTERM, SIGINT, or close()): stop taking input, let the persists already started
 * finish and their messages leave, close the transport, close the store (its writer drains, then
 * the database), flush the log. A fatal error (an assertion in a core, a failed write, a state
 * machine whose snapshot or restore throws) is logged loudly and nothing runs on after it: the
 * `pompe replica` process exits non-zero at once; an embedded replica (startReplica) stops, closes
 * what it started and reports the error through `stopped` — it never exits the embedding process.
 */
import { resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { toHex } from '../common/bytes.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { CryptoBackend } from '../common/crypto/types.js';
import type { ReplicaId } from '../common/ids.js';
import { wallClockUs } from '../client/clock.js';
import { KvStore } from '../ordering/kvStore.js';
import type { ReplicaCore } from '../ordering/replica.js';
import type { StateMachine } from '../ordering/stateMachine.js';
import { ConfError, defaultDataDir, loadReplicaConf, markerFileName, readStoreMarker, writeStoreMarker, type ReplicaConf } from './conf.js';
import { CoreHost } from './coreHost.js';
import { DiskUsage } from './diskUsage.js';
import type { DrivenCore } from './drive.js';
import { injectFaults, type ByzantineKind } from './faultInjection.js';
import { ExecutedChain } from './executedChain.js';
import { checkHealth, checkReady, PersistWatch, type Check } from './health.js';
import { HttpListenError, HttpServer } from './http.js';
import { ReplicaEvents, type ReplicaEventSource } from './events.js';
import { createLogger, type LogFormat, type ServerLogger } from './logging.js';
import { ReplicaMetrics } from './metrics.js';
import { PhaseLatency } from './phaseLatency.js';
import { replicaRoutes } from './replicaRoutes.js';
import { StatusStream } from './statusStream.js';
import { StepObserver } from './stepObserver.js';
import { packageVersion } from './version.js';
import { StoreOpenError, StoreWriteError } from './store/errors.js';
import { DEFAULT_REPLAY_CHUNK_BLOCKS, LevelReplicaStorage } from './store/replicaStore.js';
import { fallbackWarning, UwsUnavailableError, type ServerBackendChoice } from './transport/backendChoice.js';
import { ListenError } from './transport/serverBackend.js';
import { Transport, type ServerInfo } from './transport/transport.js';
import { bootStatus, buildStatus, CLUSTER_ID_HEX_CHARS, type BootStatusJson, type ReplicaStatusJson } from './status.js';
import { missingReplicaProcessEnv, REPLICA_PROCESS_ENV } from './processEnv.js';

export type {
  CommittedEvent,
  ExecutedCommand,
  ExecutedEvent,
  FaultEvent,
  PeerEvent,
  ReplicaEventListener,
  ReplicaEventMap,
  ReplicaEventName,
  ReplicaEventSource,
  ViewChangeEvent,
} from './events.js';

/** How long a stop waits for started persists and their sends before closing anyway. A synced
 *  LevelDB batch takes milliseconds; seconds means the disk is failing, and waiting longer helps
 *  no one. */
export const SHUTDOWN_DRAIN_TIMEOUT_MS = 5_000;

/** How often the rates in /status are sampled. */
const RATE_SAMPLE_INTERVAL_MS = 1_000;

/** Process exit codes (sysexits.h where one fits). */
export const ExitCode = {
  Ok: 0,
  /** The environment is wrong: config, ports, store, no uWS where it was required. Fix it and start again. */
  Environment: 1,
  /** A broken invariant or a failed write: a bug or a failing disk. */
  Fatal: 70,
  /** A second signal during shutdown. */
  Interrupted: 130,
} as const;

export interface ReplicaOptions {
  readonly confDir: string;
  readonly id: number;
  /** Default: <confDir>/data/replica-<id>. */
  readonly dataDir?: string | undefined;
  /** Append the log here instead of writing it to stdout. */
  readonly logFile?: string | undefined;
  readonly logLevel?: LevelWithSilent | undefined;
  /** JSON lines, or pretty lines for a terminal (logging.ts). Default: auto. */
  readonly logFormat?: LogFormat | undefined;
  /** Which server library serves the ports (server/transport/backendChoice.ts). Default: auto. */
  readonly serverBackend?: ServerBackendChoice | undefined;
  /** This replica's TLS certificate and key, when not <confDir>/replica-<id>.tls.crt and .tls.key. */
  readonly tlsCertFile?: string | undefined;
  readonly tlsKeyFile?: string | undefined;
  /** Blocks per chunk when replaying the committed chain at start. */
  readonly replayChunkBlocks?: number | undefined;
  /** Misbehave on purpose, for experiments and tests under attack (server/faultInjection.ts). */
  readonly byzantine?: ByzantineKind | undefined;
}

/** Replaceable parts, for embedding the replica or testing it. */
export interface ReplicaModules {
  /** The application (default: the key-value store). */
  readonly stateMachine?: StateMachine;
  readonly crypto?: CryptoBackend;
  readonly logger?: ServerLogger;
  /** Called once on a fatal error, after it is logged. Default: the replica stops and closes what
   *  it started, and `stopped` resolves with the error (the process is not touched). */
  readonly onFatal?: (error: unknown, logger: ServerLogger) => void;
}

/** Problems of the environment, reported as one line without a stack trace. */
export function isEnvironmentError(error: unknown): error is Error {
  return (
    error instanceof ConfError ||
    error instanceof StoreOpenError ||
    error instanceof ListenError ||
    error instanceof HttpListenError ||
    error instanceof UwsUnavailableError
  );
}

interface Closer {
  readonly name: string;
  close(): Promise<void> | void;
}

export class RunningReplica {
  private closing: Promise<void> | null = null;
  private fatal: unknown = null;
  private resolveStopped: (outcome: { readonly error: unknown }) => void = () => undefined;
  /** Resolves once the replica has stopped and closed everything: with the fatal error that
   *  stopped it, or error null after close(). */
  readonly stopped = new Promise<{ readonly error: unknown }>((resolve) => (this.resolveStopped = resolve));
  /** What serves the ports (uws or ws, TLS or not, and why ws when uWS did not load); set once the
   *  transport listens. */
  server: ServerInfo | null = null;

  constructor(
    readonly conf: ReplicaConf,
    readonly logger: ServerLogger,
    /** The /status document: the full one while the core runs, a shorter one (phase, progress)
     *  while it is being built (the store opening, a checkpoint restoring, blocks replaying). */
    readonly status: () => ReplicaStatusJson | BootStatusJson,
    private readonly closers: Closer[],
    /** Commits, executions, view changes, peers and faults as they happen (events.ts). */
    readonly events: ReplicaEventSource,
    /** The bound HTTP port (the configured one, or the one the system chose for port 0). */
    readonly httpPort: number,
  ) {}

  /** The full /status document; throws while the core is being built (see status). */
  runningStatus(): ReplicaStatusJson {
    const s = this.status();
    if (!('view' in s)) throw new Error(`the replica is ${s.phase}, not running`);
    return s;
  }

  /** Stops gracefully (idempotent); resolves when everything is closed and the log flushed. */
  close(): Promise<void> {
    this.closing ??= closeAll(this.closers, this.logger).then(() => this.resolveStopped({ error: this.fatal }));
    return this.closing;
  }

  /** The embedded default for a fatal error: stop, close, report through `stopped`. */
  fail(error: unknown): void {
    if (this.fatal === null) this.fatal = error ?? new Error('fatal error');
    void this.close();
  }
}

async function closeAll(closers: Closer[], logger: ServerLogger): Promise<void> {
  for (const c of closers.splice(0).reverse()) {
    try {
      await c.close();
    } catch (error) {
      // Keep closing the rest: a transport that fails to close must not leave the store open.
      logger.error({ err: error, module: c.name }, 'error while closing');
    }
  }
}

/** Starts a replica; on failure, closes what was started and rethrows. */
export async function startReplica(opts: ReplicaOptions, modules: ReplicaModules = {}): Promise<RunningReplica> {
  const startedAtMs = Date.now();
  const crypto = modules.crypto ?? nodeCrypto;
  const logger =
    modules.logger ?? createLogger({ name: `replica-${opts.id}`, level: opts.logLevel ?? 'info', file: opts.logFile, format: opts.logFormat ?? 'auto' });
  const closers: Closer[] = [];
  if (modules.logger === undefined) closers.push({ name: 'logger', close: () => logger.close() });
  let started = false;
  closers.push({
    name: 'last words',
    // A start refused for the environment is reported once, by the caller (see below).
    close: () => {
      if (started || opts.logFile !== undefined) logger.info({ uptimeMs: Date.now() - startedAtMs }, 'replica stopped');
    },
  });
  try {
    const replica = await startModules(opts, modules, crypto, logger, closers, startedAtMs);
    started = true;
    return replica;
  } catch (error) {
    // An environment problem is thrown to the caller, who reports it (`pompe replica`: one line on
    // stderr); it goes into the log too only when the log is a file someone may read later.
    if (!isEnvironmentError(error)) logger.fatal({ err: error }, 'replica failed to start');
    else if (opts.logFile !== undefined) logger.error({ problem: error.name }, error.message);
    await closeAll(closers, logger);
    throw error;
  }
}

async function startModules(
  opts: ReplicaOptions,
  modules: ReplicaModules,
  crypto: CryptoBackend,
  logger: ServerLogger,
  closers: Closer[],
  startedAtMs: number,
): Promise<RunningReplica> {
  // Configuration.
  const conf = await loadReplicaConf(opts.confDir, opts.id, crypto, opts);
  const { config, self } = conf;
  const me = config.replicas[self]!;
  const p = config.protocol;
  logger.info(
    {
      replica: self,
      n: config.n,
      f: config.f,
      q: config.q,
      clusterId: toHex(config.clusterId).slice(0, 16),
      commitRule: p.commitRule,
      slotUs: p.slotUs,
      deltaUs: p.deltaUs,
      viewTimeoutMs: p.viewTimeoutMs,
      minBlockIntervalUs: p.minBlockIntervalUs,
      idleBlockIntervalUs: p.idleBlockIntervalUs,
      maxBatchBytes: p.maxBatchBytes,
      checkpointIntervalSlots: p.checkpointIntervalSlots,
      host: me.host,
      peerPort: me.peerPort,
      clientPort: me.clientPort,
      httpPort: me.httpPort,
    },
    'starting replica',
  );

  // Operator endpoints first: /status answers from the first second, saying what the replica is
  // doing (opening its store — LevelDB replays its log —, restoring its checkpoint, replaying
  // blocks) until it runs.
  const dataDir = resolve(opts.dataDir ?? defaultDataDir(opts.confDir, self));
  const metrics = new ReplicaMetrics();
  metrics.identify(self, toHex(config.clusterId).slice(0, CLUSTER_ID_HEX_CHARS), packageVersion());
  const events = new ReplicaEvents((name, error) => logger.error({ err: error, event: name }, 'a replica event listener threw (the replica runs on)'));
  const latency = new PhaseLatency(metrics.phaseSeconds);
  const observer = new StepObserver(self, latency, events, { view: 0, leading: false }, wallClockUs());
  const persistWatch = new PersistWatch(() => Date.now());
  const disk = new DiskUsage(dataDir);
  const chain = new ExecutedChain(modules.stateMachine ?? new KvStore(), crypto);
  let host: CoreHost | null = null;
  let transport: Transport | null = null;
  let storage: LevelReplicaStorage | null = null;
  let fatal: string | null = null;

  const health = (): Check =>
    checkHealth({ running: host !== null ? host.phase !== 'stopped' && fatal === null : true, fatal, oldestPendingWriteMs: persistWatch.oldestPendingMs() });
  const commitAgeMs = (): number => (wallClockUs() - observer.lastCommitUs) / 1000;
  const ready = (): Check => {
    const core = host?.core ?? null;
    if (core === null || host?.phase !== 'running') return health().ok ? { ok: false, reason: `the replica is ${host?.phase ?? 'starting'}` } : health();
    return checkReady({
      health: health(),
      peersUp: transport?.peersUp().length ?? 0,
      peersNeeded: config.q - 1,
      peerCount: config.n - 1,
      committedHeight: core.status().committedHeight,
      commitAgeMs: commitAgeMs(),
      idleBlockIntervalMs: p.idleBlockIntervalUs / 1000,
      viewTimeoutMs: p.viewTimeoutMs,
    });
  };
  const version = packageVersion();
  const status = (): ReplicaStatusJson | BootStatusJson => {
    const core = host?.core ?? null;
    const driver = host?.driver ?? null;
    const boot = { phase: host?.phase ?? 'starting', progress: host?.progress ?? null, storeBytes: disk.bytes };
    if (core === null || driver === null || transport === null || storage === null) return bootStatus({ config, self, dataDir, startedAtMs, ...boot });
    return buildStatus({
      config,
      self,
      core: core.status(),
      chain: chain.head(),
      driver: driver.stats(),
      transport,
      store: storage.stats(),
      dataDir,
      startedAtMs,
      clockUs: wallClockUs(),
      version,
      leader: observer.leader,
      health: health(),
      ready: ready(),
      commitAgeMs: commitAgeMs(),
      latency: latency.toJson(),
      ...boot,
    });
  };
  const stream = new StatusStream(() => ({ replicas: [status()] }), logger);
  const http = new HttpServer(replicaRoutes({ status, health, ready, registry: metrics.registry, stream }), logger);
  await http.listen(me.host, me.httpPort);
  closers.push({
    name: 'http',
    close: () => {
      stream.close();
      return http.close();
    },
  });
  const running = new RunningReplica(conf, logger, status, closers, events, http.port);

  // Store.
  const store = await openStore(conf, dataDir, logger, crypto);
  storage = store;
  closers.push({ name: 'store', close: () => store.close() });
  const sample = (): void => {
    host?.driver?.sampleRates(Date.now());
    latency.sample();
    disk.sample();
  };
  const sampler = setInterval(sample, RATE_SAMPLE_INTERVAL_MS);
  sampler.unref();
  sample();
  closers.push({ name: 'rate sampler', close: () => clearInterval(sampler) });

  // Network, and the core (restored from its latest checkpoint, the blocks above it replayed).
  const signer = crypto.signer(conf.keyPair.secretKey);
  const net = new Transport(
    {
      config,
      self,
      signer,
      crypto,
      logger,
      metrics: metrics.transport,
      serverBackend: opts.serverBackend ?? 'auto',
      ...(conf.tls === null ? {} : { tls: conf.tls }),
    },
    {
      onPeerMessage: (from, msg) => host?.input({ kind: 'peer', from, msg }),
      onClientAuthenticated: (conn, identity, address) => host?.clientAuthenticated(conn, identity, address),
      onClientMessage: (conn, msg) => host?.clientMessage(conn, msg),
      onClientClosed: (conn) => host?.clientClosed(conn),
      onPeerStatus: (peer, up) => {
        logger.info({ peer, up }, up ? 'peer up' : 'peer down');
        events.emit('peer', { peer, up, atUs: wallClockUs() });
      },
    },
  );
  transport = net;
  closers.push({ name: 'transport', close: () => net.close() });

  const onFatal = (error: unknown): void => {
    fatal = error instanceof Error ? error.message : String(error);
    logger.fatal({ err: error }, error instanceof StoreWriteError ? 'a store write failed: stopping' : 'broken invariant: stopping');
    if (modules.onFatal !== undefined) modules.onFatal(error, logger);
    else running.fail(error);
  };
  if (opts.byzantine !== undefined) logger.warn({ byzantine: opts.byzantine }, `this replica misbehaves on purpose (--byzantine ${opts.byzantine})`);
  // What the drive loop steps: the core, watched by the step observer, and lying on purpose when
  // told to (--byzantine). A core rebuilt after an install is wrapped the same way.
  const drive = (core: ReplicaCore): DrivenCore => {
    const honest: DrivenCore = {
      step: (input, nowUs) => {
        const out = core.step(input, nowUs);
        try {
          observer.observe(input, out, observedCore(core), nowUs);
        } catch (error) {
          // Observability must never stop the replica.
          logger.error({ err: error }, 'step observer failed');
        }
        return out;
      },
      triageClient: (conn, msg, nowUs, queued) => core.triageClient(conn, msg, nowUs, queued),
      nextWakeUs: () => core.nextWakeUs(),
      get view() {
        return core.consensus.view;
      },
    };
    if (opts.byzantine === undefined) return honest;
    return injectFaults(opts.byzantine, honest, { config, self, crypto, signer, inputSoon: (input) => setImmediate(() => host?.input(input)) }).core;
  };
  const coreHost = new CoreHost({
    config,
    self,
    crypto,
    secretKey: conf.keyPair.secretKey,
    storage: store,
    driverStorage: persistWatch.wrap(store),
    stateMachine: chain,
    sender: net,
    metrics,
    logger,
    clockUs: wallClockUs,
    onFatal,
    drive,
    replayChunkBlocks: opts.replayChunkBlocks ?? DEFAULT_REPLAY_CHUNK_BLOCKS,
    drainTimeoutMs: SHUTDOWN_DRAIN_TIMEOUT_MS,
  });
  host = coreHost;
  closers.push({
    name: 'drive loop',
    close: async () => {
      const drained = await coreHost.stop();
      if (!drained) logger.warn({ timeoutMs: SHUTDOWN_DRAIN_TIMEOUT_MS }, 'persists still running at shutdown: closing anyway');
    },
  });
  metrics.bind({
    coreStatus: () => coreHost.core?.status() ?? null,
    storeStats: () => store.stats(),
    sendBacklog: () => coreHost.driver?.stats().sendBacklog ?? 0,
    executedChainPosition: () => chain.head().position,
    storeDiskBytes: () => disk.bytes,
    clockUs: wallClockUs,
  });
  await coreHost.boot();
  await net.start();
  running.server = net.serverInfo();

  logger.info({ server: net.serverInfo(), httpPort: http.port, startupMs: Date.now() - startedAtMs, ...coreHost.progress }, 'replica running');
  return running;
}

/** What the step observer reads of the core after each step. */
function observedCore(core: ReplicaCore): { view: number; leading: boolean } {
  return { view: core.consensus.view, leading: core.consensus.leading };
}

/** Opens the store, creating it only on this replica's first start (see conf.ts, the marker). */
async function openStore(conf: ReplicaConf, dataDir: string, logger: ServerLogger, crypto: CryptoBackend): Promise<LevelReplicaStorage> {
  const { config, self, confDir } = conf;
  const marker = await readStoreMarker(confDir, self, config);
  if (marker !== null && marker.dataDir !== dataDir) {
    logger.warn({ markerDataDir: marker.dataDir, dataDir }, 'this replica created its store elsewhere; opening the one at --data-dir (it must exist)');
  }
  const identity = { clusterId: config.clusterId, replica: self as ReplicaId };
  let storage: LevelReplicaStorage;
  try {
    storage = await LevelReplicaStorage.open(dataDir, { replicaCount: config.n, identity, createIfMissing: marker === null, crypto });
  } catch (error) {
    if (error instanceof StoreOpenError && error.problem === 'missing' && marker !== null) {
      throw new StoreOpenError(
        'missing',
        dataDir,
        `replica ${self} created its store at ${marker.dataDir} (${marker.createdAt}), and there is none here. A wrong --data-dir or an ` +
          `unmounted disk? Starting with an empty store could make this replica vote twice. If the store is truly lost, delete ` +
          `${resolve(confDir, markerFileName(self))} to start afresh`,
      );
    }
    throw error;
  }
  if (marker === null) {
    await writeStoreMarker(confDir, self, config, dataDir).catch((error: unknown) =>
      logger.warn({ err: error, confDir }, 'cannot write the store marker in the conf directory: a later start will not notice a missing store'),
    );
  }
  return storage;
}

/** Prints the error where an operator will see it even if the log is lost, flushes the log (briefly), exits. */
function crash(error: unknown, logger: ServerLogger): void {
  process.stderr.write(`pompe replica: FATAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  const exit = (): never => process.exit(ExitCode.Fatal);
  setTimeout(exit, 1_000).unref();
  logger.close().then(exit, exit);
}

/**
 * Runs a replica as the process's main job (the `pompe replica` command): starts it, stops it on
 * SIGTERM or SIGINT, and resolves to the exit code. Environment errors print one line.
 */
export async function runReplicaProcess(opts: ReplicaOptions): Promise<number> {
  let replica: RunningReplica;
  try {
    replica = await startReplica(opts, { onFatal: (error, logger) => crash(error, logger) });
  } catch (error) {
    if (isEnvironmentError(error)) {
      process.stderr.write(`pompe replica: ${error.message}\n`);
      return ExitCode.Environment;
    }
    process.stderr.write(`pompe replica: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return ExitCode.Fatal;
  }
  // Loud where an operator looks first: the log may be a file nobody tails.
  const fallbackReason = replica.server?.fallbackReason ?? null;
  if (fallbackReason !== null) process.stderr.write(`pompe replica: WARNING: ${fallbackWarning(fallbackReason)}\n`);
  const missingEnv = missingReplicaProcessEnv(process.env);
  if (missingEnv.length > 0) {
    replica.logger.warn(
      { missing: missingEnv.map((name) => `${name}=${REPLICA_PROCESS_ENV[name]}`) },
      'started without the recommended environment (server/processEnv.ts): resident memory grows higher; the launch scripts and `pompe systemd` set it',
    );
  }
  process.on('uncaughtException', (error) => {
    replica.logger.fatal({ err: error }, 'uncaught exception');
    crash(error, replica.logger);
  });
  return new Promise<number>((done) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`pompe replica: ${signal} again: exiting without finishing shutdown\n`);
        process.exit(ExitCode.Interrupted);
      }
      stopping = true;
      replica.logger.info({ signal }, 'stopping');
      replica.close().then(
        () => done(ExitCode.Ok),
        () => done(ExitCode.Fatal),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
