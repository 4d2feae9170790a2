/**
 * The crash soak of issue 13: four replica processes under the peak workload; every `--kill-every`
 * seconds one is SIGKILLed (every other time the one that leads) and restarted after 2–10 s. Per
 * kill it prints: the replica, whether it led, how long it was down, its store size, how long
 * until its /status answered and until it had caught up (running, at the others' committed height
 * and executed position of the moment it restarted), its resident memory then and the largest of
 * any replica so far, send-queue overflows (dropped backlogs) and peer faults reported since the
 * previous kill (every replica is honest here: any fault is a false one). At the end: commands
 * lost or doubled. A script that prints figures, not a test: run it on a quiet machine.
 *
 *   npm run build && node dist/scripts/crash-soak.js [--minutes 10] [--kill-every 30] [--down-min 2] [--down-max 10] [--trace file]
 */
import { appendFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { directoryBytes } from '../server/diskUsage.js';
import type { ReplicaStatusJson } from '../server/status.js';
import { LocalCluster, sleep, waitFor } from './localCluster.js';
import { account, fmt, MemorySampler, mib, PEAK, peakLoad, settled } from './soakLoad.js';

interface Options {
  minutes: number;
  killEvery: number;
  downMin: number;
  downMax: number;
  trace?: string;
}

/** How often a traced catch-up records the restarted replica's progress. */
const TRACE_EVERY_MS = 250;

/** One line of a traced catch-up: where the restarted replica's time goes. */
function traceLine(kill: number, sinceMs: number, s: ReplicaStatusJson | null, targetHeight: number, targetPosition: number): string {
  if (s === null) return `${kill}\t${sinceMs}\tno answer`;
  const transfer = s.stateTransfer === null || s.stateTransfer === undefined ? '-' : JSON.stringify(s.stateTransfer);
  const core = s.core === undefined ? '-' : `queue ${s.core.executionQueue} fetching ${s.core.fetching}`;
  return [
    kill,
    sinceMs,
    s.phase,
    `height ${s.committedHeight ?? '-'}/${targetHeight}`,
    `position ${s.executedChainPosition ?? '-'}/${targetPosition}`,
    `view ${s.view ?? '-'}`,
    `clients ${s.transport?.clientConnections ?? '-'}`,
    core,
    `transfer ${transfer}`,
    `boot ${JSON.stringify(s.boot ?? null)}`,
  ].join('\t');
}

/** A restarted replica that has not caught up by then is reported as such. */
const CATCH_UP_TIMEOUT_MS = 120_000;

async function statusOrNull(cluster: LocalCluster, i: number): Promise<ReplicaStatusJson | null> {
  return cluster.status(i).catch(() => null);
}

/** Overflow drops and peer faults summed over the replicas that answer. */
async function troubles(cluster: LocalCluster): Promise<{ dropped: number; faults: number; byKind: Record<string, number> }> {
  let dropped = 0;
  let faults = 0;
  const byKind: Record<string, number> = {};
  for (let i = 0; i < cluster.config.n; i++) {
    const s = await statusOrNull(cluster, i);
    if (s === null || s.transport === undefined) continue;
    dropped += s.transport.droppedFrames;
    for (const [kind, count] of Object.entries(s.faults)) {
      faults += count;
      byKind[kind] = (byKind[kind] ?? 0) + count;
    }
  }
  return { dropped, faults, byKind };
}

async function main(o: Options): Promise<number> {
  const cluster = await LocalCluster.create(4);
  cluster.destroyOnSignals();
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const n = cluster.config.n;
  try {
    await cluster.startAll();
    out(`crash-soak: ${n} replicas, peak load (${PEAK.clients} clients, batches of ${PEAK.batchSize}, ${PEAK.outstanding} in flight) for ${o.minutes} min; a SIGKILL every ${o.killEvery} s, every other one the leader, restart after ${o.downMin}–${o.downMax} s`);
    out('kill | replica | leader | down s | store MiB | /status s | caught up s | rss MiB | max rss MiB (all) | dropped backlogs | faults reported');
    const memory = new MemorySampler(cluster);
    const load = peakLoad(cluster, o.minutes * 60, join(cluster.dir, 'bench-logs'));
    let running = true;
    void load.finally(() => (running = false));
    const startedMs = Date.now();
    let seen = await troubles(cluster);
    let slowest = 0;
    for (let kill = 1; running; kill++) {
      const dueMs = startedMs + kill * o.killEvery * 1000;
      while (running && Date.now() < dueMs) await sleep(200);
      // Leave the last kill time to catch up before the load ends.
      if (!running || Date.now() > startedMs + o.minutes * 60_000 - o.downMax * 1000 - 10_000) break;
      const statuses = (await Promise.all(cluster.config.replicas.map((_, i) => statusOrNull(cluster, i)))).filter((s): s is ReplicaStatusJson => s !== null);
      const leader = statuses.find((s) => s.leading)?.replica;
      const byLeader = kill % 2 === 0 && leader !== undefined;
      const victim = byLeader ? leader : ((leader ?? 0) + 1 + Math.floor(Math.random() * (n - 1))) % n;
      await cluster.kill(victim);
      const downMs = (o.downMin + Math.random() * (o.downMax - o.downMin)) * 1000;
      await sleep(downMs);
      const storeMiB = mib(await directoryBytes(cluster.dataDir(victim)).catch(() => 0));
      const others = cluster.config.replicas.map((_, i) => i).filter((i) => i !== victim);
      const targets = (await Promise.all(others.map((i) => statusOrNull(cluster, i)))).filter((s): s is ReplicaStatusJson => s !== null);
      const targetHeight = Math.max(...targets.map((s) => s.committedHeight));
      const targetPosition = Math.max(...targets.map((s) => s.executedChainPosition));
      const t0 = Date.now();
      cluster.start(victim);
      await waitFor('/status', async () => ((await statusOrNull(cluster, victim)) === null ? undefined : true), 60_000, 20);
      const tStatus = (Date.now() - t0) / 1000;
      let tCaught = Number.NaN;
      let tracedMs = -TRACE_EVERY_MS;
      try {
        await waitFor(
          'catching up',
          async () => {
            const s = await statusOrNull(cluster, victim);
            const sinceMs = Date.now() - t0;
            if (o.trace !== undefined && sinceMs - tracedMs >= TRACE_EVERY_MS) {
              tracedMs = sinceMs;
              const peers = await Promise.all(others.map((i) => statusOrNull(cluster, i)));
              const refused = peers.map((p) => p?.errors?.servesRefused ?? '-').join(',');
              appendFileSync(o.trace, `${traceLine(kill, sinceMs, s, targetHeight, targetPosition)}\tpeers refused ${refused}\n`);
            }
            return s !== null && s.phase === 'running' && s.committedHeight >= targetHeight && s.executedChainPosition >= targetPosition ? true : undefined;
          },
          CATCH_UP_TIMEOUT_MS,
          20,
        );
        tCaught = (Date.now() - t0) / 1000;
        slowest = Math.max(slowest, tCaught);
      } catch {
        slowest = Number.POSITIVE_INFINITY;
      }
      const now = await troubles(cluster);
      const newFaults = Object.entries(now.byKind)
        .map(([k, v]) => [k, v - (seen.byKind[k] ?? 0)] as const)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k} ${v}`);
      out(
        [
          String(kill).padStart(4),
          String(victim).padStart(7),
          (byLeader ? 'yes' : 'no').padStart(6),
          fmt(downMs / 1000, 1).padStart(6),
          fmt(storeMiB).padStart(9),
          fmt(tStatus, 1).padStart(9),
          (Number.isNaN(tCaught) ? `> ${CATCH_UP_TIMEOUT_MS / 1000}` : fmt(tCaught, 1)).padStart(11),
          fmt(await cluster.rssMiB(victim)).padStart(7),
          fmt(Math.max(...memory.maxMiB)).padStart(17),
          String(now.dropped - seen.dropped).padStart(16),
          newFaults.length === 0 ? '0' : newFaults.join(', '),
        ].join(' | '),
      );
      seen = now;
    }
    const summary = await load;
    memory.stop();
    const replicas = await settled(cluster);
    const a = account(summary, replicas);
    out('');
    out(`load: ${summary.offered} commands offered, ${a.confirmed} executed as the client saw, ${a.failed} failed, ${a.unfinished} unfinished`);
    out(`replicas: ${a.executedByReplicas} commands executed at every replica; lost ${a.lost}, doubled ${a.doubled}; executed chain agrees at position ${replicas[0]!.executedChainPosition}`);
    out(`largest resident memory per replica: ${memory.maxMiB.map((m) => fmt(m)).join(', ')} MiB; slowest catch-up ${fmt(slowest, 1)} s`);
    return a.lost === 0 && a.doubled === 0 ? 0 : 1;
  } finally {
    if (o.trace !== undefined) {
      for (let i = 0; i < n; i++) await copyFile(cluster.logFile(i), `${o.trace}.replica-${i}.log`).catch(() => undefined);
    }
    await cluster.destroy().catch(() => undefined);
  }
}

const num = (v: string): number => Number(v);
const program = new Command('crash-soak')
  .option('--minutes <n>', 'how long the peak load runs', num, 10)
  .option('--kill-every <s>', 'seconds between kills', num, 30)
  .option('--down-min <s>', 'shortest time a killed replica stays down', num, 2)
  .option('--down-max <s>', 'longest time a killed replica stays down', num, 10)
  .option('--trace <file>', "append the restarted replica's progress every 250 ms of each catch-up to this file, and copy the replicas' logs beside it")
  .action(async (o: Options) => {
    process.exitCode = await main(o);
  });
await program.parseAsync(process.argv);
