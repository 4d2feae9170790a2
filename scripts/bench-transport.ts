/**
 * Transport throughput over one peer link on loopback: replica 0 (this process) sends to replica 1
 * (a child process) as fast as the link takes it, keeping its queue below a window as a producer
 * that respects backpressure would. Two cases: 50 KB frames (batch bytes) and 200-byte frames (the
 * size of a vote without a seal). Prints frames/s and MB/s (10^6 bytes of frame payload per
 * second) as seen by the receiver, from its first frame to its last. A script that prints
 * figures, not a test (DESIGN.md "Performance").
 *
 *   npm run build && node dist/scripts/bench-transport.js [secondsPerCase]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { nodeCrypto } from '../common/crypto/node.js';
import { replicaId, type Digest } from '../common/ids.js';
import type { Message } from '../common/messages.js';
import { ListenError } from '../server/transport/serverBackend.js';
import { loopbackCluster, randomBasePort, testLogger } from '../server/transport/testing.js';
import { Transport, type TransportHandlers } from '../server/transport/transport.js';

const N = 4;
/** The sender tops its queue up to this many bytes, then yields to the event loop. */
const WINDOW_BYTES = 32 * 1024 * 1024;
const MAX_BURST_FRAMES = 4096;

interface Report {
  readonly frames: number;
  readonly bytes: number;
  readonly ms: number;
  /** Receiver CPU time (user + system) over the case, in ms. */
  readonly cpuMs: number;
}
type FromReceiver = { kind: 'ready' } | { kind: 'failed'; listen: boolean; message: string } | ({ kind: 'report' } & Report);

function options(basePort: number, self: number) {
  const { config, keyPairs } = loopbackCluster(N, basePort);
  return { config, self: replicaId(self), signer: nodeCrypto.signer(keyPairs[self]!.secretKey), crypto: nodeCrypto, logger: testLogger() };
}

/** Child: replica 1. Counts frames; at each end marker (an error notice is never delivered, so a
 *  commandOrdered) reports and resets. */
async function receiver(basePort: number): Promise<void> {
  let frames = 0;
  let bytes = 0;
  let first = 0;
  let last = 0;
  let cpu = process.cpuUsage();
  const handlers: TransportHandlers = {
    onPeerMessage: (_from: unknown, msg: Message) => {
      if (msg.type === 'commandOrdered') {
        const used = process.cpuUsage(cpu);
        process.send!({ kind: 'report', frames, bytes, ms: last - first, cpuMs: (used.user + used.system) / 1000 } satisfies FromReceiver);
        frames = 0;
        bytes = 0;
        return;
      }
      last = performance.now();
      if (frames === 0) {
        first = last;
        cpu = process.cpuUsage();
      }
      frames++;
      bytes += msg.type === 'batchResponse' ? msg.batches[0]!.length : 0;
    },
    onClientAuthenticated: () => undefined,
    onClientMessage: () => undefined,
    onClientClosed: () => undefined,
  };
  const transport = new Transport(options(basePort, 1), handlers);
  try {
    await transport.start();
  } catch (e) {
    process.send!({ kind: 'failed', listen: e instanceof ListenError, message: String(e) } satisfies FromReceiver);
    await transport.close();
    return;
  }
  process.send!({ kind: 'ready' } satisfies FromReceiver);
  process.on('disconnect', () => void transport.close());
}

function nextMessage(child: ChildProcess): Promise<FromReceiver> {
  return new Promise((resolve) => child.once('message', (m) => resolve(m as FromReceiver)));
}

async function startReceiver(): Promise<{ child: ChildProcess; basePort: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const basePort = randomBasePort(N);
    const child = fork(fileURLToPath(import.meta.url), ['receiver', String(basePort)]);
    const first = await nextMessage(child);
    if (first.kind === 'ready') return { child, basePort };
    child.disconnect();
    if (first.kind !== 'failed' || !first.listen) throw new Error(`receiver failed: ${JSON.stringify(first)}`);
  }
  throw new Error('no free ports for the receiver');
}

async function runCase(sender: Transport, child: ChildProcess, payloadBytes: number, seconds: number): Promise<Report & { senderCpuMs: number; senderMs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const batch = new Uint8Array(payloadBytes).fill(7);
  const msg: Message = { type: 'batchResponse', batches: [batch] };
  const to = replicaId(1);
  const queued = (): number => sender.stats().peers.find((p) => p.peer === 1)!.queuedBytes;
  const deadline = performance.now() + seconds * 1000;
  let sent = 0;
  while (performance.now() < deadline) {
    // Top the queue up to the window (at most MAX_BURST frames), then let the event loop write.
    const room = Math.min(MAX_BURST_FRAMES, Math.floor((WINDOW_BYTES - queued()) / payloadBytes));
    for (let i = 0; i < room; i++) sender.sendToPeer(to, msg);
    sent += Math.max(room, 0);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const report = nextMessage(child);
  sender.sendToPeer(to, { type: 'commandOrdered', seq: sent, digest: new Uint8Array(32) as Digest, ts: 0 });
  const r = (await report) as FromReceiver;
  if (r.kind !== 'report') throw new Error(`unexpected ${JSON.stringify(r)}`);
  if (r.frames !== sent) throw new Error(`receiver got ${r.frames} frames of ${sent}`);
  const used = process.cpuUsage(cpu);
  return { ...r, senderCpuMs: (used.user + used.system) / 1000, senderMs: performance.now() - started };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'receiver') return receiver(Number(process.argv[3]));
  const seconds = Number(process.argv[2] ?? '5');
  const { child, basePort } = await startReceiver();
  const sender = new Transport(options(basePort, 0), { onPeerMessage: () => undefined, onClientAuthenticated: () => undefined, onClientMessage: () => undefined, onClientClosed: () => undefined });
  await sender.start();
  while (!sender.peersUp().includes(replicaId(1))) await new Promise((resolve) => setTimeout(resolve, 10));
  console.log(`transport: one peer link on loopback (uWS server, ws client), ${seconds} s per case, node ${process.version}`);
  await runCase(sender, child, 50 * 1024, 1); // warm-up
  for (const size of [50 * 1024, 200]) {
    const r = await runCase(sender, child, size, seconds);
    const perSecond = r.frames / (r.ms / 1000);
    const mbPerSecond = r.bytes / 1e6 / (r.ms / 1000);
    const cpu = `CPU: sender ${((100 * r.senderCpuMs) / r.senderMs).toFixed(0)}%, receiver ${((100 * r.cpuMs) / r.ms).toFixed(0)}%`;
    console.log(
      `  ${String(size).padStart(6)} B frames: ${Math.round(perSecond).toLocaleString('en-US').padStart(9)} frames/s  ${mbPerSecond.toFixed(0).padStart(5)} MB/s  (${r.frames} frames; ${cpu})`,
    );
  }
  await sender.close();
  child.disconnect();
}

await main();
