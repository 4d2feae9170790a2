/**
 * A cluster of real replica processes (`node dist/server/cli.js`) on free loopback ports, their
 * /status and memory, and cleanup that kills only the processes it started: what the end-to-end
 * tests (test/e2e/) and the soak scripts (scripts/soak.ts, scripts/crash-soak.ts) run against.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseClusterConfig, type ClusterConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { freePortRange } from '../server/freePorts.js';
import { withReplicaProcessEnv } from '../server/processEnv.js';
import type { ReplicaStatusJson } from '../server/status.js';

/** The package root, whether this runs from source (tests) or from dist/ (scripts). */
const HERE = fileURLToPath(import.meta.url);
const ROOT = HERE.includes('/dist/') ? HERE.slice(0, HERE.lastIndexOf('/dist/')) : dirname(dirname(HERE));
export const CLI = join(ROOT, 'dist', 'server', 'cli.js');

export { freePortRange };

export function runCli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns a value other than undefined. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
    await sleep(everyMs);
  }
}

export class LocalCluster {
  readonly procs: (ChildProcess | null)[];
  readonly output: string[];

  private constructor(
    readonly dir: string,
    readonly config: ClusterConfig,
  ) {
    this.procs = config.replicas.map(() => null);
    this.output = config.replicas.map(() => '');
    process.on('exit', this.killOnExit);
  }

  /** Generates a conf with `pompe gen-conf` in a temp dir (ports free on 127.0.0.1). */
  static async create(n: number, extraArgs: readonly string[] = []): Promise<LocalCluster> {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before the end-to-end tests`);
    const dir = await mkdtemp(join(tmpdir(), 'pompe-e2e-'));
    const peer = await freePortRange(n);
    const client = await freePortRange(n, [peer]);
    const http = await freePortRange(n, [peer, client]);
    const args = ['gen-conf', '--replicas', String(n), '--out', dir, '--base-peer-port', String(peer), '--base-client-port', String(client), '--base-http-port', String(http)];
    const gen = await runCli([...args, ...extraArgs]);
    if (gen.code !== 0) throw new Error(`gen-conf failed (${gen.code}): ${gen.stderr}`);
    const parsed = parseClusterConfig(await readFile(join(dir, 'cluster.json'), 'utf8'), nodeCrypto);
    if (!parsed.ok) throw new Error(parsed.error.message);
    return new LocalCluster(dir, parsed.value);
  }

  logFile(i: number): string {
    return join(this.dir, `replica-${i}.log`);
  }

  /** Starts replica i; `nodeArgs` go to node itself (e.g. `--cpu-prof` to profile one replica). */
  start(i: number, extraArgs: readonly string[] = [], nodeArgs: readonly string[] = []): ChildProcess {
    if (this.procs[i] !== null) throw new Error(`replica ${i} is already running`);
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'replica', '--conf', this.dir, '--id', String(i), '--log-file', this.logFile(i), ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: withReplicaProcessEnv(process.env),
    });
    child.stdout!.on('data', (d: Buffer) => (this.output[i] += String(d)));
    child.stderr!.on('data', (d: Buffer) => (this.output[i] += String(d)));
    child.on('exit', () => {
      if (this.procs[i] === child) this.procs[i] = null;
    });
    this.procs[i] = child;
    return child;
  }

  /** Kills (by pid) the replicas still running when this process exits, however it exits: a
   *  script that dies of an uncaught error must not leave its replicas behind. */
  private readonly killOnExit = (): void => {
    for (const p of this.procs) if (p !== null && p.exitCode === null) p.kill('SIGKILL');
  };

  /** For a script run from a terminal: a SIGINT or SIGTERM ends the process without its 'exit'
   *  cleanup, so on either the replicas are killed (by pid) and the temp dir removed here, and
   *  the process exits with 128 + the signal's number. */
  destroyOnSignals(): void {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.killOnExit();
    rmSync(this.dir, { recursive: true, force: true });
    process.exit(128 + constants.signals[signal]);
  };

  async startAll(): Promise<void> {
    for (let i = 0; i < this.config.n; i++) this.start(i);
    await Promise.all(this.config.replicas.map((_, i) => this.waitUp(i)));
  }

  /** Waits until replica i answers /status and has links to every other replica. */
  async waitUp(i: number, timeoutMs = 20_000): Promise<ReplicaStatusJson> {
    return waitFor(
      `replica ${i} to come up with all peers`,
      async () => {
        if (this.procs[i] === null) throw new Error(`replica ${i} exited: ${this.output[i]}`);
        const s = await this.status(i);
        return s.peersUp.length === this.config.n - 1 ? s : undefined;
      },
      timeoutMs,
      100,
    );
  }

  async status(i: number): Promise<ReplicaStatusJson> {
    const r = this.config.replicas[i]!;
    const res = await fetch(`http://${r.host}:${r.httpPort}/status`);
    if (!res.ok) throw new Error(`status of replica ${i}: HTTP ${res.status}`);
    return (await res.json()) as ReplicaStatusJson;
  }

  async metrics(i: number): Promise<string> {
    const r = this.config.replicas[i]!;
    return (await fetch(`http://${r.host}:${r.httpPort}/metrics`)).text();
  }

  async statuses(which: readonly number[] = this.config.replicas.map((_, i) => i)): Promise<ReplicaStatusJson[]> {
    return Promise.all(which.map((i) => this.status(i)));
  }

  /** Waits until the given replicas report the same executed position (at least `minPosition`)
   *  and chain hash; returns their statuses. */
  async agreedChain(which: readonly number[], minPosition: number, timeoutMs = 20_000): Promise<ReplicaStatusJson[]> {
    return waitFor(
      `replicas ${which.join(',')} to agree on the executed chain at position ≥ ${minPosition}`,
      async () => {
        const all = await this.statuses(which);
        const first = all[0]!;
        const agree = all.every((s) => s.executedChainPosition === first.executedChainPosition && s.executedChainHash === first.executedChainHash);
        return agree && first.executedChainPosition >= minPosition ? all : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Resident memory of replica i's process in MiB (from /proc; 0 if it is not running). */
  async rssMiB(i: number): Promise<number> {
    const pid = this.procs[i]?.pid;
    if (pid === undefined) return 0;
    const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kib = /^VmRSS:\s+(\d+)/m.exec(text);
    return kib === null ? 0 : Number(kib[1]) / 1024;
  }

  /** Replica i's store directory (the default one, under the conf directory). */
  dataDir(i: number): string {
    return join(this.dir, 'data', `replica-${i}`);
  }

  /** SIGKILLs replica i (if running) and waits for it to exit. */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const child = this.procs[i];
    if (child === null || child === undefined) return null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  }

  /** Kills every replica this cluster started, by pid, and removes the temp dir. */
  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((_, i) => this.kill(i, 'SIGKILL')));
    process.off('exit', this.killOnExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The tail of every replica's log and output, for a failure report. */
  async tails(lines = 15): Promise<string> {
    const parts: string[] = [];
    for (let i = 0; i < this.config.n; i++) {
      const log = await readFile(this.logFile(i), 'utf8').catch(() => '');
      parts.push(`--- replica ${i} log ---\n${log.split('\n').slice(-lines).join('\n')}\n--- replica ${i} stdout/stderr ---\n${this.output[i]!.slice(-2000)}`);
    }
    return parts.join('\n');
  }
}
