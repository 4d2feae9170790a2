/**
 * The client half of issue 11's stall attack, against a real cluster whose replica `--accomplice`
 * runs with `pompe replica --byzantine withhold` (server/faultInjection.ts): every `--every-ms`, it
 * gets a batch stamped by every replica, sequences it at the accomplice only (which acks it, lists
 * it in its seals and never serves its bytes), and pushes it out of the other replicas' pending
 * stores with junk on the same connection (a connection over its pending bound loses its own
 * oldest batch). A protocol that lets such a batch into a block stalls; pompe-ts must keep
 * committing. The junk takes a replica a few hundred ms to stamp: the attack lands where that is
 * less than Δ (a WAN setting; on loopback, run the cluster with a large --delta-us). The attacker
 * is one client key (fresh each run, proved to every replica); since admission control (issue 12)
 * a replica stamps at most CLIENT_BATCHES_PER_SECOND of one key's batches a second and refuses the
 * rest `overloaded`, which stops the eviction: the summary counts the junk refused.
 *
 *   node dist/scripts/attack-hostage.js --conf <dir> --accomplice 3 [--every-ms 3000] [--duration 30]
 *
 * Prints one line per hostage planted, and a summary; a script for benchmarks and tests, not part
 * of the product.
 */
import { Command, InvalidArgumentError } from 'commander';
import { WebSocket } from 'ws';
import { BatchMode, encodeBatch } from '../common/batch.js';
import { batchSigner } from '../common/batchAuth.js';
import { toHex } from '../common/bytes.js';
import { decodeMessage, encodeMessage } from '../common/codec.js';
import type { ClusterConfig } from '../common/config.js';
import { nodeCrypto } from '../common/crypto/node.js';
import type { ReplicaId } from '../common/ids.js';
import { MAX_PENDING_BATCHES_PER_CONNECTION } from '../common/limits.js';
import type { Message, OrderingCert, SignedTimestamp } from '../common/messages.js';
import { answerClientChallenge } from '../ordering/clientKeys.js';
import { loadClusterConfig } from '../client/nodeDefaults.js';
import { isEntryPoint } from '../client/entryPoint.js';

/** Junk on top of one connection's pending bound: enough to push the hostage out. */
const JUNK_EXCESS = 16;
/** Batches live long (a minute; replicas refuse more than MAX_BATCH_LIFETIME_US): only the pending
 *  bound removes them meanwhile. */
const LIFETIME_US = 60_000_000;
/** How long to wait for one step of an attack (stamps, the junk's stamps, the accomplice's ack). */
const STEP_TIMEOUT_MS = 20_000;

export interface HostageStats {
  planted: number;
  failed: number;
  junkBatches: number;
  /** Junk the other replicas refused, by reason (overloaded: over the key's admission budget). */
  junkRefused: Record<string, number>;
}

interface Link {
  readonly ws: WebSocket;
  readonly replica: ReplicaId;
}

