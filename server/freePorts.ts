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

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port with `count` free consecutive ports above it, away from the ranges in `avoid`. */
export async function freePortRange(count: number, avoid: readonly number[] = []): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const base = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW - count));
    if (avoid.some((a) => Math.abs(a - base) < count + 4)) continue;
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${count} free consecutive ports found on 127.0.0.1`);
}
