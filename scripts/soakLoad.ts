/**
 * What the soak scripts share: the peak workload of bench-cluster.sh run in this process against a
 * LocalCluster (its client logs sent to /dev/null: a 30-minute peak run would write tens of GB of
 * them), a once-a-second memory sampler, the settled state of the replicas after a run, and the
 * no-loss / no-duplicate accounting.
 */
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeCrypto } from '../common/crypto/node.js';
import { runBench } from '../client/bench.js';
import type { BenchSummary } from '../client/benchStats.js';
import { wsTransport } from '../client/wsTransport.js';
import type { ReplicaStatusJson } from '../server/status.js';
import type { LocalCluster } from './localCluster.js';
import { waitFor } from './localCluster.js';

/** bench-cluster.sh peak: 4 clients, batches of 1000, 4 in flight each. */
export const PEAK = { clients: 4, batchSize: 1000, outstanding: 4 } as const;

export async function peakLoad(cluster: LocalCluster, seconds: number, logDir: string): Promise<BenchSummary> {
  await mkdir(logDir, { recursive: true });
  for (let i = 0; i < PEAK.clients; i++) {
    for (const kind of ['order', 'exec', 'detail']) await symlink('/dev/null', join(logDir, `client${i}.${kind}.log`)).catch(() => undefined);
  }
  return runBench({
    config: cluster.config,
    crypto: nodeCrypto,
    transport: wsTransport,
    clients: PEAK.clients,
    durationS: seconds,
    warmupS: 0,
    batchSize: PEAK.batchSize,
    outstanding: PEAK.outstanding,
    adaptiveWindow: true,
    rate: null,
    batchDelayMs: 5,
    commandBytes: 32,
    keySpace: 100_000,
    mode: 'direct',
    logDir,
    clientIndexBase: 0,
    sockets: 'per-client',
    verifySignatures: true,
    timeoutMs: 30_000,
    failoverMs: 2_000,
    drainMs: 15_000,
    connectTimeoutMs: 30_000,
    retryMs: 500,
    out: () => undefined,
    progress: null,
    handleSignals: false,
  });
}

/** Samples every replica's resident memory once a second; keeps the largest seen per replica. */
export class MemorySampler {
  readonly maxMiB: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly cluster: LocalCluster) {
    this.maxMiB = cluster.config.replicas.map(() => 0);
    this.timer = setInterval(() => void this.sample(), 1_000);
  }

  private async sample(): Promise<void> {
    for (let i = 0; i < this.maxMiB.length; i++) this.maxMiB[i] = Math.max(this.maxMiB[i]!, await this.cluster.rssMiB(i));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The replicas' /status once every one that runs reports the same executed chain (and it stays
 *  put for a second: the load is over). */
export async function settled(cluster: LocalCluster, timeoutMs = 60_000): Promise<ReplicaStatusJson[]> {
  let previous = '';
  return waitFor(
    'the replicas to agree on the executed chain',
    async () => {
      const all = await cluster.statuses();
      const key = all.map((s) => `${s.executedChainPosition}:${s.executedChainHash}:${s.executedCommands}`);
      const agree = key.every((k) => k === key[0]);
      const same = agree && key[0] === previous;
      previous = agree ? key[0]! : '';
      return same ? all : undefined;
    },
    timeoutMs,
    1_000,
  );
}

export interface Accounting {
  /** Commands the benchmark created (all of them, measured or not). */
  readonly offered: number;
  /** Executions the benchmark confirmed (f+1 replicas), during the run and its drain. */
  readonly confirmed: number;
  /** Failed (refused, expired, timed out: these may still have executed). */
  readonly failed: number;
  /** Neither confirmed nor failed when the benchmark ended. */
  readonly unfinished: number;
  /** Commands every replica executed (each (client, seq) once: the executor's count). */
  readonly executedByReplicas: number;
  /** More executions than commands: a command executed twice somewhere. */
  readonly doubled: number;
  /** Commands neither executed nor seen to fail or still in flight by the client. */
  readonly lost: number;
}

/** Every command the client did not see fail must have executed, once: the replicas' count of
 *  commands executed (each (client id, seq) once) against what the client created. */
export function account(summary: BenchSummary, replicas: readonly ReplicaStatusJson[]): Accounting {
  const executed = replicas[0]?.executedCommands ?? 0;
  const all = summary.allCommands;
  return {
    offered: all.submitted,
    confirmed: all.executed,
    failed: all.failed,
    unfinished: all.submitted - all.executed - all.failed,
    executedByReplicas: executed,
    doubled: Math.max(0, executed - all.submitted),
    lost: Math.max(0, all.submitted - all.failed - executed),
  };
}

export const mib = (bytes: number): number => bytes / (1024 * 1024);
export const fmt = (value: number, digits = 0): string => value.toFixed(digits);

/** Least-squares slope of `ys` over `xs`. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