/** Runs the attack until `durationMs` has passed; resolves with what it did. */
export async function runHostageAttack(opts: { config: ClusterConfig; accomplice: ReplicaId; everyMs: number; durationMs: number; log?: (line: string) => void }): Promise<HostageStats> {
  const { config, accomplice } = opts;
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const waiters = new Set<(from: ReplicaId, msg: Message) => void>();
  const signer = nodeCrypto.signer(nodeCrypto.generateKeyPair().secretKey);
  const sign = batchSigner(config.clusterId, nodeCrypto, signer);
  // A link is usable once the replica's challenge is answered with the attacker's key.
  const links: Link[] = await Promise.all(
    config.replicas.map(
      (r, i) =>
        new Promise<Link>((resolve, reject) => {
          const ws = new WebSocket(`ws://${r.host}:${r.clientPort}`, { maxPayload: 64 * 1024 * 1024 });
          ws.binaryType = 'nodebuffer';
          ws.once('error', reject);
          ws.on('message', (data: Buffer) => {
            const decoded = decodeMessage(new Uint8Array(data), { replicaCount: config.n });
            if (!decoded.ok) return;
            if (decoded.value.type === 'helloChallenge') {
              ws.send(encodeMessage(answerClientChallenge(config.clusterId, signer, i as ReplicaId, decoded.value.nonce)));
              resolve({ ws, replica: i as ReplicaId });
              return;
            }
            for (const w of waiters) w(i as ReplicaId, decoded.value);
          });
        }),
    ),
  );
  const stats: HostageStats = { planted: 0, failed: 0, junkBatches: 0, junkRefused: {} };
  let nonce = 0;
  const nowUs = (): number => Date.now() * 1000;
  const newBatch = (): Uint8Array =>
    encodeBatch(
      { mode: BatchMode.Direct, collectorKey: signer.publicKey, nonce: nonce++, expiresAtUs: nowUs() + LIFETIME_US, commands: [{ seq: nonce, payload: Uint8Array.of(nonce & 0xff) }] },
      sign,
    );
  /** Waits until `done` says so for the messages arriving (or the step times out). */
  const until = (done: (from: ReplicaId, msg: Message) => boolean): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        resolve(false);
      }, STEP_TIMEOUT_MS);
      const w = (from: ReplicaId, msg: Message): void => {
        if (!done(from, msg)) return;
        clearTimeout(timer);
        waiters.delete(w);
        resolve(true);
      };
      waiters.add(w);
    });

  const others = links.filter((l) => l.replica !== accomplice);
  const deadline = Date.now() + opts.durationMs;
  while (Date.now() < deadline) {
    const started = Date.now();
    const hostage = newBatch();
    const key = toHex(nodeCrypto.sha256(hostage));
    // 1. Stamped by every replica.
    const stamps = new Map<ReplicaId, SignedTimestamp>();
    const stamped = until((from, msg) => {
      if (msg.type === 'tsReply' && toHex(msg.digest) === key) stamps.set(from, msg.stamp);
      return stamps.size === config.n;
    });
    for (const l of links) l.ws.send(encodeMessage({ type: 'submit', batch: hostage }));
    if (!(await stamped) || !stamps.has(accomplice)) {
      stats.failed++;
      continue;
    }
    // 2. Sequenced at the accomplice only, at once (before its slot is sealed), with q stamps
    // that include its own.
    const chosen = [accomplice, ...[...stamps.keys()].filter((r) => r !== accomplice)].slice(0, config.q).sort((a, b) => a - b);
    const oc: OrderingCert = { digest: nodeCrypto.sha256(hostage), stamps: chosen.map((r) => stamps.get(r)!) };
    let answer: Message | null = null;
    const answered = until((from, msg) => {
      if (from !== accomplice || (msg.type !== 'ack' && msg.type !== 'refused') || toHex(msg.digest) !== key) return false;
      answer = msg;
      return true;
    });
    links[accomplice]!.ws.send(encodeMessage({ type: 'sequence', oc, batch: hostage }));
    await answered;
    const reply = answer as Message | null;
    if (reply?.type !== 'ack') {
      stats.failed++;
      log(`hostage ${key.slice(0, 12)} not planted: ${reply?.type === 'refused' ? `refused (${reply.reason})` : 'no answer'}`);
    } else {
      // 3. Pushed out of every other replica's pending store by junk on the same connection. It
      // must be gone before the accomplice's seal lists it (Δ after its slot), else the others
      // can still serve it.
      const junkPerReplica = MAX_PENDING_BATCHES_PER_CONNECTION + JUNK_EXCESS;
      const junkAnswers = new Map<ReplicaId, number>();
      const refusedBefore = Object.values(stats.junkRefused).reduce((a, b) => a + b, 0);
      const evicted = until((from, msg) => {
        if (from !== accomplice && (msg.type === 'tsReply' || msg.type === 'refused')) junkAnswers.set(from, (junkAnswers.get(from) ?? 0) + 1);
        if (from !== accomplice && msg.type === 'refused') stats.junkRefused[msg.reason] = (stats.junkRefused[msg.reason] ?? 0) + 1;
        return others.every((l) => (junkAnswers.get(l.replica) ?? 0) >= junkPerReplica);
      });
      const floodStarted = Date.now();
      for (let i = 0; i < junkPerReplica; i++) {
        const frame = encodeMessage({ type: 'submit', batch: newBatch() });
        for (const l of others) l.ws.send(frame);
      }
      stats.junkBatches += junkPerReplica;
      await evicted;
      const floodMs = Date.now() - floodStarted;
      stats.planted++;
      const deltaMs = config.protocol.deltaUs / 1000;
      const refused = Object.values(stats.junkRefused).reduce((a, b) => a + b, 0) - refusedBefore;
      log(
        `hostage ${key.slice(0, 12)} planted: acked by replica ${accomplice} only; ${junkPerReplica} junk batches to each other replica took ${floodMs} ms` +
          (floodMs > deltaMs ? ` (more than Δ = ${deltaMs} ms: the others may have served it before it was evicted)` : '') +
          (refused > 0 ? `; ${refused} junk answers were refusals (the others may still hold it)` : ''),
      );
    }
    await new Promise((r) => setTimeout(r, Math.max(0, opts.everyMs - (Date.now() - started))));
  }
  for (const l of links) l.ws.close();
  return stats;
}

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};

async function main(): Promise<void> {
  const program = new Command('attack-hostage')
    .description('plant batches only a withholding replica holds (issue 11, finding 1)')
    .requiredOption('--conf <dir>', 'configuration directory (cluster.json)')
    .requiredOption('--accomplice <i>', 'the replica run with --byzantine withhold', positiveInt)
    .option('--every-ms <ms>', 'time between hostages', positiveInt, 3_000)
    .option('--duration <s>', 'how long to attack', positiveInt, 30)
    .parse();
  const o = program.opts<{ conf: string; accomplice: number; everyMs: number; duration: number }>();
  const config = await loadClusterConfig(o.conf, nodeCrypto);
  const stats = await runHostageAttack({ config, accomplice: o.accomplice as ReplicaId, everyMs: o.everyMs, durationMs: o.duration * 1000 });
  const refused = Object.entries(stats.junkRefused).map(([reason, count]) => `${count} ${reason}`);
  process.stdout.write(
    `attack-hostage: ${stats.planted} planted, ${stats.failed} failed, ${stats.junkBatches} junk batches to each other replica` +
      (refused.length > 0 ? ` (refused: ${refused.join(', ')})` : '') +
      '\n',
  );
}

if (isEntryPoint(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`attack-hostage: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
