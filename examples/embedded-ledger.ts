/**
 * Fair ordering embedded in an application: four replicas in this process, each running the
 * application's own state machine (an append-only ledger of text entries), and a client that
 * submits entries and reads back where each landed. What `pompe replica` and the benchmark do,
 * but with your code as the state machine.
 *
 *   npm run build && node dist/examples/embedded-ledger.js
 *
 * In production each replica runs on its own machine (`pompe gen-conf --hosts …`, then
 * `startReplica` in your service on each); the state machine must be deterministic: the same
 * commands in the same order give the same results everywhere.
 */
import type { Command } from '../common/batch.js';
import { PompeClient } from '../client/client.js';
import { concatBytes } from '../common/bytes.js';
import { MAX_CHECKPOINT_CHUNK_BYTES } from '../common/limits.js';
import type { ExecutionContext, SnapshotRestore, StateMachine } from '../ordering/stateMachine.js';
import { startLocalCluster } from './localCluster.js';
import { isEntryPoint } from '../client/entryPoint.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The application: every command is a UTF-8 entry; its result is the entry's index in the ledger. */
export class Ledger implements StateMachine {
  readonly entries: string[] = [];

  execute(commands: readonly Command[], _ctx: ExecutionContext): Uint8Array[] {
    return commands.map((c) => {
      this.entries.push(decoder.decode(c.payload));
      return encoder.encode(String(this.entries.length - 1));
    });
  }

  /** The ledger as it is now, as JSON in chunks of at most 1 MiB (checkpoints). */
  snapshot(): Iterable<Uint8Array> {
    const bytes = encoder.encode(JSON.stringify(this.entries));
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += MAX_CHECKPOINT_CHUNK_BYTES) chunks.push(bytes.subarray(at, at + MAX_CHECKPOINT_CHUNK_BYTES));
    return chunks;
  }

  restore(): SnapshotRestore {
    const chunks: Uint8Array[] = [];
    return {
      add: (chunk) => void chunks.push(chunk),
      finish: () => {
        const restored = JSON.parse(decoder.decode(concatBytes(...chunks))) as string[];
        this.entries.length = 0;
        for (const entry of restored) this.entries.push(entry);
      },
    };
  }
}

export interface LedgerRun {
  /** Each replica's ledger, in execution order. */
  readonly ledgers: readonly (readonly string[])[];
  /** What the client was told for each entry it submitted. */
  readonly receipts: readonly { readonly entry: string; readonly index: number; readonly position: number; readonly ts: number | null }[];
}

/** Starts a 4-replica cluster on free loopback ports, submits `entries`, stops it. */
export async function runLedger(entries: readonly string[]): Promise<LedgerRun> {
  const ledgers = [0, 1, 2, 3].map(() => new Ledger());
  const cluster = await startLocalCluster(4, (id) => ledgers[id]!);
  let client: PompeClient | null = null;
  try {
    client = await PompeClient.connect({ confDir: cluster.dir });
    const results = await Promise.all(entries.map((entry) => client!.submit(encoder.encode(entry))));
    const receipts = results.map((r, i) => ({ entry: entries[i]!, index: Number(decoder.decode(r.result)), position: r.position, ts: r.ts }));
    // f+1 replicas answered; give the others a moment to execute the same entries.
    const deadline = Date.now() + 5_000;
    while (ledgers.some((l) => l.entries.length < entries.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return { ledgers: ledgers.map((l) => [...l.entries]), receipts };
  } finally {
    await client?.close();
    await cluster.close();
  }
}

if (isEntryPoint(import.meta.url)) {
  const run = await runLedger(['alice pays bob 5', 'bob pays carol 2', 'carol pays alice 1']);
  for (const r of run.receipts) console.log(`"${r.entry}" is ledger entry ${r.index} (batch position ${r.position}, timestamp ${r.ts} µs)`);
  console.log(`all four replicas hold the same ledger: ${run.ledgers.every((l) => JSON.stringify(l) === JSON.stringify(run.ledgers[0]))}`);
}
