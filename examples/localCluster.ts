/**
 * A cluster of replicas in this process on free loopback ports, for the examples (what
 * `pompe gen-conf` and `startReplica` on each machine do in production).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeCrypto } from '../common/crypto/node.js';
import type { StateMachine } from '../ordering/stateMachine.js';
import { freePortRange } from '../server/freePorts.js';
import { genConf } from '../server/genConf.js';
import { startReplica, type RunningReplica } from '../server/replica.js';

/**
 * How long startLocalCluster waits for every replica to reach every other one. A story that stops a
 * replica must not start before the others have ever seen it: a link that was never up cannot go down.
 */
const ALL_LINKS_UP_TIMEOUT_MS = 30_000;
const ALL_LINKS_UP_POLL_MS = 20;

export interface LocalCluster {
  /** The conf directory (cluster.json, the replicas' secret files and their stores). */
  readonly dir: string;
  readonly replicas: RunningReplica[];
  /** Stops every replica and removes the directory. */
  close(): Promise<void>;
}

/** Starts `n` replicas, replica i running `stateMachine(i)`; their logs go to <dir>/replica-<i>.log. */
export async function startLocalCluster(n: number, stateMachine: (id: number) => StateMachine): Promise<LocalCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pompe-example-'));
  const replicas: RunningReplica[] = [];
  const close = async (): Promise<void> => {
    for (const r of replicas.splice(0).reverse()) await r.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const base = await freePortRange(3 * n);
    await genConf({ replicas: n, out: dir, hosts: ['127.0.0.1'], basePeerPort: base, baseClientPort: base + n, baseHttpPort: base + 2 * n }, nodeCrypto);
    for (let id = 0; id < n; id++) {
      replicas.push(await startReplica({ confDir: dir, id, logLevel: 'warn', logFile: join(dir, `replica-${id}.log`) }, { stateMachine: stateMachine(id) }));
    }
    await allLinksUp(replicas, n);
  } catch (error) {
    await close();
    throw error;
  }
  return { dir, replicas, close };
}

async function allLinksUp(replicas: readonly RunningReplica[], n: number): Promise<void> {
  const deadline = Date.now() + ALL_LINKS_UP_TIMEOUT_MS;
  while (!replicas.every((r) => r.runningStatus().peersUp.length === n - 1)) {
    if (Date.now() > deadline) throw new Error(`the local cluster's replicas did not all reach each other within ${ALL_LINKS_UP_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, ALL_LINKS_UP_POLL_MS));
  }
}
