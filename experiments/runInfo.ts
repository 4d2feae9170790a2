/**
 * Makes a run folder self-describing: writes `<run dir>/run.json` with the run's name, the
 * cluster's configuration (public parts), every benchmark process's options, start and end and
 * summary figures (the `client<i>.bench.json` files the benchmark leaves beside its logs), their
 * totals, and the code revision of this checkout. experiments/data.sh calls it for each run it
 * collects; the process script reads the name and parameters back for its plot.
 *
 *   node dist/experiments/runInfo.js <run dir> --conf <conf dir>
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { BenchSummary } from '../client/benchStats.js';
import { toHex } from '../common/bytes.js';
import { nodeCrypto } from '../common/crypto/node.js';
import { loadClusterConfig } from '../client/nodeDefaults.js';
import { isEntryPoint } from '../client/entryPoint.js';

export const RUN_FILE = 'run.json';
const BENCH_RECORD = /^client\d+\.bench\.json$/;

interface BenchRecord {
  readonly options: Record<string, unknown> & { readonly clients?: number; readonly durationS?: number };
  readonly startedAt: string;
  readonly endedAt: string;
  readonly summary: BenchSummary;
}

/** What the plot and other readers take from run.json (every field optional: older runs). */
export interface RunInfo {
  readonly name?: string;
  readonly parameters?: string;
}

/** This checkout's commit, `+dirty` when it has uncommitted changes; null outside a git checkout. */
export function gitRevision(dir = fileURLToPath(new URL('..', import.meta.url))): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty === '' ? head : `${head}+dirty`;
  } catch {
    return null;
  }
}

/** One line for plot subtitles: replicas, clients, batch, in flight, duration. */
export function describeParameters(n: number | null, benches: readonly BenchRecord[]): string {
  const first = benches[0]?.options;
  const clients = benches.reduce((sum, b) => sum + (b.options.clients ?? 0), 0);
  const parts: string[] = [];
  if (n !== null) parts.push(`n=${n}`);
  if (first !== undefined) {
    parts.push(`${clients} client(s)`, `${String(first['mode'])} mode`, `batch ${String(first['batchSize'])}`);
    parts.push(first['rate'] === null ? `${String(first['outstanding'])} outstanding` : `${String(first['rate'])} cmd/s offered`);
    parts.push(`${String(first['durationS'])} s`);
  }
  return parts.join(', ');
}

export async function writeRunInfo(runDir: string, confDir: string | null): Promise<string> {
  const names = (await readdir(runDir)).filter((name) => BENCH_RECORD.test(name)).sort();
  const benches = await Promise.all(names.map(async (name) => JSON.parse(await readFile(join(runDir, name), 'utf8')) as BenchRecord));
  const config = confDir === null ? null : await loadClusterConfig(confDir, nodeCrypto);
  const sum = (pick: (s: BenchSummary) => number): number => benches.reduce((total, b) => total + pick(b.summary), 0);
  const info = {
    name: basename(resolve(runDir)),
    parameters: describeParameters(config?.n ?? null, benches),
    writtenAt: new Date().toISOString(),
    gitRevision: gitRevision(),
    startedAt: benches.map((b) => b.startedAt).sort()[0] ?? null,
    endedAt: benches.map((b) => b.endedAt).sort().at(-1) ?? null,
    conf:
      config === null
        ? null
        : {
            n: config.n,
            f: config.f,
            q: config.q,
            clusterId: toHex(config.clusterId),
            devSingleReplica: config.devSingleReplica,
            protocol: config.protocol,
            replicas: config.replicas.map((r) => ({ id: r.id, host: r.host, peerPort: r.peerPort, clientPort: r.clientPort, httpPort: r.httpPort })),
          },
    /** Over every benchmark process: commands per second add up; latencies are per process. */
    totals: {
      benchProcesses: benches.length,
      clients: benches.reduce((total, b) => total + (b.options.clients ?? 0), 0),
      executedPerSecond: sum((s) => s.executedPerSecond),
      orderedPerSecond: sum((s) => s.orderedPerSecond),
      executed: sum((s) => s.executed),
      failedCommands: sum((s) => s.failedCommands),
      timedOutCommands: sum((s) => s.timedOutCommands),
      unfinished: sum((s) => s.unfinished),
    },
    benches,
  };
  const path = join(runDir, RUN_FILE);
  await writeFile(path, `${JSON.stringify(info, null, 2)}\n`);
  return path;
}

/** The name and parameters of the run in `dir`, or {} when it has no readable run.json. */
export async function readRunInfo(dir: string): Promise<RunInfo> {
  try {
    const info = JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8')) as Record<string, unknown>;
    return {
      ...(typeof info['name'] === 'string' ? { name: info['name'] } : {}),
      ...(typeof info['parameters'] === 'string' ? { parameters: info['parameters'] } : {}),
    };
  } catch {
    return {};
  }
}

if (isEntryPoint(import.meta.url)) {
  const program = new Command('runInfo')
    .argument('<run dir>', 'the run folder (client logs and client<i>.bench.json files)')
    .option('--conf <dir>', 'the cluster config directory the run used')
    .parse();
  const path = await writeRunInfo(program.args[0]!, program.opts<{ conf?: string }>().conf ?? null);
  console.log(`wrote ${path}`);
}
