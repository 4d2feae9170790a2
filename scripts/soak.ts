/**
 * The soak run of issue 13: four replica processes under the peak workload for a long time, their
 * store size on disk and resident memory sampled every minute and printed as a table (a row a
 * minute, as it runs), then the accounting (no command lost or doubled), the memory slope after
 * the first minutes, and a restart after the run (SIGKILL, restart, until /status answers, until it
 * runs, until it has caught up). A script that prints figures, not a test: run it on a quiet
 * machine.
 *
 *   npm run build && node dist/scripts/soak.js [--minutes 30] [--sample-seconds 60]
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { directoryBytes } from '../server/diskUsage.js';
import { LocalCluster, waitFor } from './localCluster.js';
import { account, fmt, MemorySampler, mib, PEAK, peakLoad, settled, slope } from './soakLoad.js';

/** RSS samples from this minute on count for the slope (the first minutes fill caches and tables). */
const SLOPE_FROM_MINUTE = 3;

interface Options {
  minutes: number;
  sampleSeconds: number;
}

async function main(o: Options): Promise<number> {
  const cluster = await LocalCluster.create(4);
  cluster.destroyOnSignals();
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    await cluster.startAll();
    const n = cluster.config.n;
    const p = cluster.config.protocol;
    out(`soak: ${n} replicas on 127.0.0.1, peak load (${PEAK.clients} clients, batches of ${PEAK.batchSize}, ${PEAK.outstanding} in flight) for ${o.minutes} min`);
    out(`  ${p.commitRule}, slot ${p.slotUs} µs, Δ ${p.deltaUs} µs, a checkpoint every ${p.checkpointIntervalSlots} slots (${(p.checkpointIntervalSlots * p.slotUs) / 1e6} s); conf in ${cluster.dir}`);
    const header = ['  min', ...Array.from({ length: n }, (_, i) => `r${i} store MiB  rss/heap MiB`), 'stable ckpt', 'pruned below', 'executed cmds'];
    out(header.join(' | '));
    const memory = new MemorySampler(cluster);
    const load = peakLoad(cluster, o.minutes * 60, join(cluster.dir, 'bench-logs'));
    const startedMs = Date.now();
    const rss: number[][] = cluster.config.replicas.map(() => []);
    const minutes: number[] = [];
    const stores: number[][] = cluster.config.replicas.map(() => []);
    let done = false;
    void load.finally(() => (done = true));
    for (let k = 1; !done; k++) {
      const dueMs = startedMs + k * o.sampleSeconds * 1000;
      while (!done && Date.now() < dueMs) await new Promise((r) => setTimeout(r, 250));
      if (done) break;
      const minute = (Date.now() - startedMs) / 60_000;
      const statuses = await cluster.statuses().catch(() => []);
      const cells: string[] = [];
      for (let i = 0; i < n; i++) {
        const store = mib(await directoryBytes(cluster.dataDir(i)).catch(() => 0));
        const r = await cluster.rssMiB(i);
        rss[i]!.push(r);
        stores[i]!.push(store);
        const heap = statuses[i]?.memoryMiB.heapUsed ?? 0;
        cells.push(`${fmt(store).padStart(13)}  ${`${fmt(r)}/${fmt(heap)}`.padStart(12)}`);
      }
      minutes.push(minute);
      const s = statuses[0];
      out([fmt(minute, 1).padStart(5), ...cells, String(s?.checkpoint.stable?.height ?? '-').padStart(11), String(s?.prunedBelowHeight ?? '-').padStart(12), String(s?.executedCommands ?? '-').padStart(13)].join(' | '));
    }
    const summary = await load;
    memory.stop();
    const replicas = await settled(cluster);
    const a = account(summary, replicas);
    out('');
    out(`load: ${summary.offered} commands offered, ${a.confirmed} executed as the client saw (${fmt(summary.executedPerSecond)}/s in the interval), ${a.failed} failed, ${a.unfinished} unfinished`);
    out(`replicas: ${a.executedByReplicas} commands executed at every replica; lost ${a.lost}, doubled ${a.doubled}; executed chain ${replicas[0]!.executedChainHash.slice(0, 16)}… at position ${replicas[0]!.executedChainPosition} everywhere`);
    const from = minutes.findIndex((m) => m >= SLOPE_FROM_MINUTE);
    for (let i = 0; i < n; i++) {
      const xs = from < 0 ? [] : minutes.slice(from);
      const ys = from < 0 ? [] : rss[i]!.slice(from);
      out(
        `replica ${i}: rss max ${fmt(memory.maxMiB[i]!)} MiB (sampled each second), slope from minute ${SLOPE_FROM_MINUTE} ${fmt(slope(xs, ys), 2)} MiB/min; ` +
          `store max ${fmt(Math.max(0, ...stores[i]!))} MiB, last ${fmt(stores[i]!.at(-1) ?? 0)} MiB`,
      );
    }
    const faults = replicas.map((s) => Object.values(s.faults).reduce((x, y) => x + y, 0));
    const shed = replicas.reduce((x, s) => x + s.transport.droppedFrames, 0);
    out(`peer faults reported: ${faults.join(', ')}; frames dropped by send-queue overflow: ${shed}`);

    // Restart after the run: how long until the replica answers, runs and has caught up.
    const victim = 1;
    const before = await cluster.status(victim);
    const storeMiB = mib(await directoryBytes(cluster.dataDir(victim)));
    await cluster.kill(victim);
    const t0 = Date.now();
    cluster.start(victim);
    await waitFor('/status', () => cluster.status(victim).then(() => true), 120_000, 20);
    const tStatus = (Date.now() - t0) / 1000;
    const target = Math.max(...(await cluster.statuses([0, 2, 3])).map((s) => s.committedHeight));
    const back = await waitFor(
      'the restarted replica to catch up',
      async () => {
        const s = await cluster.status(victim);
        return s.phase === 'running' && s.committedHeight >= target && s.executedChainPosition >= before.executedChainPosition ? s : undefined;
      },
      120_000,
      20,
    );
    const tCaught = (Date.now() - t0) / 1000;
    out(
      `restart of replica ${victim} after the run (store ${fmt(storeMiB)} MiB): /status after ${fmt(tStatus, 1)} s, caught up after ${fmt(tCaught, 1)} s ` +
        `(restored checkpoint at height ${back.boot?.checkpointHeight ?? 0} in ${back.boot?.restoreMs ?? 0} ms, replayed ${back.boot?.replayedBlocks ?? 0} blocks in ${back.boot?.replayMs ?? 0} ms)`,
    );
    return a.lost === 0 && a.doubled === 0 ? 0 : 1;
  } finally {
    await cluster.destroy().catch(() => undefined);
  }
}

const program = new Command('soak')
  .option('--minutes <n>', 'how long the peak load runs', (v) => Number(v), 30)
  .option('--sample-seconds <n>', 'how often store size and memory are sampled', (v) => Number(v), 60)
  .action(async (o: Options) => {
    process.exitCode = await main(o);
  });
await program.parseAsync(process.argv);
