/**
 * Free loopback ports for clusters started by tests and examples, which need consecutive ports
 * known before the replicas start (every replica's config names every other's ports). Each port
 * is checked by binding it on 127.0.0.1; the range avoids the ports of clusters made with
 * gen-conf's defaults (10000+i, 20000+i, 30000+i: `npm start` runs one) and the kernel's
 * ephemeral range (32768+), so tests pass next to a running local experiment.
 */
import { createServer } from 'node:net';
import { MAX_REPLICAS } from '../common/limits.js';

const PORT_LOW = 20_000 + MAX_REPLICAS + 100;
const PORT_HIGH = 30_000 - 100;
const ATTEMPTS = 100;
/** Test workers running at once (vitest numbers them from 1 in VITEST_POOL_ID) each draw from their
 *  own slice of the range: a port probed free is bound only later (after gen-conf, a process start),
 *  and in between another test file's cluster could take it — seen on CI as EADDRINUSE. Four slices
 *  of ~2,450 ports; a fifth worker would share the first's. Outside a test run: the whole range. */
const WORKER_SLICES = 4;

function portWindow(): { low: number; high: number } {
  const pool = Number(process.env['VITEST_POOL_ID']);
  if (!Number.isInteger(pool) || pool < 1) return { low: PORT_LOW, high: PORT_HIGH };
  const width = Math.floor((PORT_HIGH - PORT_LOW) / WORKER_SLICES);
  const low = PORT_LOW + ((pool - 1) % WORKER_SLICES) * width;
  return { low, high: low + width };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port with `count` free consecutive ports above it, away from the ranges in `avoid`. */
export async function freePortRange(count: number, avoid: readonly number[] = []): Promise<number> {
  const { low, high } = portWindow();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    if (avoid.some((a) => Math.abs(a - base) < count + 4)) continue;
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${count} free consecutive ports found on 127.0.0.1`);
}
